"""The Agent aggregate: name, prompt, model, memory blocks. Light state, no messages."""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidArgument, NotFound

BLOCK_FIELDS = ("value", "limit", "description", "read_only", "metadata")


class Agent(Aggregate):
    TOPIC = "convlog.Agent"

    # Event classes, defined by the @event decorators below; declared for readers and mypy.
    BlockUpdated: ClassVar[type[Aggregate.Event]]
    ConversationOpened: ClassVar[type[Aggregate.Event]]
    Deleted: ClassVar[type[Aggregate.Event]]

    @event("Created", topic="convlog.Agent.Created")
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

    def block(self, label: str) -> dict[str, Any]:
        for block in self.blocks:
            if block["label"] == label:
                return block
        raise NotFound(f"Block with label '{label}' not found on agent")

    def update_block(self, label: str, changes: dict[str, Any]) -> None:
        if self.deleted:
            raise NotFound("Agent not found")
        self.block(label)
        unknown = set(changes) - set(BLOCK_FIELDS)
        if unknown:
            raise InvalidArgument(f"Unknown block fields: {sorted(unknown)}")
        merged = {**self.block(label), **changes}
        if len(merged["value"]) > merged["limit"]:
            raise InvalidArgument(
                f"Edit failed: Exceeds {merged['limit']} character limit "
                f"(requested {len(merged['value'])})"
            )
        self._update_block(label=label, changes=changes)

    @event("BlockUpdated", topic="convlog.Agent.BlockUpdated")
    def _update_block(self, label: str, changes: dict[str, Any]) -> None:
        self.blocks = [{**b, **changes} if b["label"] == label else b for b in self.blocks]

    def open_conversation(self, conversation_id: str) -> None:
        """Recorded with each new conversation, so it cannot race the agent's deletion: one of
        the two saves fails its version check and is re-run on the fresh state.
        """
        if self.deleted:
            raise NotFound("Agent not found")
        self._open_conversation(conversation_id=conversation_id)

    @event("ConversationOpened", topic="convlog.Agent.ConversationOpened")
    def _open_conversation(self, conversation_id: str) -> None:
        self.conversation_count += 1

    def delete(self) -> None:
        if self.deleted:
            raise NotFound("Agent not found")
        self._delete()

    @event("Deleted", topic="convlog.Agent.Deleted")
    def _delete(self) -> None:
        self.deleted = True
