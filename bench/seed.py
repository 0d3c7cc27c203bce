"""Fill a fresh store: one agent, conversations created through the use case, and messages
appended straight to the aggregates (there is no send endpoint to drive), many per save.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain import ids
from domain.conversation import Conversation
from service.agents import AgentSpec, BlockSpec
from service.services import Services
from tests.actors import DEFAULT_ACTOR

log = logging.getLogger("bench")

# ~200 characters of text per message, varied by a counter so rows are not identical.
_TEXT = (
    "The quick brown fox jumps over the lazy dog while the conversation log keeps every "
    "message in order; projections turn those events into rows that a client can page "
    "through quickly. "
)


def message_text(n: int) -> str:
    return f"#{n} {_TEXT}"[:200]


@dataclass(frozen=True)
class Seeded:
    agent_id: str
    conversation_ids: list[str]  # conv-<uuid>, as the API names them
    messages: int  # MessageAppended events written by the seeder (system messages excluded)
    seconds: float


def create_agent(services: Services, name: str = "bench", model: str = "openai/gpt-4o-mini") -> str:
    row = services.agents.create(
        DEFAULT_ACTOR, AgentSpec(name=name, model=model, memory_blocks=[BlockSpec("human", "x")])
    )
    return row.id


def append_messages(
    services: Services, conversation_uuid: str, count: int, per_save: int = 100
) -> None:
    """Append ``count`` alternating user/assistant messages, ``per_save`` events per save."""
    app = services.ctx.app
    conversation: Any = app.repository.get(UUID(conversation_uuid))
    assert isinstance(conversation, Conversation)
    for n in range(count):
        user = n % 2 == 0
        conversation.append_message(
            message_id=ids.new(ids.MESSAGE),
            role="user" if user else "assistant",
            message_type="user_message" if user else "assistant_message",
            content=message_text(n),
        )
        if (n + 1) % per_save == 0:
            app.save(conversation)
    app.save(conversation)  # the remainder, if any (saving nothing pending is a no-op)


def seed(
    services: Services,
    agent_id: str,
    conversations: int,
    messages_each: int,
    per_save: int = 100,
) -> Seeded:
    """``conversations`` new conversations of ``messages_each`` messages each (plus their
    system message). Each create brings the views up to date (read-your-writes), so they
    follow the seeding one conversation behind; the caller finishes with ``catch_up()``.
    """
    started = time.perf_counter()
    created: list[str] = []
    for i in range(conversations):
        row = services.conversations.create(DEFAULT_ACTOR, agent_id)
        append_messages(services, row.id, messages_each, per_save)
        created.append(row.conversation_id)
        if (i + 1) % 100 == 0:
            log.info("  seeded %d/%d conversations", i + 1, conversations)
    return Seeded(
        agent_id=agent_id,
        conversation_ids=created,
        messages=conversations * messages_each,
        seconds=time.perf_counter() - started,
    )
