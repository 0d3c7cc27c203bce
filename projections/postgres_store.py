"""PostgreSQL views, in the same database as the event store."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from psycopg import sql
from psycopg_pool import ConnectionPool

from projections.store import Cursor, ViewStore

# Every projector transaction takes this advisory lock, so processes never interleave batches.
PROJECTOR_LOCK_KEY = 0x636F6E766C6F67  # "convlog"


@lru_cache(maxsize=1024)
def _compile(template: str, tables: tuple[tuple[str, str], ...]) -> sql.Composed:
    return sql.SQL(template).format(**{k: sql.Identifier(v) for k, v in tables})


class PostgresViewStore(ViewStore):
    dialect = "postgres"

    def __init__(self, conninfo: str, schema: str, max_size: int = 20) -> None:
        self._schema = schema
        self._pool = ConnectionPool(
            conninfo,
            min_size=2,
            max_size=max_size,
            kwargs={"autocommit": True, "options": f"-c search_path={schema}"},
            open=True,
            name="convlog-views",
        )

    @contextmanager
    def write(self) -> Iterator[Cursor]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK_KEY,))
            yield cur

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        with self._pool.connection() as conn, conn.cursor() as cur:
            yield cur

    def compile(self, template: str, tables: Mapping[str, str]) -> Any:
        return _compile(template, tuple(sorted(tables.items())))

    def table_exists(self, cur: Cursor, name: str) -> bool:
        cur.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (self._schema, name),
        )
        return cur.fetchone() is not None

    def substring(self, column: str) -> str:
        return f"strpos({column}, %s) > 0"

    def close(self) -> None:
        self._pool.close()
