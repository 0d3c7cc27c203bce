"""Fresh, throw-away storage per benchmark run: a temporary SQLite directory or a new
PostgreSQL schema (``bench_<hex>``), removed afterwards.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.settings import Settings

log = logging.getLogger("bench")

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
BACKENDS = ("sqlite", "postgres")


@dataclass(frozen=True)
class Storage:
    """Where one run keeps its log and views: settings in-process, environment for the server."""

    backend: str
    settings: Settings
    server_env: dict[str, str]
    details: dict[str, Any]


@contextmanager
def sqlite_storage() -> Iterator[Storage]:
    root = Path(tempfile.mkdtemp(prefix="convlog-bench-"))
    try:
        path = root / "convlog.db"
        url = f"sqlite:///{path}"
        yield Storage(
            backend="sqlite",
            settings=Settings(database_url=url, data_dir=root),
            server_env={"DATABASE_URL": url, "CONVLOG_DATA_DIR": str(root)},
            details={"path": str(path)},
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def analyze(storage: Storage) -> dict[str, Any]:
    """Give PostgreSQL's planner statistics for the freshly filled tables, as autovacuum would
    within a minute of a bulk load (when it is on: this server may have it off).

    Without statistics the log's page query (``notification_id > %s AND topic = ANY(%s)
    ORDER BY notification_id LIMIT n``) is planned as a bitmap scan plus a sort of the whole
    remaining log, so every page costs O(log size) and a rebuild O(n²); the suite measures
    that case once, before calling this. SQLite needs nothing here.
    """
    if storage.backend != "postgres":
        return {"analyzed": False}
    import psycopg
    from psycopg import sql

    schema = storage.settings.database_schema
    assert storage.settings.database_url
    with psycopg.connect(storage.settings.database_url, autocommit=True) as conn:
        autovacuum = conn.execute("SHOW autovacuum").fetchone()
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            ).fetchall()
        ]
        for table in tables:
            conn.execute(
                sql.SQL("ANALYZE {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            )
    return {
        "analyzed": True,
        "tables": len(tables),
        "server_autovacuum": autovacuum[0] if autovacuum else None,
    }


def postgres_server_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "unknown"


def check_redis(url: str) -> dict[str, Any]:
    """Fails fast when Redis is unreachable; its version for the report."""
    from redis import Redis

    with Redis.from_url(url, socket_connect_timeout=5) as redis:
        info = redis.info("server")
    return {"url": url, "server_version": str(info.get("redis_version", "unknown"))}


@contextmanager
def postgres_storage(url: str) -> Iterator[Storage]:
    import psycopg
    from psycopg import sql

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    server_version = postgres_server_version(url)  # fails fast when unreachable
    try:
        yield Storage(
            backend="postgres",
            settings=Settings(database_url=url, database_schema=schema),
            server_env={"DATABASE_URL": url, "DATABASE_SCHEMA": schema},
            details={"schema": schema, "server_version": server_version},
        )
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        log.info("dropped schema %s", schema)


@contextmanager
def storage(backend: str, postgres_url: str) -> Iterator[Storage]:
    if backend == "sqlite":
        with sqlite_storage() as found:
            yield found
    elif backend == "postgres":
        with postgres_storage(postgres_url) as found:
            yield found
    else:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
