"""Event-store recorders that chain every event they store (``service/chain.py``).

Each backend writes an event's two hashes into a table beside the events table
(``<events table>_chain``) in the transaction
that stores the event, while it holds the store's write lock (PostgreSQL's table lock, which
the library takes to keep positions in commit order; SQLite's single writer; a lock in
memory), so concurrent writers and processes always extend the one current head.

Events stored before the chain existed (a log from a release before 0.6.0), or by a process
of such a release during a rolling upgrade, are chained by the next write that finds them,
first, in log order: ``chain_gap`` below.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from service.chain import GENESIS, Link, NewEvent, extend

log = logging.getLogger("convlog.chain")
BACKFILL_BATCH = 10_000


def _first_versions(events: Sequence[StoredEvent]) -> dict[UUID, int]:
    """Each stream's first version among ``events``."""
    first: dict[UUID, int] = {}
    for e in events:
        first.setdefault(UUID(str(e.originator_id)), e.originator_version)
    return first


def _new_events(positions: Sequence[int], events: Sequence[StoredEvent]) -> list[NewEvent]:
    return [
        NewEvent(p, UUID(str(e.originator_id)), e.originator_version, e.topic, e.state)
        for p, e in zip(positions, events, strict=True)
    ]


def _logged_gap(count: int) -> None:
    if count:
        log.info("chained %d events stored without a hash chain (before release 0.6.0)", count)


class ChainedPopoRecorder(POPOApplicationRecorder):
    """In memory (tests and the ``memory`` backend)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: dict[int, Link] = {}
        self.by_stream: dict[tuple[UUID, int], int] = {}
        self._head = (0, GENESIS)

    def _insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        with self._database_lock:
            positions = super()._insert_events(stored_events, **kwargs)
            assert positions is not None
            previous = {
                sid: self.links[self.by_stream[(sid, v - 1)]].stream_hash
                for sid, v in _first_versions(stored_events).items()
                if (sid, v - 1) in self.by_stream
            }
            self._record(extend(self._head[1], previous, _new_events(positions, stored_events)))
            return positions

    def _record(self, links: list[Link]) -> None:
        for link in links:
            self.links[link.position] = link
            self.by_stream[(link.stream_id, link.version)] = link.position
            self._head = (link.position, link.log_hash)


class ChainedSQLiteRecorder(SQLiteApplicationRecorder):
    @property
    def chain_table(self) -> str:
        return f"{self.events_table_name}_chain"

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.chain_table} (notification_id INTEGER PRIMARY KEY, "
            "stream_id TEXT NOT NULL, version INTEGER NOT NULL, stream_hash BLOB NOT NULL, "
            "log_hash BLOB NOT NULL)",
            f"CREATE UNIQUE INDEX IF NOT EXISTS {self.chain_table}_stream "
            f"ON {self.chain_table} (stream_id, version)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._insert_events(c, stored_events, **kwargs)
        if not positions:  # a save with nothing to store
            return positions
        _logged_gap(self._chain_unchained(c, below=positions[0]))
        head = self._head(c)
        self._write(
            c, extend(head, self._previous(c, stored_events), _new_events(positions, stored_events))
        )
        return positions

    def chain_gap(self) -> int:
        """Chain every event stored without a chain; how many there were."""
        with self.datastore.transaction(commit=True) as c:
            count = self._chain_unchained(c, below=None)
        _logged_gap(count)
        return count

    def _head(self, c: SQLiteCursor) -> bytes:
        c.execute(f"SELECT log_hash FROM {self.chain_table} ORDER BY notification_id DESC LIMIT 1")
        row = c.fetchone()
        return bytes(row[0]) if row else GENESIS

    def _previous(self, c: SQLiteCursor, events: Sequence[StoredEvent]) -> dict[UUID, bytes]:
        previous = {}
        for sid, version in _first_versions(events).items():
            c.execute(
                f"SELECT stream_hash FROM {self.chain_table} WHERE stream_id = ? AND version = ?",
                (sid.hex, version - 1),
            )
            row = c.fetchone()
            if row:
                previous[sid] = bytes(row[0])
        return previous

    def _write(self, c: SQLiteCursor, links: list[Link]) -> None:
        c.executemany(
            f"INSERT INTO {self.chain_table} VALUES (?, ?, ?, ?, ?)",
            [(k.position, k.stream_id.hex, k.version, k.stream_hash, k.log_hash) for k in links],
        )

    def _chain_unchained(self, c: SQLiteCursor, below: int | None) -> int:
        """Chain events stored without one (below ``below``, if given), in log order."""
        c.execute(f"SELECT coalesce(max(notification_id), 0) FROM {self.chain_table}")
        chained = int(c.fetchone()[0])
        bound = "" if below is None else f" AND rowid < {int(below)}"
        count = 0
        while True:
            c.execute(
                f"SELECT rowid, originator_id, originator_version, topic, state "
                f"FROM {self.events_table_name} WHERE rowid > ?{bound} ORDER BY rowid LIMIT ?",
                (chained, BACKFILL_BATCH),
            )
            rows = c.fetchall()
            if not rows:
                return count
            events = [StoredEvent(UUID(r[1]), r[2], r[3], bytes(r[4])) for r in rows]
            positions = [int(r[0]) for r in rows]
            self._write(
                c, extend(self._head(c), self._previous(c, events), _new_events(positions, events))
            )
            chained, count = positions[-1], count + len(rows)


class ChainedPostgresRecorder(PostgresApplicationRecorder):
    """The hashes are read and written inside the library's insert transaction, after its
    table lock: the reads share its one round trip (pipeline mode), the write goes with the
    commit.
    """

    @property
    def chain_table(self) -> str:
        return f"{self.events_table_name}_chain"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema = Identifier(self.datastore.schema)
        chain = Identifier(self.chain_table)
        self.sql_create_statements += [
            SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} (notification_id bigint PRIMARY KEY, "
                "stream_id uuid NOT NULL, version bigint NOT NULL, stream_hash bytea NOT NULL, "
                "log_hash bytea NOT NULL, UNIQUE (stream_id, version))"
            ).format(schema, chain)
        ]
        events = Identifier(self.events_table_name)
        # Rendered once (the driver re-renders a composed statement at every execution).
        # The head, and the log's last position before this insert (a later one than the
        # head's means events without a chain, to chain first).
        self._sql_head = (
            SQL(
                "SELECT c.log_hash, c.notification_id AS chained,"
                " (SELECT max(notification_id) FROM {s}.{e}) AS stored"
                " FROM (SELECT 1) AS one LEFT JOIN (SELECT log_hash, notification_id"
                " FROM {s}.{c} ORDER BY notification_id DESC LIMIT 1) AS c ON true"
            )
            .format(s=schema, e=events, c=chain)
            .as_bytes()
        )
        # The stream hash before each stream's first event in the insert.
        self._sql_previous = (
            SQL(
                "SELECT c.stream_id, c.stream_hash FROM {s}.{c} AS c"
                " JOIN unnest(%s::uuid[], %s::bigint[]) AS p (stream_id, version)"
                " ON c.stream_id = p.stream_id AND c.version = p.version"
            )
            .format(s=schema, c=chain)
            .as_bytes()
        )
        self._sql_insert = (
            SQL("INSERT INTO {}.{} VALUES (%s, %s, %s, %s, %s)").format(schema, chain).as_bytes()
        )
        self._sql_unchained = (
            SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state"
                " FROM {}.{} WHERE notification_id > %s AND notification_id <= %s"
                " ORDER BY notification_id LIMIT %s"
            )
            .format(schema, events)
            .as_bytes()
        )
        self._pending = threading.local()

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        assert not self.datastore.enable_db_functions, "the chain needs the locked insert"
        self._lock_table(curs)
        self._notify_channel(curs)
        # Read in the insert's own round trip: fetched after the library's sync.
        head, previous = curs.connection.cursor(), None
        head.execute(self._sql_head, prepare=True)
        first = {k: v - 1 for k, v in _first_versions(stored_events).items() if v > 1}
        if first:
            previous = curs.connection.cursor()
            previous.execute(self._sql_previous, (list(first), list(first.values())), prepare=True)
        self._pending.reads = (head, previous)
        PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events, **kwargs)

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        assert positions
        head_cursor, previous_cursor = self._pending.reads
        self._pending.reads = None
        with head_cursor:
            row = head_cursor.fetchone()
        assert row is not None
        head = bytes(row["log_hash"]) if row["log_hash"] is not None else GENESIS
        previous: dict[UUID, bytes] = {}
        if previous_cursor is not None:
            with previous_cursor:
                previous = {r["stream_id"]: bytes(r["stream_hash"]) for r in previous_cursor}
        if (row["stored"] or 0) > (row["chained"] or 0):  # events without a chain: first
            head, count = self._chain_range(curs, row["chained"] or 0, row["stored"])
            _logged_gap(count)
            previous = self._previous(curs, stored_events)
        links = extend(head, previous, _new_events(positions, stored_events))
        if len(links) == 1:
            curs.execute(self._sql_insert, _row(links[0]), prepare=True)
        else:
            curs.executemany(self._sql_insert, [_row(k) for k in links])
        return positions

    def chain_gap(self) -> int:
        """Chain every event stored without a chain; how many there were."""
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._lock_table(curs)
            curs.execute(
                SQL(
                    "SELECT (SELECT coalesce(max(notification_id), 0) FROM {s}.{c}) AS chained,"
                    " (SELECT coalesce(max(notification_id), 0) FROM {s}.{e}) AS stored"
                ).format(
                    s=Identifier(self.datastore.schema),
                    c=Identifier(self.chain_table),
                    e=Identifier(self.events_table_name),
                )
            )
            row = curs.fetchone()
            assert row is not None
            _, count = self._chain_range(curs, row["chained"], row["stored"])
        _logged_gap(count)
        return count

    def _chain_range(self, curs: Cursor[DictRow], after: int, upto: int) -> tuple[bytes, int]:
        """Chain the events in (after, upto], which have none; the new head and the count."""
        head, count = self._head_at(curs, after), 0
        while True:
            curs.execute(self._sql_unchained, (after, upto, BACKFILL_BATCH))
            rows = curs.fetchall()
            if not rows:
                return head, count
            events = [
                StoredEvent(
                    r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"])
                )
                for r in rows
            ]
            positions = [r["notification_id"] for r in rows]
            links = extend(head, self._previous(curs, events), _new_events(positions, events))
            curs.executemany(self._sql_insert, [_row(k) for k in links])
            head, after, count = links[-1].log_hash, positions[-1], count + len(rows)

    def _head_at(self, curs: Cursor[DictRow], position: int) -> bytes:
        curs.execute(
            SQL("SELECT log_hash FROM {}.{} WHERE notification_id = %s").format(
                Identifier(self.datastore.schema), Identifier(self.chain_table)
            ),
            (position,),
        )
        row = curs.fetchone()
        return bytes(row["log_hash"]) if row else GENESIS

    def _previous(self, curs: Cursor[DictRow], events: Sequence[StoredEvent]) -> dict[UUID, bytes]:
        first = _first_versions(events)
        curs.execute(self._sql_previous, (list(first), [v - 1 for v in first.values()]))
        return {r["stream_id"]: bytes(r["stream_hash"]) for r in curs.fetchall()}


def _row(link: Link) -> tuple[int, UUID, int, bytes, bytes]:
    return (link.position, link.stream_id, link.version, link.stream_hash, link.log_hash)
