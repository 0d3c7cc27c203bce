"""A rebuild that was interrupted resumes from its last batch (into the same generation), and
gives the same views as one that was not; a changed projection starts over."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain import ids
from domain.conversation import Conversation
from service.agents import AgentSpec
from service.services import Services
from tests.actors import DEFAULT_ACTOR


class Interrupted(Exception):
    pass


def seeded(services: Services, count: int) -> str:
    agent = services.agents.create(DEFAULT_ACTOR, AgentSpec(name="r", model="openai/x"))
    row = services.conversations.create(DEFAULT_ACTOR, agent.id)
    conversation = services.ctx.app.get(Conversation, UUID(row.id))
    assert conversation is not None
    for n in range(count):
        conversation.append_message(
            message_id=ids.new(ids.MESSAGE),
            role="user",
            message_type="user_message",
            content=f"m{n}",
        )
    services.ctx.app.save(conversation)
    services.projector.catch_up()
    return row.conversation_id


def listed(services: Services, conversation_id: str) -> list[str]:
    return services.conversations.messages(
        DEFAULT_ACTOR, conversation_id, before=None, after=None, limit=1000, ascending=True
    )


@pytest.mark.parametrize("any_services", ["sqlite", "postgres"], indirect=True)
def test_an_interrupted_rebuild_resumes_where_it_stopped(any_services: Services) -> None:
    services = any_services
    conversation = seeded(services, 600)
    before = listed(services, conversation)
    services.projector.batch_size = 25  # batches of 100 events
    seen: list[int] = []

    def stop_after_three(position: int) -> None:
        seen.append(position)
        if len(seen) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        services.projector.rebuild("messages", stop_after_three)
    assert listed(services, conversation) == before  # the old generation still serves

    result = services.projector.rebuild("messages")
    assert result.resumed_from == seen[-1] > 0
    assert result.events < 600  # what was done before is not done again
    assert listed(services, conversation) == before
    assert services.projector.rebuild("messages").resumed_from == 0  # nothing left to resume
