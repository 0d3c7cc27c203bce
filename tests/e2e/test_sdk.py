"""The SQLite-backed server driven by the real ``letta-client==1.7.10`` SDK, as a Letta user
would. The flows themselves live in ``flows.py`` (the PostgreSQL module runs some of them too).
"""

from __future__ import annotations

import re
import uuid

import pytest
from letta_client import (
    BadRequestError,
    ConflictError,
    Letta,
    NotFoundError,
    UnprocessableEntityError,
)

from tests.e2e import flows
from tests.e2e.conftest import EMBEDDING, MODEL, new_agent

pytestmark = pytest.mark.e2e


def test_agent_create_with_memory_blocks(client: Letta) -> None:
    agent = client.agents.create(
        name="e2e-blocks",
        model=MODEL,
        embedding=EMBEDDING,
        memory_blocks=[
            {"label": "human", "value": "Name: Ada"},
            {"label": "persona", "value": "I am Sam."},
        ],
    )
    assert re.fullmatch(f"agent-{flows.UUID}", agent.id)
    assert agent.name == "e2e-blocks"
    assert {b.label: b.value for b in agent.memory.blocks} == {
        "human": "Name: Ada",
        "persona": "I am Sam.",
    }
    assert {b.label for b in agent.blocks} == {"human", "persona"}
    for block in agent.blocks:
        assert block.id is not None
        assert re.fullmatch(f"block-{flows.UUID}", block.id)
        assert block.description  # defaults are filled for human/persona

    human = client.agents.blocks.retrieve("human", agent_id=agent.id)
    assert human.value == "Name: Ada"
    assert human.label == "human"
    assert human.id == next(b.id for b in agent.blocks if b.label == "human")
    assert client.agents.retrieve(agent.id).id == agent.id


def test_conversation_lifecycle(client: Letta) -> None:
    flows.conversation_lifecycle(client)


def test_update_applies_only_the_fields_given(client: Letta, agent_id: str) -> None:
    created = client.conversations.create(agent_id=agent_id, summary="keep", model="openai/gpt-4o")
    assert created.model == "openai/gpt-4o"
    updated = client.conversations.update(created.id, model="anthropic/claude-sonnet-4")
    assert updated.model == "anthropic/claude-sonnet-4"
    assert updated.summary == "keep"
    again = client.conversations.update(created.id, summary="changed")
    assert again.model == "anthropic/claude-sonnet-4"
    assert again.summary == "changed"
    assert again.updated_at is not None and created.updated_at is not None
    assert again.updated_at >= created.updated_at
    assert again.created_at == created.created_at


def test_fresh_conversation_lists_exactly_its_system_message(client: Letta) -> None:
    agent_id = new_agent(client, human="Name: Ada Lovelace", persona="I am Sam the helper.")
    conversation = client.conversations.create(agent_id=agent_id)
    items = list(client.conversations.messages.list(conversation.id))
    assert len(items) == 1
    message = items[0]
    assert message.message_type == "system_message"
    assert conversation.in_context_message_ids is not None
    assert message.id == conversation.in_context_message_ids[0]
    assert isinstance(message.content, str)
    assert "Name: Ada Lovelace" in message.content
    assert "I am Sam the helper." in message.content
    assert "<human>" in message.content and "<persona>" in message.content
    # decisions §12: each listed item carries a role (a field the SDK's types do not declare)
    assert getattr(message, "role", None) == "system"


def test_each_conversation_has_its_own_system_message(client: Letta, agent_id: str) -> None:
    a = client.conversations.create(agent_id=agent_id)
    b = client.conversations.create(agent_id=agent_id)
    first = flows.only_system_message(client, a.id)
    second = flows.only_system_message(client, b.id)
    assert first.id != second.id


def test_block_update_reaches_new_conversations_only(client: Letta) -> None:
    flows.system_message_snapshots_memory(client)


def test_unknown_block_label_is_404(client: Letta, agent_id: str) -> None:
    with pytest.raises(NotFoundError):
        client.agents.blocks.retrieve("nope", agent_id=agent_id)
    with pytest.raises(NotFoundError):
        client.agents.blocks.update("nope", agent_id=agent_id, value="x")
    assert client.agents.blocks.retrieve("human", agent_id=agent_id).value == "Name: Ada"


def test_isolated_blocks_are_copies(client: Letta) -> None:
    agent_id = new_agent(client, human="Name: Ada")
    agent_block = client.agents.blocks.retrieve("human", agent_id=agent_id)
    conversation = client.conversations.create(agent_id=agent_id, isolated_block_labels=["human"])
    assert conversation.isolated_block_ids is not None
    assert len(conversation.isolated_block_ids) == 1
    assert re.fullmatch(f"block-{flows.UUID}", conversation.isolated_block_ids[0])
    assert conversation.isolated_block_ids[0] != agent_block.id
    retrieved = client.conversations.retrieve(conversation.id)
    assert retrieved.isolated_block_ids == conversation.isolated_block_ids
    assert "Name: Ada" in flows.only_system_message(client, conversation.id).content


def test_isolated_block_label_twice_does_not_make_two_copies(client: Letta, agent_id: str) -> None:
    """Letta keeps one isolated block per (conversation, label) (a unique key; a repeat is a
    409 there). Either refuse the request without writing, or make exactly one copy."""
    try:
        conversation = client.conversations.create(
            agent_id=agent_id, isolated_block_labels=["human", "human"]
        )
    except (BadRequestError, ConflictError, UnprocessableEntityError):
        assert client.conversations.list(agent_id=agent_id) == []
        return
    assert conversation.isolated_block_ids is not None
    assert len(conversation.isolated_block_ids) == 1


def test_agent_delete_removes_its_conversations(client: Letta) -> None:
    flows.agent_delete_cascades(client)


def test_auto_pagination_terminates(client: Letta) -> None:
    flows.messages_auto_pagination(client)


def test_agent_direct_listing_of_unknown_agent_is_404(client: Letta) -> None:
    with pytest.raises(NotFoundError):
        list(client.conversations.messages.list(f"agent-{uuid.uuid4()}"))


def test_auto_pagination_walks_a_longer_history_once(client: Letta) -> None:
    flows.turns_then_walk_history(client)


def test_list_limit_after_and_order(client: Letta) -> None:
    flows.list_paging(client)


def test_list_filters_by_agent(client: Letta) -> None:
    flows.list_filters_by_agent(client)


def test_summary_search_is_literal(client: Letta) -> None:
    flows.summary_search_is_literal(client)


def test_list_by_last_run_completion(client: Letta) -> None:
    flows.last_run_completion_ordering(client)
