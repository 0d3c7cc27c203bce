"""SDK flows against the PostgreSQL-backed server (a fresh schema, dropped afterwards)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from letta_client import Letta

from tests.e2e import flows
from tests.e2e.conftest import new_agent, sdk

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture
def pg_client(pg_server_url: str) -> Iterator[Letta]:
    with sdk(pg_server_url) as c:
        yield c


@pytest.fixture
def pg_http(pg_server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pg_server_url, timeout=30.0) as c:
        yield c


def test_conversation_lifecycle(pg_client: Letta) -> None:
    flows.conversation_lifecycle(pg_client)


def test_block_update_reaches_new_conversations_only(pg_client: Letta) -> None:
    flows.system_message_snapshots_memory(pg_client)


def test_agent_delete_removes_its_conversations(pg_client: Letta) -> None:
    flows.agent_delete_cascades(pg_client)


def test_list_limit_after_and_order(pg_client: Letta) -> None:
    flows.list_paging(pg_client)
    flows.list_filters_by_agent(pg_client)


def test_summary_search_is_literal(pg_client: Letta) -> None:
    flows.summary_search_is_literal(pg_client)


def test_auto_pagination(pg_client: Letta) -> None:
    flows.messages_auto_pagination(pg_client)
    flows.turns_then_walk_history(pg_client)


def test_read_your_writes_and_events(pg_client: Letta, pg_http: httpx.Client) -> None:
    agent_id = new_agent(pg_client)
    seen: list[str] = []
    for i in range(5):
        conversation = pg_client.conversations.create(agent_id=agent_id, summary=f"pg-{i}")
        seen.insert(0, conversation.id)
        assert [c.id for c in pg_client.conversations.list(agent_id=agent_id)] == seen
        pg_client.conversations.update(conversation.id, summary=f"pg-{i}!")
        assert pg_client.conversations.retrieve(conversation.id).summary == f"pg-{i}!"
        history = pg_http.get(f"/v1/conversations/{conversation.id}/events").json()
        assert [(e["version"], e["type"]) for e in history] == [
            (1, "convlog.Conversation.Created"),
            (2, "convlog.Conversation.MessageAppended"),
            (3, "convlog.Conversation.Updated"),
        ]
        positions = [e["position"] for e in history]
        assert positions == sorted(set(positions))


def test_errors_match_on_postgres(pg_http: httpx.Client, pg_client: Letta) -> None:
    agent_id = new_agent(pg_client)
    unknown = pg_http.get(f"/v1/conversations/conv-{uuid.uuid4()}")
    assert unknown.status_code == 404
    malformed = pg_http.get("/v1/conversations/nope")
    assert malformed.status_code == 422
    assert set(malformed.json()) == {"trace_id", "detail"}
    bad = pg_http.post(
        "/v1/conversations/", params={"agent_id": agent_id}, json={"summary": "a\u0000b"}
    )
    assert bad.status_code == 422  # PostgreSQL text cannot hold NUL: refused up front
    assert pg_client.conversations.list(agent_id=agent_id) == []


def test_server_writes_into_its_own_schema(pg_schema: tuple[str, str], pg_client: Letta) -> None:
    flows.conversation_lifecycle(pg_client)
    database_url, schema = pg_schema
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchone()
    assert row is not None and row[0] > 0
