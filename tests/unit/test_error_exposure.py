"""What a client learns when something breaks inside the server: an error id, never the
exception's text (it may name hosts, paths or secrets); the server log has the cause."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from api import render
from api.app import create_app
from runtime.bootstrap import build
from runtime.settings import Settings
from service.services import Services
from tests.scripted_model import ScriptedModel

SECRET = "password=hunter2 at /srv/internal"
AGENT = {"name": "a", "model": "openai/gpt-4o-mini", "embedding": "openai/text-embedding-3-small"}


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
def services(model: ScriptedModel) -> Iterator[Services]:
    built = build(Settings(database_url="memory://"), model=model)
    yield built
    built.close()


@pytest.fixture
def http(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), base_url="http://localhost") as client:
        yield client


def new_conversation(http: TestClient) -> str:
    agent = http.post("/v1/agents/", json=AGENT).json()["id"]
    conversation: str = http.post("/v1/conversations/", params={"agent_id": agent}).json()["id"]
    return conversation


def sse_payloads(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        if line.startswith("data: {"):
            found.append(json.loads(line.removeprefix("data: ")))
    return found


def test_a_crashed_turn_tells_an_error_id(
    http: TestClient, model: ScriptedModel, caplog: pytest.LogCaptureFixture
) -> None:
    conversation = new_conversation(http)
    model.crash = RuntimeError(SECRET)
    with caplog.at_level(logging.ERROR):
        sent = http.post(f"/v1/conversations/{conversation}/messages", json={"input": "hi"})
    assert SECRET not in sent.text
    (error,) = [p for p in sse_payloads(sent.text) if p.get("message_type") == "error_message"]
    assert error["error_type"] == "internal_error"
    assert error["detail"].startswith("Internal error ")
    error_id = error["detail"].split()[2].rstrip(";")
    run = http.get(f"/v1/runs/{error['run_id']}").json()
    assert run["status"] == "failed" and SECRET not in json.dumps(run)
    # The operator finds the cause by the id.
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None and SECRET in str(logged[0].exc_info[1])


def test_an_unexpected_error_is_a_500_with_an_error_id(
    http: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(services.agents, "count", broken)
    answer = http.get("/v1/agents/count")
    assert answer.status_code == 500
    assert SECRET not in answer.text
    assert "error id" in answer.json()["detail"]


def test_a_record_that_cannot_be_rendered_degrades_only_itself(
    http: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = http.post("/v1/agents/", json={**AGENT, "name": "good"}).json()["id"]
    bad = http.post("/v1/agents/", json={**AGENT, "name": "bad"}).json()["id"]
    real = render.agent

    def fragile(row: Any, message_ids: list[str]) -> dict[str, Any]:
        if row.id == bad:
            raise RecursionError("maximum recursion depth exceeded")
        return real(row, message_ids)

    monkeypatch.setattr(render, "agent", fragile)
    listed = http.get("/v1/agents/")
    assert listed.status_code == 200
    by_id = {item["id"]: item for item in listed.json()}
    assert by_id[good]["name"] == "good"
    assert set(by_id[bad]) == {"id", "error"} and "error id" in by_id[bad]["error"]
