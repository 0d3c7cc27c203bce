"""``POST /v1/conversations/{id}/fork`` against the running server: with the ``letta-client``
SDK for everything 1.7.10 has (sending, listing), and its raw ``post`` for the fork itself,
which newer SDKs name ``conversations.fork``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from letta_client import Letta
from letta_client.types import Conversation

pytestmark = pytest.mark.e2e


def new_agent(client: Letta) -> str:
    """An agent on the built-in model: this server has no provider configured."""
    agent = client.agents.create(
        model="convlog/builtin", memory_blocks=[{"label": "human", "value": "Ada"}]
    )
    return agent.id


def fork(client: Letta, path_id: str, **params: str) -> Conversation:
    return client.post(
        f"/v1/conversations/{path_id}/fork", cast_to=Conversation, options={"params": params}
    )


def listed(client: Letta, conversation_id: str) -> list[Any]:
    return list(client.conversations.messages.list(conversation_id, order="asc"))


def test_a_fork_shares_the_history_so_far_and_goes_its_own_way(client: Letta) -> None:
    agent_id = new_agent(client)
    parent = client.conversations.create(agent_id=agent_id)
    client.conversations.messages.create(parent.id, input="first", streaming=False)
    child = fork(client, parent.id)
    assert child.agent_id == agent_id and child.id != parent.id
    client.conversations.messages.create(child.id, input="only the fork", streaming=False)
    client.conversations.messages.create(parent.id, input="only the parent", streaming=False)

    parent_items, child_items = listed(client, parent.id), listed(client, child.id)
    assert parent_items[0].id != child_items[0].id  # each has its own system message
    assert [m.id for m in child_items[1:3]] == [m.id for m in parent_items[1:3]]
    assert getattr(child_items[3], "content", None) == "only the fork"
    assert "only the parent" not in [getattr(m, "content", None) for m in child_items]


def test_the_default_conversation_forks_by_agent_id(client: Letta, http: httpx.Client) -> None:
    agent_id = new_agent(client)
    sent = http.post(
        "/v1/conversations/default/messages",
        json={"input": "hello", "agent_id": agent_id, "streaming": False},
    )
    assert sent.status_code == 200, sent.text
    child = fork(client, "default", agent_id=agent_id)
    own = http.get(f"/v1/conversations/{agent_id}/messages", params={"order": "asc"}).json()
    assert [m.id for m in listed(client, child.id)[1:]] == [m["id"] for m in own[1:]]


def test_forking_what_does_not_exist_is_404(http: httpx.Client) -> None:
    missing = http.post("/v1/conversations/conv-00000000-0000-4000-8000-000000000000/fork")
    assert missing.status_code == 404
    no_agent = http.post("/v1/conversations/default/fork")
    assert no_agent.status_code == 404
