"""The message list: every message of every conversation, in order, as Letta lists it.

Each row holds the listed item already rendered as JSON, so a page is one indexed range scan
and a string join, whatever the conversation's length. A message's position is the version of
its MessageAppended event in the conversation's stream.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from domain.conversation import Conversation
from projections.lineage import LINEAGE_DDL, Segment, fork_segments, plain
from projections.projection import Handler, Projection, Writer
from projections.timefmt import letta_date, to_micros

# Letta's list endpoint renders stored messages of these roles as these item types (§2.5).
ROLE_OF_TYPE = {
    "system_message": "system",
    "user_message": "user",
    "assistant_message": "assistant",
    "reasoning_message": "assistant",
    "hidden_reasoning_message": "assistant",
    "tool_call_message": "assistant",
    "tool_return_message": "tool",
    "approval_request_message": "approval",
    "approval_response_message": "approval",
}


# Item types whose wire form has ``content``; the others carry their own fields (tool_call, …).
CONTENT_TYPES = ("system_message", "user_message", "assistant_message")


def render_item(event: Conversation.MessageAppended) -> dict[str, Any]:
    """The LettaMessage JSON for one appended message (plus ``role``, decisions §12)."""
    extra: dict[str, Any] = dict(event.extra)
    item: dict[str, Any] = {
        "id": event.message_id,
        "date": letta_date(event.timestamp),
        "name": extra.pop("name", None),
        "message_type": event.message_type,
        "otid": event.otid,
        "sender_id": extra.pop("sender_id", None),
        "step_id": event.step_id,
        "is_err": True if extra.pop("is_err", False) else None,
        "seq_id": None,
        "run_id": event.run_id,
    }
    if event.content is not None and event.message_type in CONTENT_TYPES:
        item["content"] = event.content
    item.update(extra)
    item["role"] = event.role
    return item


def summary_item(event: Conversation.Compacted) -> dict[str, Any]:
    """Letta lists a compaction's summary where it was made, as a user_message holding the
    packed JSON (``role`` says what it is).
    """
    return {
        "id": event.summary_message_id,
        "date": letta_date(event.timestamp),
        "name": None,
        "message_type": "user_message",
        "otid": None,
        "sender_id": None,
        "step_id": None,
        "is_err": None,
        "seq_id": None,
        "run_id": None,
        "content": event.content,
        "role": "summary",
    }


def with_content(item: str, content: Any) -> str:
    """A stored item (JSON text) with its content replaced: a recompiled system message."""
    found = json.loads(item)
    found["content"] = content
    return dumps(found)


@dataclass(frozen=True)
class Listed:
    """One row of the message list as a value: what the view holds for a listed message.
    The view and time travel (``projections/history.py``) both make rows with ``listed`` and
    ``summary_listed`` and change them with ``with_content``, so the two cannot drift.
    """

    position: int  # the version of the event that listed it
    message_id: str
    role: str
    message_type: str
    item: str  # the rendered item, JSON text


def listed(e: Conversation.MessageAppended) -> Listed:
    return Listed(e.originator_version, e.message_id, e.role, e.message_type, dumps(render_item(e)))


def summary_listed(e: Conversation.Compacted) -> Listed:
    return Listed(
        e.originator_version,
        e.summary_message_id,
        "summary",
        "user_message",
        dumps(summary_item(e)),
    )


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ContextRow:
    """A message as the model context needs it (see ``service/context_window.py``)."""

    position: int
    role: str
    text: str  # what the model reads (for a tool result: Letta's packed JSON)
    message_type: str
    step_id: str | None = None
    calls: list[dict[str, Any]] | None = None  # tool calls: [{tool_call_id, name, arguments}]
    tool_call_id: str | None = None  # the call a tool result answers
    images: tuple[str, ...] = ()  # image URLs (data: URLs for inline images), in order


def context_row(e: Conversation.MessageAppended) -> ContextRow:
    """The model's view of one appended message, as the view stores it."""
    extra = e.extra
    calls = extra.get("tool_calls") if "tool_calls" in extra else None
    text = plain_text(e.content)
    if calls:  # a readable line for transcripts; the model gets the calls themselves
        text = "\n".join(f"{c['name']}({c['arguments']})" for c in calls)
    return ContextRow(
        e.originator_version,
        e.role,
        text,
        e.message_type,
        e.step_id,
        calls or None,
        extra.get("tool_call_id") if e.message_type == "tool_return_message" else None,
        image_urls(e.content),
    )


class MessageList(Projection):
    name = "messages"
    # 2: step_id, calls, tool_call_id for the model's context; 3: run_id; 4: lineage (forks),
    # images
    version = 4
    tables: ClassVar[dict[str, list[str]]] = {
        "messages": [
            "CREATE TABLE IF NOT EXISTS {messages} ("
            " conversation_id TEXT NOT NULL, position INTEGER NOT NULL,"
            " message_id TEXT NOT NULL, role TEXT NOT NULL, message_type TEXT NOT NULL,"
            " created_at BIGINT NOT NULL, item TEXT NOT NULL, text TEXT NOT NULL,"
            " step_id TEXT, calls TEXT, tool_call_id TEXT, run_id TEXT, images TEXT,"
            " PRIMARY KEY (conversation_id, position))",
            "CREATE INDEX IF NOT EXISTS {messages_by_run} ON {messages} (run_id, position)",
            "CREATE UNIQUE INDEX IF NOT EXISTS {messages_by_id} ON {messages} (message_id)",
        ],
        "lineage": LINEAGE_DDL,
    }

    def handlers(self) -> Mapping[type[Any], Handler]:
        return {
            Conversation.MessageAppended: self._appended,
            Conversation.SystemMessageRecompiled: self._recompiled,
            Conversation.Compacted: self._compacted,
            Conversation.Forked: self._forked,
        }

    def _appended(self, e: Conversation.MessageAppended, w: Writer) -> None:
        row = context_row(e)
        found = listed(e)
        w.insert(
            "messages",
            "conversation_id, position, message_id, role, message_type, created_at, item, text,"
            " step_id, calls, tool_call_id, run_id, images",
            (
                str(e.originator_id),
                found.position,
                found.message_id,
                found.role,
                found.message_type,
                to_micros(e.timestamp),
                found.item,
                # What a model reads, so building a context decodes no JSON.
                row.text,
                row.step_id,
                None if row.calls is None else dumps(row.calls),
                row.tool_call_id,
                e.run_id,
                dumps(list(row.images)) if row.images else None,
            ),
        )

    def _compacted(self, e: Conversation.Compacted, w: Writer) -> None:
        found = summary_listed(e)
        w.execute(
            "INSERT INTO {messages} (conversation_id, position, message_id, role, message_type,"
            " created_at, item, text, run_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                str(e.originator_id),
                found.position,
                found.message_id,
                found.role,
                found.message_type,
                to_micros(e.timestamp),
                found.item,
                e.content,
                e.run_id,
            ),
        )

    def _forked(self, e: Conversation.Forked, w: Writer) -> None:
        fork_id = str(e.originator_id)
        found = w.fetchall(
            "SELECT source_id, lo, hi, shift FROM {lineage} WHERE conversation_id = %s"
            " ORDER BY segment",
            (e.parent_id,),
        )
        parent = [Segment(*row) for row in found] or plain(e.parent_id)
        system = w.fetchone(
            "SELECT position FROM {messages} WHERE conversation_id = %s AND role = 'system'"
            " ORDER BY position LIMIT 1",
            (fork_id,),
        )
        own = fork_segments(
            parent,
            fork_id,
            system_position=int(system[0]),
            key_until=e.key_until,
            forked_at=e.originator_version,
            key_shift=e.key_shift,
        )
        for number, segment in enumerate(own):
            w.insert(
                "lineage",
                "conversation_id, segment, source_id, lo, hi, shift",
                (fork_id, number, segment.source, segment.lo, segment.hi, segment.shift),
            )

    def _recompiled(self, e: Conversation.SystemMessageRecompiled, w: Writer) -> None:
        row = w.fetchone("SELECT item FROM {messages} WHERE message_id = %s", (e.message_id,))
        w.execute(
            "UPDATE {messages} SET item = %s, text = %s WHERE message_id = %s",
            (with_content(row[0], e.content), plain_text(e.content), e.message_id),
        )


def image_urls(content: Any) -> tuple[str, ...]:
    """The images of a message's content parts, as URLs the providers take."""
    if not isinstance(content, list):
        return ()
    found = []
    for part in content:
        source = (
            part.get("source") if isinstance(part, dict) and part.get("type") == "image" else None
        )
        if not isinstance(source, dict):
            continue
        if source.get("type") == "url":
            found.append(str(source["url"]))
        elif source.get("type") == "base64":
            found.append(f"data:{source['media_type']};base64,{source['data']}")
    return tuple(found)


def plain_text(content: Any) -> str:
    """Plain text of a message's content (a string, or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""
