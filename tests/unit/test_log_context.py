"""Every response names its request; every log line names the request, run, conversation and
organization it is about (and ``CONVLOG_LOG_FORMAT=json`` writes them as JSON lines)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from domain.ids import DEFAULT_ORG_ID
from runtime.bootstrap import build
from runtime.logs import JsonLines, WithContext
from runtime.settings import Settings, SettingsError
from tests.scripted_model import ScriptedModel

AGENT = {"name": "a", "model": "openai/gpt-4o-mini"}


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
def http(model: ScriptedModel) -> Iterator[TestClient]:
    services = build(Settings(database_url="memory://"), model=model)
    with TestClient(create_app(services), base_url="http://localhost") as client:
        yield client
    services.close()


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.addFilter(WithContext())
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield sink
    finally:
        root.removeHandler(handler)


def test_each_response_names_its_request(http: TestClient) -> None:
    first, second = http.get("/v1/health/"), http.get("/v1/agents/")
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    given = http.get("/v1/agents/", headers={"x-request-id": "client-42"})
    assert given.headers["x-request-id"] == "client-42"
    odd = http.get("/v1/agents/", headers={"x-request-id": "no spaces\tor tabs"})
    assert odd.headers["x-request-id"] != "no spaces\tor tabs"


def test_a_turns_log_lines_name_the_request_run_conversation_and_organization(
    http: TestClient, model: ScriptedModel, lines: io.StringIO
) -> None:
    agent = http.post("/v1/agents/", json=AGENT).json()["id"]
    conversation = http.post("/v1/conversations/", params={"agent_id": agent}).json()["id"]
    model.crash = RuntimeError("boom")
    sent = http.post(
        f"/v1/conversations/{conversation}/messages",
        json={"input": "hi", "streaming": False},
        headers={"x-request-id": "req-7"},
    )
    assert sent.status_code == 500, sent.text  # Letta's status for an internal error
    (run,) = http.get("/v1/runs/", params={"conversation_id": conversation}).json()
    logged = [json.loads(line) for line in lines.getvalue().splitlines()]
    (failed,) = [line for line in logged if "failed (error id" in line["message"]]
    assert failed["request_id"] == "req-7"
    assert failed["conversation_id"] == conversation
    assert failed["organization_id"] == DEFAULT_ORG_ID
    assert failed["run_id"] == run["id"]
    assert failed["level"] == "error" and "RuntimeError: boom" in failed["exception"]


def test_the_log_format_setting() -> None:
    assert Settings.from_env({"CONVLOG_LOG_FORMAT": "json"}).log_format == "json"
    assert Settings.from_env({}).log_format == "text"
    with pytest.raises(SettingsError, match="CONVLOG_LOG_FORMAT"):
        Settings.from_env({"CONVLOG_LOG_FORMAT": "xml"})
