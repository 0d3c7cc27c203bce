"""What a server tool may read and change while a step is being saved."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from domain.agent import Agent
from domain.conversation import Conversation
from domain.memory import with_isolated
from domain.tools import ToolCause
from projections.search import Found

if TYPE_CHECKING:
    from service.tools.web import Web

# (agent id, query, roles, limit, from, until) -> the newest matches; times in microseconds
Search = Callable[[str, str | None, list[str] | None, int, int | None, int | None], list[Found]]


class ToolError(Exception):
    """A tool refused its arguments: the text goes back to the model as an error return."""


@dataclass
class ToolEnv:
    conversation: Conversation
    # The agent, loaded fresh only when a tool needs it (most steps use no memory tool).
    load_agent: Callable[[], Agent]
    agent_id: str
    conversation_id: str
    run_id: str
    step_id: str
    search: Search
    web: Web
    timezone: str = "UTC"
    changed_blocks: set[str] = field(default_factory=set)
    _agent: Agent | None = field(default=None, init=False, repr=False)

    @property
    def agent(self) -> Agent:
        if self._agent is None:
            self._agent = self.load_agent()
        return self._agent

    def block(self, label: str) -> dict[str, Any]:
        """The block a tool sees: the conversation's isolated copy, else the agent's."""
        isolated = self.conversation.isolated_block(label)
        if isolated is not None:
            return isolated
        for block in self.agent.blocks:
            if block["label"] == label:
                return block
        labels = ", ".join(b["label"] for b in self.visible_blocks())
        raise ToolError(f"Block field {label} does not exist (available sections = {labels})")

    def visible_blocks(self) -> list[Mapping[str, Any]]:
        return with_isolated(self.agent.blocks, self.conversation.isolated_blocks)

    def write_block(self, label: str, value: str, tool_name: str, tool_call_id: str) -> None:
        block = self.block(label)
        if block.get("read_only"):
            raise ToolError("Error This block is read-only and cannot be edited.")
        if len(value) > block["limit"]:
            raise ToolError(
                f"Edit failed: Exceeds {block['limit']} character limit "
                f"(requested {len(value)}). Shorten the block's content first."
            )
        cause = ToolCause(tool_name, self.conversation_id, self.run_id, self.step_id, tool_call_id)
        if self.conversation.isolated_block(label) is not None:
            self.conversation.edit_isolated_block(label, value, cause)
        else:
            self.agent.edit_memory(label, value, cause)
        self.changed_blocks.add(label)
