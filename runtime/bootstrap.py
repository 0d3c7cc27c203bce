"""Wires settings to stores, the application, projections and use cases. No I/O at import."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.utils import get_topic

from adapters.chain_store import PopoChainStore, PostgresChainStore, SQLiteChainStore
from adapters.chained_recorders import (
    ChainedPopoRecorder,
    ChainedPostgresRecorder,
    ChainedSQLiteRecorder,
)
from adapters.event_history import PopoHistory, PostgresHistory, SQLiteHistory
from adapters.inprocess import InProcessChunkLog, InProcessLock, InProcessSignals
from adapters.models import ModelRouter
from adapters.web import HttpWeb
from projections.agents import AgentIndex
from projections.blocks import BlockIndex
from projections.conversations import ConversationIndex
from projections.keys import KeyIndex
from projections.messages import MessageList
from projections.processes import ProcessRegistry
from projections.projection import Projection
from projections.projector import Projector
from projections.runs import RunIndex
from projections.search import MessageSearch
from projections.sqlite_store import SQLiteViewStore
from projections.store import ViewStore
from projections.tokens_per_day import TokensPerDay
from runtime.settings import Settings, database_outages, masked
from service.agents import AgentService
from service.application import ConvlogApplication
from service.audit import ChainStore
from service.blocks import BlockService
from service.compaction import CompactionService
from service.context import Context
from service.conversations import ConversationService
from service.event_log import EventLog, StoredHistory
from service.keys import KeyService
from service.metrics import Readings
from service.model import ChatModel
from service.ports import ChunkLog, Lock, Signals
from service.runs import RunService
from service.services import Services
from service.turns import TurnService, TurnSettings

log = logging.getLogger("convlog")

# Serializes schema creation across processes starting at once (the library's create_table()
# runs CREATE OR REPLACE FUNCTION, which fails when two processes race).
STARTUP_LOCK_KEY = 0x636F6E766C6F68
# How long a pool keeps retrying one lost connection (with backoff) before it gives up and the
# next use connects afresh. psycopg_pool's default is 300 s, whose backoff grows to a minute:
# a database back after an outage would wait that long for its first connection.
RECONNECT_SECONDS = 2.0


def all_projections() -> list[Projection]:
    return [
        MessageList(),
        ConversationIndex(),
        AgentIndex(),
        RunIndex(),
        MessageSearch(),
        BlockIndex(),
        KeyIndex(),
        TokensPerDay(),
    ]


def postgres_conninfo(settings: Settings) -> dict[str, Any]:
    from psycopg.conninfo import conninfo_to_dict

    assert settings.database_url
    url = settings.database_url.replace("postgres://", "postgresql://", 1)
    return dict(conninfo_to_dict(url))


@contextmanager
def _postgres_startup_lock(settings: Settings) -> Iterator[None]:
    import psycopg
    from psycopg import sql

    timeout = max(1, round(settings.db_timeout_seconds))
    info = postgres_conninfo(settings)
    with psycopg.connect(**info, connect_timeout=timeout, autocommit=True) as conn:
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


# Recently used aggregates stay in memory; each get still reads any newer events first
# ("fast-forward"), so writes by other processes are never missed.
AGGREGATE_CACHE = {"AGGREGATE_CACHE_MAXSIZE": "2000", "AGGREGATE_CACHE_FASTFORWARD": "y"}


def _open_stores(
    settings: Settings,
) -> tuple[ConvlogApplication, ViewStore, StoredHistory, ChainStore]:
    backend = settings.backend
    if backend == "memory":
        app = ConvlogApplication(
            env={"PERSISTENCE_MODULE": "eventsourcing.popo", **AGGREGATE_CACHE},
            memory_recorder=ChainedPopoRecorder,
        )
        assert isinstance(app.recorder, ChainedPopoRecorder)
        return app, SQLiteViewStore(None), PopoHistory(app.recorder), PopoChainStore(app.recorder)
    if backend == "sqlite":
        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        app = ConvlogApplication(
            env={
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "10",
                "APPLICATION_RECORDER_TOPIC": get_topic(ChainedSQLiteRecorder),
                **AGGREGATE_CACHE,
            }
        )
        app.recorder.chain_gap()  # type: ignore[attr-defined]
        views = path.with_name(path.stem + "-views" + path.suffix)
        chain = SQLiteChainStore(app.recorder)
        return app, SQLiteViewStore(str(views)), SQLiteHistory(app.recorder), chain

    from psycopg.conninfo import make_conninfo

    from projections.postgres_store import PostgresViewStore

    info = postgres_conninfo(settings)
    # The event store's connections take libpq's defaults from the environment: bound each
    # statement there too (the views' pool is told directly, below).
    statement_ms = int(settings.db_statement_timeout_seconds * 1000)
    os.environ.setdefault("PGOPTIONS", f"-c statement_timeout={statement_ms}")
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": info.get("dbname", "postgres"),
        "POSTGRES_HOST": info.get("host", "127.0.0.1"),
        "POSTGRES_PORT": str(info.get("port", 5432)),
        "POSTGRES_USER": info.get("user", "postgres"),
        "POSTGRES_PASSWORD": info.get("password", ""),
        "POSTGRES_SCHEMA": settings.database_schema,
        "POSTGRES_POOL_SIZE": str(settings.db_pool_size),
        # Bounded waits, so an outage fails requests fast (503) instead of hanging them.
        # (A dead pooled connection fails one attempt, and the store tries again: no ping
        # before each use, which would cost a round trip per statement.)
        # (The event store tries each statement ten times: each wait for a connection is
        # kept short, so that the ten stay within seconds.)
        "POSTGRES_CONNECT_TIMEOUT": "1",
        "POSTGRES_MAX_OVERFLOW": str(settings.db_pool_size),
        "APPLICATION_RECORDER_TOPIC": get_topic(ChainedPostgresRecorder),
        **AGGREGATE_CACHE,
    }
    with _postgres_startup_lock(settings):
        app = ConvlogApplication(env=env)
        app.recorder.chain_gap()  # type: ignore[attr-defined]
    # The event store's pool takes no setting for it from the environment (see RECONNECT_SECONDS).
    app.recorder.datastore.pool.reconnect_timeout = RECONNECT_SECONDS  # type: ignore[attr-defined]
    bounded = {
        **info,
        "connect_timeout": max(1, round(settings.db_timeout_seconds)),
        "options": f"-c statement_timeout={int(settings.db_statement_timeout_seconds * 1000)}",
    }
    store = PostgresViewStore(
        make_conninfo(**bounded),
        settings.database_schema,
        max_size=2 * settings.db_pool_size,
        timeout=settings.db_timeout_seconds,
        reconnect_seconds=RECONNECT_SECONDS,
    )
    return app, store, PostgresHistory(app.recorder), PostgresChainStore(app.recorder)


def process_name() -> str:
    """This process as claims and heartbeats name it: readable by an operator, and unique."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def build(settings: Settings, model: ChatModel | None = None, *, catch_up: bool = True) -> Services:
    """Wire everything; ``model`` replaces the configured models (tests use scripted ones).
    ``catch_up=False`` leaves the views where they are (to report how far behind they are).
    """
    holder = process_name()
    app, store, history, chain = _open_stores(settings)
    event_log = EventLog(app, history, chain)
    projector = Projector(
        store, event_log, all_projections(), batch_size=settings.projection_batch_size
    )
    processes = ProcessRegistry(store, settings.process_timeout_seconds)
    processes.setup()  # before the views: the claims view reads it
    processes.beat(holder)
    projector.setup()
    caught_up = projector.catch_up() if catch_up else 0
    if caught_up:
        log.info("projections caught up with %d events from the log", caught_up)
    ctx = Context(app, store, projector, event_log)
    agents = AgentService(ctx)
    conversations = ConversationService(ctx, agents)
    starters, closers, probes, lock, signals, chunks = _cross_process(settings)
    router = build_model(settings)
    model = model or router
    compaction = CompactionService(ctx, model, settings.context_windows)
    turns = TurnService(
        ctx,
        model,
        lock,
        signals,
        chunks,
        TurnSettings(
            lease_seconds=settings.run_lease_seconds,
            ping_seconds=settings.keepalive_seconds,
            holder=holder,
        ),
        compaction,
        processes,
        HttpWeb(settings.exa_api_key, settings.exa_base_url, settings.fetch_private_addresses),
    )
    runs = RunService(ctx, conversations, lock, signals, chunks)
    blocks = BlockService(ctx, agents)
    return Services(
        ctx,
        agents,
        conversations,
        turns,
        runs,
        compaction,
        blocks,
        KeyService(ctx),
        model,
        router,
        settings.context_windows,
        starters,
        closers,
        probes,
        readings(ctx),
    )


def readings(ctx: Context) -> Readings:
    """The gauges read when /metrics is scraped: projection lag, and on PostgreSQL the use of
    the event store's and the views' connection pools."""
    found = Readings()
    found.add(
        "convlog_projection_lag_events",
        "Events some projection of this process has still to apply",
        (),
        lambda: {(): float(ctx.projector.lag())},
    )
    pools: dict[str, Callable[[], dict[str, int]]] = {}
    views_pool = getattr(ctx.store, "pool_use", None)  # PostgreSQL's views store has one
    if views_pool is not None:
        pools["views"] = views_pool
    event_pool = getattr(getattr(ctx.app.recorder, "datastore", None), "pool", None)
    if event_pool is not None and hasattr(event_pool, "get_stats"):
        pools["log"] = lambda: {
            k: int(v)
            for k, v in event_pool.get_stats().items()
            if k in ("pool_size", "pool_available", "requests_waiting")
        }

    def pool_use() -> dict[tuple[str, ...], float]:
        return {(pool, k): float(v) for pool, read in pools.items() for k, v in read().items()}

    found.add(
        "convlog_database_pool_connections",
        "Database connections by pool (log, views) and state (pool_size, pool_available, "
        "requests_waiting)",
        ("pool", "state"),
        pool_use,
    )
    return found


Hooks = list[Callable[[], Awaitable[None]]]


def _cross_process(
    settings: Settings,
) -> tuple[Hooks, Hooks, dict[str, Callable[[], Awaitable[object]]], Lock, Signals, ChunkLog]:
    """Redis when configured (several processes), else in-process (one node); with what to
    start and stop on the event loop, and how to check Redis is there.
    """
    if settings.redis_url is None:
        return [], [], {}, InProcessLock(), InProcessSignals(), InProcessChunkLog()
    from adapters.redis_ports import RedisChunkLog, RedisLock, RedisSignals, connect

    redis = connect(settings.redis_url)
    signals = RedisSignals(redis)
    closers: Hooks = [signals.aclose, redis.aclose]
    probes: dict[str, Callable[[], Awaitable[object]]] = {"redis": redis.ping}
    return [signals.start], closers, probes, RedisLock(redis), signals, RedisChunkLog(redis)


def open_services(settings: Settings, *, catch_up: bool = True) -> Services:
    """``build``, waiting up to ``CONVLOG_DB_STARTUP_WAIT`` for a database that does not
    answer yet (it may be starting beside us); then ``DatabaseUnreachable`` with the reason.
    """
    deadline = time.monotonic() + settings.db_startup_wait_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            return build(settings, catch_up=catch_up)
        except database_outages(settings.backend) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if time.monotonic() >= deadline:
                raise DatabaseUnreachable(settings, reason) from None
            log.warning("waiting for the database (attempt %d): %s", attempt, reason)
            time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))


class DatabaseUnreachable(RuntimeError):
    def __init__(self, settings: Settings, reason: str) -> None:
        where = masked(settings.database_url or "") or str(settings.sqlite_path)
        super().__init__(
            f"cannot reach the database at {where} (DATABASE_URL): {reason}. "
            f"Gave up after {settings.db_startup_wait_seconds:g} s (CONVLOG_DB_STARTUP_WAIT)."
        )


def build_model(settings: Settings) -> ModelRouter:
    return ModelRouter(
        settings.providers,
        timeout_seconds=settings.model_timeout_seconds,
        auto_model=settings.auto_model,
    )
