"""model_settings are checked against the model they are sent to: where they are set, and
again before a turn (a conversation's model or ``override_model`` may be another provider's).
"""

from __future__ import annotations

import asyncio

import pytest

from domain.errors import InvalidArgument
from runtime.bootstrap import build
from runtime.settings import Settings
from service.agents import AgentSpec
from service.services import Services
from service.turns import TurnRequest
from tests.scripted_model import ScriptedModel
from tests.unit.seed import ACTOR, head, new_conversation

THINKING = {"thinking": {"type": "enabled", "budget_tokens": 1024}}


def test_a_turn_refuses_settings_its_model_would_not_get() -> None:
    services = build(Settings(database_url="memory://"), model=ScriptedModel())
    try:
        spec = AgentSpec(name="a", model="openai/gpt-x", settings={"model_settings": {"seed": 7}})
        agent = services.agents.create(ACTOR, spec)
        conversation = new_conversation(services, agent.id, model="anthropic/claude-x")
        before = head(services)
        request = TurnRequest(messages=[{"role": "user", "content": "hi"}], streaming=False)
        with pytest.raises(InvalidArgument, match="seed not supported for anthropic/claude-x"):
            asyncio.run(services.turns.begin(ACTOR, conversation.conversation_id, request))
        assert head(services) == before
    finally:
        services.close()


def test_thinking_with_tools_is_refused_where_it_is_set(services: Services) -> None:
    before = head(services)
    with pytest.raises(InvalidArgument, match="thinking with tools"):
        services.agents.create(
            ACTOR,
            AgentSpec(name="t", model="anthropic/claude-x", settings={"model_settings": THINKING}),
        )
    assert head(services) == before
    bare = services.agents.create(
        ACTOR,
        AgentSpec(
            name="b",
            model="anthropic/claude-x",
            include_base_tools=False,
            settings={"model_settings": THINKING},
        ),
    )
    assert bare.state["settings"]["model_settings"] == THINKING
