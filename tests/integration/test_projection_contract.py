"""The projection contract on every backend (memory, SQLite file, PostgreSQL): exactly-once
catch-up with tracking in the same transaction as the rows, read-your-writes, and blue/green
rebuilds that keep serving the old generation until the switch.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
from eventsourcing.domain import Aggregate, event

from domain.conversation import Conversation
from projections.messages import MessageList
from projections.projection import Handler, Projection, Writer
from projections.projector import Projector
from runtime.bootstrap import all_projections
from service.services import Services
from tests.unit.seed import (
    ACTOR,
    active_generations,
    append,
    finish_run,
    head,
    listed_ids,
    listing,
    load,
    new_agent,
    new_conversation,
    record_runs,
    tracking,
    view_tables,
)


class Boom(Exception):
    pass


class Exploding(Projection):
    """Counts messages, and fails on one whose content is "boom": a crash mid catch-up."""

    name = "exploding"
    tables: ClassVar[dict[str, list[str]]] = {
        "exploding": ["CREATE TABLE IF NOT EXISTS {exploding} (message_id TEXT PRIMARY KEY)"]
    }

    def handlers(self) -> Mapping[type[Any], Handler]:
        return {Conversation.MessageAppended: self._appended}

    def _appended(self, e: Any, w: Writer) -> None:
        if e.content == "boom":
            raise Boom(e.message_id)
        w.execute("INSERT INTO {exploding} (message_id) VALUES (%s)", (e.message_id,))


class Probe(Aggregate):
    """An aggregate no projection reads: its events still move the log's head."""

    @event("Pinged")
    def ping(self) -> None:
        pass


def message_ids(services: Services, conversation_id: str) -> list[str]:
    return listed_ids(services, conversation_id)


def positions(services: Services) -> dict[str, int]:
    """Tracking position of each projection's active generation."""
    active = active_generations(services)
    return {name: pos for (name, gen), pos in tracking(services).items() if active[name] == gen}


# -- exactly once ------------------------------------------------------------------------------


def test_catch_up_applies_each_event_once(any_services: Services) -> None:
    s = any_services
    row = new_conversation(s, new_agent(s).id)
    before = message_ids(s, row.conversation_id)
    sent = append(s, row.id, *[f"m{i}" for i in range(7)], catch_up=False)

    assert message_ids(s, row.conversation_id) == before  # not projected yet
    applied = s.projector.catch_up()
    assert applied == 7
    assert message_ids(s, row.conversation_id) == before + sent
    assert s.projector.catch_up() == 0
    assert s.projector.poll() == 0
    assert message_ids(s, row.conversation_id) == before + sent
    assert s.conversations.get(ACTOR, row.conversation_id).message_count == 8
    assert load(s, row.id).message_count == 8
    # Every projection's tracking reached the last event it reads.
    last = head(s)
    assert positions(s)["messages"] == last
    assert positions(s)["conversations"] == last


def test_small_batches_apply_each_event_once(any_services: Services) -> None:
    s = any_services
    row = new_conversation(s, new_agent(s).id)
    s.projector.batch_size = 3
    sent = []
    for i in range(5):
        sent += append(s, row.id, *[f"m{i}-{j}" for j in range(i + 1)], catch_up=i % 2 == 1)
    s.projector.catch_up()
    assert message_ids(s, row.conversation_id)[1:] == sent
    assert s.conversations.get(ACTOR, row.conversation_id).message_count == len(sent) + 1


def test_a_failed_batch_commits_neither_rows_nor_tracking(any_services: Services) -> None:
    s = any_services
    agent = new_agent(s)
    row = new_conversation(s, agent.id)
    system = message_ids(s, row.conversation_id)
    settled = positions(s)
    ok = append(s, row.id, "a", "b", catch_up=False)
    bad = append(s, row.id, "boom", "c", catch_up=False)

    crashing = Projector(s.ctx.store, s.ctx.log, [*all_projections(), Exploding()], batch_size=1)
    crashing.setup()
    with pytest.raises(Boom):
        crashing.catch_up()

    # Batches before the failing one committed, rows and tracking together; the failing one
    # left no trace.
    assert message_ids(s, row.conversation_id) == system + ok
    assert s.conversations.get(ACTOR, row.conversation_id).message_count == 3
    moved = positions(s)
    assert moved["messages"] > settled["messages"]
    assert moved["messages"] < head(s)
    exploded = s.ctx.store.query("SELECT message_id FROM exploding")
    # (it started from the beginning of the log: the agent's own system message too)
    assert sorted(r[0] for r in exploded) == sorted(message_ids(s, agent.id) + system + ok)

    # A restarted projector resumes where the last batch committed.
    assert s.projector.catch_up() == 2
    assert message_ids(s, row.conversation_id) == system + ok + bad
    assert s.conversations.get(ACTOR, row.conversation_id).message_count == 5
    assert s.projector.catch_up() == 0


def test_a_restarted_projector_resumes_from_its_tracking(any_services: Services) -> None:
    s = any_services
    row = new_conversation(s, new_agent(s).id)
    sent = append(s, row.id, "a", "b", "c", catch_up=False)
    restarted = Projector(s.ctx.store, s.ctx.log, all_projections(), batch_size=2)
    restarted.setup()  # a no-op on existing tables
    assert restarted.catch_up() == 3
    assert restarted.catch_up() == 0
    assert s.projector.catch_up() == 0
    assert message_ids(s, row.conversation_id)[1:] == sent


def test_lag_is_zero_once_caught_up_even_after_unread_events(any_services: Services) -> None:
    s = any_services
    new_conversation(s, new_agent(s).id)
    probe = Probe()
    probe.ping()
    s.ctx.app.save(probe)
    s.projector.catch_up()
    assert s.projector.lag() == 0


def test_lag_counts_unprojected_events(any_services: Services) -> None:
    s = any_services
    row = new_conversation(s, new_agent(s).id)
    append(s, row.id, "a", "b", catch_up=False)
    assert s.projector.lag() >= 2
    s.projector.catch_up()
    assert s.projector.lag() < 2


# -- read your writes --------------------------------------------------------------------------


def test_every_use_case_reads_its_own_writes(any_services: Services) -> None:
    s = any_services
    agent = new_agent(s, "ann")
    assert s.agents.get(ACTOR, agent.id).name == "ann"
    row = new_conversation(s, agent.id, summary="first")
    listed = s.conversations.list(
        ACTOR,
        agent_id=agent.id,
        summary_search=None,
        order_by="created_at",
        ascending=True,
        after=None,
        limit=10,
    )
    assert [r.conversation_id for r in listed] == [row.conversation_id]
    assert s.conversations.update(ACTOR, row.conversation_id, {"summary": "second"}).summary == (
        "second"
    )
    assert s.conversations.get(ACTOR, row.conversation_id).summary == "second"
    s.agents.update_block(ACTOR, agent.id, "human", {"value": "Zed"})
    assert s.agents.get_block(ACTOR, agent.id, "human")["value"] == "Zed"
    assert "Zed" in listing(s, agent.id)[0]["content"]
    s.conversations.delete(ACTOR, row.conversation_id)
    assert (
        s.conversations.list(
            ACTOR,
            agent_id=agent.id,
            summary_search=None,
            order_by="created_at",
            ascending=True,
            after=None,
            limit=10,
        )
        == []
    )
    s.agents.delete(ACTOR, agent.id)
    assert s.agents.list(ACTOR, name=None, ascending=True, after=None, before=None, limit=10) == []


# -- rebuild -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["messages", "conversations", "agents", "runs"])
def test_rebuild_serves_the_old_generation_until_the_switch(
    any_services: Services, name: str
) -> None:
    s = any_services
    # More than 8 events for every projection: the first read of the rebuild is full, so the
    # first progress report comes from the fill phase, outside the projector's lock.
    agent = new_agent(s)
    for i in range(9):
        new_agent(s, f"other-{i}")
    row = new_conversation(s, agent.id, summary="s")
    append(s, row.id, *[f"m{i}" for i in range(30)])
    record_runs(s, agent.id, row.id, 5)
    s.projector.batch_size = 2  # rebuild reads 8 events a time: several fill batches
    generation = active_generations(s)[name]
    before = view_tables(s)
    served: list[dict[str, list[tuple[Any, ...]]]] = []
    during: list[str] = []

    def progress(count: int) -> None:
        assert count > 0
        if not during:  # the first call comes from the fill phase, outside the lock
            assert view_tables(s) == before  # the old generation serves, whole
            assert active_generations(s)[name] == generation
            during.extend(append(s, row.id, "written during the rebuild"))
            assert message_ids(s, row.conversation_id)[-1] == during[0]
            s.conversations.update(ACTOR, row.conversation_id, {"summary": "during"})
        served.append(view_tables(s))

    result = s.projector.rebuild(name, progress)

    assert served, "progress was reported"
    assert result.generation == generation + 1
    assert active_generations(s)[name] == generation + 1
    assert result.events > 0
    # The new generation has everything, including what was written while it was filled.
    assert view_tables(s) == served[0]
    assert message_ids(s, row.conversation_id).count(during[0]) == 1
    assert s.conversations.get(ACTOR, row.conversation_id).summary == "during"
    # Only the active generation is left, and live catch-up now feeds it.
    assert [gen for (n, gen) in tracking(s) if n == name] == [generation + 1]
    (after,) = append(s, row.id, "after the rebuild")
    assert message_ids(s, row.conversation_id)[-1] == after


def test_an_interrupted_rebuild_leaves_the_old_generation_serving(any_services: Services) -> None:
    s = any_services
    row = new_conversation(s, new_agent(s).id)
    append(s, row.id, *[f"m{i}" for i in range(20)])
    s.projector.batch_size = 2
    before = view_tables(s)
    generation = active_generations(s)["messages"]

    def crash(count: int) -> None:
        raise Boom("killed mid-rebuild")

    with pytest.raises(Boom):
        s.projector.rebuild("messages", crash)
    assert active_generations(s)["messages"] == generation
    assert view_tables(s) == before
    (sent,) = append(s, row.id, "still served")
    assert message_ids(s, row.conversation_id)[-1] == sent

    result = s.projector.rebuild("messages")
    assert result.generation == generation + 1  # the interrupted one, resumed
    assert [gen for (n, gen) in tracking(s) if n == "messages"] == [generation + 1]
    assert message_ids(s, row.conversation_id)[-1] == sent
    assert len(message_ids(s, row.conversation_id)) == 22


def test_an_interrupted_rebuild_of_an_older_shape_starts_over(any_services: Services) -> None:
    s = any_services
    row = new_conversation(s, new_agent(s).id)
    append(s, row.id, *[f"m{i}" for i in range(20)])
    s.projector.batch_size = 2
    generation = active_generations(s)["messages"]

    def crash(count: int) -> None:
        raise Boom("killed mid-rebuild")

    with pytest.raises(Boom):
        s.projector.rebuild("messages", crash)
    projections = [MessageListV2() if p.name == "messages" else p for p in all_projections()]
    upgraded = Projector(s.ctx.store, s.ctx.log, projections, batch_size=2)
    result = upgraded.rebuild("messages")
    assert (result.generation, result.resumed_from) == (generation + 2, 0)
    assert [gen for (n, gen) in tracking(s) if n == "messages"] == [generation + 2]
    assert len(message_ids(s, row.conversation_id)) == 21


class MessageListV2(MessageList):
    version = MessageList.version + 1


def test_setup_rebuilds_a_projection_whose_version_changed(any_services: Services) -> None:
    s = any_services
    row = new_conversation(s, new_agent(s).id)
    append(s, row.id, "a", "b")
    before = view_tables(s)
    generation = active_generations(s)["messages"]
    projections = [MessageListV2() if p.name == "messages" else p for p in all_projections()]
    upgraded = Projector(s.ctx.store, s.ctx.log, projections)
    upgraded.setup()
    assert active_generations(s)["messages"] == generation + 1
    assert view_tables(s) == before
    fingerprints: dict[str, str] = dict(
        s.ctx.store.query("SELECT name, fingerprint FROM projection_generations")
    )
    assert fingerprints["messages"] == MessageListV2().fingerprint
    assert fingerprints["messages"].startswith(f"{MessageList.version + 1}:")
    upgraded.setup()  # now current: nothing to do
    assert active_generations(s)["messages"] == generation + 1


# -- the same queries on every backend ---------------------------------------------------------


def conversation_ids(s: Services, **kwargs: Any) -> list[str]:
    args: dict[str, Any] = {
        "agent_id": None,
        "summary_search": None,
        "order_by": "created_at",
        "ascending": True,
        "after": None,
        "limit": 100,
    }
    args.update(kwargs)
    return [row.conversation_id for row in s.conversations.list(ACTOR, **args)]


def test_summary_search_is_literal_and_case_sensitive(any_services: Services) -> None:
    s = any_services
    agent = new_agent(s)
    by_id = {}
    for summary in ("100% sure", "1000 sure", "a_b", "axb", "ABC", None):
        by_id[new_conversation(s, agent.id, summary=summary).conversation_id] = summary
    for search, expected in (
        ("%", {"100% sure"}),
        ("_", {"a_b"}),
        ("sure", {"100% sure", "1000 sure"}),
        ("abc", set()),
        ("B", {"ABC"}),
        ("'; DROP TABLE conversations; --", set()),
    ):
        assert {by_id[c] for c in conversation_ids(s, summary_search=search)} == expected


@pytest.mark.parametrize("order_by", ["created_at", "last_message_at", "last_run_completion"])
@pytest.mark.parametrize("ascending", [True, False])
def test_conversation_order_and_keyset_pages(
    any_services: Services, order_by: str, ascending: bool
) -> None:
    s = any_services
    agent = new_agent(s)
    rows = [new_conversation(s, agent.id) for _ in range(5)]
    append(s, rows[3].id, "x")
    append(s, rows[1].id, "y")
    record_runs(s, agent.id, rows[0].id, 1)
    s.conversations.delete(ACTOR, rows[4].conversation_id)
    finish_run(s, rows[2].id)
    live = [s.conversations.get(ACTOR, r.conversation_id) for r in rows[:4]]
    present = [r for r in live if getattr(r, order_by) is not None]
    missing = [r for r in live if getattr(r, order_by) is None]
    present.sort(key=lambda r: (getattr(r, order_by), r.id), reverse=not ascending)
    missing.sort(key=lambda r: r.id, reverse=not ascending)
    expected = [r.conversation_id for r in present + missing]
    if order_by == "last_message_at":
        with_messages = [rows[3].conversation_id, rows[1].conversation_id]
        assert expected[:2] == (with_messages if ascending else with_messages[::-1])
    assert conversation_ids(s, order_by=order_by, ascending=ascending) == expected

    walked: list[str] = []
    after = None
    while page := conversation_ids(s, order_by=order_by, ascending=ascending, after=after, limit=2):
        walked += page
        after = page[-1]
    assert walked == expected
    # A deleted conversation still works as a cursor: what follows it is a tail of the listing.
    tail = conversation_ids(
        s, order_by=order_by, ascending=ascending, after=rows[4].conversation_id
    )
    assert tail == expected[len(expected) - len(tail) :]


@pytest.mark.parametrize("ascending", [True, False])
@pytest.mark.parametrize("limit", [None, 1, 3])
def test_message_cursors_walk_every_message_once(
    any_services: Services, ascending: bool, limit: int | None
) -> None:
    s = any_services
    row = new_conversation(s, new_agent(s).id)
    append(s, row.id, *[f"m{i}" for i in range(7)])
    everything = message_ids(s, row.conversation_id)
    ordered = everything if ascending else everything[::-1]
    for k, cursor in enumerate(ordered):
        walked: list[str] = []
        after = cursor
        while page := listed_ids(
            s, row.conversation_id, ascending=ascending, after=after, limit=limit
        ):
            walked += page
            after = page[-1]
        assert walked == ordered[k + 1 :]
        walked = []
        before = cursor
        while page := listed_ids(
            s, row.conversation_id, ascending=ascending, before=before, limit=limit
        ):
            walked = page + walked
            before = page[0]
        assert walked == ordered[:k]


# -- concurrent writers in one process ---------------------------------------------------------


def test_concurrent_use_cases_on_one_agent_all_land(any_services: Services) -> None:
    s = any_services
    agent = new_agent(s)
    errors: list[BaseException] = []
    created: list[str] = []
    barrier = threading.Barrier(4)

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            for j in range(3):
                row = new_conversation(s, agent.id, summary=f"{i}-{j}")
                created.append(row.conversation_id)
                s.conversations.update(ACTOR, row.conversation_id, {"summary": f"{i}-{j}!"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert sorted(conversation_ids(s, agent_id=agent.id)) == sorted(created)
    assert len(created) == 12
    summaries = {s.conversations.get(ACTOR, c).summary for c in created}
    assert summaries == {f"{i}-{j}!" for i in range(4) for j in range(3)}
    assert s.projector.catch_up() == 0
