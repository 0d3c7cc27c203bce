"""Letta's agent fields on create and update: applied in their newer form, or refused (422,
nothing written) when they ask for what convlog does not do; and a message read by its id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.agent_schemas import UNSUPPORTED_AGENT_FIELDS, UNSUPPORTED_ON_CREATE
from api.app import create_app
from runtime.bootstrap import build
from runtime.settings import Settings

AGENT = {"name": "a", "model": "openai/gpt-4o-mini"}
# A value that asks for something, for each field (a list, an object, true or a number).
ASKING: dict[str, Any] = {
    "source_ids": ["source-1"],
    "folder_ids": ["folder-1"],
    "block_ids": ["block-1"],
    "tool_exec_environment_variables": {"A": "1"},
    "secrets": {"A": "1"},
    "identity_ids": ["identity-1"],
    "reasoning": True,
    "response_format": {"type": "json_object"},
    "enable_sleeptime": True,
    "max_files_open": 3,
    "per_file_view_window_char_limit": 100,
    "message_buffer_autoclear": True,
    "initial_message_sequence": [{"role": "user", "content": "hi"}],
    "include_multi_agent_tools": True,
    "include_default_source": True,
    "embedding_chunk_size": 300,
    "max_reasoning_tokens": 1000,
    "enable_reasoner": True,
    "from_template": "t",
    "template": True,
    "memory_variables": {"a": "b"},
    "template_id": "t",
    "base_template_id": "t",
}


@pytest.fixture
def http() -> Iterator[TestClient]:
    services = build(Settings(database_url="memory://"))
    with TestClient(create_app(services), base_url="http://localhost") as client:
        yield client
    services.close()


def test_every_refused_field_has_a_case() -> None:
    assert set(ASKING) == {*UNSUPPORTED_AGENT_FIELDS, *UNSUPPORTED_ON_CREATE}


@pytest.mark.parametrize("field", sorted({*UNSUPPORTED_AGENT_FIELDS, *UNSUPPORTED_ON_CREATE}))
def test_create_refuses_what_it_would_not_do_and_writes_nothing(
    http: TestClient, field: str
) -> None:
    answer = http.post("/v1/agents/", json={**AGENT, field: ASKING[field]})
    assert answer.status_code == 422, answer.text
    assert field in answer.text and "does not support" in answer.text
    assert http.get("/v1/agents/count").json() == 0


def test_nothing_values_are_no_request(http: TestClient) -> None:
    """What Letta Code sends on create: empty lists and false flags ask for nothing."""
    body = {
        **AGENT,
        "initial_message_sequence": [],
        "enable_sleeptime": False,
        "include_base_tool_rules": False,
        "hidden": False,
        "block_ids": [],
    }
    assert http.post("/v1/agents/", json=body).status_code == 200


def test_legacy_max_tokens_and_parallel_tool_calls_become_model_settings(
    http: TestClient,
) -> None:
    body = {**AGENT, "max_tokens": 1234, "parallel_tool_calls": False}
    agent = http.post("/v1/agents/", json=body).json()
    assert agent["model_settings"]["max_output_tokens"] == 1234
    assert agent["model_settings"]["parallel_tool_calls"] is False
    assert agent["llm_config"]["max_tokens"] == 1234
    # Letta Code's update: both forms, agreeing.
    update = {"max_tokens": 28000, "model_settings": {"max_output_tokens": 28000}}
    changed = http.patch(f"/v1/agents/{agent['id']}", json=update)
    assert changed.status_code == 200, changed.text
    assert changed.json()["llm_config"]["max_tokens"] == 28000


def test_legacy_and_new_forms_must_agree(http: TestClient) -> None:
    agent = http.post("/v1/agents/", json=AGENT).json()
    update = {"max_tokens": 10, "model_settings": {"max_output_tokens": 20}}
    answer = http.patch(f"/v1/agents/{agent['id']}", json=update)
    assert answer.status_code == 422
    assert "contradicts model_settings.max_output_tokens" in answer.text
    assert http.get(f"/v1/agents/{agent['id']}").json()["llm_config"]["max_tokens"] is None


def test_a_message_by_its_id_in_a_conversation_and_in_an_agents_own_context(
    http: TestClient,
) -> None:
    agent = http.post("/v1/agents/", json={"name": "m", "model": "convlog/builtin"}).json()["id"]
    conversation = http.post("/v1/conversations/", params={"agent_id": agent}).json()["id"]
    for path in (conversation, agent):
        sent = {"input": f"hello {path[:4]}", "streaming": False}
        assert http.post(f"/v1/conversations/{path}/messages", json=sent).status_code == 200
        listed = http.get(f"/v1/conversations/{path}/messages").json()
        for item in listed:
            assert http.get(f"/v1/messages/{item['id']}").json() == [item]
    unknown = "message-00000000-0000-4000-8000-000000000000"
    answer = http.get(f"/v1/messages/{unknown}")
    assert (answer.status_code, answer.json()) == (
        404,
        {"detail": f"Message with id {unknown} not found."},
    )
    assert http.get("/v1/messages/conv-x").status_code == 422


def test_hidden_agents_are_left_out_of_lists_and_counts(http: TestClient) -> None:
    shown = http.post("/v1/agents/", json=AGENT).json()
    hidden = http.post("/v1/agents/", json={**AGENT, "name": "h", "hidden": True}).json()
    subagent = http.post("/v1/agents/", json={**AGENT, "tags": ["role:subagent"]}).json()
    assert (hidden["hidden"], subagent["hidden"], shown["hidden"]) == (True, True, None)
    assert [a["id"] for a in http.get("/v1/agents/").json()] == [shown["id"]]
    everyone = http.get("/v1/agents/", params={"show_hidden_agents": True}).json()
    assert {a["id"] for a in everyone} == {shown["id"], hidden["id"], subagent["id"]}
    assert http.get("/v1/agents/count").json() == 1
    assert http.get("/v1/agents/count", params={"show_hidden_agents": True}).json() == 3
    assert http.get(f"/v1/agents/{hidden['id']}").status_code == 200
    shown_again = http.patch(f"/v1/agents/{hidden['id']}", json={"hidden": False})
    assert shown_again.json()["hidden"] is False
    assert http.get("/v1/agents/count").json() == 2


def test_model_settings_that_are_not_an_object_are_a_422(http: TestClient) -> None:
    body = {**AGENT, "model_settings": [None, None], "max_tokens": 5}
    assert http.post("/v1/agents/", json=body).status_code == 422
