"""The message list: every message of every conversation, in order, as Letta lists it.

Each row holds the listed item already rendered as JSON, so a page is one indexed range scan
and a string join, whatever the conversation's length. A message's position is the version of
its MessageAppended event in the conversation's stream.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from domain.conversation import Conversation
from projections.projection import Handler, Projection, Writer
from projections.store import ViewStore
from projections.timefmt import letta_date, to_micros

T = TypeVar("T")

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
    )


class MessageList(Projection):
    name = "messages"
    version = 3  # 2: step_id, calls, tool_call_id for the model's context; 3: run_id
    tables: ClassVar[dict[str, list[str]]] = {
        "messages": [
            "CREATE TABLE IF NOT EXISTS {messages} ("
            " conversation_id TEXT NOT NULL, position INTEGER NOT NULL,"
            " message_id TEXT NOT NULL, role TEXT NOT NULL, message_type TEXT NOT NULL,"
            " created_at BIGINT NOT NULL, item TEXT NOT NULL, text TEXT NOT NULL,"
            " step_id TEXT, calls TEXT, tool_call_id TEXT, run_id TEXT,"
            " PRIMARY KEY (conversation_id, position))",
            "CREATE INDEX IF NOT EXISTS {messages_by_run} ON {messages} (run_id, position)",
            "CREATE UNIQUE INDEX IF NOT EXISTS {messages_by_id} ON {messages} (message_id)",
        ]
    }

    def handlers(self) -> Mapping[type[Any], Handler]:
        return {
            Conversation.MessageAppended: self._appended,
            Conversation.SystemMessageRecompiled: self._recompiled,
            Conversation.Compacted: self._compacted,
        }

    def _appended(self, e: Conversation.MessageAppended, w: Writer) -> None:
        row = context_row(e)
        w.insert(
            "messages",
            "conversation_id, position, message_id, role, message_type, created_at, item, text,"
            " step_id, calls, tool_call_id, run_id",
            (
                str(e.originator_id),
                e.originator_version,
                e.message_id,
                e.role,
                e.message_type,
                to_micros(e.timestamp),
                dumps(render_item(e)),
                # What a model reads, so building a context decodes no JSON.
                row.text,
                row.step_id,
                None if row.calls is None else dumps(row.calls),
                row.tool_call_id,
                e.run_id,
            ),
        )

    def _compacted(self, e: Conversation.Compacted, w: Writer) -> None:
        # Letta lists the summary where it was made, as a user_message holding the packed JSON.
        item = {
            "id": e.summary_message_id,
            "date": letta_date(e.timestamp),
            "name": None,
            "message_type": "user_message",
            "otid": None,
            "sender_id": None,
            "step_id": None,
            "is_err": None,
            "seq_id": None,
            "run_id": None,
            "content": e.content,
            "role": "summary",
        }
        w.execute(
            "INSERT INTO {messages} (conversation_id, position, message_id, role, message_type,"
            " created_at, item, text, run_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                str(e.originator_id),
                e.originator_version,
                e.summary_message_id,
                "summary",
                "user_message",
                to_micros(e.timestamp),
                dumps(item),
                e.content,
                e.run_id,
            ),
        )

    def _recompiled(self, e: Conversation.SystemMessageRecompiled, w: Writer) -> None:
        row = w.fetchone("SELECT item FROM {messages} WHERE message_id = %s", (e.message_id,))
        item = json.loads(row[0])
        item["content"] = e.content
        w.execute(
            "UPDATE {messages} SET item = %s, text = %s WHERE message_id = %s",
            (dumps(item), plain_text(e.content), e.message_id),
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
        types: list[str] | None = None,
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
        if types:
            clauses.append(f"message_type IN ({', '.join(['%s'] * len(types))})")
            params += types
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

    def in_context_ids(self, windows: list[Window]) -> dict[str, list[str]]:
        """Each conversation's in-context message ids, in the order the model sees them."""
        if not windows:
            return {}
        clauses = " OR ".join(
            ["(conversation_id = %s AND (position = %s OR position >= %s))"] * len(windows)
        )
        params: list[Any] = []
        for window in windows:
            params += [window.conversation_id, window.system_position, window.context_from]
        rows = self.store.query(
            "SELECT conversation_id, position, message_id, role FROM messages"
            f" WHERE {clauses} ORDER BY conversation_id, position",
            params,
        )
        by_id: dict[str, list[tuple[int, str, str]]] = {w.conversation_id: [] for w in windows}
        for cid, position, message_id, role in rows:
            by_id[cid].append((int(position), role, message_id))
        return {
            w.conversation_id: [m for _, _, m in w.order(by_id[w.conversation_id])] for w in windows
        }


@dataclass(frozen=True)
class Window:
    """Where a conversation's in-context messages are: system message, summary, suffix."""

    conversation_id: str
    system_position: int
    summary_position: int | None
    context_from: int

    def order(self, rows: list[tuple[int, str, T]]) -> list[tuple[int, str, T]]:
        """Rows (position, role, …) of this window in context order: system, the latest
        summary, then the kept and later messages (earlier summaries are history only).
        """
        system = [r for r in rows if r[0] == self.system_position]
        summary = [r for r in rows if r[0] == self.summary_position]
        rest = [
            r
            for r in rows
            if r[0] >= self.context_from and r[0] != self.system_position and r[1] != "summary"
        ]
        return system + summary + rest


def plain_text(content: Any) -> str:
    """Plain text of a message's content (a string, or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def model_rows(store: ViewStore, window: Window, after: int | None = None) -> list[ContextRow]:
    """The context as rows the model's messages are made from: the whole window, or (with
    ``after``) only the messages appended after that position.
    """
    columns = "position, role, text, message_type, step_id, calls, tool_call_id"
    if after is not None:
        rows = store.query(
            f"SELECT {columns} FROM messages"
            " WHERE conversation_id = %s AND position > %s ORDER BY position",
            (window.conversation_id, after),
        )
    else:
        rows = store.query(
            f"SELECT {columns} FROM messages WHERE conversation_id = %s"
            " AND (position = %s OR position >= %s) ORDER BY position",
            (window.conversation_id, window.system_position, window.context_from),
        )
    found = [
        ContextRow(int(p), role, text, kind, step, json.loads(calls) if calls else None, call)
        for p, role, text, kind, step, calls, call in rows
    ]
    if after is not None:
        return found
    ordered = window.order([(r.position, r.role, r) for r in found])
    return [r for _, _, r in ordered]


def run_items(store: ViewStore, run_id: str, ascending: bool, limit: int | None) -> list[str]:
    """The listed items a run added, in order (JSON text)."""
    sql = "SELECT item FROM messages WHERE run_id = %s ORDER BY position " + (
        "ASC" if ascending else "DESC"
    )
    params: list[Any] = [run_id]
    if limit is not None:
        sql += " LIMIT %s"
        params.append(limit)
    return [row[0] for row in store.query(sql, params)]


def system_row(store: ViewStore, window: Window) -> list[ContextRow]:
    rows = store.query(
        "SELECT position, role, text, message_type FROM messages"
        " WHERE conversation_id = %s AND position = %s",
        (window.conversation_id, window.system_position),
    )
    return [ContextRow(int(p), role, text, kind) for p, role, text, kind in rows]


def tool_results(store: ViewStore, conversation_id: str, call_ids: list[str]) -> list[str]:
    """The listed tool_return items (JSON text) answering these calls, in order."""
    marks = ", ".join(["%s"] * len(call_ids))
    rows = store.query(
        "SELECT item FROM messages WHERE conversation_id = %s AND message_type ="
        f" 'tool_return_message' AND tool_call_id IN ({marks}) ORDER BY position",
        (conversation_id, *call_ids),
    )
    return [row[0] for row in rows]


def context_rows(
    store: ViewStore, window: Window, after: int | None = None
) -> list[tuple[int, str, Any]]:
    """(position, role, text) in context order: the whole window, or (with ``after``) only
    the messages appended after that position.
    """
    if after is not None:
        rows = store.query(
            "SELECT position, role, text FROM messages"
            " WHERE conversation_id = %s AND position > %s ORDER BY position",
            (window.conversation_id, after),
        )
    else:
        rows = store.query(
            "SELECT position, role, text FROM messages WHERE conversation_id = %s"
            " AND (position = %s OR position >= %s) ORDER BY position",
            (window.conversation_id, window.system_position, window.context_from),
        )
    found = [(int(p), role, text) for p, role, text in rows]
    return found if after is not None else window.order(found)
