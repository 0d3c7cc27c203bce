"""Event topics are pinned: the stored names never follow a module move or a rename."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from domain.agent import Agent
from domain.block import Block
from domain.conversation import Conversation
from domain.run import Run
from service.application import ConvlogApplication

PINNED = {
    "convlog.Agent": Agent,
    "convlog.Agent.Created": Agent.Created,
    "convlog.Agent.BlockUpdated": Agent.BlockUpdated,
    "convlog.Agent.Deleted": Agent.Deleted,
    "convlog.Agent.ConversationOpened": Agent.ConversationOpened,
    "convlog.Agent.MemoryEdited": Agent.MemoryEdited,
    "convlog.Agent.ToolAttached": Agent.ToolAttached,
    "convlog.Agent.ToolDetached": Agent.ToolDetached,
    "convlog.Agent.ToolRulesChanged": Agent.ToolRulesChanged,
    "convlog.Agent.Updated": Agent.Updated,
    "convlog.Agent.BlockAttached": Agent.BlockAttached,
    "convlog.Agent.BlockDetached": Agent.BlockDetached,
    "convlog.Block": Block,
    "convlog.Block.Created": Block.Created,
    "convlog.Block.Updated": Block.Updated,
    "convlog.Block.Attached": Block.Attached,
    "convlog.Block.Detached": Block.Detached,
    "convlog.Block.Deleted": Block.Deleted,
    "convlog.Conversation": Conversation,
    "convlog.Conversation.Created": Conversation.Created,
    "convlog.Conversation.MessageAppended": Conversation.MessageAppended,
    "convlog.Conversation.Updated": Conversation.Updated,
    "convlog.Conversation.SystemMessageRecompiled": Conversation.SystemMessageRecompiled,
    "convlog.Conversation.Deleted": Conversation.Deleted,
    "convlog.Conversation.RunClaimed": Conversation.RunClaimed,
    "convlog.Conversation.RunLeaseRenewed": Conversation.RunLeaseRenewed,
    "convlog.Conversation.RunReleased": Conversation.RunReleased,
    "convlog.Conversation.Compacted": Conversation.Compacted,
    "convlog.Conversation.IsolatedBlockEdited": Conversation.IsolatedBlockEdited,
    "convlog.Conversation.ContextReset": Conversation.ContextReset,
    "convlog.Conversation.Forked": Conversation.Forked,
    "convlog.Run": Run,
    "convlog.Run.Started": Run.Created,
    "convlog.Run.Completed": Run.Completed,
    "convlog.Run.Failed": Run.Failed,
    "convlog.Run.Cancelled": Run.Cancelled,
    "convlog.Run.StepFinished": Run.StepFinished,
    "convlog.Run.Deleted": Run.Deleted,
}


@pytest.fixture
def app() -> Iterator[ConvlogApplication]:
    application = ConvlogApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    yield application
    application.close()


@pytest.mark.parametrize("topic", sorted(PINNED))
def test_topic_is_pinned(topic: str) -> None:
    cls = PINNED[topic]
    assert get_topic(cls) == topic
    assert resolve_topic(topic) is cls


def test_every_event_class_has_a_pinned_topic() -> None:
    """A new event class must get a ``convlog.`` topic (and a line in PINNED above)."""
    found = {}
    for aggregate in (Agent, Block, Conversation, Run):
        for name, value in vars(aggregate).items():
            if name in ("Event", "Snapshot"):
                continue
            if isinstance(value, type) and issubclass(value, aggregate.Event):
                found[f"{aggregate.__name__}.{name}"] = get_topic(value)
    assert all(topic.startswith("convlog.") for topic in found.values()), found
    assert {t for t, cls in PINNED.items() if not hasattr(cls, "TOPIC") or t != cls.TOPIC} == set()
    assert set(found.values()) >= {t for t in PINNED if t.count(".") == 2}


def test_events_are_stored_under_their_pinned_topic(app: ConvlogApplication) -> None:
    conv = Conversation(
        organization_id="org",
        agent_id="agent",
        summary=None,
        model=None,
        model_settings=None,
        isolated_blocks=[],
        is_default=False,
        created_by_id="user",
    )
    conv.append_message(
        message_id="message-1", role="user", message_type="user_message", content="hi"
    )
    stored = [app.mapper.to_stored_event(e) for e in conv.collect_events()]
    assert [s.topic for s in stored] == [
        "convlog.Conversation.Created",
        "convlog.Conversation.MessageAppended",
    ]


def test_a_stored_event_written_with_the_topic_string_decodes(app: ConvlogApplication) -> None:
    """Literal JSON, as an old log holds it: no class object was used to write it."""
    conversation_id = uuid4()
    created = (
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2025-01-02T03:04:05.000006+00:00"},'
        b'"originator_topic":"convlog.Conversation","organization_id":"org-1",'
        b'"agent_id":"agent-1","summary":"hello","model":null,"model_settings":null,'
        b'"isolated_blocks":[],"is_default":false,"created_by_id":"user-1"}'
    )
    appended = (
        b'{"timestamp":{"_type_":"datetime_iso","_data_":"2025-01-02T03:04:06+00:00"},'
        b'"message_id":"message-1","role":"user","message_type":"user_message",'
        b'"content":"hi there","run_id":null,"step_id":null,"otid":"o-1","extra":{}}'
    )
    app.recorder.insert_events(
        [
            StoredEvent(conversation_id, 1, "convlog.Conversation.Created", created),
            StoredEvent(conversation_id, 2, "convlog.Conversation.MessageAppended", appended),
        ]
    )

    (_, event) = app.recorder.select_events(conversation_id)
    decoded = app.mapper.to_domain_event(event)
    assert isinstance(decoded, Conversation.MessageAppended)
    assert (decoded.message_id, decoded.content, decoded.otid) == ("message-1", "hi there", "o-1")
    assert decoded.timestamp.isoformat() == "2025-01-02T03:04:06+00:00"

    conv: Aggregate = app.repository.get(conversation_id)
    assert isinstance(conv, Conversation)
    assert (conv.summary, conv.agent_id, conv.message_count, conv.version) == (
        "hello",
        "agent-1",
        1,
        2,
    )
