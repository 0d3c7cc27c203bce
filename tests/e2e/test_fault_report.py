"""One test per defect of the fault report that the 0.4.0 work fixed, each with the fault
injected by the test itself: a Redis of its own killed -9, a PostgreSQL trigger that refuses
writes in its own schema, a TCP proxy it stops, a port that never answers. The numbers are the
report's; docs/adr-004-trust-and-recovery.md tells the design. Elsewhere: dead connections in
the views' pool (3) in tests/integration/test_dead_connections.py, a commit whose answer was
lost (4, PostgreSQL) in tests/unit/test_lost_answers.py, the status's lag and resumed rebuilds
(7) in tests/integration/test_startup.py and test_rebuild_resume.py.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from redis.exceptions import RedisError
from starlette.applications import Starlette

from adapters.redis_ports import CANCEL_CHANNEL, RedisSignals, connect
from api.app import create_app
from runtime.bootstrap import build
from runtime.settings import Settings
from service.services import Services
from tests.e2e.conftest import CLI, REPO, SCRUBBED, SERVE, free_port, spawn_server
from tests.e2e.turns_support import (
    DONE,
    Sent,
    create_agent,
    create_conversation,
    env_for,
    iter_frames,
    list_runs,
    messages,
    say,
    send,
)
from tests.fake_openai import FakeOpenAI
from tests.faults.infra import RedisProcess, TcpProxy
from tests.faults.scenarios import postgres_and_redis, postgres_schema
from tests.served_app import ServedApp
from tests.services import require_postgres, require_program

pytestmark = [pytest.mark.e2e]

# However a turn fails, its client is answered within this (the model here takes ~1.5 s).
ANSWER_WITHIN = 15.0


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as served:
        yield served


@pytest.fixture
def slow(fake: FakeOpenAI) -> FakeOpenAI:
    """Turns that take ~1.5 s, so that a fault lands in the middle of one."""
    fake.reset()
    fake.first_token_delay = 1.0
    fake.token_delay = 0.05
    return fake


def ended(sent: Sent) -> bool:
    return sent.status == 200 and (sent.body is not None or sent.kinds[-1:] == [DONE])


def test_1_4_redis_dying_mid_turn_still_answers_and_reports_what_was_saved(
    slow: FakeOpenAI, tmp_path: Path
) -> None:
    """Freeing the fast lock fails (Redis is gone) after the turn was saved: every client still
    gets its whole answer, told as the success it was, and the server still stops cleanly."""
    require_program("redis-server", "the test kills a Redis of its own")
    with ExitStack() as stack:
        env, redis = postgres_and_redis(stack, slow, tmp_path, require_postgres())
        url, server = stack.enter_context(spawn_server(env, tmp_path / "server"))
        http = stack.enter_context(httpx.Client(base_url=url, timeout=ANSWER_WITHIN))
        agent = create_agent(http)
        chats = [create_conversation(http, agent) for _ in range(4)]
        answers: dict[str, Sent] = {}

        def turn(chat: str, streaming: bool) -> None:
            body = {"messages": [{"role": "user", "content": "hi"}], "streaming": streaming}
            answers[chat] = send(http, chat, body)

        threads = [
            threading.Thread(target=turn, args=(chat, n % 2 == 0)) for n, chat in enumerate(chats)
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.6)  # every turn is claimed and waiting on the model
        redis.kill()
        for thread in threads:
            thread.join(timeout=ANSWER_WITHIN + 5)
        assert sorted(answers) == sorted(chats), "a client was never answered"
        for chat, sent in answers.items():
            assert ended(sent), sent
            if sent.body is None:
                assert sent.of("stop_reason")[0]["stop_reason"] == "end_turn", sent.frames
            else:
                assert sent.body["stop_reason"]["stop_reason"] == "end_turn", sent.body
            kinds = [m["message_type"] for m in messages(http, chat)]
            assert kinds.count("assistant_message") == 1, kinds
        started = time.monotonic()
        server.terminate()
        server.wait(timeout=30)
        assert time.monotonic() - started < 10, "shutting down waited on Redis"


REFUSE_WRITES = """
CREATE TABLE "{schema}".refuse_writes (since timestamptz DEFAULT now());
CREATE FUNCTION "{schema}".refuse_while_switched_on() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM "{schema}".refuse_writes) THEN
    RAISE EXCEPTION 'injected by the test: this database refuses writes';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse BEFORE INSERT ON "{schema}".convlog_events
  FOR EACH ROW EXECUTE FUNCTION "{schema}".refuse_while_switched_on();
"""


def test_2_a_write_failing_after_the_claim_frees_the_conversation_once_the_database_is_back(
    slow: FakeOpenAI, tmp_path: Path
) -> None:
    """The claim is saved, then every write fails for a while: the client is answered with an
    error at once, and the run's failure (which releases the claim) is recorded as soon as
    writes work again, not a lease (60 s) later."""
    database_url = require_postgres()
    with ExitStack() as stack:
        schema = stack.enter_context(postgres_schema(database_url))
        env = env_for(slow.base_url, DATABASE_URL=database_url, DATABASE_SCHEMA=schema)
        url, _ = stack.enter_context(spawn_server(env, tmp_path / "server"))
        admin = stack.enter_context(psycopg.connect(database_url, autocommit=True))
        admin.execute(REFUSE_WRITES.format(schema=schema).encode())
        http = stack.enter_context(httpx.Client(base_url=url, timeout=ANSWER_WITHIN))
        chat = create_conversation(http, create_agent(http))
        body = {"messages": [{"role": "user", "content": "hi"}]}
        path = f"/v1/conversations/{chat}/messages"
        with http.stream("POST", path, json=body) as response:
            assert response.status_code == 200  # the claim is in the log
            admin.execute(f'INSERT INTO "{schema}".refuse_writes DEFAULT VALUES'.encode())
            kinds = [frame.kind for frame in iter_frames(response)]
        assert kinds[-3:] == ["stop_reason", "error", DONE], kinds
        time.sleep(1.0)  # the failure cannot be recorded yet: the conversation stays held
        assert send(http, chat, body).status == 409
        admin.execute(f'DELETE FROM "{schema}".refuse_writes'.encode())
        back = time.monotonic()
        while (sent := send(http, chat, body)).status == 409:
            assert time.monotonic() - back < 5, "the conversation stayed held"
            time.sleep(0.1)
        assert sent.of("stop_reason") == [
            {"message_type": "stop_reason", "stop_reason": "end_turn"}
        ]
        runs = list_runs(http, conversation_id=chat)
        assert sorted(r["status"] for r in runs) == ["completed", "failed"], runs


def test_5_a_database_outage_is_fast_503s_a_truthful_health_and_a_quick_recovery(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    database_url = require_postgres()
    parts = psycopg.conninfo.conninfo_to_dict(database_url)
    proxy = TcpProxy(str(parts.get("host") or "127.0.0.1"), int(parts.get("port") or 5432))
    proxy.start()
    through = (
        f"postgresql://{parts.get('user') or 'postgres'}@127.0.0.1:{proxy.port}/"
        f"{parts.get('dbname') or 'postgres'}"
    )
    with ExitStack() as stack:
        stack.callback(proxy.stop)
        schema = stack.enter_context(postgres_schema(database_url))
        env = env_for(fake.base_url, DATABASE_URL=through, DATABASE_SCHEMA=schema)
        url, _ = stack.enter_context(spawn_server(env, tmp_path / "server"))
        http = stack.enter_context(httpx.Client(base_url=url, timeout=30))
        agent = create_agent(http)
        proxy.stop()
        waits = []
        for _ in range(5):
            started = time.monotonic()
            answer = http.get(f"/v1/agents/{agent}")
            waits.append(time.monotonic() - started)
            assert answer.status_code == 503, answer.text
            assert int(answer.headers["retry-after"]) >= 1
        assert max(waits) < 5, waits
        health = http.get("/v1/health/").json()
        assert health["database"] == "unavailable", health
        assert http.get("/v1/health/ready").status_code == 503
        proxy.start()
        back = time.monotonic()
        chat = ""
        while not chat:
            assert time.monotonic() - back < 5, "no recovery within 5 s of the database's return"
            try:
                chat = create_conversation(http, agent)
            except (AssertionError, httpx.HTTPStatusError):
                time.sleep(0.1)
        say(http, chat, "back")
        assert http.get("/v1/health/ready").status_code == 200


@contextmanager
def _silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word, as a firewalled database."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_6_a_database_that_never_answers_is_a_bounded_wait_and_one_line(tmp_path: Path) -> None:
    with _silent_port() as port:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env.update(
            DATABASE_URL=f"postgresql://admin:s3cret@127.0.0.1:{port}/convlog",
            CONVLOG_DB_STARTUP_WAIT="2",
        )
        started = time.monotonic()
        done = subprocess.run(
            [*CLI, "projections", "status"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        took = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert took < 15, took
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("convlog: cannot reach the database at postgresql://admin:***@")
    assert "s3cret" not in done.stderr


def test_6_an_unreachable_redis_at_startup_is_a_warning_and_a_working_node(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    database_url = require_postgres()
    with ExitStack() as stack:
        schema = stack.enter_context(postgres_schema(database_url))
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env.update(
            env_for(
                fake.base_url,
                DATABASE_URL=database_url,
                DATABASE_SCHEMA=schema,
                REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
            )
        )
        port = free_port()
        log = tmp_path / "server.log"
        with log.open("wb") as sink:
            server = subprocess.Popen(
                [*SERVE, "--port", str(port)], cwd=REPO, env=env, stdout=sink, stderr=sink
            )
        stack.callback(server.wait, 30)
        stack.callback(server.terminate)
        http = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30))
        health = _wait_ready(http, server, log)
        assert health["redis"] == "unavailable", health
        fake.reset()
        say(http, create_conversation(http, create_agent(http)), "no Redis")
        assert "Redis is unavailable" in log.read_text()


def _wait_ready(http: httpx.Client, server: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            answer = http.get("/v1/health/ready")
            if answer.status_code == 200:
                return answer.json()
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling a process that is still booting
    raise AssertionError(f"not ready in 30 s:\n{log.read_text()}")


class _Broken(ServedApp):
    """The real application on a real socket, with one route made to crash."""

    name = "broken convlog"

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services

    def app(self) -> Starlette:
        return create_app(self.services)


def _exchange(sock: socket.socket, path: str) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        head += chunk
    headers, _, body = head.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in headers.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return headers.split(b"\r\n")[0]


def test_7_a_500_keeps_the_connection_open(monkeypatch: pytest.MonkeyPatch) -> None:
    services = build(Settings(database_url="memory://"))

    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(services.agents, "count", broken)
    with _Broken(services) as served, socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.settimeout(10)
        assert b" 500 " in _exchange(sock, "/v1/agents/count")
        assert b" 200 " in _exchange(sock, "/v1/health/")
    services.close()


def test_7_the_cancel_listener_hears_cancels_again_after_redis_restarts() -> None:
    require_program("redis-server", "the test restarts a Redis of its own")
    redis = RedisProcess()
    redis.start()
    try:
        assert asyncio.run(_heard_after_restart(redis)) is True
    finally:
        redis.kill()


async def _heard_after_restart(redis: RedisProcess) -> bool:
    signals = RedisSignals(connect(redis.url))
    await signals.start()
    other = connect(redis.url)  # another process's client
    try:
        redis.kill()
        await asyncio.sleep(1.0)  # the listener fails and retries
        redis.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with suppress(RedisError):  # the publisher reconnects too
                await other.publish(CANCEL_CHANNEL, "run-after-restart")
            if signals.is_cancelled("run-after-restart"):
                return True
            await asyncio.sleep(0.2)
        return False
    finally:
        await signals.aclose()
        await other.aclose()
