"""``conversation_id=default`` with an ``agent_id``, and recompiling system messages, over raw
HTTP against the SQLite-backed server (the 1.7.10 SDK predates these parameters).
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.e2e.test_http import create_conversation

pytestmark = pytest.mark.e2e


def create_agent(http: httpx.Client, human: str = "Name: Ada") -> str:
    """An agent on the built-in model: this server has no provider configured."""
    response = http.post(
        "/v1/agents/",
        json={"model": "convlog/builtin", "memory_blocks": [{"label": "human", "value": human}]},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def test_default_with_an_agent_id_is_the_agents_own_context(http: httpx.Client) -> None:
    agent_id = create_agent(http)
    sent = http.post(
        "/v1/conversations/default/messages",
        json={"input": "hello", "agent_id": agent_id, "streaming": False},
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["stop_reason"]["stop_reason"] == "end_turn"
    by_default = http.get(
        "/v1/conversations/default/messages", params={"agent_id": agent_id, "order": "asc"}
    ).json()
    by_agent = http.get(f"/v1/conversations/{agent_id}/messages", params={"order": "asc"}).json()
    assert by_default == by_agent
    assert [m["message_type"] for m in by_default] == [
        "system_message",
        "user_message",
        "assistant_message",
    ]
    cancel = http.post("/v1/conversations/default/cancel", params={"agent_id": agent_id})
    assert cancel.status_code == 409
    compact = http.post(
        "/v1/conversations/default/compact",
        json={"agent_id": agent_id, "compaction_settings": {"mode": "all"}},
    )
    assert compact.status_code == 200, compact.text
    resumed = http.post("/v1/conversations/default/stream", json={"agent_id": agent_id})
    assert resumed.status_code == 400  # no active background run (Letta's answer)


def test_default_without_an_agent_id_is_an_unknown_conversation(http: httpx.Client) -> None:
    response = http.post("/v1/conversations/default/messages", json={"input": "hi"})
    assert response.status_code == 404
    bad = http.get("/v1/conversations/default/messages", params={"agent_id": "agent-nope"})
    assert bad.status_code == 422 and "agent_id" in bad.json()["detail"]
    unknown = http.get(
        "/v1/conversations/default/messages", params={"agent_id": f"agent-{uuid.uuid4()}"}
    )
    assert unknown.status_code == 404


def test_recompile_a_conversation_and_a_dry_run(http: httpx.Client) -> None:
    agent_id = create_agent(http, human="Name: Ada")
    conversation = create_conversation(http, agent_id)["id"]
    changed = http.patch(
        f"/v1/agents/{agent_id}/core-memory/blocks/human", json={"value": "Name: Ada Lovelace"}
    )
    assert changed.status_code == 200
    preview = http.post(f"/v1/conversations/{conversation}/recompile", params={"dry_run": True})
    assert preview.status_code == 200 and "Ada Lovelace" in preview.json()
    listed = http.get(f"/v1/conversations/{conversation}/messages", params={"order": "asc"})
    assert "Ada Lovelace" not in listed.json()[0]["content"]
    done = http.post(f"/v1/conversations/{conversation}/recompile")
    listed = http.get(f"/v1/conversations/{conversation}/messages", params={"order": "asc"})
    assert listed.json()[0]["content"] == done.json()
    default = http.post(
        "/v1/conversations/default/recompile",
        params={"dry_run": True},
        content=json.dumps({"agent_id": agent_id}),
        headers={"content-type": "application/json"},
    )
    assert default.status_code == 200 and "Ada Lovelace" in default.json()


def test_recompile_an_agent(http: httpx.Client) -> None:
    agent_id = create_agent(http)
    preview = http.post(f"/v1/agents/{agent_id}/recompile", params={"dry_run": True})
    assert preview.status_code == 200 and preview.json().startswith("<base_instructions>")
    refused = http.post(f"/v1/agents/{agent_id}/recompile", params={"update_timestamp": False})
    assert refused.status_code == 400 and "update_timestamp" in refused.json()["detail"]
    gone = http.post(f"/v1/agents/agent-{uuid.uuid4()}/recompile")
    assert gone.status_code == 404


def test_listing_takes_include_return_message_types(http: httpx.Client) -> None:
    agent_id = create_agent(http)
    http.post(f"/v1/conversations/{agent_id}/messages", json={"input": "hi", "streaming": False})
    listed = http.get(
        f"/v1/conversations/{agent_id}/messages",
        params=[("include_return_message_types", "assistant_message"), ("order", "asc")],
    ).json()
    assert [m["message_type"] for m in listed] == ["assistant_message"]
    bad = http.get(
        f"/v1/conversations/{agent_id}/messages", params={"include_return_message_types": "nope"}
    )
    assert bad.status_code == 422


def test_an_unconfigured_provider_is_never_answered_by_another_model(http: httpx.Client) -> None:
    models = http.get("/v1/models/").json()
    assert [m["handle"] for m in models] == ["convlog/builtin"]
    agent = http.post("/v1/agents/", json={"model": "openai/gpt-4o-mini"}).json()["id"]
    sent = http.post(f"/v1/conversations/{agent}/messages", json={"input": "hi"})
    assert sent.status_code == 404
    assert "set OPENAI_API_KEY" in sent.json()["detail"]
    listed = http.get(f"/v1/conversations/{agent}/messages").json()
    assert [m["message_type"] for m in listed] == ["system_message"]  # nothing was written


def test_client_skills_take_letta_s_fields(http: httpx.Client) -> None:
    agent_id = create_agent(http)
    refused = http.post(
        f"/v1/conversations/{agent_id}/messages",
        json={"input": "hi", "client_skills": [{"name": "s", "description": "d"}]},
    )
    assert refused.status_code == 422 and "location" in refused.text  # required, as in Letta
    skill = {"name": "s", "description": "d", "location": "skills/s/SKILL.md"}
    accepted = http.post(
        f"/v1/conversations/{agent_id}/messages",
        json={"input": "hi", "client_skills": [skill], "streaming": False, "system": "Be brief."},
    )
    assert accepted.status_code == 200
