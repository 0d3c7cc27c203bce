"""Connections the database dropped (pg_terminate_backend, as a restart or a proxy would) cost
no request an error: the views' reads are tried again on a fresh connection, the event store
tries its statements again."""

from __future__ import annotations

import psycopg

from service.agents import AgentSpec
from service.metrics import render
from service.services import Services
from tests.actors import DEFAULT_ACTOR


def test_dropped_connections_are_replaced_without_an_error(
    pg_services: tuple[Services, str, str],
) -> None:
    services, url, schema = pg_services
    agent = services.agents.create(DEFAULT_ACTOR, AgentSpec(name="d", model="openai/x"))
    for _ in range(3):  # the pool's connections are open and idle
        services.agents.get(DEFAULT_ACTOR, agent.id)
    with psycopg.connect(url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (f"convlog views {schema}"[:63],),
        ).fetchone()
    assert killed is not None and killed[0] >= 1
    for _ in range(5):  # each read finds a dead connection first, then a fresh one
        assert services.agents.get(DEFAULT_ACTOR, agent.id).id == agent.id
    row = services.conversations.create(DEFAULT_ACTOR, agent.id)
    assert services.conversations.get(DEFAULT_ACTOR, row.conversation_id).id == row.id


def test_the_metrics_show_both_pools_on_postgresql(pg_services: tuple[Services, str, str]) -> None:
    services, _, _ = pg_services
    text = render(services.readings).decode()
    for pool in ("log", "views"):
        assert f'convlog_database_pool_connections{{pool="{pool}",state="pool_size"}}' in text
    assert "convlog_projection_lag_events 0.0" in text
