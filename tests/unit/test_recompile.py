"""Recompiling a system message from the current blocks, and dry runs that write nothing."""

from __future__ import annotations

import pytest

from domain.errors import NotFound
from service.services import Services
from tests.unit.seed import ACTOR, head, listing, new_agent, new_conversation


def test_recompile_rebuilds_in_place_and_a_dry_run_writes_nothing(services: Services) -> None:
    agent = new_agent(services)
    conversation = new_conversation(services, agent.id).conversation_id
    services.agents.update_block(ACTOR, agent.id, "human", {"value": "The user is Bo."})
    before = listing(services, conversation)[0]
    assert "The user is Bo." not in before["content"]  # existing conversations keep theirs

    position = head(services)
    preview = services.conversations.recompile(ACTOR, conversation, dry_run=True)
    assert "The user is Bo." in preview
    assert head(services) == position
    assert listing(services, conversation)[0] == before

    compiled = services.conversations.recompile(ACTOR, conversation, dry_run=False)
    after = listing(services, conversation)[0]
    assert (after["id"], after["content"]) == (before["id"], compiled)
    types = [e.type for e in services.conversations.events(ACTOR, conversation, after=0, limit=50)]
    assert types[-1] == "convlog.Conversation.SystemMessageRecompiled"


def test_recompile_uses_the_conversations_isolated_blocks(services: Services) -> None:
    agent = new_agent(services)
    conversation = new_conversation(services, agent.id, isolated_block_labels=["human"])
    services.agents.update_block(ACTOR, agent.id, "human", {"value": "Changed for the agent."})
    compiled = services.conversations.recompile(ACTOR, conversation.conversation_id, dry_run=True)
    assert "The user is Ann." in compiled and "Changed for the agent." not in compiled
    own = services.conversations.recompile(ACTOR, agent.id, dry_run=True)
    assert "Changed for the agent." in own


def test_recompiling_a_deleted_conversation_is_not_found(services: Services) -> None:
    agent = new_agent(services)
    conversation = new_conversation(services, agent.id).conversation_id
    services.conversations.delete(ACTOR, conversation)
    position = head(services)
    with pytest.raises(NotFound):
        services.conversations.recompile(ACTOR, conversation, dry_run=False)
    assert head(services) == position


def test_system_messages_name_their_agent_and_conversation(services: Services) -> None:
    agent = new_agent(services)
    conversation = new_conversation(services, agent.id).conversation_id
    system = listing(services, conversation)[0]["content"]
    assert f"- AGENT_ID: {agent.id}\n- CONVERSATION_ID: {conversation}\n" in system
    own = listing(services, agent.id)[0]["content"]
    assert f"- AGENT_ID: {agent.id}\n- CONVERSATION_ID: default\n" in own
