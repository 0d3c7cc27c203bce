"""Tracing over OTLP/HTTP (the ``tracing`` extra and the standard ``OTEL_*`` settings): one
trace per turn, a span per request, turn, step, model call and log transaction, with the run
and conversation ids as attributes; sent to a fake collector over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import spawn_server
from tests.e2e.turns_support import create_agent, create_conversation, env_for, say
from tests.fake_openai import FakeOpenAI
from tests.fake_otlp import FakeCollector, Span

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def collector() -> Iterator[FakeCollector]:
    with FakeCollector() as served:
        yield served


def wait_for(collector: FakeCollector, name: str) -> list[Span]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if any(s.name == name for s in collector.spans):
            return collector.spans
        time.sleep(0.1)  # the exporter sends in batches, every 100 ms here
    raise AssertionError(f"no {name!r} span arrived: {[s.name for s in collector.spans]}")


def test_a_turn_is_one_trace_of_nested_spans(
    fake_openai: FakeOpenAI, collector: FakeCollector, tmp_path: Path
) -> None:
    env = env_for(
        fake_openai.base_url,
        CONVLOG_DATA_DIR=str(tmp_path / "data"),
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_SERVICE_NAME="convlog-under-test",
    )
    with spawn_server(env, tmp_path / "logs") as (url, _), httpx.Client(base_url=url) as http:
        conversation = create_conversation(http, create_agent(http))
        run_id = say(http, conversation, "trace me").run_id
        spans = wait_for(collector, "turn")
    by_id = {s.span_id: s for s in spans}
    (turn,) = [s for s in spans if s.name == "turn"]
    assert turn.attributes["convlog.run_id"] == run_id
    assert turn.attributes["convlog.conversation_id"] == conversation
    request = by_id[turn.parent_id]
    assert request.name == "POST /v1/conversations/{conversation_id}/messages"
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["convlog.request_id"]
    steps = [s for s in spans if s.name == "step" and s.parent_id == turn.span_id]
    assert len(steps) == 1
    (model,) = [s for s in spans if s.name == "model call" and s.parent_id == steps[0].span_id]
    assert model.attributes["convlog.model"] == "openai/gpt-4o-mini"
    saves = [s for s in spans if s.name == "log transaction" and s.trace_id == turn.trace_id]
    assert saves and all(s.attributes["events"] >= 1 for s in saves)
    assert {s.trace_id for s in (turn, request, model, *steps)} == {turn.trace_id}
    assert {s.service for s in spans} == {"convlog-under-test"}
