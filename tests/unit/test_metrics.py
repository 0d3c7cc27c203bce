"""``GET /metrics``: what a turn, a refused send and a 404 leave in Prometheus' format (the
counters are process-wide, so each test compares before and after)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from api.app import create_app
from runtime.bootstrap import build
from runtime.settings import Settings
from service.services import Services
from tests.scripted_model import ScriptedModel

AGENT = {"name": "m", "model": "openai/gpt-4o-mini"}


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


def sample(http: TestClient, name: str, **labels: str) -> float:
    """The value of one sample (0 when absent)."""
    text = http.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def test_a_turn_and_its_requests_are_counted(http: TestClient) -> None:
    route = "/v1/conversations/{conversation_id}/messages"
    requests = "convlog_http_request_duration_seconds_count"
    before = {
        "sends": sample(http, requests, route=route, method="POST", status="200"),
        "turns": sample(http, "convlog_turns_total", stop_reason="end_turn"),
        "first": sample(http, "convlog_turn_first_event_seconds_count"),
        "tokens": sample(
            http, "convlog_model_tokens_total", handle="openai/gpt-4o-mini", kind="completion"
        ),
        "missing": sample(http, requests, route="/v1/agents/{agent_id}", status="404"),
    }
    agent = http.post("/v1/agents/", json=AGENT).json()["id"]
    conversation = http.post("/v1/conversations/", params={"agent_id": agent}).json()["id"]
    sent = http.post(f"/v1/conversations/{conversation}/messages", json={"input": "hi"})
    assert sent.status_code == 200
    unknown = "agent-00000000-0000-4000-8000-000000000000"
    assert http.get(f"/v1/agents/{unknown}").status_code == 404

    assert sample(http, requests, route=route, method="POST", status="200") == before["sends"] + 1
    assert sample(http, "convlog_turns_total", stop_reason="end_turn") == before["turns"] + 1
    assert sample(http, "convlog_turn_first_event_seconds_count") == before["first"] + 1
    completion = sample(
        http, "convlog_model_tokens_total", handle="openai/gpt-4o-mini", kind="completion"
    )
    assert completion > before["tokens"]
    assert sample(http, requests, route="/v1/agents/{agent_id}", status="404") == (
        before["missing"] + 1
    )
    assert sample(http, "convlog_projection_lag_events") == 0
    text = http.get("/metrics").text
    assert conversation not in text and agent not in text  # templates, never ids


def test_a_send_refused_as_busy_is_counted(http: TestClient, model: ScriptedModel) -> None:
    agent = http.post("/v1/agents/", json=AGENT).json()["id"]
    conversation = http.post("/v1/conversations/", params={"agent_id": agent}).json()["id"]
    path = f"/v1/conversations/{conversation}/messages"
    before = sample(http, "convlog_conversation_busy_total")
    model.delay = 1.5
    slow = threading.Thread(target=http.post, args=(path,), kwargs={"json": {"input": "slow"}})
    slow.start()
    time.sleep(0.5)  # the slow turn holds the conversation by now
    refused = http.post(path, json={"input": "now"})
    slow.join(timeout=10)
    assert refused.status_code == 409
    assert sample(http, "convlog_conversation_busy_total") == before + 1
