"""Letta Code's interactive TUI against convlog, driven under tmux as a user would type: a new
agent, a task with its shell tool, then ``/compact all``. The screens are kept as artifacts
(``.cache/artifacts/`` in the checkout; ``CONVLOG_TEST_ARTIFACTS`` moves them)."""

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
        script = f"cd {shlex.quote(str(cwd))} && env {exports} {shlex.join(command)}"
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
def terminal(letta: LettaCode) -> Iterator[Terminal]:
    tmux = require_program("tmux", "the TUI test drives Letta Code in a tmux session")
    env = letta_code_env(letta.base_url, letta.home)
    command = [str(letta.binary), "--new-agent", "--permission-mode", "bypassPermissions"]
    session = Terminal(tmux, command, letta.workdir, env)
    try:
        yield session
    finally:
        (artifacts() / "letta-code-tui-last.txt").write_text(session.screen())
        session.close()


def test_a_task_with_the_shell_tool_and_a_compaction_in_the_tui(
    terminal: Terminal, letta: LettaCode
) -> None:
    terminal.wait_for("its prompt", lambda s: "Letta Code v0.21.7" in s and "yolo" in s)
    terminal.type('make it [[call Bash {"command": "echo from-the-tui > tui.txt"}]]')
    screen = terminal.wait_for("the tool's result", lambda s: "tool said:" in s)
    (artifacts() / "letta-code-tui-task.txt").write_text(screen)
    assert "Bash(echo from-the-tui > tui.txt)" in screen
    assert (letta.workdir / "tui.txt").read_text() == "from-the-tui\n"

    terminal.type("/compact all")
    screen = terminal.wait_for("the summary", lambda s: "Generate the summary" in s)
    (artifacts() / "letta-code-tui-compact.txt").write_text(screen)
    with httpx.Client(base_url=letta.base_url, timeout=30) as http:
        (agent,) = [a for a in http.get("/v1/agents/").json() if a["name"] == "Letta Code"]
        events = http.get(f"/v1/conversations/{agent['id']}/events", params={"limit": 1000})
    assert "convlog.Conversation.Compacted" in [e["type"] for e in events.json()]
