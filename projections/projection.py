"""What a projection is: tables, and a function from events to changes of those tables."""

from __future__ import annotations

import hashlib
import string
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any, ClassVar

from projections.store import Cursor, ViewStore


class Writer:
    """Executes a projection's SQL against one generation of its tables, inside a batch."""

    def __init__(self, store: ViewStore, cur: Cursor, tables: Mapping[str, str]) -> None:
        self.store = store
        self.cur = cur
        self.tables = tables
        # template -> compiled query for these tables: a batch runs the same few statements
        # thousands of times, and compiling means sorting the tables and a keyed cache lookup.
        self._compiled: dict[str, Any] = {}
        # Rows waiting to go out as one multi-row INSERT (see ``insert``).
        self._pending: tuple[str, str] | None = None
        self._rows: list[Sequence[Any]] = []

    def insert(self, table: str, columns: str, row: Sequence[Any]) -> None:
        """Queue a row; consecutive rows for one table go out in one ``executemany`` (which
        psycopg pipelines), as a rebuild needs: a statement per row is a round trip per event.
        """
        if self._pending != (table, columns):
            self.flush()
            self._pending = (table, columns)
        self._rows.append(row)
        if len(self._rows) >= INSERT_ROWS:
            self.flush()

    def flush(self) -> None:
        """Send queued rows. Runs before any other statement, so order is kept."""
        if not self._rows:
            return
        assert self._pending is not None
        table, columns = self._pending
        marks = ", ".join(["%s"] * len(self._rows[0]))
        template = f"INSERT INTO {{{table}}} ({columns}) VALUES ({marks})"
        query = self._compiled.get(template)
        if query is None:
            query = self._compiled[template] = self.store.compile(template, self.tables)
        rows, self._rows = self._rows, []
        self.cur.executemany(query, rows)

    def execute(self, template: str, params: Sequence[Any] = ()) -> None:
        if self._rows:  # queued rows first: statements run in the order they were given
            self.flush()
        query = self._compiled.get(template)
        if query is None:
            query = self._compiled[template] = self.store.compile(template, self.tables)
        self.cur.execute(query, params)

    def fetchone(self, template: str, params: Sequence[Any] = ()) -> Any:
        self.execute(template, params)
        return self.cur.fetchone()

    def fetchall(self, template: str, params: Sequence[Any] = ()) -> list[Any]:
        self.execute(template, params)
        return list(self.cur.fetchall())


# Rows per executemany.
INSERT_ROWS = 500

Handler = Callable[[Any, Writer], None]


class Projection(ABC):
    """A named read model. Subclasses declare tables (DDL templates) and event handlers.

    ``tables`` maps each logical table to the statements that create it; ``{t}`` in a statement
    is that table's physical name for the generation being built. A statement that starts with
    ``sqlite: `` or ``postgres: `` runs on that backend only. Readers query the logical
    name, which is a SQL view onto the active generation (see ``projector.py``).
    """

    name: ClassVar[str]
    tables: ClassVar[dict[str, list[str]]]
    # Bump when tables or handlers change: the projector then rebuilds it from the log.
    version: ClassVar[int] = 1

    @abstractmethod
    def handlers(self) -> Mapping[type[Any], Handler]:
        """Which method applies which event class."""

    @cached_property
    def _dispatch(self) -> Mapping[type[Any], Handler]:
        return self.handlers()

    @cached_property
    def topics(self) -> tuple[str, ...]:
        return tuple(sorted(cls.TOPIC for cls in self._dispatch))

    def apply(self, event: Any, writer: Writer) -> None:
        handler = self._dispatch.get(type(event))
        if handler is not None:
            handler(event, writer)

    @cached_property
    def fingerprint(self) -> str:
        """The version and the exact DDL: a changed table without a version bump still shows."""
        ddl = "\n".join(
            statement for table in sorted(self.tables) for statement in self.tables[table]
        )
        return f"{self.version}:{hashlib.sha256(ddl.encode()).hexdigest()[:12]}"

    def physical_names(self, generation: int) -> dict[str, str]:
        """Every ``{name}`` slot in the DDL (tables and indexes) for one generation."""
        names: set[str] = set(self.tables)
        for statements in self.tables.values():
            for statement in statements:
                names.update(f for _, f, _, _ in string.Formatter().parse(statement) if f)
        return {name: f"{name}_g{generation}" for name in names}
