"""Wires settings to stores, the application, projections and use cases. No I/O at import."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from adapters.event_history import PopoHistory, PostgresHistory, SQLiteHistory
from projections.agents import AgentIndex
from projections.conversations import ConversationIndex
from projections.messages import MessageList
from projections.projection import Projection
from projections.projector import Projector
from projections.sqlite_store import SQLiteViewStore
from projections.store import ViewStore
from runtime.settings import Settings
from service.agents import AgentService
from service.application import ConvlogApplication
from service.context import Context
from service.conversations import ConversationService
from service.event_log import EventLog, StoredHistory

log = logging.getLogger("convlog")

# Serializes schema creation across processes starting at once (the library's create_table()
# runs CREATE OR REPLACE FUNCTION, which fails when two processes race).
STARTUP_LOCK_KEY = 0x636F6E766C6F68


def all_projections() -> list[Projection]:
    return [MessageList(), ConversationIndex(), AgentIndex()]


@dataclass
class Services:
    settings: Settings
    ctx: Context
    agents: AgentService
    conversations: ConversationService

    @property
    def projector(self) -> Projector:
        return self.ctx.projector

    def close(self) -> None:
        self.ctx.app.close()
        self.ctx.store.close()


def postgres_conninfo(settings: Settings) -> dict[str, Any]:
    from psycopg.conninfo import conninfo_to_dict

    assert settings.database_url
    url = settings.database_url.replace("postgres://", "postgresql://", 1)
    return dict(conninfo_to_dict(url))


@contextmanager
def _postgres_startup_lock(settings: Settings) -> Iterator[None]:
    import psycopg
    from psycopg import sql

    with psycopg.connect(**postgres_conninfo(settings), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (STARTUP_LOCK_KEY,))
        try:
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(settings.database_schema)
                )
            )
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (STARTUP_LOCK_KEY,))


def _open_stores(settings: Settings) -> tuple[ConvlogApplication, ViewStore, StoredHistory]:
    backend = settings.backend
    if backend == "memory":
        app = ConvlogApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        return app, SQLiteViewStore(None), PopoHistory(app.recorder)
    if backend == "sqlite":
        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        app = ConvlogApplication(
            env={
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        )
        views = path.with_name(path.stem + "-views" + path.suffix)
        return app, SQLiteViewStore(str(views)), SQLiteHistory(app.recorder)

    from psycopg.conninfo import make_conninfo

    from projections.postgres_store import PostgresViewStore

    info = postgres_conninfo(settings)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": info.get("dbname", "postgres"),
        "POSTGRES_HOST": info.get("host", "127.0.0.1"),
        "POSTGRES_PORT": str(info.get("port", 5432)),
        "POSTGRES_USER": info.get("user", "postgres"),
        "POSTGRES_PASSWORD": info.get("password", ""),
        "POSTGRES_SCHEMA": settings.database_schema,
        "POSTGRES_POOL_SIZE": str(settings.db_pool_size),
        "POSTGRES_MAX_OVERFLOW": str(settings.db_pool_size),
    }
    with _postgres_startup_lock(settings):
        app = ConvlogApplication(env=env)
    store = PostgresViewStore(
        make_conninfo(**info), settings.database_schema, max_size=2 * settings.db_pool_size
    )
    return app, store, PostgresHistory(app.recorder)


def build(settings: Settings) -> Services:
    app, store, history = _open_stores(settings)
    event_log = EventLog(app, history)
    projector = Projector(
        store, event_log, all_projections(), batch_size=settings.projection_batch_size
    )
    projector.setup()
    caught_up = projector.catch_up()
    if caught_up:
        log.info("projections caught up with %d events from the log", caught_up)
    ctx = Context(app, store, projector, event_log)
    agents = AgentService(ctx)
    return Services(settings, ctx, agents, ConversationService(ctx, agents))
