"""A save whose commit went through but whose answer was lost with the connection: the event
store's own retry then clashes with it (IntegrityError). That must count as saved, not as a
clash with another writer, or the command would run again (a message appended twice, a run
waiting for itself)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain import ids
from domain.conversation import Conversation
from service.agents import AgentSpec
from service.services import Services
from tests.actors import DEFAULT_ACTOR


def test_a_commit_whose_answer_was_lost_is_not_applied_again(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = services.agents.create(DEFAULT_ACTOR, AgentSpec(name="a", model="openai/x"))
    row = services.conversations.create(DEFAULT_ACTOR, agent.id)
    app = services.ctx.app
    real_save = app.save
    lost = {"once": True}

    def save_then_lose_the_answer(*aggregates: Any, **kwargs: Any) -> Any:
        recordings = real_save(*aggregates, **kwargs)
        if lost.pop("once", False):
            raise IntegrityError("duplicate key (the retry of a commit that went through)")
        return recordings

    monkeypatch.setattr(app, "save", save_then_lose_the_answer)
    runs: list[int] = []

    def command() -> list[Aggregate]:
        runs.append(1)
        conversation = app.get(Conversation, UUID(row.id))
        assert conversation is not None
        conversation.append_message(
            message_id=ids.new(ids.MESSAGE), role="user", message_type="user_message", content="x"
        )
        return [conversation]

    app.save_retrying(DEFAULT_ACTOR, command)
    assert len(runs) == 1  # not decided again
    conversation = app.get(Conversation, UUID(row.id))
    assert conversation is not None and conversation.message_count == 2  # system + one


def test_a_real_clash_is_still_decided_again(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = services.agents.create(DEFAULT_ACTOR, AgentSpec(name="a", model="openai/x"))
    row = services.conversations.create(DEFAULT_ACTOR, agent.id)
    app = services.ctx.app
    stale = app.get(Conversation, UUID(row.id))
    assert stale is not None
    other = app.get(Conversation, UUID(row.id))
    assert other is not None
    other.update({"summary": "written by another process"}, "user-x")
    app.save(other)
    attempts: list[int] = []

    def command() -> list[Aggregate]:
        target = stale if not attempts else app.get(Conversation, UUID(row.id))
        attempts.append(1)
        assert target is not None
        target.update({"summary": "mine"}, "user-y")
        return [target]

    app.save_retrying(DEFAULT_ACTOR, command)
    assert len(attempts) == 2
    fresh = app.get(Conversation, UUID(row.id))
    assert fresh is not None and fresh.summary == "mine"
