"""PostgreSQL views, in the same database as the event store."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import Cursor as PgCursor
from psycopg import Pipeline, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from projections.store import Cursor, ViewStore

# Every projector transaction takes this advisory lock, so processes never interleave batches.
PROJECTOR_LOCK_KEY = 0x636F6E766C6F67  # "convlog"
# How long a read tried again after a dead connection waits for a fresh one.
RETRY_WAIT_SECONDS = 1.0


@lru_cache(maxsize=1024)
def _compile(template: str, tables: tuple[tuple[str, str], ...]) -> str:
    # Rendered once to a string: psycopg caches the parsing of a string query, whereas a
    # Composed object is rendered again on every execute.
    return sql.SQL(template).format(**{k: sql.Identifier(v) for k, v in tables}).as_string()


class _PipelinedCursor:
    """A cursor of a transaction in pipeline mode: statements are sent without waiting for
    each one's answer, so a batch of N inserts costs a few round trips instead of N.

    A fetch syncs the pipeline first. Without that, the cursor could still hold the result of
    an earlier queued statement (an INSERT) when the SELECT's rows are asked for; after the
    sync every queued result has arrived and the cursor's result is its last statement's.
    An error in a queued statement is raised at the next sync, at the latest when the
    pipeline closes, and the transaction then rolls back as before.
    """

    def __init__(self, cur: PgCursor[Any], pipeline: Pipeline) -> None:
        self._cur = cur
        self._pipeline = pipeline

    def execute(self, query: Any, params: Sequence[Any] = ()) -> Any:
        return self._cur.execute(query, params)

    def executemany(self, query: Any, params_seq: Sequence[Sequence[Any]]) -> Any:
        return self._cur.executemany(query, params_seq)

    def fetchone(self) -> Any:
        self._pipeline.sync()
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        self._pipeline.sync()
        return self._cur.fetchall()


class PostgresViewStore(ViewStore):
    dialect = "postgres"

    def __init__(
        self,
        conninfo: str,
        schema: str,
        max_size: int = 20,
        timeout: float = 5.0,
        reconnect_seconds: float = 300.0,
    ) -> None:
        self._schema = schema
        # One lock per schema: deployments sharing a database do not wait on each other.
        self._lock_key = PROJECTOR_LOCK_KEY + zlib.crc32(schema.encode())
        options = conninfo_to_dict(conninfo).get("options") or ""
        self._pool = ConnectionPool(
            conninfo,
            min_size=2,
            max_size=max_size,
            kwargs={
                "autocommit": True,
                "options": f"{options} -c search_path={schema}".strip(),
                # What pg_stat_activity shows for these connections.
                "application_name": f"convlog views {schema}"[:63],
            },
            timeout=timeout,  # the longest wait for a connection: an outage fails fast
            reconnect_timeout=reconnect_seconds,
            open=True,
            name="convlog-views",
        )

    @contextmanager
    def write(self) -> Iterator[Cursor]:
        with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.pipeline() as pipeline,
            conn.cursor() as cur,
        ):
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            yield _PipelinedCursor(cur, pipeline)

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        with self._pool.connection() as conn, conn.cursor() as cur:
            yield cur

    def query(
        self, template: str, params: Sequence[Any] = (), tables: Mapping[str, str] | None = None
    ) -> list[Any]:
        """A read, tried again once when its connection turns out dead (the server
        restarted, a proxy dropped it), after the pool has checked every idle connection and
        replaced the broken ones. Checking each before lending it would cost a round trip on
        every query instead.
        """
        try:
            return super().query(template, params, tables)
        except PoolTimeout:
            raise  # the pool waited its whole timeout: the database is away, not one socket
        except psycopg.OperationalError:
            self._pool.check()
        # A restarted database answers a fresh connection in milliseconds: wait briefly.
        with self._pool.connection(RETRY_WAIT_SECONDS) as conn, conn.cursor() as cur:
            cur.execute(self.compile(template, tables or {}), params)
            rows: list[Any] = cur.fetchall()
            return rows

    def pool_use(self) -> dict[str, int]:
        """Connections of the views' pool: open, idle, and requests waiting for one."""
        stats = self._pool.get_stats()
        return {k: stats.get(k, 0) for k in ("pool_size", "pool_available", "requests_waiting")}

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
