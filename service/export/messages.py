"""The ``messages`` table's rows: one per message appended to a conversation and one per
compaction summary, each with whose conversation it is (its ``Owner``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain import ids
from domain.conversation import Conversation
from projections.messages import context_row, plain_text, summary_listed

CONVERSATION_CREATED = Conversation.Created.TOPIC
MESSAGE_APPENDED = Conversation.MessageAppended.TOPIC
COMPACTED = Conversation.Compacted.TOPIC
MESSAGE_TOPICS = frozenset({MESSAGE_APPENDED, COMPACTED})  # what ``messages`` rows are made of


@dataclass(frozen=True)
class Owner:
    """A conversation, and whose it is (from its Created event)."""

    conversation_id: str  # conv-…
    agent_id: str | None
    organization_id: str | None


def conversation_id_of(stream_id: str) -> str:
    """A conversation's id (conv-…) from its stream's."""
    return f"{ids.CONVERSATION}-{stream_id}"


def owner_of(stream: str, created: Conversation.Created) -> Owner:
    return Owner(conversation_id_of(stream), created.agent_id, created.organization_id)


def _tokens(extra: dict[str, Any]) -> int | None:
    usage = extra.get("usage")
    if not isinstance(usage, dict):
        return None
    total = usage.get("total_tokens")
    if isinstance(total, int):
        return total
    parts = [usage.get(k) for k in ("prompt_tokens", "completion_tokens")]
    return sum(p for p in parts if isinstance(p, int)) if any(parts) else None


def message_row(
    e: Conversation.MessageAppended, position: int, owner: Owner, created_at: str
) -> tuple[Any, ...]:
    """A ``messages`` row: the text as the message list keeps it for the model (a tool call
    reads ``name(arguments)``), a reasoning message's reasoning; the tools called or the one
    that answered."""
    if not needs_context_row(e.message_type, e.extra):
        return plain_message_row(vars(e), position, owner, created_at)
    found = context_row(e)
    return _message(vars(e), position, owner, created_at, found.text, found.calls)


def needs_context_row(message_type: str, extra: dict[str, Any]) -> bool:
    """Whether a message's row needs what ``context_row`` makes of tool calls and results."""
    return "tool_calls" in extra or message_type == "tool_return_message"


def plain_message_row(
    fields: dict[str, Any], position: int, owner: Owner, created_at: str
) -> tuple[Any, ...]:
    """``message_row`` of a message without tool calls or results, from its event's fields
    (``vars(event)``; the export's quick way has them before it makes an event): its text is
    what ``context_row`` makes of it, the content's text."""
    return _message(fields, position, owner, created_at, plain_text(fields["content"]), None)


def _message(
    fields: dict[str, Any],
    position: int,
    owner: Owner,
    created_at: str,
    text: str,
    calls: list[dict[str, Any]] | None,
) -> tuple[Any, ...]:
    message_type, extra = fields["message_type"], fields["extra"]
    if not text and message_type == "reasoning_message":
        text = str(extra.get("reasoning") or "")
    answer = message_type == "tool_return_message"
    if calls:
        tool_name: str | None = ",".join(str(c.get("name")) for c in calls)
    else:
        tool_name = extra.get("name") if answer else None
    return (
        position,
        fields["message_id"],
        owner.conversation_id,
        owner.agent_id,
        owner.organization_id,
        fields["run_id"],
        fields["step_id"],
        message_type,
        fields["role"],
        text,
        tool_name,
        extra.get("tool_call_id") if answer else None,
        _tokens(extra) if "usage" in extra else None,
        created_at,
    )


def summary_row(
    e: Conversation.Compacted, position: int, owner: Owner, created_at: str
) -> tuple[Any, ...]:
    """A compaction's summary, listed where it was made (as the message list has it)."""
    listed = summary_listed(e)
    return (
        position,
        listed.message_id,
        owner.conversation_id,
        owner.agent_id,
        owner.organization_id,
        e.run_id,
        None,
        listed.message_type,
        listed.role,
        e.summary,
        None,
        None,
        None,
        created_at,
    )
