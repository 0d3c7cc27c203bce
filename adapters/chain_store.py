"""The log joined with its hash chain, per backend, for verifying (``service/audit.py``).

Events and chain entries are read separately by position range and merged here, so an event
without an entry, or an entry without its event, shows up where it is; both reads use the
tables' primary keys.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from adapters.chained_recorders import ChainedPopoRecorder
from service.audit import ChainedEvent
from service.chain import GENESIS

Entry = tuple[int, UUID, int, bytes, bytes]  # position, stream, version, stream and log hash
Stored = tuple[int, UUID, int, str, bytes]  # position, stream, version, topic, state
KEYS_PER_QUERY = 400


def _merge(events: list[Stored], entries: list[Entry]) -> list[ChainedEvent]:
    """Events (in position order) with their chain entries; an entry for another stream than
    the event at its position does not count as the event's."""
    chain = {entry[0]: entry for entry in entries}
    merged = []
    for position, stream_id, version, topic, state in events:
        entry = chain.pop(position, None)
        if entry is not None and entry[1] == stream_id:
            merged.append(
                ChainedEvent(position, stream_id, version, topic, state, entry[3], entry[4])
            )
        else:
            merged.append(ChainedEvent(position, stream_id, version, topic, state))
    for position, stream_id, version, stream_hash, log_hash in chain.values():  # events gone
        merged.append(ChainedEvent(position, stream_id, version, None, None, stream_hash, log_hash))
    if chain:
        merged.sort(key=lambda e: e.position)
    return merged


def _with_previous(found: list[ChainedEvent], previous: dict[int, bytes]) -> list[ChainedEvent]:
    return [
        ChainedEvent(
            e.position,
            e.stream_id,
            e.version,
            e.topic,
            e.state,
            e.stream_hash,
            e.log_hash,
            previous.get(e.position, GENESIS),
        )
        for e in sorted(found, key=lambda e: e.version)
    ]


class PopoChainStore:
    def __init__(self, recorder: ChainedPopoRecorder) -> None:
        self._recorder = recorder

    def head(self) -> tuple[int, bytes]:
        links = self._recorder.links
        if not links:
            return 0, GENESIS
        last = max(links)
        return last, links[last].log_hash

    def end(self) -> int:
        return max([self._recorder.max_notification_id() or 0, *self._recorder.links])

    def positions(self, after: int, upto: int) -> list[ChainedEvent]:
        notifications = self._recorder.select_notifications(
            start=after, stop=upto, limit=upto - after, inclusive_of_start=False
        )
        events = [
            (n.id, UUID(str(n.originator_id)), n.originator_version, n.topic, n.state)
            for n in notifications
        ]
        entries = [
            (k.position, k.stream_id, k.version, k.stream_hash, k.log_hash)
            for p, k in self._recorder.links.items()
            if after < p <= upto
        ]
        return _merge(events, entries)

    def stream(self, stream_id: UUID) -> list[ChainedEvent]:
        found = [e for e in self.positions(0, self.end()) if e.stream_id == stream_id]
        return _with_previous(
            found, {p: self.log_hash_before(p) for p in (e.position for e in found)}
        )

    def stream_hashes(self, keys: list[tuple[UUID, int]]) -> dict[tuple[UUID, int], bytes]:
        r = self._recorder
        return {k: r.links[r.by_stream[k]].stream_hash for k in keys if k in r.by_stream}

    def log_hash_before(self, position: int) -> bytes:
        earlier = [p for p in self._recorder.links if p < position]
        return self._recorder.links[max(earlier)].log_hash if earlier else GENESIS


class SQLiteChainStore:
    def __init__(self, recorder: Any) -> None:
        self._recorder = recorder
        self._events = recorder.events_table_name
        self._chain = recorder.chain_table

    def _rows(self, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._recorder.datastore.transaction(commit=False) as c:
            c.execute(statement, params)
            return list(c.fetchall())

    def head(self) -> tuple[int, bytes]:
        rows = self._rows(
            f"SELECT notification_id, log_hash FROM {self._chain} "
            "ORDER BY notification_id DESC LIMIT 1"
        )
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else (0, GENESIS)

    def end(self) -> int:
        rows = self._rows(
            f"SELECT max(coalesce((SELECT max(rowid) FROM {self._events}), 0),"
            f" coalesce((SELECT max(notification_id) FROM {self._chain}), 0))"
        )
        return int(rows[0][0])

    def positions(self, after: int, upto: int) -> list[ChainedEvent]:
        events = self._rows(
            f"SELECT rowid, originator_id, originator_version, topic, state FROM {self._events}"
            " WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
            (after, upto),
        )
        entries = self._rows(
            f"SELECT * FROM {self._chain} WHERE notification_id > ? AND notification_id <= ?",
            (after, upto),
        )
        return _merge(_stored(events), _entries(entries))

    def stream(self, stream_id: UUID) -> list[ChainedEvent]:
        events = self._rows(
            f"SELECT rowid, originator_id, originator_version, topic, state FROM {self._events}"
            " WHERE originator_id = ?",
            (stream_id.hex,),
        )
        entries = self._rows(f"SELECT * FROM {self._chain} WHERE stream_id = ?", (stream_id.hex,))
        found = _merge(_stored(events), _entries(entries))
        previous = {
            int(r[0]): bytes(r[1])
            for r in self._rows(
                f"SELECT c.notification_id, (SELECT p.log_hash FROM {self._chain} AS p"
                " WHERE p.notification_id < c.notification_id"
                f" ORDER BY p.notification_id DESC LIMIT 1) FROM {self._chain} AS c"
                " WHERE c.stream_id = ?",
                (stream_id.hex,),
            )
            if r[1] is not None
        }
        return _with_previous(found, previous)

    def stream_hashes(self, keys: list[tuple[UUID, int]]) -> dict[tuple[UUID, int], bytes]:
        found = {}
        for start in range(0, len(keys), KEYS_PER_QUERY):  # within SQLite's bound on params
            chunk = keys[start : start + KEYS_PER_QUERY]
            pairs = ", ".join(["(?, ?)"] * len(chunk))
            rows = self._rows(
                f"SELECT stream_id, version, stream_hash FROM {self._chain}"
                f" WHERE (stream_id, version) IN (VALUES {pairs})",
                tuple(value for sid, v in chunk for value in (sid.hex, v)),
            )
            found.update({(UUID(r[0]), int(r[1])): bytes(r[2]) for r in rows})
        return found

    def log_hash_before(self, position: int) -> bytes:
        rows = self._rows(
            f"SELECT log_hash FROM {self._chain} WHERE notification_id < ? "
            "ORDER BY notification_id DESC LIMIT 1",
            (position,),
        )
        return bytes(rows[0][0]) if rows else GENESIS


def _stored(rows: list[Any]) -> list[Stored]:
    return [(r[0], _uuid(r[1]), r[2], r[3], _bytes(r[4])) for r in rows]


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def _bytes(value: Any) -> bytes:
    """A stored state; SQLite gives text for one written as text (not by the library)."""
    if isinstance(value, bytes):
        return value
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _entries(rows: list[Any]) -> list[Entry]:
    return [(r[0], _uuid(r[1]), r[2], bytes(r[3]), bytes(r[4])) for r in rows]


class PostgresChainStore:
    def __init__(self, recorder: Any) -> None:
        self._datastore = recorder.datastore
        schema = Identifier(recorder.datastore.schema)
        self._names = {
            "s": schema,
            "e": Identifier(recorder.events_table_name),
            "c": Identifier(recorder.chain_table),
        }
        self._rendered: dict[str, bytes] = {}

    def _rows(self, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        rendered = self._rendered.get(statement)
        if rendered is None:  # once per statement: the driver would render it every time
            rendered = SQL(statement).format(**self._names).as_bytes()
            self._rendered[statement] = rendered
        with (
            self._datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as cur,
        ):
            cur.execute(rendered, params, prepare=True)
            rows: list[Any] = cur.fetchall()
            conn.commit()
            return rows

    def head(self) -> tuple[int, bytes]:
        rows = self._rows(
            "SELECT notification_id, log_hash FROM {s}.{c} ORDER BY notification_id DESC LIMIT 1"
        )
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else (0, GENESIS)

    def end(self) -> int:
        rows = self._rows(
            "SELECT greatest(coalesce((SELECT max(notification_id) FROM {s}.{e}), 0),"
            " coalesce((SELECT max(notification_id) FROM {s}.{c}), 0))"
        )
        return int(rows[0][0])

    def positions(self, after: int, upto: int) -> list[ChainedEvent]:
        events = self._rows(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM {s}.{e} WHERE notification_id > %s AND notification_id <= %s"
            " ORDER BY notification_id",
            (after, upto),
        )
        entries = self._rows(
            "SELECT * FROM {s}.{c} WHERE notification_id > %s AND notification_id <= %s",
            (after, upto),
        )
        return _merge(_stored(events), _entries(entries))

    def stream(self, stream_id: UUID) -> list[ChainedEvent]:
        events = self._rows(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM {s}.{e} WHERE originator_id = %s",
            (stream_id,),
        )
        entries = self._rows("SELECT * FROM {s}.{c} WHERE stream_id = %s", (stream_id,))
        previous = {
            int(r[0]): bytes(r[1])
            for r in self._rows(
                "SELECT c.notification_id, p.log_hash FROM {s}.{c} AS c LEFT JOIN LATERAL"
                " (SELECT log_hash FROM {s}.{c} AS p WHERE p.notification_id < c.notification_id"
                " ORDER BY p.notification_id DESC LIMIT 1) AS p ON true WHERE c.stream_id = %s",
                (stream_id,),
            )
            if r[1] is not None
        }
        return _with_previous(_merge(_stored(events), _entries(entries)), previous)

    def stream_hashes(self, keys: list[tuple[UUID, int]]) -> dict[tuple[UUID, int], bytes]:
        if not keys:
            return {}
        rows = self._rows(
            "SELECT c.stream_id, c.version, c.stream_hash FROM {s}.{c} AS c"
            " JOIN unnest(%s::uuid[], %s::bigint[]) AS k (stream_id, version)"
            " ON c.stream_id = k.stream_id AND c.version = k.version",
            ([k[0] for k in keys], [k[1] for k in keys]),
        )
        return {(UUID(str(r[0])), int(r[1])): bytes(r[2]) for r in rows}

    def log_hash_before(self, position: int) -> bytes:
        rows = self._rows(
            "SELECT log_hash FROM {s}.{c} WHERE notification_id < %s"
            " ORDER BY notification_id DESC LIMIT 1",
            (position,),
        )
        return bytes(rows[0][0]) if rows else GENESIS
