"""Agent use cases: create, read, list, delete, memory blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from domain import ids
from domain.agent import Agent
from domain.conversation import Conversation
from domain.errors import InvalidArgument, NotFound
from domain.handles import validate_handle
from domain.memory import (
    DEFAULT_BLOCK_LIMIT,
    DEFAULT_DESCRIPTIONS,
    DEFAULT_SYSTEM_PROMPT,
    compile_system_message,
)
from projections.agents import AgentRow
from service.context import Actor, Context

AGENT_NOT_FOUND = "Agent not found"


@dataclass
class BlockSpec:
    label: str
    value: str
    limit: int = DEFAULT_BLOCK_LIMIT
    description: str | None = None
    read_only: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class AgentSpec:
    name: str | None = None
    system: str | None = None
    agent_type: str = "letta_v1_agent"
    model: str | None = None
    embedding: str | None = None
    memory_blocks: list[BlockSpec] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


class AgentService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def create(self, actor: Actor, spec: AgentSpec) -> AgentRow:
        validate_handle(spec.model)
        validate_handle(spec.embedding)
        labels = [b.label for b in spec.memory_blocks]
        if len(set(labels)) != len(labels):
            raise InvalidArgument("Duplicate block labels are not allowed")
        blocks = []
        for b in spec.memory_blocks:
            if len(b.value) > b.limit:
                raise InvalidArgument(
                    f"Edit failed: Exceeds {b.limit} character limit (requested {len(b.value)})"
                )
            blocks.append(
                {
                    "id": ids.new(ids.BLOCK),
                    "label": b.label,
                    "value": b.value,
                    "limit": b.limit,
                    "description": b.description or DEFAULT_DESCRIPTIONS.get(b.label),
                    "read_only": b.read_only,
                    "metadata": b.metadata,
                }
            )
        agent = Agent(
            organization_id=actor.organization_id,
            name=spec.name or f"agent-{len(labels)}-{datetime.now(UTC):%Y%m%d%H%M%S}",
            system=spec.system or DEFAULT_SYSTEM_PROMPT,
            agent_type=spec.agent_type,
            model=spec.model,
            embedding=spec.embedding,
            blocks=blocks,
            settings=spec.settings,
            created_by_id=actor.user_id,
        )
        agent_id = ids.format_id(ids.AGENT, agent.id)
        # The agent's own context (agent-direct mode) starts with its compiled system message.
        own = Conversation(
            organization_id=actor.organization_id,
            agent_id=agent_id,
            summary=None,
            model=None,
            model_settings=None,
            isolated_blocks=[],
            is_default=True,
            created_by_id=actor.user_id,
        )
        own.append_message(
            message_id=ids.new(ids.MESSAGE),
            role="system",
            message_type="system_message",
            content=compile_system_message(agent.system, blocks, datetime.now(UTC), 0),
        )
        self.ctx.settle(self.ctx.app.save_new(agent, own))
        return self.get(actor, agent_id)

    def get(self, actor: Actor, agent_id: str) -> AgentRow:
        row = self.ctx.agents.get(actor.organization_id, agent_id)
        if row is None:
            raise NotFound(AGENT_NOT_FOUND)
        return row

    def load(self, actor: Actor, agent_id: str) -> Agent:
        return self.ctx.load_agent(actor, agent_id)

    def delete(self, actor: Actor, agent_id: str) -> None:
        """Delete the agent, then record the deletion in each of its conversations.

        The agent's deletion alone is one small save, so conversations being created at the
        same moment cannot starve it; from then on no conversation can be opened for it (see
        ``Agent.open_conversation``), and the index hides its conversations at once.
        """

        def delete_agent() -> list[Any]:
            agent = self.load(actor, agent_id)
            agent.delete()
            return [agent]

        position = self.ctx.app.save_retrying(delete_agent)
        self.ctx.projector.catch_up()
        for conv_id in self.ctx.conversations.ids_of_agent(agent_id, include_deleted_agent=True):

            def delete_conversation(conv_id: str = conv_id) -> list[Any]:
                conversation = self.ctx.app.get(Conversation, UUID(conv_id))
                if conversation is None or conversation.deleted:
                    return []
                conversation.delete()
                return [conversation]

            position = max(position, self.ctx.app.save_retrying(delete_conversation))
        self.ctx.settle(position)

    def get_block(self, actor: Actor, agent_id: str, label: str) -> dict[str, Any]:
        for block in self.get(actor, agent_id).state["blocks"]:
            if block["label"] == label:
                return dict(block)
        raise NotFound(f"Block with label '{label}' not found on agent '{agent_id}'")

    def update_block(
        self, actor: Actor, agent_id: str, label: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change a block, then recompile the agent's own system message (spec §5.2).

        Existing conversations keep the system message they were created with.
        """

        def command() -> list[Any]:
            agent = self.load(actor, agent_id)
            try:
                agent.update_block(label, changes)
            except NotFound:
                raise NotFound(
                    f"Block with label '{label}' not found on agent '{agent_id}'"
                ) from None
            own = self.ctx.app.get(Conversation, ids.default_conversation_id(agent.id))
            if own is None:
                return [agent]
            count = self.ctx.conversations.message_count_of_agent(actor.organization_id, agent_id)
            own.recompile_system_message(
                compile_system_message(agent.system, agent.blocks, datetime.now(UTC), count)
            )
            return [agent, own]

        self.ctx.settle(self.ctx.app.save_retrying(command))
        return self.get_block(actor, agent_id, label)

    def list(
        self,
        actor: Actor,
        *,
        name: str | None,
        ascending: bool,
        after: str | None,
        before: str | None,
        limit: int,
    ) -> list[AgentRow]:
        cursors = {}
        for key, cursor_id in (("after", after), ("before", before)):
            if cursor_id is not None:
                row = self.ctx.agents.get_including_deleted(cursor_id)
                if row is None or row.organization_id != actor.organization_id:
                    raise InvalidArgument(f"Cursor {key}={cursor_id} does not exist")
                cursors[key] = row
        return self.ctx.agents.list(
            actor.organization_id,
            name=name,
            ascending=ascending,
            after=cursors.get("after"),
            before=cursors.get("before"),
            limit=limit,
        )
