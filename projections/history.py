"""The past of one stream, folded in memory from its events: what the views showed of it at
any version (time travel, ``service/time_travel.py``, ``docs/time-travel.md``).

A conversation's message rows are made by the message list's own functions
(``projections/messages.py``: ``listed``, ``summary_listed``, ``with_content``), its
segments by ``projections/lineage.py``, its context order by ``Window.order``; its index row
follows ``ConversationIndex``'s handlers rule for rule. Pages, cursors and in-context ids are
read as ``projections/message_reads.py`` reads the view, over these rows instead of SQL. A
property test holds all of it to the live views at every version.

The structure only grows (a stream's past never changes), so one fold answers every version
up to the latest it has seen: ``version`` bounds every read.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from domain.conversation import Conversation
from projections.agents import AgentIndex
from projections.conversations import ConversationRow
from projections.lineage import Segment, fork_segments, plain
from projections.message_reads import Window
from projections.messages import Listed, listed, summary_listed, with_content
from projections.timefmt import to_micros

# The agent events its index row changes ``updated_at`` for: every one it handles.
AGENT_TOUCHES = frozenset(AgentIndex().handlers())
# The conversation events its index row changes by (besides the message count and the time
# of the last message, read from the rows).
ROW_EVENTS = (
    Conversation.Created,
    Conversation.Updated,
    Conversation.Deleted,
    Conversation.SystemMessageRecompiled,
    Conversation.Compacted,
    Conversation.Forked,
    Conversation.ContextReset,
    Conversation.RunClaimed,
    Conversation.RunReleased,
)

# What an event and a listed row cost in memory besides the item's text, about (bytes).
EVENT_WEIGHT = 64
ROW_WEIGHT = 300
# A stream's past folded to at least a version: ``(stream id, version) -> StreamPast``.
PastOf = Callable[[str, int], "StreamPast"]


def _json(value: Any) -> Any:
    """A value as the index stores and reads it back (JSON text)."""
    return None if value is None else json.loads(json.dumps(value))


@dataclass
class StreamPast:
    """Everything one stream's events say, at every version up to ``version``."""

    stream_id: str  # the aggregate's UUID as text
    version: int = 0
    stamps: list[int] = field(default_factory=list)  # micros of version v at [v - 1]
    # Conversations: the listed rows in position order, and how to find them.
    entries: list[Listed] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    where: dict[str, int] = field(default_factory=dict)  # message id -> position
    patches: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)  # recompiles
    changes: list[tuple[int, Any]] = field(default_factory=list)  # (version, row event)
    chat_versions: list[int] = field(default_factory=list)  # non-system appends
    first_system: int = 0  # the position of its first system message
    fork: Conversation.Forked | None = None
    # Agents: the versions whose events change the index row's ``updated_at``.
    touched: list[int] = field(default_factory=list)
    weight: int = 0  # about the bytes it holds (for the cache's budget)

    def apply(self, e: Any) -> None:
        """Fold the stream's next event."""
        version = int(e.originator_version)
        if version != self.version + 1:
            raise ValueError(f"{self.stream_id}: version {version} after {self.version}")
        self.stamps.append(to_micros(e.timestamp))
        self.weight += EVENT_WEIGHT
        kind = type(e)
        if kind is Conversation.MessageAppended:
            self._list(listed(e))
            if e.role == "system":
                self.first_system = self.first_system or version
                self.changes.append((version, e))
            else:
                self.chat_versions.append(version)
        elif kind is Conversation.Compacted:
            self._list(summary_listed(e))
        elif kind is Conversation.SystemMessageRecompiled:
            self.patches.setdefault(e.message_id, []).append((version, e.content))
            self.weight += len(json.dumps(e.content))
        elif kind is Conversation.Forked:
            self.fork = e
        if kind in ROW_EVENTS:
            self.changes.append((version, e))
        if kind in AGENT_TOUCHES:
            self.touched.append(version)
        self.version = version  # last: readers bound every read by it

    def _list(self, row: Listed) -> None:
        self.entries.append(row)
        self.positions.append(row.position)
        self.where[row.message_id] = row.position
        self.weight += len(row.item) + ROW_WEIGHT

    # -- versions and times ----------------------------------------------------------------

    def version_at(self, micros: int) -> int:
        """The last version whose event's time is at or before ``micros`` (0: none)."""
        for version in range(self.version, 0, -1):
            if self.stamps[version - 1] <= micros:
                return version
        return 0

    def stamp(self, version: int) -> int:
        return self.stamps[version - 1]

    def touched_at(self, version: int) -> int:
        """An agent's ``updated_at`` at ``version``: the last event its index row changed by."""
        index = bisect_right(self.touched, version)
        return self.stamp(self.touched[index - 1] if index else 1)

    # -- the conversation index row --------------------------------------------------------

    def row_at(self, version: int) -> ConversationRow:
        """The conversation's index row as ``ConversationIndex`` had it at ``version``."""
        row: dict[str, Any] = {}
        key_shift = 0
        for at, e in self.changes:
            if at > version:
                break
            micros = self.stamp(at)
            kind = type(e)
            if kind is Conversation.Created:
                row = {
                    "id": self.stream_id,
                    "agent_id": e.agent_id,
                    "organization_id": e.organization_id,
                    "summary": e.summary,
                    "model": e.model,
                    "model_settings": _json(e.model_settings),
                    "isolated_block_ids": [b["id"] for b in e.isolated_blocks],
                    "created_by_id": e.created_by_id,
                    "last_updated_by_id": e.created_by_id,
                    "created_at": micros,
                    "updated_at": micros,
                    "last_message_at": None,
                    "last_run_completion": None,
                    "message_count": 0,
                    "context_from": 0,
                    "context_epoch": 0,
                    "system_position": 0,
                    "summary_position": None,
                    "system_epoch": 0,
                    "active_run_id": None,
                    "forked": False,
                }
            elif kind is Conversation.MessageAppended:  # a system message
                row["context_from"] = row["context_from"] or at
                row["system_position"] = row["system_position"] or at
            elif kind is Conversation.Updated:
                for name, value in e.changes.items():
                    row[name] = _json(value) if name == "model_settings" else value
                row["last_updated_by_id"] = e.updated_by_id
                row["updated_at"] = micros
            elif kind is Conversation.Deleted:
                row["updated_at"] = micros
            elif kind is Conversation.SystemMessageRecompiled:
                row["system_epoch"] += 1
            elif kind is Conversation.Compacted:
                row["context_from"] = e.keep_from
                row["summary_position"] = at + key_shift
                row["context_epoch"] += 1
            elif kind is Conversation.Forked:
                key_shift = e.key_shift
                row["forked"] = True
                if e.context_from is not None:
                    row["context_from"] = e.context_from
                row["summary_position"] = e.summary_key
            elif kind is Conversation.ContextReset:
                row["context_from"] = e.keep_from
                row["summary_position"] = None
                row["context_epoch"] += 1
            elif kind is Conversation.RunClaimed:
                row["active_run_id"] = e.run_id
            elif kind is Conversation.RunReleased:
                row["active_run_id"] = None
                row["last_run_completion"] = micros
        if not row:
            raise ValueError(f"{self.stream_id} is not a conversation at version {version}")
        row["message_count"] = bisect_right(self.positions, version)
        chats = bisect_right(self.chat_versions, version)
        row["last_message_at"] = self.stamp(self.chat_versions[chats - 1]) if chats else None
        return ConversationRow(**row)

    # -- the message list ------------------------------------------------------------------

    def segments(self, version: int, past_of: PastOf) -> list[Segment]:
        """Where the listing at ``version`` lives, as the lineage view has it."""
        fork = self.fork
        if fork is None or fork.originator_version > version:
            return plain(self.stream_id)
        parent = past_of(fork.parent_id, fork.parent_version)
        return fork_segments(
            parent.segments(fork.parent_version, past_of),
            self.stream_id,
            system_position=self.first_system,
            key_until=fork.key_until,
            forked_at=fork.originator_version,
            key_shift=fork.key_shift,
        )

    def _bounded(self, seg: Segment, version: int) -> tuple[int, int]:
        """(the segment's last position, the version its rows are read as of): this stream's
        own rows stop at ``version``; an ancestor's segment ends where it was forked.
        """
        if seg.source == self.stream_id:
            return (version if seg.hi is None else min(seg.hi, version)), version
        assert seg.hi is not None, seg  # fork_segments clips every ancestor's segment
        return seg.hi, seg.hi

    def item(self, entry: Listed, as_of: int) -> str:
        """A row's item as of a version: a system message as last recompiled by then."""
        patches = self.patches.get(entry.message_id)
        if patches:
            for at, content in reversed(patches):
                if at <= as_of:
                    return with_content(entry.item, content)
        return entry.item

    def _rows(self, source: StreamPast, lo: int, hi: int, ascending: bool) -> Iterator[Listed]:
        """``source``'s rows with positions in ``(lo, hi]``, in order."""
        start = bisect_right(source.positions, lo)
        stop = bisect_right(source.positions, hi)
        indexes = range(start, stop) if ascending else range(stop - 1, start - 1, -1)
        return (source.entries[i] for i in indexes)

    def scan(
        self,
        version: int,
        past_of: PastOf,
        segs: list[Segment],
        *,
        low: int | None = None,
        high: int | None = None,
        ascending: bool = True,
        limit: int | None = None,
        types: list[str] | None = None,
    ) -> list[tuple[int, str]]:
        """(key, item) with keys in ``(low, high)``, in key order, at most ``limit``: as
        ``message_reads.scan`` reads the view.
        """
        found: list[tuple[int, str]] = []
        for seg in segs if ascending else reversed(segs):
            if limit is not None and len(found) >= limit:
                break
            clipped = seg.clip(low if low is not None else seg.lo + seg.shift, None)
            if clipped is None:
                continue
            hi, as_of = self._bounded(clipped, version)
            if high is not None:
                hi = min(hi, high - seg.shift - 1)
            source = self if seg.source == self.stream_id else past_of(seg.source, as_of)
            for entry in self._rows(source, clipped.lo, hi, ascending):
                if types and entry.message_type not in types:
                    continue
                found.append((entry.position + seg.shift, source.item(entry, as_of)))
                if limit is not None and len(found) >= limit:
                    break
        return found

    def key_of(
        self, version: int, past_of: PastOf, segs: list[Segment], message_id: str
    ) -> int | None:
        """A message's listing key at ``version`` (None: not listed then)."""
        for seg in segs:
            hi, as_of = self._bounded(seg, version)
            source = self if seg.source == self.stream_id else past_of(seg.source, as_of)
            position = source.where.get(message_id)
            if position is not None and seg.lo < position <= hi:
                return position + seg.shift
        return None

    def page(
        self,
        version: int,
        past_of: PastOf,
        *,
        ascending: bool,
        after: int | None,
        before: int | None,
        limit: int | None,
        types: list[str] | None = None,
    ) -> list[str]:
        """Items (JSON text) in listing order, as ``MessageQueries.page`` answers."""
        low, high = (after, before) if ascending else (before, after)
        backwards = before is not None and after is None
        found = self.scan(
            version,
            past_of,
            self.segments(version, past_of),
            low=low,
            high=high,
            ascending=ascending != backwards,
            limit=limit,
            types=types,
        )
        items = [item for _, item in found]
        if backwards:
            items.reverse()
        return items

    def in_context_ids(self, version: int, past_of: PastOf, window: Window) -> list[str]:
        """The in-context message ids at ``version``, in the order the model saw them."""
        rows: list[tuple[int, str, tuple[str]]] = []
        for seg in self.segments(version, past_of):
            hi, as_of = self._bounded(seg, version)
            source = self if seg.source == self.stream_id else past_of(seg.source, as_of)
            # As the view is read: position = the system message's, or >= context_from.
            system, start = window.system_position - seg.shift, window.context_from - seg.shift
            chosen = list(self._rows(source, max(seg.lo, start - 1), hi, True))
            if seg.lo < system <= hi and system < start:
                chosen += self._rows(source, system - 1, system, True)
            rows += [(e.position + seg.shift, e.role, (e.message_id,)) for e in chosen]
        return [row[0] for _, _, row in window.order(sorted(rows))]
