"""Changing a stored log behind the application's back, as someone with write access to the
database could: the cases the hash chain must catch (and one it cannot alone)."""

from __future__ import annotations

import sqlite3
from typing import Any, Protocol
from uuid import uuid4

from psycopg import sql

from service.services import Services


class Tamper(Protocol):
    def alter_state(self, position: int) -> None: ...
    def remove_event(self, position: int) -> None: ...
    def remove_with_entry(self, position: int) -> None: ...
    def insert_after_end(self) -> int: ...
    def swap_states(self, first: int, second: int) -> None: ...
    def garble(self, position: int) -> None:
        """Replace the stored bytes with some that are not JSON."""
        ...

    def rechain(self) -> None:
        """Recompute every hash, as an attacker who knows the recipe would."""
        ...


class SQLiteTamper:
    def __init__(self, services: Services) -> None:
        recorder: Any = services.ctx.app.recorder
        self.recorder = recorder
        self.path = recorder.datastore.pool.db_name
        self.events = recorder.events_table_name
        self.chain = recorder.chain_table

    def _run(self, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with sqlite3.connect(self.path) as conn:
            return conn.execute(statement, params).fetchall()

    def alter_state(self, position: int) -> None:
        self._run(
            f"UPDATE {self.events} SET state = CAST(CAST(state AS TEXT) || ' ' AS BLOB)"
            " WHERE rowid = ?",
            (position,),
        )

    def remove_event(self, position: int) -> None:
        self._run(f"DELETE FROM {self.events} WHERE rowid = ?", (position,))

    def garble(self, position: int) -> None:
        self._run(f"UPDATE {self.events} SET state = ? WHERE rowid = ?", (b"\xff{", position))

    def remove_with_entry(self, position: int) -> None:
        self.remove_event(position)
        self._run(f"DELETE FROM {self.chain} WHERE notification_id = ?", (position,))

    def insert_after_end(self) -> int:
        self._run(f"INSERT INTO {self.events} VALUES (?, 1, 'forged', '{{}}')", (uuid4().hex,))
        return int(self._run(f"SELECT max(rowid) FROM {self.events}")[0][0])

    def swap_states(self, first: int, second: int) -> None:
        a, b = (
            self._run(f"SELECT state FROM {self.events} WHERE rowid = ?", (p,))[0][0]
            for p in (first, second)
        )
        self._run(f"UPDATE {self.events} SET state = ? WHERE rowid = ?", (b, first))
        self._run(f"UPDATE {self.events} SET state = ? WHERE rowid = ?", (a, second))

    def rechain(self) -> None:
        self._run(f"DELETE FROM {self.chain}")
        self.recorder.chain_gap()


class PostgresTamper:
    def __init__(self, services: Services) -> None:
        recorder: Any = services.ctx.app.recorder
        self.recorder = recorder
        self.names = {
            "s": sql.Identifier(recorder.datastore.schema),
            "e": sql.Identifier(recorder.events_table_name),
            "c": sql.Identifier(recorder.chain_table),
        }

    def _run(self, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self.recorder.datastore.get_connection() as conn:
            cur = conn.execute(sql.SQL(statement).format(**self.names), params)
            rows = cur.fetchall() if cur.description else []
            conn.commit()
            return [tuple(r.values()) for r in rows]

    def alter_state(self, position: int) -> None:
        self._run(
            "UPDATE {s}.{e} SET state = state || '\\x20'::bytea WHERE notification_id = %s",
            (position,),
        )

    def remove_event(self, position: int) -> None:
        self._run("DELETE FROM {s}.{e} WHERE notification_id = %s", (position,))

    def garble(self, position: int) -> None:
        self._run("UPDATE {s}.{e} SET state = %s WHERE notification_id = %s", (b"\xff{", position))

    def remove_with_entry(self, position: int) -> None:
        self.remove_event(position)
        self._run("DELETE FROM {s}.{c} WHERE notification_id = %s", (position,))

    def insert_after_end(self) -> int:
        rows = self._run(
            "INSERT INTO {s}.{e} (originator_id, originator_version, topic, state)"
            " VALUES (%s, 1, 'forged', '{{}}') RETURNING notification_id",
            (uuid4(),),
        )
        return int(rows[0][0])

    def swap_states(self, first: int, second: int) -> None:
        self._run(
            "UPDATE {s}.{e} AS t SET state = o.state FROM {s}.{e} AS o"
            " WHERE (t.notification_id, o.notification_id) IN ((%s, %s), (%s, %s))",
            (first, second, second, first),
        )

    def rechain(self) -> None:
        self._run("DELETE FROM {s}.{c}")
        self.recorder.chain_gap()


def tamper_for(services: Services) -> Tamper:
    backend = type(services.ctx.log.chain).__name__
    if backend == "SQLiteChainStore":
        return SQLiteTamper(services)
    if backend == "PostgresChainStore":
        return PostgresTamper(services)
    raise ValueError(f"no way to tamper with {backend}")
