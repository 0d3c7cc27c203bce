"""Turns across server processes: two ``convlog serve`` subprocesses on one PostgreSQL schema,
with Redis (``REDIS_URL``) and without it, both answering from the same fake model.

decisions §3: one active run per conversation holds across processes with or without Redis
(without it, the claim in the log is the guard); a cancel reaches a turn on another process
(by Redis, or through the run's status in the views); with Redis a background run resumes on
any process; a process that dies does not hold its conversation beyond the lease.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
import redis
from letta_client import ConflictError, Letta

from tests.e2e.conftest import start_server
from tests.e2e.turns_support import (
    DONE,
    NO_ACTIVE_RUNS,
    busy_body,
    cancel,
    create_agent,
    create_conversation,
    env_for,
    get_run,
    list_runs,
    messages,
    open_stream,
    prompt_texts,
    say,
    send,
    spawn_server,
)
from tests.fake_openai import FakeOpenAI
from tests.services import require_postgres, require_redis

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

LEASE_SECONDS = 1.5  # CONVLOG_RUN_LEASE_SECONDS: renewed every 0.5 s while a turn runs
POLL_SECONDS = 0.05  # CONVLOG_PROJECTION_POLL_INTERVAL: how soon a process sees the others' events
T = TypeVar("T")


@dataclass(frozen=True)
class Cluster:
    name: str
    a: str
    b: str
    env: dict[str, str]  # what every process of the cluster is started with
    root: Path

    @property
    def uses_redis(self) -> bool:
        return "REDIS_URL" in self.env


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = require_redis()
    r = redis.Redis.from_url(url)
    try:
        r.flushdb()  # db 15 belongs to the tests
    finally:
        r.close()
    return url


def _cluster(
    name: str,
    extra: dict[str, str],
    fake: FakeOpenAI,
    tmp_path_factory: pytest.TempPathFactory,
    workers: bool = False,
) -> Iterator[Cluster]:
    database_url = require_postgres()
    schema = f"e2e_turns_{uuid.uuid4().hex[:10]}"
    root = tmp_path_factory.mktemp(f"convlog-cluster-{name}")
    env = env_for(
        fake.base_url,
        DATABASE_URL=database_url,
        DATABASE_SCHEMA=schema,
        CONVLOG_DATA_DIR=str(root / "unused"),
        CONVLOG_RUN_LEASE_SECONDS=str(LEASE_SECONDS),
        CONVLOG_PROJECTION_POLL_INTERVAL=str(POLL_SECONDS),
        **extra,
    )
    try:
        with ExitStack() as stack:
            if workers:  # one server of two worker processes: A and B are its one address
                url, _ = stack.enter_context(spawn_server(env, root / "a", ("--workers", "2")))
                yield Cluster(name, url, url, env, root)
                return
            a = stack.enter_context(start_server(env, root / "a"))
            b = stack.enter_context(start_server(env, root / "b"))
            yield Cluster(name, a, b, env, root)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module")
def redis_cluster(
    redis_url: str, fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    yield from _cluster("redis", {"REDIS_URL": redis_url}, fake_openai_server, tmp_path_factory)


@pytest.fixture(scope="module")
def log_cluster(
    fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    yield from _cluster("log-only", {}, fake_openai_server, tmp_path_factory)


@pytest.fixture(scope="module")
def workers_cluster(
    redis_url: str, fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    yield from _cluster(
        "workers", {"REDIS_URL": redis_url}, fake_openai_server, tmp_path_factory, workers=True
    )


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        "log-only",
        pytest.param("workers", marks=pytest.mark.redis),
    ]
)
def cluster(request: pytest.FixtureRequest) -> Cluster:
    """Two servers sharing PostgreSQL, with Redis or without; or one `--workers 2` server
    (with Redis), whose two worker processes stand behind one address."""
    name = {"redis": "redis_cluster", "log-only": "log_cluster", "workers": "workers_cluster"}
    found: Cluster = request.getfixturevalue(name[request.param])
    return found


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> FakeOpenAI:
    return fake_openai


@dataclass
class Clients:
    a: httpx.Client
    b: httpx.Client
    conversation: str  # created through A


@pytest.fixture
def on(cluster: Cluster) -> Iterator[Clients]:
    with (
        httpx.Client(base_url=cluster.a, timeout=30.0) as a,
        httpx.Client(base_url=cluster.b, timeout=30.0) as b,
    ):
        yield Clients(a, b, create_conversation(a, create_agent(a)))


def concurrently(*calls: Callable[[], T]) -> list[T]:
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait(timeout=10)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(run, c) for c in calls]]


# -- one active run ------------------------------------------------------------------------------


def test_concurrent_sends_through_two_processes_give_exactly_one_conflict(
    cluster: Cluster, on: Clients, fake: FakeOpenAI
) -> None:
    fake.first_token_delay = 1.0

    def attempt(url: str, text: str) -> list[Any] | ConflictError:
        with Letta(base_url=url, timeout=30.0) as c:  # default retries, as a real client
            try:
                return list(c.conversations.messages.create(on.conversation, input=text))
            except ConflictError as exc:
                return exc

    results = concurrently(lambda: attempt(cluster.a, "via a"), lambda: attempt(cluster.b, "via b"))

    conflicts = [r for r in results if isinstance(r, ConflictError)]
    answers = [r for r in results if isinstance(r, list)]
    assert len(conflicts) == 1 and len(answers) == 1, results
    assert busy_body(conflicts[0].body)
    assert conflicts[0].response.headers["x-should-retry"] == "false"
    assert len(fake.requests) == 1
    winner_text = answers[0][0].content
    assert winner_text in ("echo: via a [context=2]", "echo: via b [context=2]")

    # Right after [DONE] on one process, the other one takes the conversation, and its turn
    # sees the turn just finished elsewhere.
    fake.first_token_delay = 0.0
    # Each process caches contexts: every turn must still count the other process's turns.
    for http, text, context in (
        (on.b, "then b", 4),
        (on.a, "then a", 6),
        (on.b, "b again", 8),
        (on.a, "a again", 10),
    ):
        sent = say(http, on.conversation, text)
        assert sent.answer == f"echo: {text} [context={context}]"
    prompt = prompt_texts(fake.requests[-1].body)
    assert prompt[1:] == [
        winner_text.split(" [")[0].removeprefix("echo: "),
        winner_text,
        "then b",
        "echo: then b [context=4]",
        "then a",
        "echo: then a [context=6]",
        "b again",
        "echo: b again [context=8]",
        "a again",
    ]


def test_a_turn_longer_than_the_lease_keeps_its_conversation(
    cluster: Cluster, on: Clients, fake: FakeOpenAI
) -> None:
    fake.token_delay = 0.25  # the answer takes ~3 s, twice the 1.5 s lease
    path = f"/v1/conversations/{on.conversation}/messages"
    text = "this answer outlives the lease by a lot more than enough"
    body = {"input": text, "stream_tokens": True}
    started = time.monotonic()
    with open_stream(on.a, path, body) as (_, frames):
        seen = [next(frames)]
        while time.monotonic() - started < LEASE_SECONDS + 0.5:
            seen.append(next(frames))  # paced by the model
        assert seen[-1].kind == "assistant_message"
        busy = on.b.post(path, json={"input": "may I?", "streaming": False})
        rest = list(frames)
    assert busy.status_code == 409, busy.text
    assert busy_body(busy.json())
    assert [f.kind for f in rest][-3:] == ["stop_reason", "usage_statistics", DONE]
    assert rest[-3].payload["stop_reason"] == "end_turn"
    fake.token_delay = 0.0
    assert say(on.b, on.conversation, "now").answer == "echo: now [context=4]"


def test_a_dead_process_releases_its_conversation_after_the_lease(
    cluster: Cluster, on: Clients, fake: FakeOpenAI
) -> None:
    fake.first_token_delay = 5.0  # the victim's model never answers before it dies
    path = f"/v1/conversations/{on.conversation}/messages"
    # Only the lease can free it: the victim's heartbeat counts for a minute.
    env = {**cluster.env, "CONVLOG_PROCESS_TIMEOUT": "60"}
    with (
        spawn_server(env, cluster.root / "victim") as (victim_url, victim),
        httpx.Client(base_url=victim_url, timeout=30.0) as doomed,
        open_stream(doomed, path, {"input": "lost with its process"}) as (response, _),
    ):
        assert response.status_code == 200  # the victim holds the conversation
        victim.kill()
        killed_at = time.monotonic()
        victim.wait(timeout=10)
    fake.first_token_delay = 0.0

    held = on.b.post(path, json={"input": "too early"})
    assert held.status_code == 409, held.text
    assert busy_body(held.json())
    # The claim (and the Redis lock) lapse at most one lease after the last renewal.
    time.sleep(max(0.0, LEASE_SECONDS + 0.3 - (time.monotonic() - killed_at)))

    sent = say(on.b, on.conversation, "taken over")
    assert sent.answer == "echo: taken over [context=2]"  # the dead turn left nothing behind
    runs = list_runs(on.b, conversation_id=on.conversation, order="asc")
    assert [r["status"] for r in runs] == ["failed", "completed"]
    assert runs[0]["stop_reason"] == "error"
    assert runs[0]["metadata"]["error"]["detail"] == "process gone"
    assert not any("lost with" in str(m["content"]) for m in messages(on.a, on.conversation))


def test_a_killed_process_frees_its_conversation_within_seconds(
    cluster: Cluster, on: Clients, fake: FakeOpenAI
) -> None:
    fake.first_token_delay = 5.0
    path = f"/v1/conversations/{on.conversation}/messages"
    # Only its death can free it: the lease would last a minute.
    env = {**cluster.env, "CONVLOG_RUN_LEASE_SECONDS": "60"}
    with (
        spawn_server(env, cluster.root / "victim") as (victim_url, victim),
        httpx.Client(base_url=victim_url, timeout=30.0) as doomed,
        open_stream(doomed, path, {"input": "lost with its process"}) as (response, _),
    ):
        assert response.status_code == 200
        victim.kill()
        killed_at = time.monotonic()
        victim.wait(timeout=10)
    fake.first_token_delay = 0.0
    # Its heartbeat goes stale after CONVLOG_PROCESS_TIMEOUT (3 s): then the next request
    # takes the conversation over, recording the dead run failed.
    while (
        busy := on.b.post(path, json={"input": "taken over", "streaming": False})
    ).status_code == 409:
        assert time.monotonic() - killed_at < 10, "the dead process still holds the conversation"
        time.sleep(0.1)
    assert busy.status_code == 200, busy.text
    runs = list_runs(on.b, conversation_id=on.conversation, order="asc")
    assert [r["status"] for r in runs] == ["failed", "completed"]
    assert runs[0]["metadata"]["error"]["detail"] == "process gone"
    assert not any("lost with" in str(m["content"]) for m in messages(on.a, on.conversation))


def test_a_resumed_stream_ends_when_the_process_running_it_dies(
    redis_cluster: Cluster, fake: FakeOpenAI
) -> None:
    """Its last frames will never come: once the run is recorded failed, the reader gets a
    notice of where the result is and ``[DONE]``, not pings forever."""
    fake.token_delay = 1.0  # still streaming when its process dies
    body = {"input": "a long answer to a question", "background": True, "stream_tokens": True}
    with (
        spawn_server(redis_cluster.env, redis_cluster.root / "dying") as (victim_url, victim),
        httpx.Client(base_url=victim_url, timeout=30.0) as doomed,
        httpx.Client(base_url=redis_cluster.b, timeout=30.0) as b,
    ):
        conversation = create_conversation(b, create_agent(b))
        with open_stream(doomed, f"/v1/conversations/{conversation}/messages", body) as (_, got):
            run_id = next(got).payload["run_id"]
            victim.kill()
            victim.wait(timeout=10)
        started = time.monotonic()
        resume = f"/v1/conversations/{conversation}/stream"
        with open_stream(b, resume, {"starting_after": 0}) as (response, frames):
            assert response.status_code == 200
            tail = [f for f in frames if f.kind != "ping"]
        assert time.monotonic() - started < 20
        assert [f.kind for f in tail][-2:] == ["error", DONE], [f.kind for f in tail]
        notice = tail[-2].payload
        assert notice["error_type"] == "stream_incomplete"
        assert f"/v1/runs/{run_id}/messages" in notice["detail"]
        assert get_run(b, run_id)["status"] == "failed"


# -- cancel across processes ---------------------------------------------------------------------


def test_cancel_through_the_other_process_stops_the_turn(
    cluster: Cluster, on: Clients, fake: FakeOpenAI
) -> None:
    # The first token comes 0.5 s after the claim: B has long seen the run by then.
    fake.first_token_delay = 0.5
    fake.token_delay = 0.2
    full = "echo: cancel me from the other process please [context=2]"
    path = f"/v1/conversations/{on.conversation}/messages"
    body = {"input": "cancel me from the other process please", "stream_tokens": True}
    started = time.monotonic()
    with open_stream(on.a, path, body) as (_, frames):
        first = next(frames)
        run_id = first.payload["run_id"]
        stopped = cancel(on.b, on.conversation)
        rest = list(frames)
    took = time.monotonic() - started

    assert stopped.status_code == 200, stopped.text
    assert stopped.json() == {run_id: "cancelled"}
    kinds = [f.kind for f in rest]
    assert kinds[-2:] == ["stop_reason", DONE]
    assert set(kinds[:-2]) <= {"assistant_message"}
    assert rest[-2].payload == {"message_type": "stop_reason", "stop_reason": "cancelled"}
    partial = first.payload["content"] + "".join(
        f.payload["content"] for f in rest if f.kind == "assistant_message"
    )
    assert full.startswith(partial) and partial != full
    assert took < 0.5 + 0.2 * len(full.split()) - 0.4

    run = get_run(on.b, run_id)
    assert (run["status"], run["stop_reason"]) == ("cancelled", "cancelled")
    assert [m["message_type"] for m in messages(on.b, on.conversation)] == ["system_message"]

    fake.first_token_delay = fake.token_delay = 0.0
    assert say(on.a, on.conversation, "next").answer == "echo: next [context=2]"


def test_run_status_read_where_the_cancelled_stream_ended(
    cluster: Cluster, on: Clients, fake: FakeOpenAI
) -> None:
    """decisions §1: the run is terminal before [DONE], also for the process that sent it."""
    fake.first_token_delay = 0.5
    fake.token_delay = 0.2
    path = f"/v1/conversations/{on.conversation}/messages"
    body = {"input": "cancel me and ask again where I ran", "stream_tokens": True}
    with open_stream(on.a, path, body) as (_, frames):
        run_id = next(frames).payload["run_id"]
        assert cancel(on.b, on.conversation).status_code == 200
        assert [f.kind for f in frames][-2:] == ["stop_reason", DONE]
        run = get_run(on.a, run_id)  # asked of A the moment its stream said [DONE]
    assert (run["status"], run["stop_reason"]) == ("cancelled", "cancelled")


# -- background runs across processes ------------------------------------------------------------


@pytest.mark.redis
def test_background_run_started_on_a_resumes_on_b(redis_cluster: Cluster, fake: FakeOpenAI) -> None:
    fake.first_token_delay = 0.5  # B sees the run before the first event reaches the client
    fake.token_delay = 0.15
    full = "echo: started here and finished over there [context=2]"
    body = {
        "input": "started here and finished over there",
        "background": True,
        "stream_tokens": True,
    }
    with (
        httpx.Client(base_url=redis_cluster.a, timeout=30.0) as a,
        httpx.Client(base_url=redis_cluster.b, timeout=30.0) as b,
        httpx.Client(base_url=redis_cluster.b, timeout=30.0) as b2,
    ):
        conversation = create_conversation(a, create_agent(a))
        with open_stream(a, f"/v1/conversations/{conversation}/messages", body) as (_, frames):
            first = next(frames)
        assert first.payload["seq_id"] == 1
        resume = f"/v1/conversations/{conversation}/stream"
        with (
            open_stream(b, resume, {"starting_after": 1}) as (after_one, rest_frames),
            open_stream(b2, resume, {"starting_after": 0}) as (from_start, all_frames),
        ):
            assert (after_one.status_code, from_start.status_code) == (200, 200)
            rest, everything = list(rest_frames), list(all_frames)

        assert everything[0].raw == first.raw
        assert [f.raw for f in rest] == [f.raw for f in everything[1:]]
        assert [f.kind for f in everything][-3:] == ["stop_reason", "usage_statistics", DONE]
        deltas = [f.payload for f in everything if f.kind == "assistant_message"]
        assert [d["seq_id"] for d in deltas] == list(range(1, len(deltas) + 1))
        assert "".join(d["content"] for d in deltas) == full
        assert get_run(a, first.payload["run_id"])["status"] == "completed"
        assert messages(a, conversation)[-1]["content"] == full

        # A reader that starts after the last event still ends with the run (Redis adapter).
        fake.first_token_delay = 0.3
        with open_stream(a, f"/v1/conversations/{conversation}/messages", body) as (_, frames):
            next(frames)
        with open_stream(b, resume, {"starting_after": 1000, "include_pings": False}) as (
            late,
            late_frames,
        ):
            assert late.status_code == 200
            assert [f.kind for f in late_frames] in ([], [DONE])


def test_background_run_cannot_resume_on_another_process_without_redis(
    log_cluster: Cluster, fake: FakeOpenAI
) -> None:
    fake.first_token_delay = 0.5
    fake.token_delay = 0.1
    body = {"input": "only where I started", "background": True, "stream_tokens": True}
    with (
        httpx.Client(base_url=log_cluster.a, timeout=30.0) as a,
        httpx.Client(base_url=log_cluster.b, timeout=30.0) as b,
    ):
        conversation = create_conversation(a, create_agent(a))
        resume = f"/v1/conversations/{conversation}/stream"
        with open_stream(a, f"/v1/conversations/{conversation}/messages", body) as (_, frames):
            first = next(frames)
        elsewhere = b.post(resume, json={"starting_after": 1})
        with open_stream(a, resume, {"starting_after": 1}) as (here, rest_frames):
            assert here.status_code == 200
            rest = list(rest_frames)
    assert elsewhere.status_code == 503, elsewhere.text
    assert elsewhere.json()["detail"].startswith("INTERNAL_SERVER_ERROR: ")
    assert "Redis" in elsewhere.json()["detail"]
    assert [f.kind for f in rest][-3:] == ["stop_reason", "usage_statistics", DONE]
    assert first.payload["seq_id"] == 1
    assert rest[0].payload["seq_id"] == 2


def test_nothing_to_resume_or_cancel_on_either_process(cluster: Cluster, on: Clients) -> None:
    for http in (on.a, on.b):
        idle = http.post(f"/v1/conversations/{on.conversation}/stream", json={})
        assert (idle.status_code, idle.json()) == (400, {"detail": NO_ACTIVE_RUNS})
        nothing = cancel(http, on.conversation)
        assert nothing.status_code == 409, nothing.text
        sent = send(http, on.conversation, {"input": "hi", "streaming": False})
        assert sent.status == 200, sent.body
