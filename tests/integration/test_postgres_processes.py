"""Two processes on one PostgreSQL schema: two ``build()``s sharing the event store and the
views, as two API processes behind a load balancer would. Real PostgreSQL only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from domain.errors import NotFound
from runtime.bootstrap import build
from runtime.settings import Settings
from service.services import Services
from tests.unit.seed import (
    ACTOR,
    active_generations,
    append,
    listed_ids,
    new_agent,
    new_conversation,
    view_tables,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def two(pg_schema: tuple[str, str]) -> Iterator[tuple[Services, Services]]:
    url, schema = pg_schema
    settings = Settings(database_url=url, database_schema=schema, db_pool_size=4)
    first = build(settings)
    try:
        second = build(settings)
        try:
            yield first, second
        finally:
            second.close()
    finally:
        first.close()


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released at the same moment; re-raise the first failure."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def worker(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker is stuck"
    if errors:
        raise errors[0]
    return results


def test_writes_in_one_process_are_served_by_the_other_after_poll(
    two: tuple[Services, Services],
) -> None:
    a, b = two
    agent = new_agent(a)
    row = new_conversation(a, agent.id)
    # Use cases settle before returning: the shared views already show them to b.
    assert b.conversations.get(ACTOR, row.conversation_id) == row
    assert b.agents.get(ACTOR, agent.id) == agent

    # A write that a has not projected (as if a died right after its commit)...
    sent = append(a, row.id, "one", "two", catch_up=False)
    assert listed_ids(b, row.conversation_id)[1:] == []
    # ...is applied by b's poll, once.
    assert b.projector.poll() == 2
    assert listed_ids(b, row.conversation_id)[1:] == sent
    assert listed_ids(a, row.conversation_id)[1:] == sent
    assert b.projector.poll() == 0
    assert a.projector.catch_up() == 0
    assert a.conversations.get(ACTOR, row.conversation_id).message_count == 3


def test_each_process_reads_its_own_writes_and_the_others(
    two: tuple[Services, Services],
) -> None:
    a, b = two
    agent = new_agent(a)
    row = new_conversation(b, agent.id, summary="from b")
    assert a.conversations.update(ACTOR, row.conversation_id, {"summary": "from a"}).summary == (
        "from a"
    )
    assert b.conversations.get(ACTOR, row.conversation_id).summary == "from a"
    b.agents.update_block(ACTOR, agent.id, "human", {"value": "Zed"})
    assert a.agents.get_block(ACTOR, agent.id, "human")["value"] == "Zed"
    a.conversations.delete(ACTOR, row.conversation_id)
    with pytest.raises(NotFound):
        b.conversations.get(ACTOR, row.conversation_id)


def test_concurrent_catch_up_applies_each_event_once(two: tuple[Services, Services]) -> None:
    a, b = two
    agent = new_agent(a)
    rows = [new_conversation(a, agent.id) for _ in range(3)]
    sent: dict[str, list[str]] = {row.id: [] for row in rows}
    for i in range(20):
        for row in rows:
            sent[row.id] += append(a, row.id, f"m{i}a", f"m{i}b", catch_up=False)
    a.projector.batch_size = 7
    b.projector.batch_size = 5

    applied = run_together(a.projector.catch_up, b.projector.catch_up)

    assert sum(applied) == 120  # each event read and applied by exactly one of them
    for row in rows:
        assert listed_ids(a, row.conversation_id)[1:] == sent[row.id]
        assert b.conversations.get(ACTOR, row.conversation_id).message_count == 41
    assert a.projector.catch_up() == b.projector.catch_up() == 0


def test_concurrent_writers_and_pollers_converge(two: tuple[Services, Services]) -> None:
    a, b = two
    agent = new_agent(a)
    row_a, row_b = new_conversation(a, agent.id), new_conversation(b, agent.id)
    a.projector.batch_size = b.projector.batch_size = 3

    def writer(services: Services, conversation_uuid: str) -> list[str]:
        sent: list[str] = []
        for i in range(15):
            sent += append(services, conversation_uuid, f"{i}", catch_up=i % 3 == 0)
            services.projector.poll()
        return sent

    sent_a, sent_b = run_together(lambda: writer(a, row_a.id), lambda: writer(b, row_b.id))
    a.projector.poll()
    b.projector.poll()
    for services in (a, b):
        assert listed_ids(services, row_a.conversation_id)[1:] == sent_a
        assert listed_ids(services, row_b.conversation_id)[1:] == sent_b
        assert services.conversations.get(ACTOR, row_a.conversation_id).message_count == 16
        assert services.conversations.get(ACTOR, row_b.conversation_id).message_count == 16


def test_rebuild_in_one_process_while_the_other_writes(two: tuple[Services, Services]) -> None:
    a, b = two
    agent = new_agent(a)
    row = new_conversation(a, agent.id)
    append(a, row.id, *[f"m{i}" for i in range(30)])
    a.projector.batch_size = 2
    generation = active_generations(a)["messages"]
    during: list[str] = []

    def progress(count: int) -> None:
        if not during:  # fill phase: a holds no lock, so b can write and project
            during.extend(append(b, row.id, "from b during the rebuild"))
            assert listed_ids(a, row.conversation_id)[-1] == during[0]

    a.projector.rebuild("messages", progress)

    assert active_generations(b)["messages"] == generation + 1
    assert listed_ids(b, row.conversation_id).count(during[0]) == 1
    # b's projector feeds the new generation from now on.
    (after,) = append(b, row.id, "from b after the rebuild")
    assert listed_ids(a, row.conversation_id)[-2:] == [during[0], after]
    snapshot = view_tables(a)
    b.projector.rebuild("messages")
    assert view_tables(a) == snapshot
