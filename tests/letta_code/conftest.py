"""A convlog server (SQLite, in a subprocess) on the fake OpenAI model, and a way to run the
pinned Letta Code against it headless."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import spawn_server
from tests.e2e.turns_support import env_for
from tests.fake_openai import FakeOpenAI
from tests.letta_code.node import letta_code, letta_code_env

# The model whose context window is small enough that a few turns overflow it.
SMALL_MODEL = "openai/gpt-fake-mini"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as served:
        yield served


@pytest.fixture(scope="module")
def server(fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("letta-code-server")
    env = env_for(
        fake.base_url,
        CONVLOG_DATA_DIR=str(root / "data"),
        CONVLOG_AUTO_MODEL="openai/gpt-fake",
        CONVLOG_CONTEXT_WINDOWS=json.dumps({SMALL_MODEL: 4000}),
    )
    with spawn_server(env, root) as (url, _):
        yield url


@dataclass
class LettaCode:
    """Runs ``letta`` in ``workdir`` with a home of its own, against ``base_url``."""

    binary: Path
    base_url: str
    workdir: Path
    home: Path

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        # Its output goes to a file, not a pipe: Letta Code exits right after writing, and
        # Node drops what a pipe had not taken yet (a long listing was cut at 64 KiB).
        with tempfile.TemporaryFile("w+") as out:
            done = subprocess.run(
                [str(self.binary), *args],
                cwd=self.workdir,
                env=letta_code_env(self.base_url, self.home),
                stdout=out,
                stderr=subprocess.PIPE,
                text=True,
                timeout=timeout,
            )
            out.seek(0)
            return subprocess.CompletedProcess(done.args, done.returncode, out.read(), done.stderr)

    def headless(self, prompt: str, *args: str) -> dict[str, Any]:
        """``letta -p PROMPT --output-format json …``: its result, which must be a success."""
        done = self.run("-p", prompt, "--output-format", "json", *args)
        assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert done.stdout.strip(), f"no result printed\n{done.stderr}"
        result: dict[str, Any] = json.loads(done.stdout)
        assert result["type"] == "result" and not result["is_error"], result
        return result


@pytest.fixture
def letta(server: str, tmp_path: Path) -> LettaCode:
    workdir, home = tmp_path / "project", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    return LettaCode(letta_code(), server, workdir, home)
