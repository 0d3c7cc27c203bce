"""``/v1/blocks`` and attaching shared blocks, with the ``letta-client`` SDK."""

from __future__ import annotations

import httpx
import pytest
from letta_client import Letta

pytestmark = pytest.mark.e2e


def new_agent(client: Letta) -> str:
    agent = client.agents.create(
        model="convlog/builtin", memory_blocks=[{"label": "human", "value": "Ada"}]
    )
    return agent.id


def test_a_shared_block_through_the_sdk(client: Letta) -> None:
    block = client.blocks.create(label="team", value="Team: red", limit=500)
    ann, bob = new_agent(client), new_agent(client)
    for agent_id in (ann, bob):
        state = client.agents.blocks.attach(block.id, agent_id=agent_id)
        assert "team" in [b.label for b in state.memory.blocks]
    client.blocks.update(block.id, value="Team: blue")
    for agent_id in (ann, bob):
        assert client.agents.blocks.retrieve("team", agent_id=agent_id).value == "Team: blue"
    assert client.blocks.retrieve(block.id).value == "Team: blue"
    assert block.id in [b.id for b in client.blocks.list(label="team")]
    assert [a.id for a in client.blocks.agents.list(block.id)] == [ann, bob]
    client.agents.blocks.detach(block.id, agent_id=bob)
    assert "team" not in [b.label for b in client.agents.retrieve(bob).memory.blocks]
    client.blocks.delete(block.id)
    assert "team" not in [b.label for b in client.agents.retrieve(ann).memory.blocks]


def test_bad_block_requests(http: httpx.Client) -> None:
    missing = "block-00000000-0000-4000-8000-000000000000"
    assert http.get(f"/v1/blocks/{missing}").status_code == 404
    assert http.get("/v1/blocks/nope").status_code == 422
    before = len(http.get("/v1/blocks/", params={"limit": 1000}).json())
    templated = http.post("/v1/blocks/", json={"label": "x", "value": "y", "is_template": True})
    assert templated.status_code == 422 and "is_template" in templated.text
    too_long = http.post("/v1/blocks/", json={"label": "x", "value": "yy", "limit": 1})
    assert too_long.status_code == 400
    assert len(http.get("/v1/blocks/", params={"limit": 1000}).json()) == before
    made = http.post("/v1/blocks/", json={"label": "x", "value": "y"}).json()
    renamed = http.patch(f"/v1/blocks/{made['id']}", json={"label": "z"})
    assert renamed.status_code == 422
    unsupported = http.get("/v1/blocks/", params={"value_search": "y"})
    assert unsupported.status_code == 422
