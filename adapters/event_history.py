"""An aggregate's stored events with their global positions, per event-store backend.

The library's ``select_events`` does not return notification ids, which an auditor needs to
place a conversation's events in the global log; these read the library's own tables.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg.sql import SQL, Identifier


class PopoHistory:
    """In-memory store (tests): a scan of the notification log."""

    def __init__(self, recorder: Any) -> None:
        self._recorder = recorder

    def select(
        self, originator_id: UUID, after_version: int, limit: int
    ) -> list[tuple[int, StoredEvent]]:
        found = []
        for n in self._recorder.select_notifications(start=1, limit=2**62):
            if n.originator_id == originator_id and n.originator_version > after_version:
                found.append((n.id, n))
                if len(found) == limit:
                    break
        return found

    def analyze(self) -> None:
        pass


class SQLiteHistory:
    def __init__(self, recorder: Any) -> None:
        self._recorder = recorder

    def select(
        self, originator_id: UUID, after_version: int, limit: int
    ) -> list[tuple[int, StoredEvent]]:
        table = self._recorder.events_table_name
        with self._recorder.datastore.transaction(commit=False) as cur:
            cur.execute(
                f'SELECT rowid, originator_version, topic, state FROM "{table}"'
                " WHERE originator_id = ? AND originator_version > ?"
                " ORDER BY originator_version LIMIT ?",
                (originator_id.hex, after_version, limit),
            )
            return [
                (row[0], StoredEvent(originator_id, row[1], row[2], row[3]))
                for row in cur.fetchall()
            ]

    def analyze(self) -> None:
        pass


class PostgresHistory:
    def __init__(self, recorder: Any) -> None:
        self._recorder = recorder
        self._statement = SQL(
            "SELECT notification_id, originator_version, topic, state FROM {}.{}"
            " WHERE originator_id = %s AND originator_version > %s"
            " ORDER BY originator_version LIMIT %s"
        ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))
        self._analyze = SQL("ANALYZE {}.{}").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
        )

    def analyze(self) -> None:
        """The library turns autovacuum (and so auto-analyze) off for its append-only table;
        without statistics a filtered scan of the log sorts it whole, page after page.
        """
        with self._recorder.datastore.get_connection() as conn:
            conn.execute(self._analyze)
            conn.commit()

    def select(
        self, originator_id: UUID, after_version: int, limit: int
    ) -> list[tuple[int, StoredEvent]]:
        with self._recorder.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(self._statement, (originator_id, after_version, limit))
            return [
                (
                    row["notification_id"],
                    StoredEvent(
                        originator_id, row["originator_version"], row["topic"], bytes(row["state"])
                    ),
                )
                for row in cur.fetchall()
            ]
