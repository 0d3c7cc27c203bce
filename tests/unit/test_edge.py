"""What the HTTP edge refuses before anything is written: oversized, slow, non-JSON, too deep,
unprintable bodies; pages past the limit; foreign Hosts and Origins."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.config import EdgeConfig, Limits
from service.services import Services

AGENT = {"name": "a", "model": "openai/gpt-4o-mini", "embedding": "openai/text-embedding-3-small"}


def client_for(services: Services, edge: EdgeConfig) -> TestClient:
    return TestClient(create_app(services, edge), base_url="http://localhost")


@pytest.fixture
def http(services: Services) -> Iterator[TestClient]:
    with client_for(services, EdgeConfig()) as client:
        yield client


def agent_count(http: TestClient) -> int:
    return len(http.get("/v1/agents/").json())


def post_raw(http: TestClient, body: bytes, content_type: str = "application/json") -> int:
    response = http.post("/v1/agents/", content=body, headers={"content-type": content_type})
    return response.status_code


def nested(depth: int) -> dict[str, object]:
    """An agent body whose metadata nests ``depth`` containers in all (the body included)."""
    value: object = "leaf"
    for _ in range(depth - 1):
        value = {"k": value}
    return {**AGENT, "metadata": value}


def test_bodies_within_the_limits_are_served(http: TestClient) -> None:
    assert post_raw(http, json.dumps(nested(32)).encode()) == 200
    assert post_raw(http, json.dumps(AGENT).encode(), "application/json; charset=utf-8") == 200
    assert agent_count(http) == 2


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(nested(33)),
        "[" * 5000 + "]" * 5000,
        "[" * 100_000,
        '{"name": "a", "metadata": {"n": ' + "9" * 5000 + "}}",
        '{"name": "a", "metadata": {"n": 1' + "0" * 200 + ".5}}",
        '{"name": "a", "metadata": {"n": 1e999}}',
        '{"name": "a", "metadata": {"n": NaN}}',
        '{"name": "a", "metadata": {"n": -Infinity}}',
        '{"name": "a\\u0000"}',
        '{"name": "\\ud800"}',
        '{"name": "a", "metadata": {"n": ',
        "\xff\xfe",
    ],
    ids=[
        "depth-33",
        "array-5000-deep",
        "unclosed-100k-deep",
        "5000-digits",
        "long-float",
        "infinite",
        "nan",
        "minus-infinity",
        "nul",
        "lone-surrogate",
        "truncated",
        "not-utf8",
    ],
)
def test_bodies_that_cannot_be_kept_are_422_and_write_nothing(http: TestClient, body: str) -> None:
    response = http.post(
        "/v1/agents/",
        content=body.encode("utf-8", "surrogatepass"),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert agent_count(http) == 0


def test_long_strings_are_422(services: Services) -> None:
    edge = EdgeConfig(limits=Limits(text_chars=1000))
    with client_for(services, edge) as http:
        assert post_raw(http, json.dumps({**AGENT, "description": "x" * 1001}).encode()) == 422
        assert post_raw(http, json.dumps({**AGENT, "description": "x" * 1000}).encode()) == 200
        assert (
            "CONVLOG_MAX_TEXT_CHARS"
            in http.post("/v1/agents/", json={**AGENT, "system": "y" * 5000}).text
        )


def test_large_bodies_are_413(services: Services) -> None:
    edge = EdgeConfig(limits=Limits(body_bytes=2048))
    with client_for(services, edge) as http:
        big = json.dumps({**AGENT, "description": "x" * 3000}).encode()
        response = http.post(
            "/v1/agents/", content=big, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert "CONVLOG_MAX_BODY_BYTES" in response.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield big[:1500]
            yield big[1500:]

        chunked = http.post(
            "/v1/agents/", content=chunks(), headers={"content-type": "application/json"}
        )
        assert chunked.status_code == 413
        assert agent_count(http) == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_bodies_must_be_json(http: TestClient, content_type: str) -> None:
    response = http.post(
        "/v1/agents/", content=json.dumps(AGENT).encode(), headers={"content-type": content_type}
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]
    assert agent_count(http) == 0


@pytest.mark.parametrize(
    "path",
    ["/v1/agents/", "/v1/conversations/", "/v1/runs/", "/v1/blocks/", "/v1/tools/"],
)
def test_list_limits_stop_at_1000(http: TestClient, path: str) -> None:
    assert http.get(path, params={"limit": 1000}).status_code == 200
    assert http.get(path, params={"limit": 1001}).status_code == 422


def test_the_list_limit_setting_lowers_the_largest_page(services: Services) -> None:
    with client_for(services, EdgeConfig(limits=Limits(list_limit=10))) as http:
        assert http.get("/v1/agents/", params={"limit": 10}).status_code == 200
        refused = http.get("/v1/agents/", params={"limit": 11})
        assert refused.status_code == 422 and "CONVLOG_MAX_LIST_LIMIT" in refused.text


def test_hosts_outside_the_allow_list_are_refused(services: Services) -> None:
    edge = EdgeConfig(allowed_hosts=("localhost", "127.0.0.1", "[::1]"))
    with client_for(services, edge) as http:
        for host in ("localhost", "localhost:8283", "127.0.0.1:9", "[::1]:8283"):
            assert http.get("/v1/health/", headers={"host": host}).status_code == 200, host
        rebinding = http.get("/v1/agents/", headers={"host": "attacker.example:8283"})
        assert rebinding.status_code == 400
        assert "CONVLOG_ALLOWED_HOSTS" in rebinding.json()["detail"]
        # Every path, not only the API's routes.
        assert http.get("/nowhere", headers={"host": "attacker.example"}).status_code == 400


def test_foreign_origins_are_refused_and_allowed_ones_get_cors(services: Services) -> None:
    edge = EdgeConfig(cors_origins=("https://app.example",))
    with client_for(services, edge) as http:
        foreign = http.post("/v1/agents/", json=AGENT, headers={"origin": "https://evil.example"})
        assert foreign.status_code == 403
        assert "CONVLOG_CORS_ORIGINS" in foreign.json()["detail"]
        assert agent_count(http) == 0
        same = http.post("/v1/agents/", json=AGENT, headers={"origin": "http://localhost"})
        assert same.status_code == 200
        allowed = http.get("/v1/agents/", headers={"origin": "https://app.example"})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        preflight = http.options(
            "/v1/agents/",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert "access-control-allow-origin" in preflight.headers


def test_turns_agents_and_blocks_within_their_limits(services: Services) -> None:
    edge = EdgeConfig(limits=Limits(messages=3, blocks=2, block_chars=500))
    with client_for(services, edge) as http:
        blocks = [{"label": f"b{i}", "value": "v"} for i in range(3)]
        too_many = http.post("/v1/agents/", json={**AGENT, "memory_blocks": blocks})
        assert too_many.status_code == 422 and "CONVLOG_MAX_BLOCKS" in too_many.text
        big = [{"label": "b", "value": "x" * 501}]
        assert http.post("/v1/agents/", json={**AGENT, "memory_blocks": big}).status_code == 422
        huge_limit = [{"label": "b", "value": "x", "limit": 501}]
        assert (
            http.post("/v1/agents/", json={**AGENT, "memory_blocks": huge_limit}).status_code == 422
        )
        assert agent_count(http) == 0

        agent = http.post("/v1/agents/", json={**AGENT, "memory_blocks": blocks[:2]}).json()["id"]
        shared = http.post("/v1/blocks/", json={"label": "shared", "value": "s", "limit": 100})
        assert shared.status_code == 200
        assert http.post("/v1/blocks/", json={"label": "l", "value": "x" * 501}).status_code == 422
        full = http.patch(f"/v1/agents/{agent}/core-memory/blocks/attach/{shared.json()['id']}")
        assert full.status_code == 400 and "CONVLOG_MAX_BLOCKS" in full.text

        conversation = http.post("/v1/conversations/", params={"agent_id": agent}).json()["id"]
        four = [{"role": "user", "content": f"m{i}"} for i in range(4)]
        refused = http.post(f"/v1/conversations/{conversation}/messages", json={"messages": four})
        assert refused.status_code == 422 and "CONVLOG_MAX_MESSAGES" in refused.text
        listed = http.get(f"/v1/conversations/{conversation}/messages").json()
        assert [m["message_type"] for m in listed] == ["system_message"]
