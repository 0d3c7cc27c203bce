"""Memory blocks on their own (``/v1/blocks``) and shared between agents.

A shared block is a ``Block`` aggregate; each agent that has it holds a copy. Every change —
through the API, or by one agent's memory tool — is recorded on the block and on every copy
in one save, and each of those agents' own context is recompiled, so an edit reaches every
agent that has the block (their other conversations keep their system message, as after any
block change). Blocks an agent was created with are its own: they are listed and edited
here too, but only blocks created here can be attached to other agents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eventsourcing.domain import Aggregate

from domain import ids
from domain.agent import Agent
from domain.block import Block
from domain.errors import InvalidArgument, NotFound
from domain.memory import check_limit
from projections.agents import AgentRow
from projections.blocks import BlockQueries, BlockRow
from service.actor import Actor
from service.agents import AgentService
from service.block_copies import copies_updated
from service.context import Context

DEFAULT_LIMIT = 100_000


@dataclass(frozen=True)
class NewBlock:
    label: str
    value: str = ""
    limit: int = DEFAULT_LIMIT
    description: str | None = None
    read_only: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


def not_found(block_id: str) -> NotFound:
    return NotFound(f"Block not found with id='{block_id}'")


class BlockService:
    def __init__(self, ctx: Context, agents: AgentService) -> None:
        self.ctx = ctx
        self.agents = agents
        self.queries = BlockQueries(ctx.store)

    def create(self, actor: Actor, spec: NewBlock) -> BlockRow:
        check_limit(spec.value, spec.limit)
        block = Block(
            organization_id=actor.organization_id,
            label=spec.label,
            value=spec.value,
            limit=spec.limit,
            description=spec.description,
            read_only=spec.read_only,
            metadata=spec.metadata,
            created_by_id=actor.user_id,
        )
        self.ctx.settle(self.ctx.app.save_new(actor, block))
        return self.get(actor, ids.format_id(ids.BLOCK, block.id))

    def get(self, actor: Actor, block_id: str) -> BlockRow:
        row = None
        if ids.is_valid(ids.BLOCK, block_id):
            row = self.queries.get(actor.organization_id, block_id)
        if row is None:
            raise not_found(block_id)
        return row

    def page(
        self,
        actor: Actor,
        *,
        label: str | None,
        ascending: bool,
        after: str | None,
        before: str | None,
        limit: int,
    ) -> list[BlockRow]:
        return self.queries.page(
            actor.organization_id,
            label=label,
            ascending=ascending,
            after=None if after is None else self.get(actor, after),
            before=None if before is None else self.get(actor, before),
            limit=limit,
        )

    def agents_of(self, actor: Actor, block_id: str) -> list[AgentRow]:
        """The agents that have the block, oldest first."""
        row = self.get(actor, block_id)
        holders = [row.owner_agent_id] if row.owner_agent_id else row.agent_ids
        found = [self.ctx.agents.get(actor.organization_id, agent_id) for agent_id in holders]
        return sorted((a for a in found if a is not None), key=lambda a: (a.created_at, a.id))

    def modify(self, actor: Actor, block_id: str, changes: dict[str, Any]) -> BlockRow:
        row = self.get(actor, block_id)
        if row.owner_agent_id is not None:  # an agent's own block: the agent records it
            self.agents.update_block(actor, row.owner_agent_id, row.label, changes)
            return self.get(actor, block_id)

        def command() -> list[Aggregate]:
            block = self._load(block_id)
            block.update(changes)
            return [block, *copies_updated(self.ctx, [(block, changes)])]

        self.ctx.settle(self.ctx.app.save_retrying(actor, command))
        return self.get(actor, block_id)

    def delete(self, actor: Actor, block_id: str) -> None:
        """Detached from every agent that has it, then deleted (its history stays)."""
        row = self.get(actor, block_id)
        if row.owner_agent_id is not None:
            raise InvalidArgument(
                f"Block {block_id} belongs to agent {row.owner_agent_id}: edit the agent instead"
            )

        def command() -> list[Aggregate]:
            block = self._load(block_id)
            changed: list[Aggregate] = []
            for agent_id in list(block.agent_ids):
                changed += self._detach(block, block_id, agent_id)
            block.delete()
            return [block, *changed]

        self.ctx.settle(self.ctx.app.save_retrying(actor, command))

    def attach(self, actor: Actor, agent_id: str, block_id: str) -> AgentRow:
        row = self.get(actor, block_id)
        if row.owner_agent_id is not None:
            raise InvalidArgument(
                f"Block {block_id} is agent {row.owner_agent_id}'s own; only blocks created "
                "with POST /v1/blocks/ can be shared"
            )

        def command() -> list[Aggregate]:
            agent = self.agents.load(actor, agent_id)
            block = self._load(block_id)
            agent.attach_block(block.as_copy(block_id))
            block.attach(agent_id)
            return [block, agent, *self.agents.own_context_recompiled(agent)]

        self.ctx.settle(self.ctx.app.save_retrying(actor, command))
        return self.agents.get(actor, agent_id)

    def detach(self, actor: Actor, agent_id: str, block_id: str) -> AgentRow:
        row = self.get(actor, block_id)
        if row.owner_agent_id is not None:
            raise InvalidArgument(
                f"Block {block_id} is agent {row.owner_agent_id}'s own, not a shared block: "
                "it cannot be detached"
            )

        def command() -> list[Aggregate]:
            self.agents.load(actor, agent_id)  # 404 for an unknown agent
            block = self._load(block_id)
            return [block, *self._detach(block, block_id, agent_id)]

        self.ctx.settle(self.ctx.app.save_retrying(actor, command))
        return self.agents.get(actor, agent_id)

    def _detach(self, block: Block, block_id: str, agent_id: str) -> list[Aggregate]:
        block.detach(agent_id)
        agent = self.ctx.app.get(Agent, ids.to_uuid(agent_id))
        if agent is None or agent.deleted:
            return []
        agent.detach_block(block_id)
        return [agent, *self.agents.own_context_recompiled(agent)]

    def _load(self, block_id: str) -> Block:
        block = self.ctx.app.get(Block, ids.to_uuid(block_id))
        if block is None or block.deleted:
            raise not_found(block_id)
        return block
