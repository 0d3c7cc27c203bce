"""Aggregates: commands record the right events, guards refuse with named errors and record
nothing, and replaying the recorded events rebuilds the live state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import CanMutateAggregate

from domain import ids
from domain.agent import Agent
from domain.conversation import Conversation
from domain.errors import Conflict, InvalidArgument, NotFound
from domain.run import Run

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
LATER = NOW + timedelta(seconds=60)


def conversation(is_default: bool = False, **overrides: Any) -> Conversation:
    fields: dict[str, Any] = {
        "organization_id": ids.DEFAULT_ORG_ID,
        "agent_id": ids.new(ids.AGENT),
        "summary": "first",
        "model": None,
        "model_settings": None,
        "isolated_blocks": [],
        "is_default": is_default,
        "created_by_id": ids.DEFAULT_USER_ID,
    }
    fields.update(overrides)
    return Conversation(**fields)


def agent(**overrides: Any) -> Agent:
    fields: dict[str, Any] = {
        "organization_id": ids.DEFAULT_ORG_ID,
        "name": "ann",
        "system": "You are Ann.",
        "agent_type": "letta_v1_agent",
        "model": "openai/gpt-4o-mini",
        "embedding": None,
        "blocks": [
            {
                "id": ids.new(ids.BLOCK),
                "label": "human",
                "value": "Bob",
                "limit": 10,
                "description": None,
                "read_only": False,
                "metadata": {},
            },
            {
                "id": ids.new(ids.BLOCK),
                "label": "persona",
                "value": "kind",
                "limit": 100,
                "description": None,
                "read_only": False,
                "metadata": {},
            },
        ],
        "settings": {"tags": ["t"]},
        "created_by_id": ids.DEFAULT_USER_ID,
        "tool_ids": [],
        "tool_rules": [],
    }
    fields.update(overrides)
    return Agent(**fields)


def state(aggregate: Any) -> dict[str, Any]:
    """The aggregate's attributes (the library's bookkeeping of pending events aside)."""
    return {k: v for k, v in aggregate.__dict__.items() if k != "_pending_events"}


def replay(events: Sequence[CanMutateAggregate[UUID]]) -> Any:
    aggregate: Any = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def run_claim(conv: Conversation) -> tuple[str | None, datetime | None]:
    """The active run and its lease, read afresh (commands change them behind mypy's back)."""
    return conv.active_run_id, conv.lease_until


def append_user(conv: Conversation, text: str = "hi") -> str:
    message_id = ids.new(ids.MESSAGE)
    conv.append_message(
        message_id=message_id, role="user", message_type="user_message", content=text
    )
    return message_id


def refused(aggregate: Any, error: type[Exception], command: Any, *args: Any) -> None:
    """The command raises ``error`` and records nothing."""
    version, pending = aggregate.version, len(aggregate.pending_events)
    before = state(aggregate)
    with pytest.raises(error):
        command(*args)
    assert aggregate.version == version
    assert len(aggregate.pending_events) == pending
    assert state(aggregate) == before


# -- Conversation ------------------------------------------------------------------------------


def test_creating_a_conversation_records_created() -> None:
    conv = conversation(summary="s", model="openai/x", model_settings={"t": 1})
    (created,) = conv.pending_events
    assert isinstance(created, Conversation.Created)
    assert created.summary == "s"
    assert created.model_settings == {"t": 1}
    assert conv.version == 1
    assert conv.message_count == 0
    assert conv.system_message_id is None
    assert conv.active_run_id is None
    assert not conv.deleted


def test_append_message_records_the_message_and_keeps_state_light() -> None:
    conv = conversation()
    system_id = ids.new(ids.MESSAGE)
    conv.append_message(
        message_id=system_id, role="system", message_type="system_message", content="prompt"
    )
    user_id = append_user(conv, "hello")
    events = conv.pending_events[1:]
    assert [type(e) for e in events] == [Conversation.MessageAppended] * 2
    appended = events[1]
    assert isinstance(appended, Conversation.MessageAppended)
    assert appended.message_id == user_id
    assert appended.content == "hello"
    assert appended.extra == {}
    assert [e.originator_version for e in events] == [2, 3]
    assert conv.message_count == 2
    assert conv.system_message_id == system_id
    # Bodies live in the events, not in the aggregate.
    assert "hello" not in repr(state(conv))


def test_only_the_first_system_message_becomes_the_system_message() -> None:
    conv = conversation()
    first = ids.new(ids.MESSAGE)
    for message_id in (first, ids.new(ids.MESSAGE)):
        conv.append_message(
            message_id=message_id, role="system", message_type="system_message", content="p"
        )
    assert conv.system_message_id == first


def test_update_applies_present_known_fields_only() -> None:
    conv = conversation(summary="old", model="openai/a")
    conv.update({"summary": "new", "model": None, "bogus": 1}, "user-2")
    updated = conv.pending_events[-1]
    assert isinstance(updated, Conversation.Updated)
    assert updated.changes == {"summary": "new"}
    assert conv.summary == "new"
    assert conv.model == "openai/a"  # null does not clear
    assert conv.last_updated_by_id == "user-2"
    assert not hasattr(conv, "bogus")


def test_delete_then_every_command_is_refused_with_not_found() -> None:
    conv = conversation()
    conv.delete()
    assert isinstance(conv.pending_events[-1], Conversation.Deleted)
    assert conv.deleted
    refused(conv, NotFound, conv.delete)
    refused(conv, NotFound, append_user, conv)
    refused(conv, NotFound, conv.update, {"summary": "x"}, "u")
    refused(conv, NotFound, conv.claim_run, "run-1", NOW, LATER, "p1")


def test_recompile_replaces_the_system_message_of_an_agents_own_context() -> None:
    own = conversation(is_default=True)
    system_id = ids.new(ids.MESSAGE)
    own.append_message(
        message_id=system_id, role="system", message_type="system_message", content="v1"
    )
    own.recompile_system_message("v2")
    event = own.pending_events[-1]
    assert isinstance(event, Conversation.SystemMessageRecompiled)
    assert (event.message_id, event.content) == (system_id, "v2")
    assert own.message_count == 1


def test_claim_run_while_another_holds_a_live_lease_is_a_conflict() -> None:
    conv = conversation()
    assert conv.claim_run("run-a", NOW, LATER, "p1") is None
    assert isinstance(conv.pending_events[-1], Conversation.RunClaimed)
    assert (conv.active_run_id, conv.lease_until) == ("run-a", LATER)
    refused(conv, Conflict, conv.claim_run, "run-b", NOW + timedelta(seconds=1), LATER, "p2")


def test_claim_after_the_lease_lapsed_reports_the_lapsed_run() -> None:
    conv = conversation()
    conv.claim_run("run-a", NOW, LATER, "p1")
    lapsed = conv.claim_run("run-b", LATER, LATER + timedelta(seconds=60), "p2")
    assert lapsed == "run-a"
    claimed = conv.pending_events[-1]
    assert isinstance(claimed, Conversation.RunClaimed)
    assert claimed.lapsed_run_id == "run-a"
    assert conv.active_run_id == "run-b"


def test_renew_and_release_only_for_the_holder() -> None:
    conv = conversation()
    conv.claim_run("run-a", NOW, LATER, "p1")
    later = LATER + timedelta(seconds=30)
    conv.renew_lease("run-a", later)
    assert isinstance(conv.pending_events[-1], Conversation.RunLeaseRenewed)
    assert conv.lease_until == later
    refused(conv, Conflict, conv.renew_lease, "run-b", later)
    version = conv.version
    conv.release_run("run-b", "completed")  # not the holder: a no-op
    assert conv.version == version
    conv.release_run("run-a", "completed")
    assert isinstance(conv.pending_events[-1], Conversation.RunReleased)
    assert run_claim(conv) == (None, None)
    assert conv.claim_run("run-c", NOW, LATER, "p1") is None


def test_default_conversation_id_is_derived_from_the_agent() -> None:
    agent_id = ids.new(ids.AGENT)
    first = Conversation.create_id(agent_id, True)
    assert first == Conversation.create_id(agent_id, True)
    assert first == ids.default_conversation_id(ids.to_uuid(agent_id))
    assert Conversation.create_id(agent_id, False) != Conversation.create_id(agent_id, False)


def test_conversation_replay_equals_live_state() -> None:
    conv = conversation(is_default=True, isolated_blocks=[{"id": "block-1", "label": "h"}])
    conv.append_message(
        message_id=ids.new(ids.MESSAGE), role="system", message_type="system_message", content="p"
    )
    append_user(conv)
    conv.update({"summary": "s2", "model_settings": {"temperature": 0.5}}, "user-2")
    conv.claim_run("run-a", NOW, LATER, "p1")
    conv.renew_lease("run-a", LATER + timedelta(seconds=5))
    conv.recompile_system_message("p2")
    conv.release_run("run-a", "completed")
    conv.delete()
    assert state(replay(conv.collect_events())) == state(conv)


# -- Agent -------------------------------------------------------------------------------------


def test_creating_an_agent_records_created() -> None:
    a = agent()
    (created,) = a.pending_events
    assert isinstance(created, Agent.Created)
    assert created.name == "ann"
    assert [b["label"] for b in a.blocks] == ["human", "persona"]
    assert not a.deleted


def test_update_block_records_only_the_changes() -> None:
    a = agent()
    a.update_block("human", {"value": "Alice", "description": "who"})
    event = a.pending_events[-1]
    assert isinstance(event, Agent.BlockUpdated)
    assert (event.label, event.changes) == ("human", {"value": "Alice", "description": "who"})
    human = a.block("human")
    assert (human["value"], human["description"], human["limit"]) == ("Alice", "who", 10)
    assert a.block("persona")["value"] == "kind"


def test_update_block_guards() -> None:
    a = agent()
    refused(a, NotFound, a.update_block, "nope", {"value": "x"})
    refused(a, InvalidArgument, a.update_block, "human", {"colour": "red"})
    refused(a, InvalidArgument, a.update_block, "human", {"value": "x" * 11})
    refused(a, InvalidArgument, a.update_block, "persona", {"limit": 3})
    a.update_block("human", {"value": "x" * 10})  # exactly at the limit is fine


def test_block_lookup_of_a_missing_label_is_not_found() -> None:
    with pytest.raises(NotFound):
        agent().block("nope")


def test_delete_agent_twice_is_not_found() -> None:
    a = agent()
    a.delete()
    assert isinstance(a.pending_events[-1], Agent.Deleted)
    refused(a, NotFound, a.delete)


def test_update_block_of_a_deleted_agent_is_refused() -> None:
    a = agent()
    a.delete()
    refused(a, NotFound, a.update_block, "human", {"value": "x"})


def test_agent_replay_equals_live_state() -> None:
    a = agent()
    a.update_block("human", {"value": "Alice"})
    a.update_block("persona", {"read_only": True, "metadata": {"k": "v"}})
    a.delete()
    assert state(replay(a.collect_events())) == state(a)


# -- Run ---------------------------------------------------------------------------------------


def run() -> Run:
    return Run(
        organization_id=ids.DEFAULT_ORG_ID,
        agent_id=ids.new(ids.AGENT),
        conversation_id=None,
        stream_id="s",
        run_type="send_message",
        background=False,
        request_config={},
        input_messages=[{"role": "user", "content": "hi"}],
        model="openai/x",
    )


@pytest.mark.parametrize(
    ("finish", "status", "stop_reason"),
    [
        (lambda r: r.complete("end_turn", {}, {}), "completed", "end_turn"),
        (lambda r: r.complete("llm_api_error", {}, {}), "failed", "llm_api_error"),
        (lambda r: r.fail("error", {"message": "x"}, {}), "failed", "error"),
        (lambda r: r.cancel("user"), "cancelled", "cancelled"),
    ],
)
def test_run_reaches_one_terminal_status(finish: Any, status: str, stop_reason: str) -> None:
    r = run()
    assert r.is_active
    finish(r)
    assert (r.status, r.stop_reason) == (status, stop_reason)
    refused(r, Conflict, r.cancel, "again")
    refused(r, Conflict, r.complete, "end_turn", {}, {})
    refused(r, Conflict, r.fail, "error", {}, {})
    assert state(replay(r.collect_events())) == state(r)


def test_a_claim_lapses_at_once_when_its_holder_process_is_gone() -> None:
    conv = conversation()
    conv.claim_run("run-a", NOW, LATER, "p1")
    assert conv.active_holder == "p1"
    soon = NOW + timedelta(seconds=1)
    refused(conv, Conflict, conv.claim_run, "run-b", soon, LATER, "p2")
    assert conv.claim_run("run-b", soon, LATER, "p2", holder_gone=True) == "run-a"
    assert conv.active_holder == "p2"
    conv.release_run("run-b", "completed")
    assert conv.active_holder is None
