"""Messages searched across the caller's organization (``POST /v1/messages/search``): the
full-text index the ``conversation_search`` tool uses, over every live conversation and agent
context, narrowed to an agent, a conversation or a time range."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain import ids
from projections.search import SearchQueries
from projections.timefmt import from_micros, to_micros
from service.actor import Actor
from service.context import Context


@dataclass(frozen=True)
class MessageSearch:
    query: str
    agent_id: str | None = None
    conversation_id: str | None = None
    limit: int = 50
    start_date: datetime | None = None
    end_date: datetime | None = None


class MessageSearchService:
    def __init__(self, ctx: Context) -> None:
        self.queries = SearchQueries(ctx.store)

    def search(self, actor: Actor, wanted: MessageSearch) -> list[dict[str, Any]]:
        conversation = None
        if wanted.conversation_id is not None:
            conversation = str(ids.to_uuid(wanted.conversation_id))
        found = self.queries.search_organization(
            actor.organization_id,
            wanted.query,
            agent_id=wanted.agent_id,
            conversation_id=conversation,
            limit=wanted.limit,
            start=to_micros(wanted.start_date) if wanted.start_date else None,
            end=to_micros(wanted.end_date) if wanted.end_date else None,
        )
        return [
            {
                "message_type": f"{hit.role}_message",
                "message_id": hit.message_id,
                "content": hit.text,
                "agent_id": hit.agent_id,
                "conversation_id": _conversation_of(hit.conversation_id, hit.agent_id),
                "created_at": from_micros(hit.created_at).isoformat(),
            }
            for hit in found
        ]


def _conversation_of(stream: str, agent_id: str) -> str | None:
    """The conversation's id; None for an agent's own context (Letta's default one)."""
    if UUID(stream) == ids.default_conversation_id(ids.to_uuid(agent_id)):
        return None
    return ids.format_id(ids.CONVERSATION, UUID(stream))
