"""Property tests: replay equals live state; an incrementally built projection equals one
rebuilt from the log; cursors walk every message and conversation exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from domain import ids
from domain.conversation import Conversation
from domain.errors import DomainError
from runtime.bootstrap import build
from runtime.settings import Settings
from service.services import Services
from tests.unit.seed import (
    ACTOR,
    active_generations,
    append,
    finish_run,
    listed_ids,
    new_agent,
    new_conversation,
    view_tables,
)

FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2025, 1, 1, tzinfo=UTC)


@contextmanager
def fresh_services() -> Iterator[Services]:
    built = build(Settings(database_url="memory://"))
    try:
        yield built
    finally:
        built.close()


def state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in aggregate.__dict__.items() if k != "_pending_events"}


# -- (a) replay equals live state --------------------------------------------------------------

texts = st.text(max_size=20)
json_values = st.one_of(st.none(), st.booleans(), st.integers(), texts)
run_ids = st.sampled_from(["run-a", "run-b", "run-c"])
seconds = st.integers(min_value=-100, max_value=100)

conversation_commands = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"),
            st.sampled_from(["system", "user", "assistant", "tool"]),
            texts,
            st.dictionaries(st.sampled_from(["name", "is_err", "k"]), json_values),
        ),
        st.tuples(
            st.just("update"),
            st.none() | texts,
            st.none() | st.just("openai/x"),
            st.none() | st.dictionaries(st.text(max_size=3), json_values, max_size=2),
        ),
        st.tuples(st.just("claim"), run_ids, seconds, seconds),
        st.tuples(st.just("renew"), run_ids, seconds),
        st.tuples(st.just("release"), run_ids),
        st.tuples(st.just("recompile"), texts),
        st.tuples(st.just("delete")),
    ),
    max_size=25,
)


def run_command(conv: Conversation, command: tuple[Any, ...]) -> None:
    name, *args = command
    if name == "append":
        role, content, extra = args
        conv.append_message(
            message_id=ids.new(ids.MESSAGE),
            role=role,
            message_type=f"{role}_message",
            content=content,
            extra=extra,
        )
    elif name == "update":
        summary, model, model_settings = args
        conv.update({"summary": summary, "model": model, "model_settings": model_settings}, "u")
    elif name == "claim":
        run_id, now, lease = args
        conv.claim_run(
            run_id, NOW + timedelta(seconds=now), NOW + timedelta(seconds=now + abs(lease)), "p"
        )
    elif name == "renew":
        conv.renew_lease(args[0], NOW + timedelta(seconds=args[1]))
    elif name == "release":
        conv.release_run(args[0], "completed")
    elif name == "recompile":
        if conv.is_default and conv.system_message_id is not None and not conv.deleted:
            conv.recompile_system_message(args[0])
    else:
        conv.delete()


@FEW
@given(is_default=st.booleans(), commands=conversation_commands)
def test_replaying_a_conversations_events_gives_its_live_state(
    is_default: bool, commands: list[tuple[Any, ...]]
) -> None:
    with fresh_services() as services:
        conv = Conversation(
            organization_id=ids.DEFAULT_ORG_ID,
            agent_id=ids.new(ids.AGENT),
            summary=None,
            model=None,
            model_settings=None,
            isolated_blocks=[],
            is_default=is_default,
            created_by_id=ids.DEFAULT_USER_ID,
        )
        for command in commands:
            version = conv.version
            try:
                run_command(conv, command)
            except DomainError:
                assert conv.version == version  # a refused command records nothing
        events = list(conv.pending_events)
        replayed: Any = None
        for event in events:
            replayed = event.mutate(replayed)
        assert state(replayed) == state(conv)
        services.ctx.app.save(conv)
        assert state(services.ctx.app.repository.get(conv.id)) == state(conv)


def test_replay_through_snapshots_equals_live_state() -> None:
    """Past the snapshot interval (100), loading starts from a snapshot."""
    with fresh_services() as services:
        row = new_conversation(services, new_agent(services).id)
        conv: Conversation = services.ctx.app.repository.get(ids.to_uuid(row.conversation_id))
        for i in range(230):
            run_command(conv, ("append", "user", f"m{i}", {}))
            if i == 150:  # a live claim (a datetime) inside the second snapshot
                conv.claim_run("run-a", NOW, NOW + timedelta(seconds=5), "p")
        services.ctx.app.save(conv)
        snapshots = list(services.ctx.app.snapshots.get(conv.id))  # type: ignore[union-attr]
        assert [s.originator_version for s in snapshots] == [100, 200]
        assert state(services.ctx.app.repository.get(conv.id)) == state(conv)
        assert conv.message_count == 231
        assert conv.lease_until == NOW + timedelta(seconds=5)


# -- (b) incremental projection equals rebuild -------------------------------------------------

index = st.integers(min_value=0, max_value=20)
operations = st.lists(
    st.tuples(
        st.one_of(
            st.tuples(st.just("agent"), st.sampled_from(["a", "b"])),
            st.tuples(
                st.just("conversation"),
                index,
                st.booleans(),
                st.none() | st.sampled_from(["x", "50%", "a_b"]),
            ),
            st.tuples(
                st.just("messages"),
                index,
                st.integers(1, 6),
                st.sampled_from(["user", "assistant", "system"]),
                st.booleans(),
            ),
            st.tuples(st.just("update"), index, st.text(max_size=5)),
            st.tuples(st.just("block"), index, st.text(max_size=10)),
            st.tuples(st.just("run"), index),
            st.tuples(st.just("delete_conversation"), index),
            st.tuples(st.just("delete_agent"), index),
        ),
        st.integers(min_value=1, max_value=7),  # the projector's batch size for this step
    ),
    min_size=1,
    max_size=20,
)


class World:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.agents: list[str] = []
        self.conversations: list[str] = []  # aggregate uuids, own contexts included

    def pick(self, items: list[str], i: int) -> str | None:
        return items[i % len(items)] if items else None

    def attempt(self, op: tuple[Any, ...]) -> None:
        """Apply ``op``; a refusal (the target was deleted) is part of the game."""
        with suppress(DomainError):
            self.apply(op)

    def apply(self, op: tuple[Any, ...]) -> None:
        name, *args = op
        s = self.services
        if name == "agent":
            agent = new_agent(s, args[0])
            self.agents.append(agent.id)
            self.conversations.append(str(ids.default_conversation_id(ids.to_uuid(agent.id))))
            return
        if name in ("conversation", "block", "delete_agent"):
            agent_id = self.pick(self.agents, args[0])
            if agent_id is None:
                return
            if name == "conversation":
                row = new_conversation(
                    s,
                    agent_id,
                    summary=args[2],
                    isolated_block_labels=["human"] if args[1] else None,
                )
                self.conversations.append(row.id)
            elif name == "block":
                s.agents.update_block(ACTOR, agent_id, "human", {"value": args[1]})
            else:
                s.agents.delete(ACTOR, agent_id)
            return
        conv = self.pick(self.conversations, args[0])
        if conv is None:
            return
        conversation_id = ids.format_id(ids.CONVERSATION, UUID(conv))
        if name == "messages":
            count, role, catch_up = args[1:]
            append(s, conv, *[f"{role}-{i}" for i in range(count)], role=role, catch_up=catch_up)
        elif name == "update":
            s.conversations.update(ACTOR, conversation_id, {"summary": args[1]})
        elif name == "run":
            finish_run(s, conv)
        else:
            s.conversations.delete(ACTOR, conversation_id)


@FEW
@given(ops=operations, rebuild_batch=st.integers(min_value=1, max_value=9))
def test_incremental_projection_equals_rebuild_from_the_log(
    ops: list[tuple[tuple[Any, ...], int]], rebuild_batch: int
) -> None:
    with fresh_services() as services:
        world = World(services)
        world.apply(("agent", "first"))
        for op, batch_size in ops:
            services.projector.batch_size = batch_size
            world.attempt(op)
        services.projector.catch_up()
        assert services.projector.catch_up() == 0
        incremental = view_tables(services)
        event(f"messages: {len(incremental['messages']) // 10 * 10}+")
        generations = active_generations(services)

        services.projector.batch_size = rebuild_batch
        for name in services.projector.projections:
            services.projector.rebuild(name)
        assert view_tables(services) == incremental
        assert active_generations(services) == {n: g + 1 for n, g in generations.items()}
        # ...and the rebuilt generation keeps up with new writes like the old one did.
        world.attempt(("agent", "c"))
        world.attempt(("conversation", -1, False, "after"))
        world.attempt(("messages", -1, 3, "user", True))
        rows = view_tables(services)
        assert len(rows["messages"]) == len(incremental["messages"]) + 2 + 3


# -- (c) message cursors walk every message exactly once ---------------------------------------


@pytest.fixture(scope="module")
def shared() -> Iterator[Services]:
    with fresh_services() as services:
        yield services


def walk_after(
    services: Services, conversation_id: str, ascending: bool, limit: int | None, start: str | None
) -> list[str]:
    walked: list[str] = []
    after = start
    while True:
        page = listed_ids(services, conversation_id, ascending=ascending, after=after, limit=limit)
        if limit is not None:
            assert len(page) <= limit
        if not page:
            return walked
        walked += page
        after = page[-1]


def walk_before(
    services: Services, conversation_id: str, ascending: bool, limit: int | None, start: str
) -> list[str]:
    walked: list[str] = []
    before = start
    while True:
        page = listed_ids(
            services, conversation_id, ascending=ascending, before=before, limit=limit
        )
        if limit is not None:
            assert len(page) <= limit
        if not page:
            return walked
        walked = page + walked
        before = page[0]


@FEW
@given(
    roles=st.lists(st.sampled_from(["user", "assistant", "tool"]), max_size=25),
    ascending=st.booleans(),
    limit=st.none() | st.integers(min_value=1, max_value=8),
    data=st.data(),
)
def test_message_cursors_walk_every_message_exactly_once(
    shared: Services, roles: list[str], ascending: bool, limit: int | None, data: st.DataObject
) -> None:
    services = shared
    row = new_conversation(services, new_agent(services).id)
    for role in roles:
        append(services, row.id, f"{role} says hi", role=role, catch_up=False)
    services.projector.catch_up()
    conversation_id = row.conversation_id
    everything = listed_ids(services, conversation_id)
    assert len(everything) == len(roles) + 1 == len(set(everything))
    ordered = everything if ascending else everything[::-1]

    assert walk_after(services, conversation_id, ascending, limit, None) == ordered
    assert walk_before(services, conversation_id, ascending, limit, ordered[-1]) == ordered[:-1]

    k = data.draw(st.integers(min_value=0, max_value=len(ordered) - 1), label="cursor")
    assert walk_after(services, conversation_id, ascending, limit, ordered[k]) == ordered[k + 1 :]
    assert walk_before(services, conversation_id, ascending, limit, ordered[k]) == ordered[:k]
    if limit is not None:
        first = listed_ids(services, conversation_id, ascending=ascending, limit=limit)
        assert first == ordered[:limit]


# -- (d) conversation keyset pagination --------------------------------------------------------


@FEW
@given(
    activity=st.lists(
        st.sampled_from(["nothing", "message", "run", "both", "deleted"]), min_size=1, max_size=8
    ),
    order_by=st.sampled_from(["created_at", "last_message_at", "last_run_completion"]),
    ascending=st.booleans(),
    limit=st.integers(min_value=1, max_value=4),
)
def test_conversation_cursor_walks_every_conversation_exactly_once(
    activity: list[str], order_by: str, ascending: bool, limit: int
) -> None:
    with fresh_services() as services:
        agent = new_agent(services)
        rows = [new_conversation(services, agent.id) for _ in activity]
        for row, what in zip(rows, activity, strict=True):
            if what in ("message", "both"):
                append(services, row.id, "hi")
            if what in ("run", "both"):
                finish_run(services, row.id)
            if what == "deleted":
                services.conversations.delete(ACTOR, row.conversation_id)
        live = [
            services.conversations.get(ACTOR, r.conversation_id)
            for r, what in zip(rows, activity, strict=True)
            if what != "deleted"
        ]
        present = [r for r in live if getattr(r, order_by) is not None]
        missing = [r for r in live if getattr(r, order_by) is None]
        present.sort(key=lambda r: (getattr(r, order_by), r.id), reverse=not ascending)
        missing.sort(key=lambda r: r.id, reverse=not ascending)
        expected = [r.conversation_id for r in present + missing]

        walked: list[str] = []
        after = None
        while True:
            page = services.conversations.list(
                ACTOR,
                agent_id=agent.id,
                summary_search=None,
                order_by=order_by,
                ascending=ascending,
                after=after,
                limit=limit,
            )
            assert len(page) <= limit
            if not page:
                break
            walked += [r.conversation_id for r in page]
            after = walked[-1]
        assert walked == expected
