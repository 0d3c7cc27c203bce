"""Agent use cases on the in-memory services: create, list, blocks, delete."""

from __future__ import annotations

import pytest

from domain import ids
from domain.agent import Agent
from domain.conversation import Conversation
from domain.errors import InvalidArgument, NotFound
from domain.memory import DEFAULT_DESCRIPTIONS, DEFAULT_SYSTEM_PROMPT
from service.agents import AgentSpec, BlockSpec
from service.services import Services
from tests.unit.seed import (
    ACTOR,
    OTHER_ORG,
    append,
    head,
    listed_ids,
    listing,
    load,
    new_agent,
    new_conversation,
)


def own_uuid(agent_id: str) -> str:
    return str(ids.default_conversation_id(ids.to_uuid(agent_id)))


def list_names(services: Services, **kwargs: object) -> list[str]:
    args: dict[str, object] = {
        "name": None,
        "ascending": True,
        "after": None,
        "before": None,
        "limit": 100,
    }
    args.update(kwargs)
    return [row.name for row in services.agents.list(ACTOR, **args)]  # type: ignore[arg-type]


def system_message(services: Services, conversation_id: str) -> dict[str, object]:
    first = listing(services, conversation_id)[0]
    assert first["message_type"] == "system_message"
    return first


# -- create ------------------------------------------------------------------------------------


def test_create_agent_stores_its_state_and_own_context(services: Services) -> None:
    row = new_agent(services, "ann")
    assert ids.is_valid(ids.AGENT, row.id)
    assert row.name == "ann"
    assert row.state["model"] == "openai/gpt-4o-mini"
    assert row.state["system"] == DEFAULT_SYSTEM_PROMPT
    blocks = {b["label"]: b for b in row.state["blocks"]}
    assert blocks["human"]["value"] == "The user is Ann."
    assert blocks["human"]["description"] == DEFAULT_DESCRIPTIONS["human"]
    assert all(ids.is_valid(ids.BLOCK, b["id"]) for b in blocks.values())
    assert services.agents.get(ACTOR, row.id) == row
    own = load(services, own_uuid(row.id))
    assert own.is_default and own.agent_id == row.id
    system = system_message(services, row.id)
    assert own.system_message_id == system["id"]
    assert "<human>" in str(system["content"]) and "The user is Ann." in str(system["content"])


@pytest.mark.parametrize(
    "spec",
    [
        AgentSpec(model="gpt-4o"),
        AgentSpec(embedding="/x"),
        AgentSpec(memory_blocks=[BlockSpec("human", "a"), BlockSpec("human", "b")]),
        AgentSpec(memory_blocks=[BlockSpec("human", "abcd", limit=3)]),
    ],
)
def test_invalid_agents_are_refused_without_writing(services: Services, spec: AgentSpec) -> None:
    before = head(services)
    with pytest.raises(InvalidArgument):
        services.agents.create(ACTOR, spec)
    assert head(services) == before


def test_get_is_scoped_to_the_organization(services: Services) -> None:
    row = new_agent(services)
    with pytest.raises(NotFound):
        services.agents.get(OTHER_ORG, row.id)
    with pytest.raises(NotFound):
        services.agents.get(ACTOR, ids.new(ids.AGENT))


# -- list --------------------------------------------------------------------------------------


def test_list_orders_filters_and_pages(services: Services) -> None:
    rows = [new_agent(services, name) for name in ("a", "b", "c", "b")]
    ordered = sorted(rows, key=lambda r: (r.created_at, r.id))
    names = [r.name for r in ordered]
    assert list_names(services) == names
    assert list_names(services, ascending=False) == names[::-1]
    assert list_names(services, name="b") == ["b", "b"]
    assert list_names(services, after=ordered[1].id) == names[2:]
    assert list_names(services, before=ordered[2].id) == names[:2]
    assert list_names(services, after=ordered[2].id, ascending=False) == names[:2][::-1]
    assert list_names(services, limit=2) == names[:2]
    assert (
        services.agents.list(
            OTHER_ORG, name=None, ascending=True, after=None, before=None, limit=10
        )
        == []
    )


def test_unknown_agent_cursor_is_invalid(services: Services) -> None:
    new_agent(services)
    for key in ("after", "before"):
        with pytest.raises(InvalidArgument):
            list_names(services, **{key: ids.new(ids.AGENT)})


# -- blocks ------------------------------------------------------------------------------------


def test_get_block(services: Services) -> None:
    row = new_agent(services)
    assert services.agents.get_block(ACTOR, row.id, "persona")["value"] == "I am a bot."
    with pytest.raises(NotFound):
        services.agents.get_block(ACTOR, row.id, "nope")


def test_block_update_recompiles_only_the_agents_own_system_message(services: Services) -> None:
    ann, bob = new_agent(services, "ann"), new_agent(services, "bob")
    conversation = new_conversation(services, ann.id)
    own_before = system_message(services, ann.id)
    conv_before = system_message(services, conversation.conversation_id)
    bob_before = system_message(services, bob.id)

    block = services.agents.update_block(ACTOR, ann.id, "human", {"value": "The user is Zed."})

    assert block["value"] == "The user is Zed."
    assert services.agents.get_block(ACTOR, ann.id, "human")["value"] == "The user is Zed."
    own_after = system_message(services, ann.id)
    assert own_after["id"] == own_before["id"]  # replaced in place
    assert "The user is Zed." in str(own_after["content"])
    assert "The user is Ann." not in str(own_after["content"])
    assert len(listing(services, ann.id)) == 1
    assert system_message(services, conversation.conversation_id) == conv_before
    assert system_message(services, bob.id) == bob_before
    assert services.agents.get_block(ACTOR, bob.id, "human")["value"] == "The user is Ann."


def test_block_update_keeps_other_fields(services: Services) -> None:
    row = new_agent(services)
    before = services.agents.get_block(ACTOR, row.id, "persona")
    after = services.agents.update_block(
        ACTOR, row.id, "persona", {"description": "who I am", "read_only": True}
    )
    assert after == {**before, "description": "who I am", "read_only": True}
    assert "- read_only=true" in str(system_message(services, row.id)["content"])


@pytest.mark.parametrize(
    ("label", "changes", "error"),
    [
        ("nope", {"value": "x"}, NotFound),
        ("human", {"value": "x" * 100_001}, InvalidArgument),
        ("human", {"limit": 2}, InvalidArgument),
        ("human", {"colour": "red"}, InvalidArgument),
    ],
)
def test_bad_block_updates_are_refused_without_writing(
    services: Services, label: str, changes: dict[str, object], error: type[Exception]
) -> None:
    row = new_agent(services)
    before = head(services)
    with pytest.raises(error):
        services.agents.update_block(ACTOR, row.id, label, changes)
    assert head(services) == before
    assert services.agents.get(ACTOR, row.id) == row


# -- delete ------------------------------------------------------------------------------------


def test_delete_cascades_to_the_agents_conversations_only(services: Services) -> None:
    ann, bob = new_agent(services, "ann"), new_agent(services, "bob")
    mine = [new_conversation(services, ann.id) for _ in range(2)]
    theirs = new_conversation(services, bob.id)

    services.agents.delete(ACTOR, ann.id)

    with pytest.raises(NotFound):
        services.agents.get(ACTOR, ann.id)
    assert list_names(services) == ["bob"]
    for row in mine:
        with pytest.raises(NotFound):
            services.conversations.get(ACTOR, row.conversation_id)
        assert load(services, row.id).deleted
    assert load(services, own_uuid(ann.id)).deleted
    agent = services.ctx.app.get(Agent, ids.to_uuid(ann.id))
    assert agent is not None and agent.deleted
    listed = services.conversations.list(
        ACTOR,
        agent_id=None,
        summary_search=None,
        order_by="created_at",
        ascending=True,
        after=None,
        limit=10,
    )
    assert [r.conversation_id for r in listed] == [theirs.conversation_id]
    assert not load(services, theirs.id).deleted
    assert not load(services, own_uuid(bob.id)).deleted


def test_a_deleted_agent_refuses_everything(services: Services) -> None:
    row = new_agent(services)
    services.agents.delete(ACTOR, row.id)
    before = head(services)
    for call in (
        lambda: services.agents.delete(ACTOR, row.id),
        lambda: services.agents.update_block(ACTOR, row.id, "human", {"value": "x"}),
        lambda: services.agents.get_block(ACTOR, row.id, "human"),
        lambda: new_conversation(services, row.id),
        lambda: listing(services, row.id),
    ):
        with pytest.raises(NotFound):
            call()
    assert head(services) == before


def test_delete_of_another_organizations_agent_is_not_found(services: Services) -> None:
    row = new_agent(services)
    with pytest.raises(NotFound):
        services.agents.delete(OTHER_ORG, row.id)
    assert services.agents.get(ACTOR, row.id) == row
    assert isinstance(load(services, own_uuid(row.id)), Conversation)


@pytest.mark.parametrize("ascending", [True, False])
def test_walking_back_with_before_lists_every_agent_once(
    services: Services, ascending: bool
) -> None:
    for name in "abcdef":
        new_agent(services, name)
    ordered = list_names(services, ascending=ascending)
    ids_by_name = {
        row.name: row.id
        for row in services.agents.list(
            ACTOR, name=None, ascending=True, after=None, before=None, limit=100
        )
    }
    walked: list[str] = []
    before = ids_by_name[ordered[-1]]
    while page := list_names(services, ascending=ascending, before=before, limit=2):
        walked = page + walked
        before = ids_by_name[page[0]]
    assert walked == ordered[:-1]


def test_message_ids_are_the_agents_own_in_context_messages(services: Services) -> None:
    agent = new_agent(services)
    own = services.conversations.resolve(ACTOR, agent.id)
    system = listed_ids(services, agent.id)
    said = append(services, str(own), "hello", "again")
    other = new_conversation(services, agent.id)
    append(services, other.id, "elsewhere")  # another conversation's messages are not here
    assert services.agents.message_ids([agent]) == {agent.id: system + said}
    services.agents.reset_messages(ACTOR, agent.id)
    assert services.agents.message_ids([agent]) == {agent.id: system}
