"""Agent use cases: create, read, list, delete, memory blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain import ids, tools
from domain.agent import Agent
from domain.block import Block
from domain.conversation import Conversation
from domain.errors import InvalidArgument, NotFound
from domain.handles import validate_handle
from domain.memory import (
    DEFAULT_BLOCK_LIMIT,
    DEFAULT_CONVERSATION,
    DEFAULT_DESCRIPTIONS,
    DEFAULT_SYSTEM_PROMPT,
    check_limit,
)
from domain.model_settings import BUILTIN, check_model_settings, check_with_tools
from projections.agents import AgentRow
from service.actor import Actor
from service.block_copies import copies_updated, own_context_recompiled, shared_block
from service.context import Context
from service.prompts import system_message

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
    include_base_tools: bool = True
    tools: list[str] = field(default_factory=list)  # names
    tool_ids: list[str] = field(default_factory=list)
    tool_rules: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ToolChange:
    attach: str | None = None  # a tool id
    detach: str | None = None  # a tool id
    approval: tuple[str, bool] | None = None  # (tool name, requires approval)


def chosen_tools(spec: AgentSpec) -> list[str]:
    """The base tools (unless left out), then the ones named, then the ones given by id."""
    chosen = tools.base_tool_ids() if spec.include_base_tools else []
    chosen += [tools.by_name(name).id for name in spec.tools]
    chosen += [tools.by_id(tool_id).id for tool_id in spec.tool_ids]
    return list(dict.fromkeys(chosen))


class AgentService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def create(self, actor: Actor, spec: AgentSpec) -> AgentRow:
        validate_handle(spec.model)
        validate_handle(spec.embedding)
        check_model_settings(spec.settings.get("model_settings"), spec.model or BUILTIN)
        check_with_tools(spec.settings.get("model_settings"), bool(chosen_tools(spec)))
        labels = [b.label for b in spec.memory_blocks]
        if len(set(labels)) != len(labels):
            raise InvalidArgument("Duplicate block labels are not allowed")
        blocks = []
        for b in spec.memory_blocks:
            check_limit(b.value, b.limit)
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
            tool_ids=chosen_tools(spec),
            tool_rules=tools.check_rules(spec.tool_rules),
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
            content=system_message(agent, DEFAULT_CONVERSATION, blocks, 0),
        )
        self.ctx.settle(self.ctx.app.save_new(actor, agent, own))
        return self.get(actor, agent_id)

    def message_ids(self, rows: list[AgentRow]) -> dict[str, list[str]]:
        """Each agent's in-context message ids: those of its own context, in model order."""
        own = {r.id: str(ids.default_conversation_id(ids.to_uuid(r.id))) for r in rows}
        found = self.ctx.conversations.get_many(list(own.values()))
        windows = self.ctx.messages.in_context_ids([c.window for c in found.values()])
        return {agent_id: windows.get(uuid, []) for agent_id, uuid in own.items()}

    def get(self, actor: Actor, agent_id: str) -> AgentRow:
        row = self.ctx.agents.get(actor.organization_id, agent_id)
        if row is None:
            raise NotFound(AGENT_NOT_FOUND)
        return row

    def load(self, actor: Actor, agent_id: str) -> Agent:
        return self.ctx.load_agent(actor, agent_id)

    def own_context_recompiled(self, agent: Agent) -> list[Aggregate]:
        return own_context_recompiled(self.ctx, agent)

    def delete(self, actor: Actor, agent_id: str) -> None:
        """Delete the agent, then record the deletion in each of its conversations.

        The agent's deletion alone is one small save, so conversations being created at the
        same moment cannot starve it; from then on no conversation can be opened for it (see
        ``Agent.open_conversation``), and the index hides its conversations at once.
        """

        def delete_agent() -> list[Any]:
            agent = self.load(actor, agent_id)
            agent.delete()
            shared = [
                self.ctx.app.get(Block, ids.to_uuid(b["id"]))
                for b in agent.blocks
                if b.get("shared")
            ]
            for block in shared:
                if block is not None:
                    block.detach(agent_id)
            return [agent, *(b for b in shared if b is not None)]

        position = self.ctx.app.save_retrying(actor, delete_agent)
        self.ctx.projector.catch_up()
        for conv_id in self.ctx.conversations.ids_of_agent(agent_id, include_deleted_agent=True):

            def delete_conversation(conv_id: str = conv_id) -> list[Any]:
                conversation = self.ctx.app.get(Conversation, UUID(conv_id))
                if conversation is None or conversation.deleted:
                    return []
                conversation.delete()
                return [conversation]

            position = max(position, self.ctx.app.save_retrying(actor, delete_conversation))
        self.ctx.settle(position)

    # -- tools -----------------------------------------------------------------------------

    def tools_of(self, actor: Actor, agent_id: str) -> list[tools.ToolDef]:
        row = self.get(actor, agent_id)
        return [tools.BY_ID[t] for t in row.state.get("tool_ids", []) if t in tools.BY_ID]

    def change_tools(self, actor: Actor, agent_id: str, change: ToolChange) -> AgentRow:
        """Attach or detach a tool, or set whether a tool needs approval."""

        def command() -> list[Any]:
            agent = self.load(actor, agent_id)
            if change.attach is not None:
                agent.attach_tool(change.attach)
            if change.detach is not None:
                agent.detach_tool(change.detach)
            if change.approval is not None:
                name, required = change.approval
                agent.set_tool_rules(tools.set_approval(agent.tool_rules, name, required))
            return [agent]

        self.ctx.settle(self.ctx.app.save_retrying(actor, command))
        return self.get(actor, agent_id)

    def update(self, actor: Actor, agent_id: str, changes: dict[str, Any]) -> AgentRow:
        """Apply the fields given; a new system prompt also recompiles the agent's own
        context (existing conversations keep their system message until recompiled).
        """
        validate_handle(changes.get("model"))
        validate_handle(changes.get("embedding"))
        check_model_settings((changes.get("settings") or {}).get("model_settings"))

        def command() -> list[Any]:
            agent = self.load(actor, agent_id)
            update = dict(changes)
            settings = changes.get("settings") or {}
            # The settings the agent will have, for the model it will have.
            model_settings = settings.get("model_settings", agent.settings.get("model_settings"))
            check_model_settings(model_settings, changes.get("model") or agent.model or BUILTIN)
            check_with_tools(model_settings, bool(changes.get("tool_ids", agent.tool_ids)))
            if "compaction_settings" in settings:  # the fields sent over the agent's own
                current = agent.settings.get("compaction_settings") or {}
                merged = {**current, **settings["compaction_settings"]}
                update["settings"] = {**settings, "compaction_settings": merged}
            agent.update(update, actor.user_id)
            if "system" not in changes:
                return [agent]
            return [agent, *self.own_context_recompiled(agent)]

        self.ctx.settle(self.ctx.app.save_retrying(actor, command))
        return self.get(actor, agent_id)

    def reset_messages(self, actor: Actor, agent_id: str) -> AgentRow:
        """The agent's own context starts over from a recompiled system message. Nothing is
        deleted: the messages stay listed and in the log (as in Letta).
        """

        def command() -> list[Any]:
            agent = self.load(actor, agent_id)
            own = self.ctx.app.get(Conversation, ids.default_conversation_id(agent.id))
            if own is None:
                raise NotFound(AGENT_NOT_FOUND)
            count = self.ctx.conversations.message_count_of_agent(actor.organization_id, agent_id)
            own.reset_context()
            own.recompile_system_message(
                system_message(agent, DEFAULT_CONVERSATION, agent.blocks, count)
            )
            return [own]

        self.ctx.settle(self.ctx.app.save_retrying(actor, command))
        return self.get(actor, agent_id)

    def count(self, actor: Actor, show_hidden: bool = False) -> int:
        return self.ctx.agents.count(actor.organization_id, show_hidden)

    def blocks(self, actor: Actor, agent_id: str) -> list[dict[str, Any]]:
        return [dict(b) for b in self.get(actor, agent_id).state["blocks"]]

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
            block = shared_block(self.ctx, agent, label)
            if block is None:
                return [agent, *self.own_context_recompiled(agent)]
            # A shared block: the block and every other agent's copy change with it.
            block.update(changes, agent_id=agent_id)
            others = copies_updated(self.ctx, [(block, changes)], agent_id)
            return [agent, *self.own_context_recompiled(agent), block, *others]

        self.ctx.settle(self.ctx.app.save_retrying(actor, command))
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
        tags: list[str] | None = None,
        match_all_tags: bool = False,
        query_text: str | None = None,
        show_hidden: bool = False,
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
            tags=tags,
            match_all_tags=match_all_tags,
            query_text=query_text,
            show_hidden=show_hidden,
        )
