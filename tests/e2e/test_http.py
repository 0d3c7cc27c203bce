"""The wire, byte for byte where Letta's clients care: statuses, error bodies, redirects,
the OpenAPI document and convlog's raw event history. Plain httpx, no SDK."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import subprocess
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.e2e.conftest import CLI, EMBEDDING, MODEL, REPO, SCRUBBED, start_server

T = TypeVar("T")

pytestmark = pytest.mark.e2e

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
BAD_HANDLE = "INVALID_ARGUMENT: The model handle should be in the format provider/model-name"


def create_agent(http: httpx.Client, human: str = "Name: Ada") -> str:
    response = http.post(
        "/v1/agents/",
        json={
            "name": f"e2e-http-{uuid.uuid4().hex[:8]}",
            "model": MODEL,
            "embedding": EMBEDDING,
            "memory_blocks": [
                {"label": "human", "value": human},
                {"label": "persona", "value": "I am Sam."},
            ],
        },
    )
    assert response.status_code == 200, response.text
    agent_id: str = response.json()["id"]
    return agent_id


def create_conversation(http: httpx.Client, agent_id: str, **body: Any) -> dict[str, Any]:
    response = http.post("/v1/conversations/", params={"agent_id": agent_id}, json=body)
    assert response.status_code == 200, response.text
    conversation: dict[str, Any] = response.json()
    return conversation


def conversations_of(http: httpx.Client, agent_id: str) -> list[str]:
    response = http.get("/v1/conversations/", params={"agent_id": agent_id, "limit": 1000})
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()]


def events(http: httpx.Client, conversation_id: str, **params: Any) -> list[dict[str, Any]]:
    response = http.get(f"/v1/conversations/{conversation_id}/events", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def assert_validation_error(response: httpx.Response) -> list[dict[str, Any]]:
    """Letta's 422: exactly ``{"trace_id": "", "detail": "<repr of the error list>"}``."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"trace_id", "detail"}
    assert body["trace_id"] == ""
    assert isinstance(body["detail"], str)
    errors = ast.literal_eval(body["detail"])  # a Python repr of pydantic's error list
    assert isinstance(errors, list) and errors
    for error in errors:
        assert {"type", "loc", "msg"} <= set(error)
    return errors


def assert_detail(response: httpx.Response, status: int, detail: str | None = None) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"}, body
    assert isinstance(body["detail"], str)
    if detail is not None:
        assert body["detail"] == detail
    text: str = body["detail"]
    return text


@pytest.fixture
def agent_id(http: httpx.Client) -> str:
    return create_agent(http)


# -- ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_id",
    [
        "nope",
        "conv-123",
        "conv-7D3F5A2E-1B4C-4D8E-9F6A-0C2B4E6D8F1A",  # upper-case hex
        "block-7d3f5a2e-1b4c-4d8e-9f6a-0c2b4e6d8f1a",
        "message-7d3f5a2e-1b4c-4d8e-9f6a-0c2b4e6d8f1a",
        "conv-7d3f5a2e-1b4c-4d8e-9f6a-0c2b4e6d8f1ax",
        "conv-7d3f5a2e1b4c4d8e9f6a0c2b4e6d8f1a",
        "conv-7d3f5a2e-1b4c-4d8e-9f6a-0c2b4e6d8f1",
    ],
)
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/messages"), ("GET", "/events")],
)
def test_malformed_id_is_422(http: httpx.Client, bad_id: str, method: str, suffix: str) -> None:
    body = {"summary": "x"} if method == "PATCH" else None
    response = http.request(method, f"/v1/conversations/{bad_id}{suffix}", json=body)
    errors = assert_validation_error(response)
    assert errors[0]["loc"] == ("path", "conversation_id")
    assert errors[0]["input"] == bad_id


@pytest.mark.parametrize(
    "unknown",
    [
        "conv-00000000-0000-0000-0000-000000000000",  # the nil UUID: well-formed (decisions §6)
        "conv-6ba7b810-9dad-11d1-80b4-00c04fd430c8",  # a version-1 UUID
        "conv-7d3f5a2e-1b4c-4d8e-9f6a-0c2b4e6d8f1a",
        "default",
    ],
)
def test_unknown_well_formed_conversation_is_404_everywhere(
    http: httpx.Client, unknown: str
) -> None:
    assert_detail(http.get(f"/v1/conversations/{unknown}"), 404)
    assert_detail(http.patch(f"/v1/conversations/{unknown}", json={"summary": "x"}), 404)
    assert_detail(http.delete(f"/v1/conversations/{unknown}"), 404)
    # decisions §8: message listing included (Letta would answer []).
    assert_detail(http.get(f"/v1/conversations/{unknown}/messages"), 404)
    assert_detail(http.get(f"/v1/conversations/{unknown}/events"), 404)


def test_not_found_detail_names_the_conversation(http: httpx.Client) -> None:
    unknown = f"conv-{uuid.uuid4()}"
    detail = assert_detail(http.get(f"/v1/conversations/{unknown}"), 404)
    assert detail.startswith("Conversation not found")
    assert unknown in detail


def test_agent_id_on_conversation_item_routes_is_404(http: httpx.Client, agent_id: str) -> None:
    assert_detail(http.get(f"/v1/conversations/{agent_id}"), 404)
    assert_detail(http.patch(f"/v1/conversations/{agent_id}", json={"summary": "x"}), 404)
    assert_detail(http.delete(f"/v1/conversations/{agent_id}"), 404)


def test_unknown_agent_direct_id_is_404(http: httpx.Client) -> None:
    unknown = f"agent-{uuid.uuid4()}"
    assert_detail(http.get(f"/v1/conversations/{unknown}/messages"), 404, "Agent not found")


# -- create --------------------------------------------------------------------------------


def test_create_without_agent_id_is_422(http: httpx.Client) -> None:
    errors = assert_validation_error(http.post("/v1/conversations/", json={}))
    assert errors[0]["type"] == "missing"
    assert errors[0]["loc"] == ("query", "agent_id")


@pytest.mark.parametrize(
    "unknown_agent",
    [
        "agent-7d3f5a2e-1b4c-4d8e-9f6a-0c2b4e6d8f1a",
        "agent-00000000-0000-0000-0000-000000000000",
        "nope",
    ],
)
def test_create_for_unknown_agent_is_404(http: httpx.Client, unknown_agent: str) -> None:
    response = http.post("/v1/conversations/", params={"agent_id": unknown_agent}, json={})
    assert response.status_code == 404
    assert response.json() == {"detail": "Agent not found"}


def test_create_response_shape(http: httpx.Client, agent_id: str) -> None:
    response = http.post(
        "/v1/conversations/", params={"agent_id": agent_id}, json={"summary": "hello"}
    )
    assert response.status_code == 200
    body = response.json()
    expected_keys = {
        "id",
        "agent_id",
        "summary",
        "in_context_message_ids",
        "isolated_block_ids",
        "model",
        "model_settings",
        "created_by_id",
        "last_updated_by_id",
        "created_at",
        "updated_at",
    }
    assert expected_keys <= set(body)
    assert re.fullmatch(f"conv-{UUID}", body["id"])
    assert body["agent_id"] == agent_id
    assert body["summary"] == "hello"
    assert body["model"] is None and body["model_settings"] is None
    assert body["isolated_block_ids"] == []
    [message_id] = body["in_context_message_ids"]
    assert re.fullmatch(f"message-{UUID}", message_id)
    datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))


def test_create_with_empty_and_null_body(http: httpx.Client, agent_id: str) -> None:
    for content in (b"", b"null", b"{}"):
        response = http.post(
            "/v1/conversations/",
            params={"agent_id": agent_id},
            content=content,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 200, (content, response.text)


def test_unknown_body_fields_are_ignored(http: httpx.Client, agent_id: str) -> None:
    body = {"summary": "s", "agent_id": "ignored", "hidden": True, "description": "x"}
    response = http.post("/v1/conversations/", params={"agent_id": agent_id}, json=body)
    assert response.status_code == 200, response.text
    conversation = response.json()
    assert conversation["summary"] == "s"
    assert conversation["agent_id"] == agent_id


@pytest.mark.parametrize("handle", ["nope", "/model", "provider/", "/"])
def test_bad_model_handle_is_400_and_writes_nothing(
    http: httpx.Client, agent_id: str, handle: str
) -> None:
    before = conversations_of(http, agent_id)
    response = http.post(
        "/v1/conversations/", params={"agent_id": agent_id}, json={"model": handle}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": BAD_HANDLE}
    assert conversations_of(http, agent_id) == before


def test_good_model_handle_is_kept(http: httpx.Client, agent_id: str) -> None:
    conversation = create_conversation(
        http, agent_id, model="openai/gpt-4o", model_settings={"provider_type": "openai"}
    )
    assert conversation["model"] == "openai/gpt-4o"
    assert conversation["model_settings"] == {"provider_type": "openai"}


def test_unknown_isolated_block_label_is_400_and_writes_nothing(
    http: httpx.Client, agent_id: str
) -> None:
    first = create_conversation(http, agent_id)
    # A write that touches one stream only marks the log's head before and after.
    assert http.patch(f"/v1/conversations/{first['id']}", json={"summary": "a"}).status_code == 200
    last_position = events(http, first["id"])[-1]["position"]

    response = http.post(
        "/v1/conversations/",
        params={"agent_id": agent_id},
        json={"isolated_block_labels": ["human", "nope"]},
    )
    assert response.status_code == 400
    assert response.json() == {
        "detail": f"INVALID_ARGUMENT: Block with label 'nope' not found on agent '{agent_id}'"
    }
    bad_model = http.post(
        "/v1/conversations/", params={"agent_id": agent_id}, json={"model": "nope"}
    )
    assert bad_model.status_code == 400
    no_agent = http.post("/v1/conversations/", params={"agent_id": f"agent-{uuid.uuid4()}"})
    assert no_agent.status_code == 404
    invalid = http.post(
        "/v1/conversations/",
        params={"agent_id": agent_id},
        json={"isolated_block_labels": "human"},
    )
    assert invalid.status_code == 422

    assert conversations_of(http, agent_id) == [first["id"]]
    # Nothing reached the log: the next write is the very next global position.
    assert http.patch(f"/v1/conversations/{first['id']}", json={"summary": "b"}).status_code == 200
    assert events(http, first["id"])[-1]["position"] == last_position + 1


@pytest.mark.parametrize(
    "body",
    [b"{", b"not json", b'{"summary": "x",}', b"\xff\xfe"],
)
def test_invalid_json_body_is_422(http: httpx.Client, agent_id: str, body: bytes) -> None:
    headers = {"content-type": "application/json"}
    before = conversations_of(http, agent_id)
    create = http.post(
        "/v1/conversations/", params={"agent_id": agent_id}, content=body, headers=headers
    )
    errors = assert_validation_error(create)
    assert errors[0]["type"] == "json_invalid"
    assert conversations_of(http, agent_id) == before

    conversation = create_conversation(http, agent_id, summary="kept")
    patch = http.patch(f"/v1/conversations/{conversation['id']}", content=body, headers=headers)
    assert_validation_error(patch)
    assert http.get(f"/v1/conversations/{conversation['id']}").json()["summary"] == "kept"


def test_wrong_body_types_are_422(http: httpx.Client, agent_id: str) -> None:
    bodies: tuple[object, ...] = ({"summary": 5}, {"isolated_block_labels": [1]}, [], "text")
    for body in bodies:
        response = http.post("/v1/conversations/", params={"agent_id": agent_id}, json=body)
        assert_validation_error(response)


@pytest.mark.parametrize("raw", [b'{"summary": "a\\u0000b"}', b'{"summary": "\\ud800"}'])
def test_unstorable_strings_are_422(http: httpx.Client, agent_id: str, raw: bytes) -> None:
    before = conversations_of(http, agent_id)
    response = http.post(
        "/v1/conversations/",
        params={"agent_id": agent_id},
        content=raw,
        headers={"content-type": "application/json"},
    )
    errors = assert_validation_error(response)
    assert errors[0]["loc"] == ("body", "summary")
    assert conversations_of(http, agent_id) == before
    query = http.get("/v1/conversations/", params={"summary_search": "a\u0000b"})
    assert_validation_error(query)


def test_malformed_user_id_header_is_400(http: httpx.Client, agent_id: str) -> None:
    response = http.post(
        "/v1/conversations/",
        params={"agent_id": agent_id},
        json={},
        headers={"user_id": "user-not-a-uuid"},
    )
    assert response.status_code == 400
    assert conversations_of(http, agent_id) == []


# -- update / delete -----------------------------------------------------------------------


def test_patch_without_body_is_422(http: httpx.Client, agent_id: str) -> None:
    conversation = create_conversation(http, agent_id, summary="before")
    history = events(http, conversation["id"])
    errors = assert_validation_error(http.patch(f"/v1/conversations/{conversation['id']}"))
    assert errors[0]["type"] == "missing"
    assert errors[0]["loc"] == ("body",)
    assert events(http, conversation["id"]) == history


def test_patch_with_bad_model_is_400_and_writes_nothing(http: httpx.Client, agent_id: str) -> None:
    conversation = create_conversation(http, agent_id, summary="before")
    history = events(http, conversation["id"])
    response = http.patch(
        f"/v1/conversations/{conversation['id']}", json={"model": "nope", "summary": "after"}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": BAD_HANDLE}
    assert events(http, conversation["id"]) == history
    assert http.get(f"/v1/conversations/{conversation['id']}").json()["summary"] == "before"


def test_patch_null_does_not_clear(http: httpx.Client, agent_id: str) -> None:
    conversation = create_conversation(http, agent_id, summary="keep", model="openai/gpt-4o")
    response = http.patch(
        f"/v1/conversations/{conversation['id']}", json={"summary": None, "model": None}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"] == "keep"
    assert body["model"] == "openai/gpt-4o"


def test_delete_returns_null_then_404(http: httpx.Client, agent_id: str) -> None:
    conversation = create_conversation(http, agent_id)
    first = http.delete(f"/v1/conversations/{conversation['id']}")
    assert first.status_code == 200
    assert first.content.strip() == b"null"
    assert first.json() is None
    second = http.delete(f"/v1/conversations/{conversation['id']}")
    detail = assert_detail(second, 404)
    assert detail.startswith("Conversation not found")
    assert_detail(http.get(f"/v1/conversations/{conversation['id']}"), 404)
    assert_detail(http.get(f"/v1/conversations/{conversation['id']}/messages"), 404)


# -- listing -------------------------------------------------------------------------------


def test_unknown_message_cursor_is_400(http: httpx.Client, agent_id: str) -> None:
    conversation = create_conversation(http, agent_id)
    other = create_conversation(http, agent_id)
    foreign = other["in_context_message_ids"][0]
    url = f"/v1/conversations/{conversation['id']}/messages"
    for cursor in (f"message-{uuid.uuid4()}", foreign, "garbage"):
        for key in ("after", "before"):
            assert_detail(http.get(url, params={key: cursor}), 400)
    # The conversation's own message is a fine cursor (nothing after it).
    own = conversation["in_context_message_ids"][0]
    response = http.get(url, params={"after": own})
    assert response.status_code == 200
    assert response.json() == []


def test_unknown_conversation_cursor_is_400(http: httpx.Client, agent_id: str) -> None:
    for cursor in (f"conv-{uuid.uuid4()}", "garbage"):
        response = http.get("/v1/conversations/", params={"agent_id": agent_id, "after": cursor})
        assert_detail(response, 400)


@pytest.mark.parametrize(
    "params",
    [
        {"order": "sideways"},
        {"order_by": "name"},
        {"limit": "-1"},
        {"limit": "many"},
    ],
)
def test_bad_list_query_is_422(http: httpx.Client, params: dict[str, str]) -> None:
    assert_validation_error(http.get("/v1/conversations/", params=params))


def test_bad_message_list_query_is_422(http: httpx.Client, agent_id: str) -> None:
    conversation = create_conversation(http, agent_id)
    url = f"/v1/conversations/{conversation['id']}/messages"
    for params in ({"order": "up"}, {"limit": "-5"}, {"order_by": "id"}):
        assert_validation_error(http.get(url, params=params))


def test_listed_message_shape(http: httpx.Client, agent_id: str) -> None:
    conversation = create_conversation(http, agent_id)
    response = http.get(f"/v1/conversations/{conversation['id']}/messages")
    assert response.status_code == 200
    [item] = response.json()
    expected = {
        "id",
        "date",
        "name",
        "message_type",
        "otid",
        "sender_id",
        "step_id",
        "is_err",
        "seq_id",
        "run_id",
        "content",
        "role",
    }
    assert expected <= set(item)
    assert item["message_type"] == "system_message"
    assert item["role"] == "system"
    assert item["is_err"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", item["date"])
    assert "Name: Ada" in item["content"]


def test_collection_without_trailing_slash_redirects(http: httpx.Client) -> None:
    response = http.get("/v1/conversations")
    assert response.status_code == 307
    assert response.headers["location"].endswith("/v1/conversations/")
    post = http.post("/v1/conversations", params={"agent_id": "x"}, json={})
    assert post.status_code == 307
    assert "/v1/conversations/" in post.headers["location"]


def test_health(http: httpx.Client) -> None:
    response = http.get("/v1/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert isinstance(body["version"], str) and body["version"]


def test_openapi_document(http: httpx.Client) -> None:
    response = http.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] and doc["info"]["version"]
    paths = doc["paths"]
    expected = {
        "/v1/conversations/": {"get": "list_conversations", "post": "create_conversation"},
        "/v1/conversations/{conversation_id}": {
            "get": "retrieve_conversation",
            "patch": "update_conversation",
            "delete": "delete_conversation",
        },
        "/v1/conversations/{conversation_id}/messages": {
            "get": "list_conversation_messages",
            "post": "send_conversation_message",
        },
        "/v1/conversations/{conversation_id}/events": {"get": "list_conversation_events"},
        "/v1/conversations/{conversation_id}/audit": {"get": "audit_conversation"},
    }
    for path, operations in expected.items():
        assert path in paths, path
        for method, operation_id in operations.items():
            assert paths[path][method]["operationId"] == operation_id
    operation_ids = []
    schemas = doc["components"]["schemas"]
    for path, item in paths.items():
        assert path.startswith("/"), path
        for method, operation in item.items():
            assert method in {"get", "post", "patch", "delete", "put"}
            operation_ids.append(operation["operationId"])
            assert "200" in operation["responses"]
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), (path, method)
    assert len(operation_ids) == len(set(operation_ids))
    # Every $ref resolves inside the document.
    refs = re.findall(r'"\$ref":\s*"#/components/schemas/([^"]+)"', response.text)
    assert refs
    assert set(refs) <= set(schemas)
    create = paths["/v1/conversations/"]["post"]
    agent_param = next(p for p in create["parameters"] if p["name"] == "agent_id")
    assert agent_param["in"] == "query" and agent_param["required"] is True


# -- the event log -------------------------------------------------------------------------


def test_events_are_the_conversations_history_in_order(http: httpx.Client, agent_id: str) -> None:
    conversation = create_conversation(http, agent_id, summary="one")
    conversation_id = conversation["id"]
    assert http.patch(f"/v1/conversations/{conversation_id}", json={"summary": "two"}).is_success
    assert http.patch(f"/v1/conversations/{conversation_id}", json={"model": "a/b"}).is_success

    history = events(http, conversation_id)
    assert [e["version"] for e in history] == [1, 2, 3, 4]
    assert [e["type"] for e in history] == [
        "convlog.Conversation.Created",
        "convlog.Conversation.MessageAppended",
        "convlog.Conversation.Updated",
        "convlog.Conversation.Updated",
    ]
    positions = [e["position"] for e in history]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    # Created and its system message were one atomic write.
    assert positions[1] == positions[0] + 1
    stamps = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for e in history]
    assert stamps == sorted(stamps)
    created, appended = history[0]["payload"], history[1]["payload"]
    assert created["agent_id"] == agent_id
    assert created["summary"] == "one"
    assert appended["message_id"] == conversation["in_context_message_ids"][0]
    assert appended["role"] == "system"
    assert "Name: Ada" in appended["content"]
    assert history[2]["payload"]["changes"] == {"summary": "two"}
    assert history[3]["payload"]["changes"] == {"model": "a/b"}

    # Paging by stream version.
    assert events(http, conversation_id, limit=2) == history[:2]
    assert events(http, conversation_id, after=2) == history[2:]
    assert events(http, conversation_id, after=1, limit=1) == [history[1]]
    assert events(http, conversation_id, after=4) == []
    assert events(http, conversation_id, after=100) == []
    for params in ({"after": -1}, {"limit": 0}, {"limit": "x"}):
        assert_validation_error(
            http.get(f"/v1/conversations/{conversation_id}/events", params=params)
        )

    # Once deleted, the conversation is gone everywhere, its events included (decisions §8).
    assert http.delete(f"/v1/conversations/{conversation_id}").status_code == 200
    assert_detail(http.get(f"/v1/conversations/{conversation_id}/events"), 404)


def _client_side_hash(event: dict[str, Any]) -> str:
    """The recipe EventOut.hash documents, done by a client with hashlib only."""
    topic = event["type"].encode()
    digest = hashlib.sha256(bytes.fromhex(event["previous_hash"]))
    digest.update(uuid.UUID(event["stream_id"]).bytes)
    digest.update(event["version"].to_bytes(8, "big"))
    digest.update(len(topic).to_bytes(4, "big") + topic)
    digest.update(event["stored_state"].encode())
    return digest.hexdigest()


def test_a_client_can_check_the_events_hashes(http: httpx.Client, agent_id: str) -> None:
    conversation_id = create_conversation(http, agent_id, summary="chained")["id"]
    for summary in ("a", "b", "c"):
        assert http.patch(f"/v1/conversations/{conversation_id}", json={"summary": summary})
    history = events(http, conversation_id)
    assert history[0]["previous_hash"] == "0" * 64
    for before, event in zip([None, *history], history, strict=False):
        assert event["hash"] == _client_side_hash(event)
        if before is not None:
            assert event["previous_hash"] == before["hash"]
        assert json.loads(event["stored_state"])["by"] == event["by"]
    audit = http.get(f"/v1/conversations/{conversation_id}/audit")
    assert audit.status_code == 200, audit.text
    assert audit.json()["verified"] is True and audit.json()["problem"] is None
    assert audit.json()["checked"] == len(history)
    assert audit.json()["position"] == history[-1]["position"]
    assert_detail(http.get(f"/v1/conversations/conv-{uuid.uuid4()}/audit"), 404)


def test_agent_own_context_events(http: httpx.Client, agent_id: str) -> None:
    history = events(http, agent_id)
    assert [e["type"] for e in history] == [
        "convlog.Conversation.Created",
        "convlog.Conversation.MessageAppended",
    ]
    assert history[0]["payload"]["agent_id"] == agent_id
    listed = http.get(f"/v1/conversations/{agent_id}/messages").json()
    assert [m["id"] for m in listed] == [history[1]["payload"]["message_id"]]


# -- read your writes ----------------------------------------------------------------------


def test_read_your_writes(http: httpx.Client, agent_id: str) -> None:
    """Every answer already reflects the request before it: no sleeping, no polling."""
    seen: list[str] = []
    for i in range(15):
        conversation = create_conversation(http, agent_id, summary=f"rw-{i}")
        cid = conversation["id"]
        seen.insert(0, cid)
        assert conversations_of(http, agent_id) == seen
        assert http.get(f"/v1/conversations/{cid}").json()["summary"] == f"rw-{i}"
        messages = http.get(f"/v1/conversations/{cid}/messages").json()
        assert [m["id"] for m in messages] == conversation["in_context_message_ids"]

        patched = http.patch(f"/v1/conversations/{cid}", json={"summary": f"rw-{i}-b"})
        assert patched.json()["summary"] == f"rw-{i}-b"
        listed = http.get(
            "/v1/conversations/", params={"agent_id": agent_id, "summary_search": f"rw-{i}-b"}
        ).json()
        assert [c["id"] for c in listed] == [cid]

        if i % 3 == 0:
            assert http.delete(f"/v1/conversations/{cid}").status_code == 200
            seen.remove(cid)
            assert conversations_of(http, agent_id) == seen
            assert http.get(f"/v1/conversations/{cid}").status_code == 404


def test_block_update_is_read_back_immediately(http: httpx.Client, agent_id: str) -> None:
    for i in range(5):
        value = f"Name: Ada #{i}"
        url = f"/v1/agents/{agent_id}/core-memory/blocks/human"
        response = http.patch(url, json={"value": value})
        assert response.status_code == 200, response.text
        assert response.json()["value"] == value
        assert http.get(url).json()["value"] == value
        conversation = create_conversation(http, agent_id)
        [system] = http.get(f"/v1/conversations/{conversation['id']}/messages").json()
        assert f"\n{value}\n" in system["content"]


def test_unknown_route_and_method_statuses(http: httpx.Client) -> None:
    missing = http.get("/v1/no-such-route")
    assert missing.status_code == 404
    not_allowed = http.put(f"/v1/conversations/conv-{uuid.uuid4()}", json={})
    assert not_allowed.status_code == 405


def test_routing_errors_have_letta_bodies(http: httpx.Client) -> None:
    missing = http.get("/v1/no-such-route")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}
    not_allowed = http.put(f"/v1/conversations/conv-{uuid.uuid4()}", json={})
    assert not_allowed.status_code == 405
    assert not_allowed.json() == {"detail": "Method Not Allowed"}


# -- concurrency ---------------------------------------------------------------------------


def _parallel(server_url: str, calls: Sequence[Callable[[httpx.Client], T]]) -> list[T]:
    """Run each call on its own connection, all released at once."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[httpx.Client], T]) -> T:
        with httpx.Client(base_url=server_url, timeout=30.0) as own:
            start.wait()
            return call(own)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_concurrent_updates_are_all_kept(
    http: httpx.Client, server_url: str, agent_id: str
) -> None:
    conversation = create_conversation(http, agent_id)
    cid = conversation["id"]
    summaries = [f"s{i}" for i in range(12)]

    def patch_summary(summary: str) -> Callable[[httpx.Client], httpx.Response]:
        return lambda c: c.patch(f"/v1/conversations/{cid}", json={"summary": summary})

    responses = _parallel(server_url, [patch_summary(s) for s in summaries])
    assert [r.status_code for r in responses] == [200] * len(summaries)
    history = events(http, cid)
    assert [e["version"] for e in history] == list(range(1, len(summaries) + 3))
    applied = [e["payload"]["changes"]["summary"] for e in history[2:]]
    assert sorted(applied) == sorted(summaries)
    # The view agrees with the last event of the log.
    assert http.get(f"/v1/conversations/{cid}").json()["summary"] == applied[-1]


def test_concurrent_creates_are_all_listed(
    http: httpx.Client, server_url: str, agent_id: str
) -> None:
    def create_numbered(i: int) -> Callable[[httpx.Client], httpx.Response]:
        return lambda c: c.post(
            "/v1/conversations/", params={"agent_id": agent_id}, json={"summary": f"p{i}"}
        )

    responses = _parallel(server_url, [create_numbered(i) for i in range(12)])
    assert [r.status_code for r in responses] == [200] * 12
    created = {r.json()["id"] for r in responses}
    assert len(created) == 12
    assert set(conversations_of(http, agent_id)) == created


def test_concurrent_deletes_succeed_once(
    http: httpx.Client, server_url: str, agent_id: str
) -> None:
    cid = create_conversation(http, agent_id)["id"]
    responses = _parallel(
        server_url, [lambda c: c.delete(f"/v1/conversations/{cid}") for _ in range(8)]
    )
    assert sorted(r.status_code for r in responses) == [200] + [404] * 7
    assert http.get(f"/v1/conversations/{cid}").status_code == 404


def test_no_conversation_outlives_its_agent(http: httpx.Client, server_url: str) -> None:
    """Creates racing an agent delete: once both are done, every conversation of the deleted
    agent is gone (Letta: conversations cascade with the agent; a late create fails)."""
    for _ in range(5):
        agent_id = create_agent(http)
        deleted = threading.Event()

        def keep_creating(
            c: httpx.Client, agent_id: str = agent_id, deleted: threading.Event = deleted
        ) -> list[str]:
            made = []
            for _ in range(200):
                r = c.post("/v1/conversations/", params={"agent_id": agent_id}, json={})
                if r.status_code == 200:
                    made.append(r.json()["id"])
                else:
                    assert r.status_code == 404, r.text
                    break
                if deleted.is_set():
                    break
            return made

        def delete_agent(
            c: httpx.Client, agent_id: str = agent_id, deleted: threading.Event = deleted
        ) -> list[str]:
            # Let a few creates through first, so the delete lands among them.
            for _ in range(500):
                if len(conversations_of(c, agent_id)) >= 4:
                    break
            assert c.delete(f"/v1/agents/{agent_id}").status_code == 200
            deleted.set()
            return []

        results = _parallel(server_url, [keep_creating] * 8 + [delete_agent])
        made = [cid for batch in results for cid in batch]
        survivors = [cid for cid in made if http.get(f"/v1/conversations/{cid}").status_code != 404]
        assert survivors == [], f"{len(survivors)} of {len(made)} conversations outlived the agent"
        assert conversations_of(http, agent_id) == []


# -- durability: the log is the source of truth ---------------------------------------------


def _snapshot(c: httpx.Client, agent_id: str, conversation_ids: list[str]) -> dict[str, Any]:
    """Everything a client can read about this agent's conversations."""
    found: dict[str, Any] = {
        "list": c.get("/v1/conversations/", params={"agent_id": agent_id}).json(),
        "own": c.get(f"/v1/conversations/{agent_id}/messages").json(),
        "block": c.get(f"/v1/agents/{agent_id}/core-memory/blocks/human").json(),
    }
    for cid in conversation_ids:
        found[cid] = [
            c.get(f"/v1/conversations/{cid}").json(),
            c.get(f"/v1/conversations/{cid}/messages", params={"order": "asc"}).json(),
            c.get(f"/v1/conversations/{cid}/events").json(),
        ]
    return found


def test_restart_and_rebuild_give_the_same_answers(tmp_path: Path) -> None:
    """Stop the server, rebuild every projection from the log with the CLI, start again on
    the same files: every answer is unchanged."""
    env = {"CONVLOG_DATA_DIR": str(tmp_path / "data")}
    with start_server(env, tmp_path / "first") as url, httpx.Client(base_url=url) as c:
        agent_id = create_agent(c)
        kept = create_conversation(c, agent_id, summary="kept")["id"]
        gone = create_conversation(c, agent_id, summary="gone")["id"]
        assert c.patch(f"/v1/conversations/{kept}", json={"summary": "kept!"}).is_success
        assert c.delete(f"/v1/conversations/{gone}").is_success
        block_url = f"/v1/agents/{agent_id}/core-memory/blocks/human"
        assert c.patch(block_url, json={"value": "Name: Grace"}).is_success
        late = create_conversation(c, agent_id, isolated_block_labels=["human"])["id"]
        before = _snapshot(c, agent_id, [kept, late])
        assert [x["id"] for x in before["list"]] == [late, kept]
        assert c.get(f"/v1/conversations/{gone}").status_code == 404

    rebuild = subprocess.run(
        [*CLI, "projections", "rebuild"],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k not in SCRUBBED} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rebuild.returncode == 0, rebuild.stderr
    summaries = [json.loads(line) for line in rebuild.stdout.splitlines() if line.startswith("{")]
    rebuilt = {s["projection"]: s["events"] for s in summaries}
    for name in ("messages", "conversations", "agents"):
        assert rebuilt.get(name, 0) > 0, summaries

    with start_server(env, tmp_path / "second") as url, httpx.Client(base_url=url) as c:
        assert _snapshot(c, agent_id, [kept, late]) == before
        assert c.get(f"/v1/conversations/{gone}").status_code == 404
        # And it keeps working where it left off.
        after = create_conversation(c, agent_id)
        assert (
            "Name: Grace" in c.get(f"/v1/conversations/{after['id']}/messages").json()[0]["content"]
        )
        assert conversations_of(c, agent_id) == [after["id"], late, kept]
