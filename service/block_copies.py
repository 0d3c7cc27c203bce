"""Keeping every agent's copy of a shared block in step with the block (``domain/block.py``),
in the save that changes it: used by the block API and by memory tools alike.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from domain import ids
from domain.agent import Agent
from domain.block import Block
from domain.conversation import Conversation
from domain.memory import DEFAULT_CONVERSATION
from service.context import Context
from service.prompts import system_message


def own_context_recompiled(ctx: Context, agent: Agent) -> list[Aggregate]:
    """The agent's own context with its system message compiled from the agent's blocks
    now, to save with the change (other conversations keep theirs, as in Letta).
    """
    own = ctx.app.get(Conversation, ids.default_conversation_id(agent.id))
    if own is None or own.deleted:
        return []
    agent_id = ids.format_id(ids.AGENT, agent.id)
    count = ctx.conversations.message_count_of_agent(agent.organization_id, agent_id)
    own.recompile_system_message(system_message(agent, DEFAULT_CONVERSATION, agent.blocks, count))
    return [own]


def copies_updated(
    ctx: Context, edits: list[tuple[Block, dict[str, Any]]], skip_agent_id: str | None = None
) -> list[Aggregate]:
    """Each agent that has one of these blocks (but ``skip_agent_id``, which recorded its
    change itself) records the changes on its copies — each agent loaded once, its own
    context recompiled once — to save in the same save as the blocks.
    """
    agents: dict[str, Agent] = {}
    for block, changes in edits:
        for agent_id in block.agent_ids:
            if agent_id == skip_agent_id:
                continue
            agent = agents.get(agent_id) or ctx.app.get(Agent, ids.to_uuid(agent_id))
            if agent is None or agent.deleted:
                continue
            agent.update_block(block.label, changes)
            agents[agent_id] = agent
    changed: list[Aggregate] = []
    for agent in agents.values():
        changed += [agent, *own_context_recompiled(ctx, agent)]
    return changed


def shared_block(ctx: Context, agent: Agent, label: str) -> Block | None:
    """The live shared block behind one of the agent's blocks, if it is a shared one."""
    copy = agent.block(label)
    if not copy.get("shared"):
        return None
    block = ctx.app.get(Block, ids.to_uuid(copy["id"]))
    return None if block is None or block.deleted else block
