"""The system message of a conversation, compiled from an agent's prompt and blocks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from domain import ids
from domain.agent import Agent
from domain.conversation import Conversation
from domain.memory import DEFAULT_CONVERSATION, compile_system_message


def label_of(conversation: Conversation) -> str:
    """How the metadata names a conversation: its id, or ``default`` for the agent's own."""
    if conversation.is_default:
        return DEFAULT_CONVERSATION
    return ids.format_id(ids.CONVERSATION, conversation.id)


def system_message(
    agent: Agent,
    conversation_label: str,
    blocks: Sequence[Mapping[str, Any]],
    previous_message_count: int,
) -> str:
    return compile_system_message(
        agent.system,
        blocks,
        datetime.now(UTC),
        previous_message_count,
        agent_id=ids.format_id(ids.AGENT, agent.id),
        conversation_id=conversation_label,
        timezone=agent.settings.get("timezone"),
    )
