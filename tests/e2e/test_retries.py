"""Idempotent sends over the wire: a client that retries with the same ``otid`` gets the
first run's answer (the ``letta-client`` SDK, streaming and not), and ``POST …/stream``
finds a run by ``run_id`` or ``otid``.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from letta_client import Letta

pytestmark = pytest.mark.e2e


def new_agent(client: Letta) -> str:
    """An agent on the built-in model: this server has no provider configured."""
    agent = client.agents.create(
        model="convlog/builtin", memory_blocks=[{"label": "human", "value": "Ada"}]
    )
    return agent.id


def message(otid: str, text: str = "hello") -> list[Any]:
    return [{"role": "user", "content": text, "otid": otid}]


def test_a_retried_send_gets_the_first_answer(client: Letta, http: httpx.Client) -> None:
    """JSON over plain HTTP (the 1.7.10 SDK always reads a stream), streaming with the SDK."""
    conversation = client.conversations.create(agent_id=new_agent(client)).id
    otid = str(uuid.uuid4())
    path = f"/v1/conversations/{conversation}/messages"
    body = {"messages": message(otid), "streaming": False}
    first, again = http.post(path, json=body), http.post(path, json=body)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    streamed = list(client.conversations.messages.create(conversation, messages=message(otid)))
    ids = {getattr(chunk, "id", None) for chunk in streamed}
    assert {m["id"] for m in first.json()["messages"]} <= ids
    listed = list(client.conversations.messages.list(conversation, order="asc"))
    assert len(listed) == 3  # system, one user message, one answer: nothing ran twice


def test_resume_by_run_id_or_otid(client: Letta, http: httpx.Client) -> None:
    conversation = client.conversations.create(agent_id=new_agent(client)).id
    otid = str(uuid.uuid4())
    sent = http.post(
        f"/v1/conversations/{conversation}/messages",
        json={"messages": message(otid), "background": True},
    )
    assert sent.status_code == 200
    run_id = next(
        line.split('"run_id":"')[1].split('"')[0]
        for line in sent.text.splitlines()
        if "run_id" in line
    )
    by_otid = http.post(f"/v1/conversations/{conversation}/stream", json={"otid": otid})
    by_run = http.post(f"/v1/conversations/{conversation}/stream", json={"run_id": run_id})
    assert by_otid.status_code == by_run.status_code == 200
    assert by_otid.text.endswith("data: [DONE]\n\n") and by_otid.text == by_run.text
    missing = http.post(
        f"/v1/conversations/{conversation}/stream",
        json={"run_id": "run-00000000-0000-4000-8000-000000000000"},
    )
    assert missing.status_code == 404
    unknown = http.post(f"/v1/conversations/{conversation}/stream", json={"otid": "nope"})
    assert unknown.status_code == 404
    assert "No run found for otid=nope" in unknown.text


def test_stream_by_run_id_only_in_its_own_conversation(client: Letta, http: httpx.Client) -> None:
    agent = new_agent(client)
    mine = client.conversations.create(agent_id=agent).id
    other = client.conversations.create(agent_id=agent).id
    sent = http.post(
        f"/v1/conversations/{mine}/messages",
        json={"messages": message(str(uuid.uuid4())), "background": True},
    )
    run_id = next(
        line.split('"run_id":"')[1].split('"')[0]
        for line in sent.text.splitlines()
        if "run_id" in line
    )
    elsewhere = http.post(f"/v1/conversations/{other}/stream", json={"run_id": run_id})
    assert elsewhere.status_code == 404
    both = http.post(f"/v1/conversations/{mine}/stream", json={"run_id": run_id, "otid": "x"})
    assert both.status_code == 400
