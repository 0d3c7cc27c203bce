"""Reads of the message list, in listing keys across a conversation's segments.

A plain conversation is one segment (key = position), so each read is the one indexed range
scan it always was; a fork adds a scan per ancestor segment (see ``projections/lineage.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from projections.lineage import Segment, plain, segments, segments_of
from projections.messages import ContextRow
from projections.store import Row, ViewStore

T = TypeVar("T")

BATCH = 200  # segments per in-context query (SQLite allows 500 terms in a UNION)
TEXT_COLUMNS = "position, role, text"
CONTEXT_COLUMNS = "position, role, text, message_type, step_id, calls, tool_call_id, images"


@dataclass(frozen=True)
class Window:
    """Where a conversation's in-context messages are, in listing keys: the system message,
    the latest summary, and the suffix from ``context_from`` on.
    """

    conversation_id: str
    system_position: int
    summary_position: int | None
    context_from: int
    forked: bool = True  # False: one segment, no lineage to read (see ``segments_for``)

    def order(self, rows: list[tuple[int, str, T]]) -> list[tuple[int, str, T]]:
        """Rows (key, role, …) of this window in context order: system, the latest summary,
        then the kept and later messages (earlier summaries are history only).
        """
        system: list[tuple[int, str, T]] = []
        summary: list[tuple[int, str, T]] = []
        rest: list[tuple[int, str, T]] = []
        for row in rows:
            key = row[0]
            if key == self.system_position:
                system.append(row)
            elif key == self.summary_position:
                summary.append(row)
            elif key >= self.context_from and row[1] != "summary":
                rest.append(row)
        return system + summary + rest


def segments_for(store: ViewStore, conversation_id: str, forked: bool) -> list[Segment]:
    """A conversation's segments; one query less for one known not to be a fork."""
    return segments(store, conversation_id) if forked else plain(conversation_id)


def scan(
    store: ViewStore,
    columns: str,
    segs: Sequence[Segment],
    *,
    low: int | None = None,
    high: int | None = None,
    ascending: bool = True,
    limit: int | None = None,
    where: str = "",
    params: Sequence[Any] = (),
) -> list[tuple[int, Row]]:
    """(key, row) of messages with keys in ``(low, high)``, in key order, at most ``limit``.
    ``columns`` must start with ``position``; ``where`` narrows further (on columns).
    """
    found: list[tuple[int, Row]] = []
    for seg in segs if ascending else reversed(segs):
        if limit is not None and len(found) >= limit:
            break
        clipped = seg.clip(low if low is not None else seg.lo + seg.shift, None)
        if clipped is None:
            continue
        sql, args = clipped.where()
        if high is not None:
            sql += " AND position < %s"
            args.append(high - seg.shift)
        query = f"SELECT {columns} FROM messages WHERE {sql}{where} ORDER BY position " + (
            "ASC" if ascending else "DESC"
        )
        if limit is not None:
            query += " LIMIT %s"
        rows = store.query(query, [*args, *params] + ([limit - len(found)] if limit else []))
        found += [(int(row[0]) + seg.shift, row) for row in rows]
    return found


class MessageQueries:
    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def by_id(self, message_id: str) -> tuple[str, str] | None:
        """(the conversation that holds it, the item as JSON text), or None."""
        rows = self.store.query(
            "SELECT conversation_id, item FROM messages WHERE message_id = %s", (message_id,)
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def position_of(self, conversation_id: str, message_id: str, forked: bool = True) -> int | None:
        """The message's listing key in this conversation (None: not listed there)."""
        rows = self.store.query(
            "SELECT conversation_id, position FROM messages WHERE message_id = %s", (message_id,)
        )
        if not rows:
            return None
        source, position = rows[0][0], int(rows[0][1])
        for seg in segments_for(self.store, conversation_id, forked):
            if (
                seg.source == source
                and position > seg.lo
                and (seg.hi is None or position <= seg.hi)
            ):
                return position + seg.shift
        return None

    def page(
        self,
        conversation_id: str,
        *,
        ascending: bool,
        after: int | None,
        before: int | None,
        limit: int | None,
        types: list[str] | None = None,
        forked: bool = True,
    ) -> list[str]:
        """Items (JSON text) in listing order. ``after``/``before`` are keys and follow that
        order (decisions §4); with only ``before``, the items nearest to it are returned.
        """
        low, high = (after, before) if ascending else (before, after)
        where, params = "", list(types or [])
        if types:
            where = f" AND message_type IN ({', '.join(['%s'] * len(types))})"
        # Walk away from the 'before' cursor when it is the only one, then restore the order.
        backwards = before is not None and after is None
        found = scan(
            self.store,
            "position, item",
            segments_for(self.store, conversation_id, forked),
            low=low,
            high=high,
            ascending=ascending != backwards,
            limit=limit,
            where=where,
            params=params,
        )
        items = [row[1] for _, row in found]
        if backwards:
            items.reverse()
        return items

    def in_context_ids(self, windows: list[Window]) -> dict[str, list[str]]:
        """Each conversation's in-context message ids, in the order the model sees them: one
        query per ``BATCH`` segments, whatever the number of conversations (a listing page).
        """
        by_id = segments_of(self.store, [w.conversation_id for w in windows if w.forked])
        by_id.update({w.conversation_id: plain(w.conversation_id) for w in windows if not w.forked})
        parts = [(i, seg) for i, w in enumerate(windows) for seg in by_id[w.conversation_id]]
        found: list[list[tuple[int, str, Row]]] = [[] for _ in windows]
        for start in range(0, len(parts), BATCH):
            selects, params = [], []
            for i, seg in parts[start : start + BATCH]:
                sql, args = seg.where()
                w = windows[i]
                selects.append(
                    f"SELECT %s, position + %s, role, message_id FROM messages WHERE {sql}"
                    " AND (position = %s OR position >= %s)"
                )
                params += [i, seg.shift, *args]
                params += [w.system_position - seg.shift, w.context_from - seg.shift]
            for i, key, role, message_id in self.store.query(" UNION ALL ".join(selects), params):
                found[int(i)].append((int(key), role, (message_id,)))
        return {
            w.conversation_id: [row[0] for _, _, row in w.order(sorted(found[i]))]
            for i, w in enumerate(windows)
        }


def in_window(
    store: ViewStore,
    window: Window,
    segs: Sequence[Segment],
    columns: str = "position, role, message_id",
) -> list[tuple[int, str, Row]]:
    """(key, role, row) of the window's messages in context order."""
    found = scan(store, columns, segs, low=window.context_from - 1)
    if window.system_position < window.context_from:  # after a checkpoint: fetch it alone
        high = window.system_position + 1
        found = scan(store, columns, segs, low=window.system_position - 1, high=high) + found
    return window.order([(key, row[1], row) for key, row in found])


def _context_row(key: int, row: Row) -> ContextRow:
    _, role, text, kind, step, calls, call, images = row
    return ContextRow(
        key,
        role,
        text,
        kind,
        step,
        json.loads(calls) if calls else None,
        call,
        tuple(json.loads(images)) if images else (),
    )


def model_rows(store: ViewStore, window: Window, after: int | None = None) -> list[ContextRow]:
    """The context as rows the model's messages are made from: the whole window, or (with
    ``after``) only the messages listed after that key.
    """
    segs = segments_for(store, window.conversation_id, window.forked)
    if after is not None:
        return [
            _context_row(key, row) for key, row in scan(store, CONTEXT_COLUMNS, segs, low=after)
        ]
    return [
        _context_row(key, row) for key, _, row in in_window(store, window, segs, CONTEXT_COLUMNS)
    ]


def context_rows(store: ViewStore, window: Window) -> list[tuple[int, str, Any]]:
    """(key, role, text) in context order (three columns: what compaction reads)."""
    segs = segments_for(store, window.conversation_id, window.forked)
    return [(key, role, row[2]) for key, role, row in in_window(store, window, segs, TEXT_COLUMNS)]


def system_row(store: ViewStore, window: Window) -> list[ContextRow]:
    """The conversation's system message (always in its own first segment)."""
    found = scan(
        store,
        CONTEXT_COLUMNS,
        segments_for(store, window.conversation_id, window.forked)[:1],
        low=window.system_position - 1,
        high=window.system_position + 1,
    )
    return [_context_row(key, row) for key, row in found]


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


def tool_results(store: ViewStore, conversation_id: str, call_ids: list[str]) -> list[str]:
    """The listed tool_return items (JSON text) answering these calls, in order."""
    marks = ", ".join(["%s"] * len(call_ids))
    rows = store.query(
        "SELECT item FROM messages WHERE conversation_id = %s AND message_type ="
        f" 'tool_return_message' AND tool_call_id IN ({marks}) ORDER BY position",
        (conversation_id, *call_ids),
    )
    return [row[0] for row in rows]
