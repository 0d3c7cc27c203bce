"""SQLite views: the embedded default (a file beside the event store) and in-memory tests."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from projections.store import Cursor, ViewStore


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@lru_cache(maxsize=1024)
def _compile(template: str, tables: tuple[tuple[str, str], ...]) -> str:
    return template.replace("%s", "?").format(**{k: _quote(v) for k, v in tables})


class SQLiteViewStore(ViewStore):
    dialect = "sqlite"

    def __init__(self, path: str | None) -> None:
        """``path=None`` keeps the views in memory, on one shared connection."""
        self._path = path
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._memory: sqlite3.Connection | None = None
        if path is None:
            self._memory = self._connect(":memory:")

    def _connect(self, target: str) -> sqlite3.Connection:
        conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        if target != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
            # Views are derived data: a lost last commit is replayed from the log.
            conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._memory is not None:
            return self._memory
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            assert self._path is not None
            conn = self._connect(self._path)
            self._local.conn = conn
        return conn

    @contextmanager
    def write(self) -> Iterator[Cursor]:
        with self._write_lock:
            conn = self._conn()
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        if self._memory is not None:
            # One connection in memory: reads take the writers' lock so they never see a
            # half-applied batch.
            with self._write_lock:
                cur = self._memory.cursor()
                try:
                    yield cur
                finally:
                    cur.close()
            return
        cur = self._conn().cursor()
        try:
            yield cur
        finally:
            cur.close()

    def compile(self, template: str, tables: Mapping[str, str]) -> Any:
        return _compile(template, tuple(sorted(tables.items())))

    def table_exists(self, cur: Cursor, name: str) -> bool:
        cur.execute(
            "SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (name,)
        )
        return cur.fetchone() is not None

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
