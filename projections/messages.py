"""The message list: every message of every conversation, in order, as Letta lists it.

Each row holds the listed item already rendered as JSON, so a page is one indexed range scan
and a string join, whatever the conversation's length. A message's position is the version of
its MessageAppended event in the conversation's stream.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from domain.conversation import Conversation
from projections.projection import Handler, Projection, Writer
from projections.store import ViewStore
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


def render_item(event: Any) -> dict[str, Any]:
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
    if event.content is not None:
        item["content"] = event.content
    item.update(extra)
    item["role"] = event.role
    return item


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class MessageList(Projection):
    name = "messages"
    tables: ClassVar[dict[str, list[str]]] = {
        "messages": [
            "CREATE TABLE IF NOT EXISTS {messages} ("
            " conversation_id TEXT NOT NULL, position INTEGER NOT NULL,"
            " message_id TEXT NOT NULL, role TEXT NOT NULL, message_type TEXT NOT NULL,"
            " created_at BIGINT NOT NULL, item TEXT NOT NULL,"
            " PRIMARY KEY (conversation_id, position))",
            "CREATE UNIQUE INDEX IF NOT EXISTS {messages_by_id} ON {messages} (message_id)",
        ]
    }

    def handlers(self) -> Mapping[type[Any], Handler]:
        return {
            Conversation.MessageAppended: self._appended,
            Conversation.SystemMessageRecompiled: self._recompiled,
        }

    def _appended(self, e: Any, w: Writer) -> None:
        w.execute(
            "INSERT INTO {messages} (conversation_id, position, message_id, role, message_type,"
            " created_at, item) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                str(e.originator_id),
                e.originator_version,
                e.message_id,
                e.role,
                e.message_type,
                to_micros(e.timestamp),
                dumps(render_item(e)),
            ),
        )

    def _recompiled(self, e: Any, w: Writer) -> None:
        row = w.fetchone("SELECT item FROM {messages} WHERE message_id = %s", (e.message_id,))
        item = json.loads(row[0])
        item["content"] = e.content
        w.execute(
            "UPDATE {messages} SET item = %s WHERE message_id = %s", (dumps(item), e.message_id)
        )


class MessageQueries:
    """Reads of the message list."""

    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def position_of(self, conversation_id: str, message_id: str) -> int | None:
        rows = self.store.query(
            "SELECT position FROM messages WHERE message_id = %s AND conversation_id = %s",
            (message_id, conversation_id),
        )
        return int(rows[0][0]) if rows else None

    def page(
        self,
        conversation_id: str,
        *,
        ascending: bool,
        after: int | None,
        before: int | None,
        limit: int | None,
    ) -> list[str]:
        """Items (JSON text) in listing order. ``after``/``before`` are positions and follow
        that order (decisions §4); with only ``before``, the items nearest to it are returned.
        """
        low, high = (after, before) if ascending else (before, after)
        clauses = ["conversation_id = %s"]
        params: list[Any] = [conversation_id]
        if low is not None:
            clauses.append("position > %s")
            params.append(low)
        if high is not None:
            clauses.append("position < %s")
            params.append(high)
        # Walk away from the 'before' cursor when it is the only one, then restore the order.
        backwards = before is not None and after is None
        scan_ascending = ascending != backwards
        sql = (
            "SELECT item FROM messages WHERE "
            + " AND ".join(clauses)
            + (" ORDER BY position ASC" if scan_ascending else " ORDER BY position DESC")
        )
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        items = [row[0] for row in self.store.query(sql, params)]
        if backwards:
            items.reverse()
        return items

    def ids_from(
        self, conversation_ids: list[str], context_from: dict[str, int]
    ) -> dict[str, list[str]]:
        """Message ids at or after each conversation's context start, in position order."""
        if not conversation_ids:
            return {}
        marks = ", ".join(["%s"] * len(conversation_ids))
        rows = self.store.query(
            f"SELECT conversation_id, position, message_id FROM messages "
            f"WHERE conversation_id IN ({marks}) ORDER BY conversation_id, position",
            conversation_ids,
        )
        found: dict[str, list[str]] = {cid: [] for cid in conversation_ids}
        for cid, position, message_id in rows:
            if position >= context_from[cid]:
                found[cid].append(message_id)
        return found


def context_rows(store: ViewStore, conversation_id: str, after: int) -> list[tuple[int, str, Any]]:
    """(position, role, content) of the messages after ``after``, in order."""
    rows = store.query(
        "SELECT position, role, item FROM messages WHERE conversation_id = %s AND position > %s"
        " ORDER BY position",
        (conversation_id, after),
    )
    return [(int(position), role, json.loads(item).get("content")) for position, role, item in rows]
