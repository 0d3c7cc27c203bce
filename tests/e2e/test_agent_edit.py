"""``PATCH /v1/agents/{id}`` with the SDK: what changes, what is refused, what is kept."""

from __future__ import annotations

import uuid

import pytest
from letta_client import Letta, UnprocessableEntityError

from domain import tools

pytestmark = pytest.mark.e2e


def test_patch_changes_the_fields_given_and_keeps_the_rest(client: Letta) -> None:
    agent = client.agents.create(
        name="before",
        model="convlog/builtin",
        memory_blocks=[{"label": "human", "value": "Ann"}],
        tags=["a"],
    )
    changed = client.agents.update(
        agent.id,
        name="after",
        tags=["b", "c"],
        description="edited",
        system="You are brief.",
        tool_ids=[tools.BY_NAME["memory_rethink"].id],
        tool_rules=[{"type": "requires_approval", "tool_name": "memory_rethink"}],
        context_window_limit=9000,
    )
    assert (changed.name, changed.tags, changed.description) == ("after", ["b", "c"], "edited")
    assert changed.system == "You are brief."
    assert [t.name for t in changed.tools] == ["memory_rethink"]
    assert changed.llm_config.context_window == 9000
    again = client.agents.retrieve(agent.id)
    assert (again.name, again.model) == ("after", "convlog/builtin")
    assert [b.value for b in again.blocks] == ["Ann"]
    own = next(iter(client.conversations.messages.list(agent.id, order="asc")))
    assert getattr(own, "content", "").startswith("You are brief.")  # its context recompiled
    assert [a.name for a in client.agents.list(name="after")] == ["after"]


def test_patch_refuses_what_convlog_does_not_do(client: Letta) -> None:
    agent = client.agents.create(model="convlog/builtin")
    with pytest.raises(UnprocessableEntityError, match="message_buffer_autoclear"):
        client.agents.update(agent.id, message_buffer_autoclear=True)
    with pytest.raises(UnprocessableEntityError, match="secrets"):
        client.agents.update(agent.id, secrets={"K": "v"})
    assert client.agents.retrieve(agent.id).name == agent.name


def test_list_filters_count_and_blocks(client: Letta) -> None:
    tag = f"t-{uuid.uuid4().hex[:6]}"
    one = client.agents.create(name=f"Alpha {tag}", model="convlog/builtin", tags=[tag, "x"])
    two = client.agents.create(name=f"beta {tag}", model="convlog/builtin", tags=[tag])
    any_tag = {a.id for a in client.agents.list(tags=[tag, "nope"])}
    assert any_tag == {one.id, two.id}
    both = [a.id for a in client.agents.list(tags=[tag, "x"], match_all_tags=True)]
    assert both == [one.id]
    named = [a.id for a in client.agents.list(query_text=f"ALPHA {tag}")]
    assert named == [one.id]
    client.agents.update(two.id, tags=["x", tag])
    assert {a.id for a in client.agents.list(tags=[tag, "x"], match_all_tags=True)} == {
        one.id,
        two.id,
    }
    # The 1.7.10 SDK has no agents.count: plain HTTP.
    before = client.get("/v1/agents/count", cast_to=int)
    three = client.agents.create(
        model="convlog/builtin", memory_blocks=[{"label": "human", "value": "A"}]
    )
    assert client.get("/v1/agents/count", cast_to=int) == before + 1
    assert [(b.label, b.value) for b in client.agents.blocks.list(three.id)] == [("human", "A")]
