"""Cursor pages over a short list held in memory (a run's steps, an agent's blocks)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from api import schemas
from domain.errors import InvalidArgument

T = TypeVar("T")


def page(items: Sequence[T], key: Callable[[T], str], q: schemas.PageQuery) -> list[T]:
    """One page of ``items`` (in their own order), cursors following the requested order
    (decisions §4), so SDK auto-pagination walks them once and stops.
    """
    ordered = list(items) if q.order == "asc" else list(reversed(items))
    keys = [key(item) for item in ordered]
    start, end = 0, len(ordered)
    for name, cursor in (("after", q.after), ("before", q.before)):
        if cursor is None:
            continue
        if cursor not in keys:
            raise InvalidArgument(f"Cursor {name}={cursor} is not in this list")
        if name == "after":
            start = keys.index(cursor) + 1
        else:
            end = keys.index(cursor)
    chosen = ordered[start:end]
    if q.limit is None:
        return chosen
    return chosen[-q.limit :] if q.before is not None and q.after is None else chosen[: q.limit]
