"""Where a conversation's listed messages live: its own stream, and for a fork its ancestors'.

A fork copies nothing. Its listing is a few *segments*, each a range of one stream's message
positions moved onto the fork's *listing keys* by a fixed shift: its own system message, the
parent's messages after the parent's system message up to the fork point (which may be
segments of the parent's own ancestors), then its own messages. Keys grow along the listing,
so cursors, context windows and compaction work in keys exactly as a plain conversation works
in positions (a plain conversation is one segment with shift 0: key = position).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from projections.store import ViewStore

LINEAGE_DDL = [
    "CREATE TABLE IF NOT EXISTS {lineage} ("
    " conversation_id TEXT NOT NULL, segment INTEGER NOT NULL, source_id TEXT NOT NULL,"
    " lo INTEGER NOT NULL, hi INTEGER, shift INTEGER NOT NULL,"
    " PRIMARY KEY (conversation_id, segment))",
]


@dataclass(frozen=True)
class Segment:
    """Positions ``(lo, hi]`` of stream ``source`` (``hi`` None: no end), listed at key
    position + shift.
    """

    source: str
    lo: int
    hi: int | None
    shift: int

    def clip(self, low_key: int, high_key: int | None) -> Segment | None:
        """This segment cut to keys ``(low_key, high_key]``, or None when nothing is left."""
        lo = max(self.lo, low_key - self.shift)
        hi = self.hi
        if high_key is not None:
            hi = high_key - self.shift if hi is None else min(hi, high_key - self.shift)
        return None if hi is not None and hi <= lo else Segment(self.source, lo, hi, self.shift)

    def where(self) -> tuple[str, list[Any]]:
        """SQL over ``messages`` selecting this segment's rows."""
        if self.hi is None:
            return "conversation_id = %s AND position > %s", [self.source, self.lo]
        return (
            "conversation_id = %s AND position > %s AND position <= %s",
            [self.source, self.lo, self.hi],
        )


def plain(conversation_id: str) -> list[Segment]:
    return [Segment(conversation_id, 0, None, 0)]


def fork_segments(
    parent: Sequence[Segment],
    fork_id: str,
    *,
    system_position: int,
    key_until: int,
    forked_at: int,
    key_shift: int,
) -> list[Segment]:
    """A fork's segments: its system message, the parent's listing after the parent's system
    message up to ``key_until``, then its own events after ``forked_at``.
    """
    shared = [s.clip(system_position, key_until) for s in parent]
    return [
        Segment(fork_id, 0, system_position, 0),
        *(s for s in shared if s is not None),
        Segment(fork_id, forked_at, None, key_shift),
    ]


def segments_of(store: ViewStore, conversation_ids: Iterable[str]) -> dict[str, list[Segment]]:
    """Each conversation's segments, in listing order."""
    wanted = list(dict.fromkeys(conversation_ids))
    found: dict[str, list[Segment]] = {cid: [] for cid in wanted}
    if wanted:
        marks = ", ".join(["%s"] * len(wanted))
        rows = store.query(
            "SELECT conversation_id, source_id, lo, hi, shift FROM lineage"
            f" WHERE conversation_id IN ({marks}) ORDER BY conversation_id, segment",
            wanted,
        )
        for cid, source, lo, hi, shift in rows:
            found[cid].append(Segment(source, int(lo), None if hi is None else int(hi), shift))
    return {cid: segs or plain(cid) for cid, segs in found.items()}


def segments(store: ViewStore, conversation_id: str) -> list[Segment]:
    return segments_of(store, [conversation_id])[conversation_id]
