"""The database a projection writes its views into, behind one small interface.

SQL is written once with ``%s`` placeholders and ``{name}`` table slots; each backend compiles it
(quoted identifiers, its own placeholder style) and caches the result.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Cursor(Protocol):
    def execute(self, query: Any, params: Sequence[Any] = ...) -> Any: ...

    def executemany(self, query: Any, params_seq: Sequence[Sequence[Any]]) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


Row = tuple[Any, ...]


class ViewStore(ABC):
    """A view database: SQLite (embedded, in-memory for tests) or PostgreSQL."""

    dialect: str

    @abstractmethod
    def write(self) -> AbstractContextManager[Cursor]:
        """A transaction that holds the projector's lock, so writers never interleave."""

    @abstractmethod
    def read(self) -> AbstractContextManager[Cursor]:
        """A cursor for queries; reads never block on writers."""

    @abstractmethod
    def compile(self, template: str, tables: Mapping[str, str]) -> Any:
        """Turn a ``%s``/``{table}`` template into this backend's query object."""

    @abstractmethod
    def table_exists(self, cur: Cursor, name: str) -> bool: ...

    @abstractmethod
    def close(self) -> None: ...

    def substring(self, column: str) -> str:
        """SQL for 'column contains %s literally' (no LIKE wildcards, case-sensitive)."""
        return f"instr({column}, %s) > 0"

    def statement(self, template: str, params: Sequence[Any] = ()) -> None:
        """One statement committed on its own, outside the projector's lock: for the
        operational tables beside the views (``processes``), never for a view.
        """
        with self.read() as cur:
            cur.execute(self.compile(template, {}), params)

    def query(
        self, template: str, params: Sequence[Any] = (), tables: Mapping[str, str] | None = None
    ) -> list[Row]:
        with self.read() as cur:
            cur.execute(self.compile(template, tables or {}), params)
            rows: list[Row] = cur.fetchall()
            return rows


class Keyed(Protocol):
    """A row that can be a cursor: ordered by creation, ties broken by id."""

    @property
    def created_at(self) -> int: ...

    @property
    def id(self) -> str: ...


def page_by_created(
    store: ViewStore,
    select: str,
    clauses: list[str],
    params: list[Any],
    *,
    ascending: bool,
    after: Keyed | None,
    before: Keyed | None,
    limit: int,
) -> list[Row]:
    """One page of ``select … WHERE clauses`` in (created_at, id) order, cursors following the
    order (decisions §4); with only ``before``, the items nearest to it.
    """
    clauses, params = list(clauses), list(params)
    for cursor, later in ((after, ascending), (before, not ascending)):
        if cursor is not None:
            clauses.append(f"(created_at, id) {'>' if later else '<'} (%s, %s)")
            params += [cursor.created_at, cursor.id]
    backwards = before is not None and after is None
    direction = "ASC" if ascending != backwards else "DESC"
    sql = (
        f"{select} WHERE {' AND '.join(clauses)}"
        f" ORDER BY created_at {direction}, id {direction} LIMIT %s"
    )
    rows = store.query(sql, [*params, limit])
    return rows[::-1] if backwards else rows
