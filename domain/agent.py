"""The Agent aggregate: name, prompt, model, memory blocks, tools. Light state, no messages."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event

from domain import tools
from domain.errors import InvalidArgument, NotFound
from domain.memory import check_limit
from domain.tools import ToolCause

BLOCK_FIELDS = ("value", "limit", "description", "read_only", "metadata")
UPDATABLE = ("name", "system", "model", "embedding", "tool_ids", "tool_rules", "settings")


def _default_tools(state: dict[str, Any]) -> None:
    """Agents recorded before tools existed get what they were promised at creation."""
    wanted = (state.get("settings") or {}).get("include_base_tools", True)
    state["tool_ids"] = tools.base_tool_ids() if wanted else []
    state["tool_rules"] = []


class Agent(Aggregate):
    TOPIC = "convlog.Agent"
    # Snapshot state version: 2 added tool_ids and tool_rules.
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        _default_tools(state)

    class Created(Aggregate.Created):
        TOPIC = "convlog.Agent.Created"
        class_version = 2  # 2 added tool_ids, tool_rules
        organization_id: str
        name: str
        system: str
        agent_type: str
        model: str | None
        embedding: str | None
        blocks: list[dict[str, Any]]
        settings: dict[str, Any]
        created_by_id: str
        tool_ids: list[str]
        tool_rules: list[dict[str, Any]]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            _default_tools(state)

    @event(Created)
    def __init__(
        self,
        organization_id: str,
        name: str,
        system: str,
        agent_type: str,
        model: str | None,
        embedding: str | None,
        blocks: list[dict[str, Any]],
        settings: dict[str, Any],
        created_by_id: str,
        tool_ids: list[str],
        tool_rules: list[dict[str, Any]],
    ) -> None:
        self.organization_id = organization_id
        self.name = name
        self.system = system
        self.agent_type = agent_type
        self.model = model
        self.embedding = embedding
        self.blocks = blocks
        # Everything else the wire echoes back (description, tags, metadata, timezone, ...).
        self.settings = settings
        self.created_by_id = created_by_id
        self.last_updated_by_id = created_by_id
        self.deleted = False
        self.conversation_count = 0
        self.tool_ids = tool_ids
        self.tool_rules = tool_rules

    def block(self, label: str) -> dict[str, Any]:
        for block in self.blocks:
            if block["label"] == label:
                return block
        raise NotFound(f"Block with label '{label}' not found on agent")

    # -- memory blocks ---------------------------------------------------------------------

    class BlockUpdated(Aggregate.Event):
        """A client changed a block through the API."""

        TOPIC = "convlog.Agent.BlockUpdated"
        label: str
        changes: dict[str, Any]

    def update_block(self, label: str, changes: dict[str, Any]) -> None:
        self._check_alive()
        self.block(label)
        unknown = set(changes) - set(BLOCK_FIELDS)
        if unknown:
            raise InvalidArgument(f"Unknown block fields: {sorted(unknown)}")
        merged = {**self.block(label), **changes}
        check_limit(merged["value"], merged["limit"])
        self._update_block(label=label, changes=changes)

    @event(BlockUpdated)
    def _update_block(self, label: str, changes: dict[str, Any]) -> None:
        self.blocks = [{**b, **changes} if b["label"] == label else b for b in self.blocks]

    class MemoryEdited(Aggregate.Event):
        """The agent changed one of its blocks with a memory tool, during a run."""

        TOPIC = "convlog.Agent.MemoryEdited"
        label: str
        before: str
        after: str
        tool_name: str
        conversation_id: str
        run_id: str
        step_id: str
        tool_call_id: str

    def edit_memory(self, label: str, after: str, cause: ToolCause) -> None:
        """Record a tool's edit; the tool has checked the block's limit and read-only flag."""
        self._check_alive()
        before = self.block(label)["value"]
        self._edit_memory(
            label=label,
            before=before,
            after=after,
            tool_name=cause.tool_name,
            conversation_id=cause.conversation_id,
            run_id=cause.run_id,
            step_id=cause.step_id,
            tool_call_id=cause.tool_call_id,
        )

    @event(MemoryEdited)
    def _edit_memory(
        self,
        label: str,
        before: str,
        after: str,
        tool_name: str,
        conversation_id: str,
        run_id: str,
        step_id: str,
        tool_call_id: str,
    ) -> None:
        self.blocks = [{**b, "value": after} if b["label"] == label else b for b in self.blocks]

    class BlockAttached(Aggregate.Event):
        """A shared block (``domain/block.py``) joined this agent's memory: its copy."""

        TOPIC = "convlog.Agent.BlockAttached"
        block: dict[str, Any]

    class BlockDetached(Aggregate.Event):
        TOPIC = "convlog.Agent.BlockDetached"
        block_id: str

    def attach_block(self, block: dict[str, Any]) -> None:
        self._check_alive()
        if any(b["id"] == block["id"] for b in self.blocks):
            return
        if any(b["label"] == block["label"] for b in self.blocks):
            raise InvalidArgument(f"The agent already has a block labelled '{block['label']}'")
        self._attach_block(block=block)

    @event(BlockAttached)
    def _attach_block(self, block: dict[str, Any]) -> None:
        self.blocks = [*self.blocks, block]

    def detach_block(self, block_id: str) -> None:
        self._check_alive()
        if not any(b["id"] == block_id for b in self.blocks):
            raise NotFound(f"Block {block_id} is not attached to this agent")
        self._detach_block(block_id=block_id)

    @event(BlockDetached)
    def _detach_block(self, block_id: str) -> None:
        self.blocks = [b for b in self.blocks if b["id"] != block_id]

    # -- tools -----------------------------------------------------------------------------

    class ToolAttached(Aggregate.Event):
        TOPIC = "convlog.Agent.ToolAttached"
        tool_id: str

    class ToolDetached(Aggregate.Event):
        TOPIC = "convlog.Agent.ToolDetached"
        tool_id: str

    class ToolRulesChanged(Aggregate.Event):
        TOPIC = "convlog.Agent.ToolRulesChanged"
        tool_rules: list[dict[str, Any]]

    def attach_tool(self, tool_id: str) -> None:
        self._check_alive()
        tools.by_id(tool_id)
        if tool_id not in self.tool_ids:
            self._attach_tool(tool_id=tool_id)

    @event(ToolAttached)
    def _attach_tool(self, tool_id: str) -> None:
        self.tool_ids = [*self.tool_ids, tool_id]

    def detach_tool(self, tool_id: str) -> None:
        self._check_alive()
        tools.by_id(tool_id)
        if tool_id in self.tool_ids:
            self._detach_tool(tool_id=tool_id)

    @event(ToolDetached)
    def _detach_tool(self, tool_id: str) -> None:
        self.tool_ids = [t for t in self.tool_ids if t != tool_id]

    def set_tool_rules(self, rules: list[dict[str, Any]]) -> None:
        self._check_alive()
        checked = tools.check_rules(rules)
        if checked != self.tool_rules:
            self._set_tool_rules(tool_rules=checked)

    @event(ToolRulesChanged)
    def _set_tool_rules(self, tool_rules: list[dict[str, Any]]) -> None:
        self.tool_rules = tool_rules

    def tool_names(self) -> list[str]:
        return [tools.BY_ID[t].name for t in self.tool_ids if t in tools.BY_ID]

    # -- editing ---------------------------------------------------------------------------

    class Updated(Aggregate.Event):
        """Fields a client changed (PATCH): top-level ones, and ``settings`` merged key by key."""

        TOPIC = "convlog.Agent.Updated"
        changes: dict[str, Any]
        updated_by_id: str

    def update(self, changes: dict[str, Any], updated_by_id: str) -> None:
        self._check_alive()
        unknown = set(changes) - set(UPDATABLE)
        if unknown:
            raise InvalidArgument(f"Unknown agent fields: {sorted(unknown)}")
        for tool_id in changes.get("tool_ids") or []:
            tools.by_id(tool_id)
        if "tool_rules" in changes:
            changes = {**changes, "tool_rules": tools.check_rules(changes["tool_rules"])}
        self._update(changes=changes, updated_by_id=updated_by_id)

    @event(Updated)
    def _update(self, changes: dict[str, Any], updated_by_id: str) -> None:
        for key, value in changes.items():
            if key == "settings":
                self.settings = {**self.settings, **value}
            else:
                setattr(self, key, value)
        self.last_updated_by_id = updated_by_id

    # -- lifecycle -------------------------------------------------------------------------

    class ConversationOpened(Aggregate.Event):
        TOPIC = "convlog.Agent.ConversationOpened"
        conversation_id: str

    def open_conversation(self, conversation_id: str) -> None:
        """Recorded with each new conversation, so it cannot race the agent's deletion: one of
        the two saves fails its version check and is re-run on the fresh state.
        """
        self._check_alive()
        self._open_conversation(conversation_id=conversation_id)

    @event(ConversationOpened)
    def _open_conversation(self, conversation_id: str) -> None:
        self.conversation_count += 1

    class Deleted(Aggregate.Event):
        TOPIC = "convlog.Agent.Deleted"

    def delete(self) -> None:
        self._check_alive()
        self._delete()

    @event(Deleted)
    def _delete(self) -> None:
        self.deleted = True

    def _check_alive(self) -> None:
        if self.deleted:
            raise NotFound("Agent not found")
