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
    ctx: Context, block: Block, changes: dict[str, Any], skip_agent_id: str | None = None
) -> list[Aggregate]:
    """Each agent that has ``block`` (but ``skip_agent_id``, which recorded the change
    itself) records it on its copy, and its own context is recompiled.
    """
    changed: list[Aggregate] = []
    for agent_id in block.agent_ids:
        if agent_id == skip_agent_id:
            continue
        agent = ctx.app.get(Agent, ids.to_uuid(agent_id))
        if agent is None or agent.deleted:
            continue
        agent.update_block(block.label, changes)
        changed += [agent, *own_context_recompiled(ctx, agent)]
    return changed
