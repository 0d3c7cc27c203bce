"""Forks: a new conversation that lists its parent's messages up to the fork, then its own.

Nothing is copied — neither in the log nor in the views — so a fork costs the same at any
length; the listing, cursors, the in-context window and the model's context all work across
the shared prefix, and a rebuild of every projection gives the same views.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import NotFound
from runtime.bootstrap import build
from runtime.settings import Settings
from service.services import Services
from service.turns import TurnRequest
from tests.scripted_model import ScriptedModel
from tests.unit.seed import (
    ACTOR,
    append,
    head,
    listed_ids,
    listing,
    new_agent,
    new_conversation,
    view_tables,
)


def fork(services: Services, path_id: str) -> str:
    return services.conversations.fork(ACTOR, path_id).conversation_id


def uuid_of(services: Services, conversation_id: str) -> str:
    return services.conversations.get(ACTOR, conversation_id).id


def test_a_fork_lists_the_parent_so_far_then_its_own(services: Services) -> None:
    agent = new_agent(services)
    parent = new_conversation(services, agent.id)
    shared = append(services, parent.id, "one", "two")
    child = fork(services, parent.conversation_id)
    later_parent = append(services, parent.id, "parent only")
    own = append(services, uuid_of(services, child), "child only")

    parent_system, *parent_rest = listed_ids(services, parent.conversation_id)
    child_system, *child_rest = listed_ids(services, child)
    assert child_system != parent_system  # the fork compiles its own system message
    assert listing(services, child)[0]["message_type"] == "system_message"
    assert parent_rest == shared + later_parent
    assert child_rest == shared + own
    # Descending order and cursors cross the shared prefix.
    assert listed_ids(services, child, ascending=False) == [*own[::-1], *shared[::-1], child_system]
    assert listed_ids(services, child, after=shared[0]) == [shared[1], *own]
    assert listed_ids(services, child, before=own[0], limit=2) == shared
    assert listed_ids(services, child, after=child_system, limit=1) == shared[:1]


def test_a_fork_of_a_fork_and_of_an_agents_own_context(services: Services) -> None:
    agent = new_agent(services)
    own_context = services.conversations.resolve(ACTOR, agent.id)
    first = append(services, str(own_context), "hello")
    child = fork(services, agent.id)
    middle = append(services, uuid_of(services, child), "in the child")
    grandchild = fork(services, child)
    append(services, uuid_of(services, child), "after the second fork")
    last = append(services, uuid_of(services, grandchild), "in the grandchild")
    assert listed_ids(services, grandchild)[1:] == first + middle + last
    row = services.conversations.get(ACTOR, grandchild)
    assert row.agent_id == agent.id
    assert services.conversations.in_context_ids([row])[row.id][1:] == first + middle + last


def test_a_fork_writes_the_same_few_events_at_any_length(services: Services) -> None:
    agent = new_agent(services)
    short = new_conversation(services, agent.id)
    long = new_conversation(services, agent.id)
    append(services, long.id, *[f"m{i}" for i in range(300)])
    written = []
    for parent in (short, long):
        before = head(services)
        fork(services, parent.conversation_id)
        written.append(head(services) - before)
    assert written[0] == written[1] == 4  # Created, system message, Forked; agent's count


def test_a_fork_takes_the_parents_window_and_the_model_sees_it() -> None:
    model = ScriptedModel()
    services = build(Settings(database_url="memory://"), model=model)
    try:
        agent = new_agent(services)
        parent = new_conversation(services, agent.id)
        append(services, parent.id, *[f"old {i}" for i in range(6)])

        async def compact_then_turn() -> None:
            await services.compaction.compact(
                ACTOR, parent.conversation_id, {"mode": "sliding_window"}
            )
            child = fork(services, parent.conversation_id)
            request = TurnRequest(messages=[{"role": "user", "content": "next"}], streaming=False)
            turn = await services.turns.begin(ACTOR, child, request)
            await services.turns.result_of(turn)

        asyncio.run(compact_then_turn())
        parent_row = services.conversations.get(ACTOR, parent.conversation_id)
        (child_row,) = [
            r
            for r in services.conversations.list(
                ACTOR,
                agent_id=agent.id,
                summary_search=None,
                order_by="created_at",
                ascending=True,
                after=None,
                limit=10,
            )
            if r.id != parent_row.id
        ]
        parent_window = services.conversations.in_context_ids([parent_row])[parent_row.id]
        child_window = services.conversations.in_context_ids([child_row])[child_row.id]
        assert child_window[1 : len(parent_window)] == parent_window[1:]  # summary + kept
        sent = [m.content for m in model.requests[-1].messages]
        texts = {i["id"]: i.get("content") for i in listing(services, child_row.conversation_id)}
        assert sent[1:-1] == [texts[i] for i in child_window[1:-2]]
        assert sent[-1] == "next"
    finally:
        services.close()


def test_forking_a_deleted_or_unknown_conversation_is_404_and_writes_nothing(
    services: Services,
) -> None:
    agent = new_agent(services)
    gone = new_conversation(services, agent.id)
    services.conversations.delete(ACTOR, gone.conversation_id)
    before = head(services)
    for path_id in (gone.conversation_id, "conv-00000000-0000-4000-8000-000000000000"):
        with pytest.raises(NotFound):
            services.conversations.fork(ACTOR, path_id)
    assert head(services) == before


# -- property: any mix of appends and forks -----------------------------------------------------

FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
steps = st.lists(
    st.tuples(st.sampled_from(["append", "fork"]), st.integers(min_value=0, max_value=9)),
    min_size=1,
    max_size=16,
)


@FEW
@given(ops=steps)
def test_every_listing_is_its_parents_prefix_plus_its_own_before_and_after_a_rebuild(
    ops: list[tuple[str, int]],
) -> None:
    services = build(Settings(database_url="memory://"))
    try:
        agent = new_agent(services)
        root = new_conversation(services, agent.id)
        expected: dict[str, list[str]] = {root.conversation_id: []}  # non-system ids
        names = [root.conversation_id]
        for op, pick in ops:
            target = names[pick % len(names)]
            if op == "append":
                expected[target] += append(services, uuid_of(services, target), f"m{len(names)}")
            else:
                child = fork(services, target)
                expected[child] = list(expected[target])
                names.append(child)
        listed = {name: listed_ids(services, name)[1:] for name in names}
        assert listed == expected
        views = view_tables(services)
        windows: dict[str, Any] = {
            name: services.conversations.in_context_ids([services.conversations.get(ACTOR, name)])
            for name in names
        }
        for name in list(services.projector.projections):
            services.projector.rebuild(name)
        assert {name: listed_ids(services, name)[1:] for name in names} == expected
        assert view_tables(services) == views
        assert windows == {
            name: services.conversations.in_context_ids([services.conversations.get(ACTOR, name)])
            for name in names
        }
    finally:
        services.close()
