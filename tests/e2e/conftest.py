"""End-to-end fixtures: the real server as a subprocess, driven over HTTP.

``server_url`` is one SQLite-backed server for the whole session; ``pg_server_url`` is a
PostgreSQL-backed one in a fresh schema (dropped afterwards) for the module that asks for it.
``start_server`` starts more (for example to restart one on the same data directory).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from letta_client import Letta
from letta_client.types.agents import AssistantMessage, SystemMessage, UserMessage

from tests.services import require_postgres

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 20.0
# Settings of the test process that must not leak into the server or the SDK.
SCRUBBED = (
    "LETTA_API_KEY",
    "LETTA_BASE_URL",
    "DATABASE_URL",
    "DATABASE_SCHEMA",
    "REDIS_URL",
    "CONVLOG_HOST",
    "CONVLOG_PORT",
    "CONVLOG_DATA_DIR",
    # Providers: each test server configures its own (a fake), or none.
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
)

CLI = (sys.executable, "-m", "runtime.cli")
SERVE = (*CLI, "serve")

MODEL = "openai/gpt-4o-mini"
EMBEDDING = "openai/text-embedding-3-small"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerFailed(RuntimeError):
    pass


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerFailed(
                f"server exited with {proc.returncode} before answering\n--- {log} ---\n"
                + log.read_text(errors="replace")
            )
        try:
            response = httpx.get(f"{url}/v1/health/", timeout=1.0)
            if response.status_code == 200 and response.json().get("status") == "ok":
                return
            last_error = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last_error = repr(exc)
        time.sleep(0.05)  # polling the port while the process boots, not papering over a race
    raise ServerFailed(
        f"server did not become healthy in {STARTUP_TIMEOUT}s ({last_error})\n--- {log} ---\n"
        + log.read_text(errors="replace")
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def spawn_server(
    env_overrides: dict[str, str], log_dir: Path, args: tuple[str, ...] = ()
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start ``convlog serve`` on a free port; yield its base URL and process (a test may kill
    it); terminate it afterwards.
    """
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update(env_overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    log_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = log_dir / f"server-{port}.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [*SERVE, "--host", "127.0.0.1", "--port", str(port), *args],
                cwd=REPO,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_healthy(proc, url, log)
        except ServerFailed as exc:
            _stop(proc)
            # Another process may have taken the port between picking and binding it.
            if "address already in use" in str(exc).lower() and attempt < 2:
                continue
            pytest.fail(str(exc), pytrace=False)
        try:
            yield url, proc
        finally:
            _stop(proc)
        return


@contextmanager
def start_server(env_overrides: dict[str, str], log_dir: Path) -> Iterator[str]:
    """Start ``convlog serve`` on a free port; yield its base URL; terminate it afterwards."""
    with spawn_server(env_overrides, log_dir) as (url, _):
        yield url


@pytest.fixture(autouse=True, scope="session")
def _no_letta_environment() -> Iterator[None]:
    """The SDK must talk to our server, unauthenticated, whatever the shell has set."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LETTA_API_KEY", raising=False)
        mp.delenv("LETTA_BASE_URL", raising=False)
        yield


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One SQLite-backed server (files under a temporary CONVLOG_DATA_DIR) for the session."""
    root = tmp_path_factory.mktemp("convlog-sqlite")
    with start_server({"CONVLOG_DATA_DIR": str(root / "data")}, root) as url:
        yield url


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[tuple[str, str]]:
    """(database url, fresh schema ``e2e_<hex>``); the schema is dropped afterwards."""
    database_url = require_postgres()
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    yield database_url, schema
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module")
def pg_server_url(
    pg_schema: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A PostgreSQL-backed server keeping its log and views in ``pg_schema``."""
    database_url, schema = pg_schema
    root = tmp_path_factory.mktemp("convlog-postgres")
    env = {
        "DATABASE_URL": database_url,
        "DATABASE_SCHEMA": schema,
        "CONVLOG_DATA_DIR": str(root / "unused"),
    }
    with start_server(env, root) as url:
        yield url


def sdk(url: str) -> Letta:
    # No silent retries: a 409/5xx must surface in the test that caused it.
    return Letta(base_url=url, max_retries=0, timeout=30.0)


@pytest.fixture
def client(server_url: str) -> Iterator[Letta]:
    with sdk(server_url) as c:
        yield c


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, follow_redirects=False, timeout=30.0) as c:
        yield c


def new_agent(client: Letta, human: str = "Name: Ada", persona: str = "I am Sam.") -> str:
    """A fresh agent (tests share one server, so each works on its own agent)."""
    agent = client.agents.create(
        name=f"e2e-{uuid.uuid4().hex[:8]}",
        model=MODEL,
        embedding=EMBEDDING,
        memory_blocks=[
            {"label": "human", "value": human},
            {"label": "persona", "value": persona},
        ],
    )
    return agent.id


def text_content(message: object) -> str:
    """An SDK message's ``content`` as text. Only system, user and assistant messages carry
    one, and the SDK types it loosely (text, or a list of content parts)."""
    assert isinstance(message, (SystemMessage, UserMessage, AssistantMessage)), message
    assert isinstance(message.content, str), message.content
    return message.content


@pytest.fixture
def agent_id(client: Letta) -> str:
    return new_agent(client)
