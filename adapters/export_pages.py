"""The log by position range for ``convlog export`` (service/export/ports.py ``LogPages``): the
stored events and their chain entries as plain rows, per backend.

Like ``adapters/chain_store.py`` this reads the events table and the chain table by position
range (an entry of another stream than the event at its position is not the event's), but in
one statement and as tuples only, no objects per row: a page of 10,000 positions costs
milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from adapters.chained_recorders import ChainedPostgresRecorder, ChainedSQLiteRecorder
from service.audit import ChainStore
from service.export import ChainPages, LogPages, LogRow


class PostgresLogPages:
    """Both tables' ranges joined (each an index range scan, whatever the planner's
    statistics), in binary, in no particular order: sorting a page here is cheaper than the
    server's sort. A worker process's copy (``for_worker``) opens a connection of its own."""

    def __init__(self, recorder: ChainedPostgresRecorder) -> None:
        self._datastore = recorder.datastore
        names = {
            "s": Identifier(recorder.datastore.schema),
            "e": Identifier(recorder.events_table_name),
            "c": Identifier(recorder.chain_table),
        }
        self._select = SQL(
            "SELECT e.notification_id, e.originator_id::text, e.originator_version, e.topic,"
            " e.state, c.stream_hash, c.log_hash FROM {s}.{e} AS e LEFT JOIN {s}.{c} AS c"
            " ON c.notification_id = e.notification_id AND c.stream_id = e.originator_id"
            " AND c.notification_id > %(after)s AND c.notification_id <= %(upto)s"
            " WHERE e.notification_id > %(after)s AND e.notification_id <= %(upto)s"
        ).format(**names)
        self._first = SQL(
            "SELECT notification_id, originator_id::text, originator_version, topic, state,"
            " NULL::bytea, NULL::bytea FROM {s}.{e}"
            " WHERE originator_id = ANY(%(streams)s::uuid[]) AND originator_version = 1"
        ).format(**names)
        self._own: psycopg.Connection[Any] | None = None  # a worker's

    def for_worker(self) -> PostgresLogPages:
        copy = object.__new__(PostgresLogPages)
        copy.__dict__.update(self.__dict__)
        pool = self._datastore.pool  # not used in the worker: its connections are the parent's
        kwargs = pool.kwargs() if callable(pool.kwargs) else dict(pool.kwargs or {})
        conninfo = pool.conninfo() if callable(pool.conninfo) else pool.conninfo
        options = {k: v for k, v in kwargs.items() if k != "row_factory"}
        copy._own = psycopg.connect(conninfo, **options, autocommit=True)
        return copy

    def _rows(self, statement: Any, params: dict[str, Any]) -> list[LogRow]:
        if self._own is not None:
            with self._own.cursor(row_factory=tuple_row, binary=True) as cur:
                cur.execute(statement, params)
                return cur.fetchall()
        with (
            self._datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as cur,
        ):
            cur.execute(statement, params)
            rows: list[LogRow] = cur.fetchall()
            conn.commit()
        return rows

    def page(self, after: int, upto: int) -> list[LogRow]:
        rows = self._rows(self._select, {"after": after, "upto": upto})
        rows.sort()  # positions are unique: only they are compared
        return rows

    def first_rows(self, streams: Sequence[str]) -> list[LogRow]:
        return self._rows(self._first, {"streams": list(streams)})


class SQLiteLogPages:
    """SQLite keeps stream ids as 32 hex digits: they are given back hyphenated."""

    def __init__(self, recorder: ChainedSQLiteRecorder) -> None:
        self._recorder = recorder
        self._select = (
            "SELECT e.rowid, e.originator_id, e.originator_version, e.topic, e.state,"
            f" c.stream_hash, c.log_hash FROM {recorder.events_table_name} AS e"
            f" LEFT JOIN {recorder.chain_table} AS c"
            " ON c.notification_id = e.rowid AND c.stream_id = e.originator_id"
            " WHERE e.rowid > ? AND e.rowid <= ? ORDER BY e.rowid"
        )
        self._names: dict[str, str] = {}

    def _name(self, stored: str) -> str:
        name = self._names.get(stored)
        if name is None:
            if len(self._names) > 100_000:
                self._names.clear()
            name = self._names[stored] = str(UUID(stored))
        return name

    def page(self, after: int, upto: int) -> list[LogRow]:
        with self._recorder.datastore.transaction(commit=False) as c:
            c.execute(self._select, (after, upto))
            found = c.fetchall()
        name = self._name
        return [(r[0], name(r[1]), r[2], r[3], _bytes(r[4]), r[5], r[6]) for r in found]


def _bytes(value: Any) -> bytes:
    """A stored state; SQLite gives text for one written as text (not by the library)."""
    if type(value) is bytes:
        return value
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def log_pages(recorder: Any, chain: ChainStore) -> LogPages:
    """The quickest reader for this event store: its own tables where it has them."""
    if isinstance(recorder, ChainedPostgresRecorder):
        return PostgresLogPages(recorder)
    if isinstance(recorder, ChainedSQLiteRecorder):
        return SQLiteLogPages(recorder)
    return ChainPages(chain)  # in memory: the chain's own reader
