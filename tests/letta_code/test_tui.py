"""Letta Code's interactive TUI against convlog, driven under tmux as a user would type (its
main path: a new agent, tasks with its shell and file tools, a compaction, resuming, a new
conversation). The screens are kept as artifacts (``.cache/artifacts/`` in the checkout;
``CONVLOG_TEST_ARTIFACTS`` moves them)."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.letta_code.conftest import LettaCode
from tests.letta_code.node import REPO, letta_code_env
from tests.services import require_program

pytestmark = [pytest.mark.e2e]

WAIT_SECONDS = 60.0
PASSED = ("PATH", "LETTA_BASE_URL", "HOME", "DISABLE_AUTOUPDATER", "LETTA_CODE_TELEM", "NO_COLOR")


def artifacts() -> Path:
    found = Path(os.environ.get("CONVLOG_TEST_ARTIFACTS") or REPO / ".cache" / "artifacts")
    found.mkdir(parents=True, exist_ok=True)
    return found


class Terminal:
    """One tmux session running a command, 160x50."""

    def __init__(self, tmux: str, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.tmux = tmux
        self.name = f"convlog-{uuid.uuid4().hex[:8]}"
        # The session's shell starts from tmux's own environment: the settings go on the line.
        exports = " ".join(f"{k}={shlex.quote(env[k])}" for k in PASSED)
        # The pause keeps the last screen readable after the program exits.
        # Without CI: the TUI (ink) draws no interactive prompt when it believes it runs in CI,
        # and a tmux server started by a CI job passes CI=true on to its sessions.
        script = (
            f"cd {shlex.quote(str(cwd))} && env -u CI {exports} {shlex.join(command)}; sleep 600"
        )
        self._tmux("new-session", "-d", "-s", self.name, "-x", "160", "-y", "50", script)

    def _tmux(self, *args: str) -> str:
        done = subprocess.run([self.tmux, *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", self.name, "-l", text)
        time.sleep(0.5)  # the TUI redraws its suggestions before the Enter
        self._tmux("send-keys", "-t", self.name, "Enter")

    def wait_for(self, what: str, ready: Callable[[str], bool]) -> str:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            screen = self.screen()
            if ready(screen):
                return screen
            time.sleep(0.2)  # polling a terminal that redraws at its own pace
        raise AssertionError(f"the TUI never showed {what}:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run([self.tmux, "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def tui(letta: LettaCode) -> Iterator[Callable[..., Terminal]]:
    """Starts ``letta`` with the given arguments in a tmux session of its own."""
    tmux = require_program("tmux", "the TUI test drives Letta Code in a tmux session")
    env = letta_code_env(letta.base_url, letta.home)
    started: list[Terminal] = []

    def start(*args: str) -> Terminal:
        command = [str(letta.binary), *args, "--permission-mode", "bypassPermissions"]
        started.append(Terminal(tmux, command, letta.workdir, env))
        return started[-1]

    try:
        yield start
    finally:
        for n, session in enumerate(started):
            (artifacts() / f"letta-code-tui-session-{n + 1}.txt").write_text(session.screen())
            session.close()


def ready(screen: str) -> bool:
    return "Letta Code v0.21.7" in screen and "yolo" in screen


def test_the_tuis_main_path(tui: Callable[..., Terminal], letta: LettaCode) -> None:
    """A new agent; a task with the shell tool and one with a file tool; /compact all; quit;
    resume the conversation; /new for a second conversation on the same agent."""
    first = tui("--new-agent")
    first.wait_for("its prompt", ready)
    first.type('make it [[call Bash {"command": "echo from-the-tui > tui.txt"}]]')
    screen = first.wait_for("the tool's result", lambda s: "tool said:" in s)
    assert "Bash(echo from-the-tui > tui.txt)" in screen
    assert (letta.workdir / "tui.txt").read_text() == "from-the-tui\n"
    target = letta.workdir / "notes.md"
    first.type(f'[[call Write {{"file_path": "{target}", "content": "# notes"}}]]')
    first.wait_for("the file written", lambda s: "Successfully wrote" in s)
    assert target.read_text() == "# notes"
    first.type("/compact all")
    screen = first.wait_for("the summary", lambda s: "Generate the summary" in s)
    (artifacts() / "letta-code-tui-compact.txt").write_text(screen)
    first.type("/exit")
    first.wait_for("its goodbye", lambda s: "Resume this agent with" in s)

    with httpx.Client(base_url=letta.base_url, timeout=30) as http:
        (agent,) = [a for a in http.get("/v1/agents/").json() if a["name"] == "Letta Code"]
        events = http.get(f"/v1/conversations/{agent['id']}/events", params={"limit": 1000})
        assert "convlog.Conversation.Compacted" in [e["type"] for e in events.json()]

        again = tui()
        screen = again.wait_for("the resumed conversation", lambda s: "Resuming conversation" in s)
        assert "> make it [[call Bash" in screen  # the history, read back from the server
        again.type("after the resume")
        again.wait_for("the answer", lambda s: "after the resume [context=" in s)
        own = http.get(f"/v1/conversations/{agent['id']}/messages", params={"limit": 1}).json()
        # The same conversation, on from its compacted context: system, summary, this prompt.
        assert own[0]["content"].endswith("after the resume [context=3]"), own[0]["content"]

        again.type("/new")
        again.wait_for("a new conversation", lambda s: "Started new conversation" in s)
        again.type("in the second conversation")
        again.wait_for("its answer", lambda s: "in the second conversation [context=" in s)
        listed = http.get("/v1/conversations/", params={"agent_id": agent["id"]}).json()
    assert len(listed) == 1, listed
    said = http_texts(letta, listed[0]["id"])
    assert said[-1].endswith("in the second conversation")


def http_texts(letta: LettaCode, conversation_id: str) -> list[str]:
    with httpx.Client(base_url=letta.base_url, timeout=30) as http:
        found = http.get(
            f"/v1/conversations/{conversation_id}/messages", params={"order": "asc"}
        ).json()
    texts = []
    for item in found:
        if item["message_type"] == "user_message":
            content = item["content"]
            parts = content if isinstance(content, list) else [{"text": content}]
            texts.append("".join(str(p.get("text", "")) for p in parts))
    return texts
