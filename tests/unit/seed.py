"""Helpers shared by the unit, property and integration tests: seed data, read views back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain import ids
from domain.conversation import Conversation
from domain.run import Run
from projections.agents import AgentRow
from projections.conversations import ConversationRow
from service.actor import Actor
from service.agents import AgentSpec, BlockSpec
from service.services import Services
from tests.actors import DEFAULT_ACTOR

ACTOR = DEFAULT_ACTOR
OTHER_ORG = Actor(organization_id=f"org-{UUID(int=7)}", user_id=f"user-{UUID(int=8)}")


def new_agent(
    services: Services,
    name: str = "ann",
    blocks: dict[str, str] | None = None,
    actor: Actor = ACTOR,
    model: str = "openai/gpt-4o-mini",
) -> AgentRow:
    chosen = {"human": "The user is Ann.", "persona": "I am a bot."} if blocks is None else blocks
    spec = AgentSpec(
        name=name,
        model=model,
        memory_blocks=[BlockSpec(label, value) for label, value in chosen.items()],
    )
    return services.agents.create(actor, spec)


def new_conversation(
    services: Services, agent_id: str, actor: Actor = ACTOR, **fields: Any
) -> ConversationRow:
    return services.conversations.create(actor, agent_id, **fields)


def load(services: Services, conversation_uuid: str) -> Conversation:
    conversation: Aggregate = services.ctx.app.repository.get(UUID(conversation_uuid))
    assert isinstance(conversation, Conversation)
    return conversation


def append(
    services: Services,
    conversation_uuid: str,
    *texts: str,
    role: str = "user",
    catch_up: bool = True,
) -> list[str]:
    """Append messages straight through the aggregate (as a turn would); returns their ids."""
    conversation = load(services, conversation_uuid)
    message_ids = []
    for text in texts:
        message_id = ids.new(ids.MESSAGE)
        conversation.append_message(
            message_id=message_id,
            role=role,
            message_type=f"{role}_message",
            content=text,
        )
        message_ids.append(message_id)
    services.ctx.app.save(conversation)
    if catch_up:
        services.projector.catch_up()
    return message_ids


def finish_run(services: Services, conversation_uuid: str) -> None:
    """Claim and release a run on the conversation: sets its ``last_run_completion``."""
    conversation = load(services, conversation_uuid)
    run_id = ids.new(ids.RUN)
    now = datetime.now(UTC)
    conversation.claim_run(run_id, now, now + timedelta(seconds=60), "seed")
    conversation.release_run(run_id, "completed")
    services.ctx.app.save(conversation)
    services.projector.catch_up()


def record_runs(services: Services, agent_id: str, conversation_uuid: str, count: int) -> None:
    """Record ``count`` finished runs (Run events only, as the turn engine writes them)."""
    runs = []
    for _ in range(count):
        run = Run(
            organization_id=ACTOR.organization_id,
            agent_id=agent_id,
            conversation_id=ids.format_id(ids.CONVERSATION, UUID(conversation_uuid)),
            stream_id=conversation_uuid,
            run_type="send_message",
            background=False,
            request_config={},
            input_messages=[],
            model="openai/gpt-4o-mini",
        )
        run.complete("end_turn", {"total_tokens": 1}, {})
        runs.append(run)
    services.ctx.app.save(*runs)
    services.projector.catch_up()


def listing(
    services: Services,
    conversation_id: str,
    *,
    ascending: bool = True,
    after: str | None = None,
    before: str | None = None,
    limit: int | None = None,
    actor: Actor = ACTOR,
) -> list[dict[str, Any]]:
    items = services.conversations.messages(
        actor, conversation_id, before=before, after=after, limit=limit, ascending=ascending
    )
    return [json.loads(item) for item in items]


def listed_ids(services: Services, conversation_id: str, **kwargs: Any) -> list[str]:
    return [item["id"] for item in listing(services, conversation_id, **kwargs)]


def view_tables(services: Services) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every projection's logical tables, in a stable order."""
    found = {}
    for projection in services.projector.projections.values():
        for table in projection.tables:
            rows = services.ctx.store.query("SELECT * FROM {t}", tables={"t": table})
            found[table] = sorted((tuple(row) for row in rows), key=repr)
    return found


def active_generations(services: Services) -> dict[str, int]:
    rows = services.ctx.store.query("SELECT name, active FROM projection_generations")
    return {name: int(active) for name, active in rows}


def tracking(services: Services) -> dict[tuple[str, int], int]:
    rows = services.ctx.store.query("SELECT name, generation, position FROM projection_tracking")
    return {(name, int(gen)): int(pos) for name, gen, pos in rows}


def head(services: Services) -> int:
    return services.ctx.log.max_position()
