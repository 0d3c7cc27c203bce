"""Blocks shared between agents: an edit — through the API or by one agent's memory tool —
reaches every agent that has the block, in one save, and the views rebuild the same.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from domain import ids
from domain.block import Block
from domain.errors import InvalidArgument, NotFound
from runtime.bootstrap import build
from runtime.settings import Settings
from service.blocks import NewBlock
from service.services import Services
from service.turns import TurnRequest
from tests.scripted_model import Say, ScriptedModel
from tests.unit.seed import ACTOR, head, listing, new_agent, new_conversation, view_tables


def block_value(services: Services, agent_id: str, label: str) -> str:
    return str(services.agents.get_block(ACTOR, agent_id, label)["value"])


def own_block(services: Services, agent_id: str, label: str) -> str:
    return next(
        str(b["id"]) for b in services.agents.blocks(ACTOR, agent_id) if b["label"] == label
    )


def own_system(services: Services, agent_id: str) -> str:
    return str(listing(services, agent_id)[0]["content"])


def shared(services: Services, value: str = "Team: red") -> str:
    return services.blocks.create(ACTOR, NewBlock("team", value, limit=200)).id


def test_an_api_edit_reaches_every_agent_that_has_the_block(services: Services) -> None:
    ann, bob = new_agent(services, "ann"), new_agent(services, "bob")
    block_id = shared(services)
    for agent in (ann, bob):
        services.blocks.attach(ACTOR, agent.id, block_id)
        assert "Team: red" in own_system(services, agent.id)
    services.blocks.modify(ACTOR, block_id, {"value": "Team: blue"})
    for agent in (ann, bob):
        assert block_value(services, agent.id, "team") == "Team: blue"
        assert "Team: blue" in own_system(services, agent.id)  # recompiled
    row = services.blocks.get(ACTOR, block_id)
    assert (row.value, sorted(row.agent_ids)) == ("Team: blue", sorted([ann.id, bob.id]))
    listed = services.blocks.page(
        ACTOR, label=None, ascending=True, after=None, before=None, limit=50
    )
    assert block_id in [b.id for b in listed]  # with the blocks the agents were made with
    assert {b.owner_agent_id for b in listed if b.label == "human"} == {ann.id, bob.id}


def test_a_memory_tool_edit_by_one_agent_reaches_the_other() -> None:
    model = ScriptedModel()
    services = build(Settings(database_url="memory://"), model=model)
    try:
        ann, bob = new_agent(services, "ann"), new_agent(services, "bob")
        block_id = shared(services)
        services.blocks.attach(ACTOR, ann.id, block_id)
        services.blocks.attach(ACTOR, bob.id, block_id)
        conversation = new_conversation(services, ann.id).conversation_id
        arguments = json.dumps({"label": "team", "new_string": "Lead: Ann"})
        model.script = [Say(calls=[("memory_insert", arguments)]), Say(text="noted")]

        async def turn() -> None:
            request = TurnRequest(messages=[{"role": "user", "content": "x"}], streaming=False)
            done = await services.turns.begin(ACTOR, conversation, request)
            await services.turns.result_of(done)

        asyncio.run(turn())
        assert block_value(services, bob.id, "team") == "Team: red\nLead: Ann"
        assert "Lead: Ann" in own_system(services, bob.id)
        assert services.blocks.get(ACTOR, block_id).value == "Team: red\nLead: Ann"
        block = services.ctx.app.get(Block, ids.to_uuid(block_id))
        assert block is not None and block.value == "Team: red\nLead: Ann"
        assert block.agent_ids == [ann.id, bob.id]
    finally:
        services.close()


def test_detach_delete_and_what_is_refused(services: Services) -> None:
    ann, bob = new_agent(services, "ann"), new_agent(services, "bob")
    block_id = shared(services)
    services.blocks.attach(ACTOR, ann.id, block_id)
    services.blocks.attach(ACTOR, bob.id, block_id)
    services.blocks.detach(ACTOR, bob.id, block_id)
    with pytest.raises(NotFound):
        services.agents.get_block(ACTOR, bob.id, "team")
    own_human = next(
        b["id"] for b in services.agents.blocks(ACTOR, ann.id) if b["label"] == "human"
    )
    with pytest.raises(InvalidArgument, match="only blocks created"):
        services.blocks.attach(ACTOR, bob.id, own_human)  # an agent's own block
    clash = services.blocks.create(ACTOR, NewBlock("team", "other"))
    before = head(services)
    with pytest.raises(InvalidArgument, match="already has a block labelled 'team'"):
        services.blocks.attach(ACTOR, ann.id, clash.id)
    with pytest.raises(InvalidArgument, match="character limit"):
        services.blocks.modify(ACTOR, block_id, {"value": "x" * 201})
    assert head(services) == before
    services.blocks.delete(ACTOR, block_id)
    with pytest.raises(NotFound):
        services.blocks.get(ACTOR, block_id)
    with pytest.raises(NotFound):
        services.agents.get_block(ACTOR, ann.id, "team")


def test_an_agents_own_block_is_edited_through_its_agent(services: Services) -> None:
    ann = new_agent(services, "ann")
    human = own_block(services, ann.id, "human")
    services.blocks.modify(ACTOR, human, {"value": "The user is Ann Lee."})
    assert block_value(services, ann.id, "human") == "The user is Ann Lee."
    assert services.blocks.get(ACTOR, human).value == "The user is Ann Lee."


def test_the_views_rebuild_the_same(services: Services) -> None:
    ann, bob = new_agent(services, "ann"), new_agent(services, "bob")
    block_id = shared(services)
    services.blocks.attach(ACTOR, ann.id, block_id)
    services.blocks.attach(ACTOR, bob.id, block_id)
    services.blocks.modify(ACTOR, block_id, {"value": "Team: green", "description": "d"})
    services.blocks.detach(ACTOR, ann.id, block_id)
    views = view_tables(services)
    for name in list(services.projector.projections):
        services.projector.rebuild(name)
    assert view_tables(services) == views


def test_the_agent_route_edits_the_shared_block_for_everyone(services: Services) -> None:
    ann, bob = new_agent(services, "ann"), new_agent(services, "bob")
    block_id = shared(services)
    for agent in (ann, bob):
        services.blocks.attach(ACTOR, agent.id, block_id)
    services.agents.update_block(ACTOR, ann.id, "team", {"value": "Team: blue"})
    assert block_value(services, bob.id, "team") == "Team: blue"
    assert services.blocks.get(ACTOR, block_id).value == "Team: blue"
    assert "Team: blue" in own_system(services, bob.id)


def test_one_step_editing_two_shared_blocks_saves_once_for_each_agent() -> None:
    model = ScriptedModel()
    services = build(Settings(database_url="memory://"), model=model)
    try:
        ann, bob = new_agent(services, "ann"), new_agent(services, "bob")
        x = services.blocks.create(ACTOR, NewBlock("x", "X0")).id
        y = services.blocks.create(ACTOR, NewBlock("y", "Y0")).id
        for block_id in (x, y):
            for agent in (ann, bob):
                services.blocks.attach(ACTOR, agent.id, block_id)
        conversation = new_conversation(services, ann.id).conversation_id
        calls = [
            ("memory_insert", json.dumps({"label": label, "new_string": f"{label}1"}))
            for label in ("x", "y")
        ]
        model.script = [Say(calls=calls), Say(text="done")]

        async def turn() -> str:
            request = TurnRequest(messages=[{"role": "user", "content": "x"}], streaming=False)
            done = await services.turns.begin(ACTOR, conversation, request)
            return (await services.turns.result_of(done)).stop_reason

        assert asyncio.run(turn()) == "end_turn"
        assert block_value(services, bob.id, "x") == "X0\nx1"
        assert block_value(services, bob.id, "y") == "Y0\ny1"
    finally:
        services.close()
