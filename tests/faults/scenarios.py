"""The fault scenarios. Each starts its own servers (and Redis, proxy) on its own store, runs
writers through the fault, and returns its figures."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg

from domain import ids
from domain.conversation import Conversation
from runtime.bootstrap import build
from runtime.settings import Settings
from service.agents import AgentSpec
from tests.actors import DEFAULT_ACTOR
from tests.e2e.conftest import REPO, SCRUBBED, SERVE, free_port
from tests.e2e.turns_support import create_agent, create_conversation, env_for, spawn_server
from tests.fake_openai import FakeOpenAI
from tests.faults.clients import Writer, losses, user_texts
from tests.faults.infra import RedisProcess, TcpProxy


@dataclass(frozen=True)
class Pace:
    writers: int
    warmup: float  # seconds of turns before the fault
    outage: float  # how long the fault lasts, where it has a length
    after: float  # seconds of turns after the fault's end
    events: int  # events the catch-up scenario leaves for a killed catch-up


# ``after`` leaves a killed process's claims time to lapse (CONVLOG_PROCESS_TIMEOUT, 3 s, and a
# reap) on a loaded CI machine before the first good turn is looked for.
QUICK = Pace(writers=2, warmup=1.5, outage=3.0, after=7.0, events=3000)
FULL = Pace(writers=4, warmup=4.0, outage=10.0, after=10.0, events=30_000)


class Target:
    """The base URL writers use now: what a load balancer would pick."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self) -> str:
        return self.url


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    schema = f"faults_{uuid.uuid4().hex[:10]}"
    try:
        yield schema
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def conversations(url: str, count: int) -> list[str]:
    with httpx.Client(base_url=url, timeout=30.0) as http:
        agent = create_agent(http)
        return [create_conversation(http, agent) for _ in range(count)]


def start_writers(targets: list[Target], conversation_ids: list[str]) -> list[Writer]:
    writers = [
        Writer(targets[i % len(targets)], conversation, f"writer-{i}")
        for i, conversation in enumerate(conversation_ids)
    ]
    for writer in writers:
        writer.start()
    return writers


def figures(writers: list[Writer], url: str, fault_end: float, **extra: Any) -> dict[str, Any]:
    for writer in writers:
        writer.stopping.set()
    for writer in writers:
        writer.join(timeout=writer.read_timeout + 10)
    # The server read from may not have projected the other process's last turns yet.
    time.sleep(1.0)
    lost = duplicated = 0
    for writer in writers:
        found_lost, found_dup = losses(writer.tally.confirmed, user_texts(url, writer.conversation))
        lost += found_lost
        duplicated += found_dup
    after = [t for w in writers for t in w.tally.successes if t >= fault_end]
    statuses: dict[str, int] = {}
    for writer in writers:
        for status, n in writer.tally.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    return {
        "turns_confirmed": sum(len(w.tally.confirmed) for w in writers),
        "requests": sum(w.tally.requests for w in writers),
        "unanswered": sum(w.tally.unanswered for w in writers),
        "lost": lost,
        "duplicated": duplicated,
        "longest_wait_seconds": round(max(w.tally.longest_request_seconds for w in writers), 2),
        "recovery_seconds": round(min(after) - fault_end, 2) if after else None,
        "answers": statuses,
        **extra,
    }


def postgres_and_redis(
    stack: ExitStack, fake: FakeOpenAI, root: Path, database_url: str
) -> tuple[dict[str, str], RedisProcess]:
    """Server settings on a fresh PostgreSQL schema and a Redis of its own (both cleaned up
    by ``stack``)."""
    schema = stack.enter_context(postgres_schema(database_url))
    redis = RedisProcess()
    redis.start()
    stack.callback(redis.kill)
    env = env_for(
        fake.base_url,
        DATABASE_URL=database_url,
        DATABASE_SCHEMA=schema,
        REDIS_URL=redis.url,
        CONVLOG_DATA_DIR=str(root / "unused"),
    )
    return env, redis


def slow_model(fake: FakeOpenAI) -> None:
    """Turns of ~0.3 s, so that a fault finds some in the middle."""
    fake.reset()
    fake.first_token_delay = 0.1
    fake.token_delay = 0.03


# -- the scenarios ---------------------------------------------------------------------------


def kill_the_only_server(fake: FakeOpenAI, root: Path, pace: Pace) -> dict[str, Any]:
    """SQLite, one server: kill -9 mid-turn, start it again on the same files."""
    slow_model(fake)
    env = env_for(fake.base_url, CONVLOG_DATA_DIR=str(root / "data"))
    with spawn_server(env, root / "first") as (url, first):
        target = Target(url)
        writers = start_writers([target], conversations(url, pace.writers))
        time.sleep(pace.warmup)
        first.kill()
        first.wait(timeout=10)
        killed = time.monotonic()
    with spawn_server(env, root / "second") as (url, _):
        target.url = url
        restarted = time.monotonic()
        time.sleep(pace.after)
        return figures(writers, url, restarted, restart_seconds=round(restarted - killed, 2))


def kill_one_of_two(fake: FakeOpenAI, root: Path, pace: Pace, database_url: str) -> dict[str, Any]:
    """PostgreSQL and Redis, two servers: kill -9 the one the clients use; they move on."""
    slow_model(fake)
    with ExitStack() as stack:
        env, _ = postgres_and_redis(stack, fake, root, database_url)
        victim_url, victim = stack.enter_context(spawn_server(env, root / "victim"))
        other_url, _ = stack.enter_context(spawn_server(env, root / "other"))
        target = Target(victim_url)
        writers = start_writers([target], conversations(victim_url, pace.writers))
        time.sleep(pace.warmup)
        victim.kill()
        victim.wait(timeout=10)
        target.url = other_url  # the load balancer notices
        killed = time.monotonic()
        time.sleep(pace.after)
        return figures(writers, other_url, killed)


def kill_redis(fake: FakeOpenAI, root: Path, pace: Pace, database_url: str) -> dict[str, Any]:
    """PostgreSQL, two servers on a Redis of their own: kill -9 Redis, start it again empty."""
    slow_model(fake)
    with ExitStack() as stack:
        env, redis = postgres_and_redis(stack, fake, root, database_url)
        a, _ = stack.enter_context(spawn_server(env, root / "a"))
        b, _ = stack.enter_context(spawn_server(env, root / "b"))
        writers = start_writers([Target(a), Target(b)], conversations(a, pace.writers))
        time.sleep(pace.warmup)
        redis.kill()
        time.sleep(pace.outage)
        redis.start()
        back = time.monotonic()
        time.sleep(pace.after)
        return figures(writers, a, back)


def stop_postgres(fake: FakeOpenAI, root: Path, pace: Pace, database_url: str) -> dict[str, Any]:
    """PostgreSQL behind a TCP proxy: the proxy stops (every connection cut, none accepted)
    for ``pace.outage`` seconds, then starts again."""
    slow_model(fake)
    parts = psycopg.conninfo.conninfo_to_dict(database_url)
    proxy = TcpProxy(str(parts.get("host") or "127.0.0.1"), int(parts.get("port") or 5432))
    proxy.start()
    through = (
        f"postgresql://{parts.get('user') or 'postgres'}@127.0.0.1:{proxy.port}/"
        f"{parts.get('dbname') or 'postgres'}"
    )
    try:
        with ExitStack() as stack:
            schema = stack.enter_context(postgres_schema(database_url))
            env = env_for(
                fake.base_url,
                DATABASE_URL=through,
                DATABASE_SCHEMA=schema,
                CONVLOG_DATA_DIR=str(root / "unused"),
            )
            url, _ = stack.enter_context(spawn_server(env, root / "server"))
            writers = start_writers([Target(url)], conversations(url, pace.writers))
            time.sleep(pace.warmup)
            proxy.stop()
            time.sleep(pace.outage)
            proxy.start()
            back = time.monotonic()
            time.sleep(pace.after)
            with httpx.Client(base_url=url, timeout=10) as http:
                ready = http.get("/v1/health/ready").status_code
            return figures(writers, url, back, ready_after=ready)
    finally:
        proxy.stop()


def kill_a_catch_up(fake: FakeOpenAI, root: Path, pace: Pace, database_url: str) -> dict[str, Any]:
    """Events written while no server runs; the server that catches up on them is killed
    mid-way (small batches, so it dies between and inside them); the next one finishes. Every
    message must be in the views exactly once."""
    with postgres_schema(database_url) as schema:
        settings = Settings(database_url=database_url, database_schema=schema)
        services = build(settings)
        try:
            agent = services.agents.create(
                DEFAULT_ACTOR, AgentSpec(name="catch-up", model="openai/gpt-4o-mini")
            )
            row = services.conversations.create(DEFAULT_ACTOR, agent.id)
            conversation = services.ctx.app.get(Conversation, UUID(row.id))
            assert conversation is not None
            for n in range(pace.events):
                conversation.append_message(
                    message_id=ids.new(ids.MESSAGE),
                    role="user",
                    message_type="user_message",
                    content=f"m {n}",
                )
                if n % 200 == 199:
                    services.ctx.app.save(conversation)  # the views are not told
            services.ctx.app.save(conversation)
        finally:
            services.close()
        env = env_for(
            fake.base_url,
            DATABASE_URL=database_url,
            DATABASE_SCHEMA=schema,
            CONVLOG_DATA_DIR=str(root / "unused"),
            CONVLOG_PROJECTION_BATCH_SIZE="50",
        )
        killed_at = _kill_mid_catch_up(env, root / "killed", database_url, schema)
        started = time.monotonic()
        with spawn_server(env, root / "restarted") as (url, _):
            caught_up = time.monotonic() - started
            listed = user_texts(url, row.conversation_id)
        expected = [f"m {n}" for n in range(pace.events)]
        lost, duplicated = losses(expected, listed)
        return {
            "events": pace.events,
            "killed_at_position": killed_at,
            "lost": lost,
            "duplicated": duplicated,
            "in_order": listed == expected,
            "unanswered": 0,
            "recovery_seconds": round(caught_up, 2),
        }


def _kill_mid_catch_up(
    env: dict[str, str], log_dir: Path, database_url: str, schema: str
) -> dict[str, int]:
    """Start a server and kill -9 it once its messages view has moved, before it is done."""

    def position() -> int:
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute(
                f'SELECT t.position FROM "{schema}".projection_tracking t'
                f' JOIN "{schema}".projection_generations g'
                " ON g.name = t.name AND g.active = t.generation WHERE t.name = 'messages'"
            ).fetchone()
            return int(row[0]) if row else 0

    start, log_end = position(), _log_end(database_url, schema)
    full = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    full.update(env)
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "server.log").open("wb") as sink:
        proc = subprocess.Popen(
            [*SERVE, "--port", str(free_port())], cwd=REPO, env=full, stdout=sink, stderr=sink
        )
    deadline = time.monotonic() + 60
    while (now := position()) == start and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait(timeout=10)
    return {"from": start, "killed_at": now, "log_end": log_end}


def _log_end(database_url: str, schema: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(f'SELECT max(notification_id) FROM "{schema}".convlog_events').fetchone()
        return int(row[0]) if row and row[0] is not None else 0


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {
    "kill_the_only_server": kill_the_only_server,
    "kill_one_of_two": kill_one_of_two,
    "kill_redis": kill_redis,
    "stop_postgres": stop_postgres,
    "kill_a_catch_up": kill_a_catch_up,
}
# The scenarios that need PostgreSQL (all but the first).
NEEDS_POSTGRES = ("kill_one_of_two", "kill_redis", "stop_postgres", "kill_a_catch_up")
