"""The fake OpenAI-compatible server of the tests (``tests.fake_openai.FakeOpenAI``) in its own
process, answering at once (no delay before or between tokens), so it shares no GIL with the
load generator or the server. "remember …" is answered with a memory_insert call (a two-step
tool turn). Its CPU time is read from /proc like the server's.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 30.0

# Prints the port once serving, then serves until its stdin closes. Recorded requests are
# dropped as they come (each holds the whole context), so memory stays flat over a long run.
_LAUNCHER = """
import sys
from tests.fake_openai import FakeOpenAI

class Forgetful(list):
    def append(self, item):
        pass

fake = FakeOpenAI()
fake._received = Forgetful()
fake.remember_tool = True
fake.start()
print(fake.port, flush=True)
sys.stdin.read()
fake.stop()
"""

MODEL = "gpt-fake"


@dataclass(frozen=True)
class FakeModelServer:
    pid: int
    base_url: str  # …/v1, for OPENAI_BASE_URL


@contextmanager
def fake_openai_process() -> Iterator[FakeModelServer]:
    process = subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"the fake OpenAI server did not start (exit {process.poll()})")
        server = FakeModelServer(process.pid, f"http://127.0.0.1:{int(line)}/v1")
        log.info("  fake OpenAI server pid %d on %s", server.pid, server.base_url)
        yield server
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=START_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
