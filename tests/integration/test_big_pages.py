"""The largest page (limit=1000) of every list works on every backend, with more rows than
that to page through."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from service.agents import AgentSpec
from service.services import Services
from tests.actors import DEFAULT_ACTOR

ROWS = 1050


@pytest.mark.parametrize("any_services", ["sqlite", "postgres"], indirect=True)
def test_pages_of_a_thousand(any_services: Services) -> None:
    services = any_services
    agent = services.agents.create(DEFAULT_ACTOR, AgentSpec(name="big", model="openai/x"))
    for _ in range(ROWS):
        services.conversations.create(DEFAULT_ACTOR, agent.id)
    with TestClient(create_app(services), base_url="http://localhost") as http:
        first = http.get("/v1/conversations/", params={"limit": 1000})
        assert first.status_code == 200, first.text
        assert len(first.json()) == 1000
        rest = http.get(
            "/v1/conversations/", params={"limit": 1000, "after": first.json()[-1]["id"]}
        )
        assert rest.status_code == 200 and len(rest.json()) == ROWS - 1000
        messages = http.get(f"/v1/agents/{agent.id}/messages", params={"limit": 1000})
        assert messages.status_code == 200, messages.text
        for path in ("/v1/agents/", "/v1/runs/", "/v1/blocks/"):
            assert http.get(path, params={"limit": 1000}).status_code == 200, path
