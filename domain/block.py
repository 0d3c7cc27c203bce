"""The Block aggregate: a memory block created on its own (``POST /v1/blocks``) that agents
share. It is the record of the block's value and of which agents have it; each agent keeps a
copy in its own state (``Agent.BlockAttached``) that every change updates in the same save,
so an agent's prompt is compiled from its own state as for any other block.

Blocks created with an agent (``memory_blocks``) stay the agent's own and are not shared.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.agent import BLOCK_FIELDS as FIELDS
from domain.errors import InvalidArgument, NotFound
from domain.memory import check_limit


class Block(Aggregate):
    TOPIC = "convlog.Block"

    class Created(Aggregate.Created):
        TOPIC = "convlog.Block.Created"
        organization_id: str
        label: str
        value: str
        limit: int
        description: str | None
        read_only: bool
        metadata: dict[str, Any]
        created_by_id: str

    @event(Created)
    def __init__(
        self,
        organization_id: str,
        label: str,
        value: str,
        limit: int,
        description: str | None,
        read_only: bool,
        metadata: dict[str, Any],
        created_by_id: str,
    ) -> None:
        self.organization_id = organization_id
        self.label = label
        self.value = value
        self.limit = limit
        self.description = description
        self.read_only = read_only
        self.metadata = metadata
        self.created_by_id = created_by_id
        self.agent_ids: list[str] = []
        self.deleted = False

    def as_copy(self, block_id: str) -> dict[str, Any]:
        """The copy an agent holds."""
        fields = {name: getattr(self, name) for name in FIELDS}
        return {"id": block_id, "label": self.label, **fields, "shared": True}

    class Updated(Aggregate.Event):
        """Changed through the API (``agent_id`` None) or by an agent's memory tool."""

        TOPIC = "convlog.Block.Updated"
        changes: dict[str, Any]
        agent_id: str | None

    def update(self, changes: dict[str, Any], agent_id: str | None = None) -> None:
        self._check_alive()
        unknown = set(changes) - set(FIELDS)
        if unknown:
            raise InvalidArgument(f"Unknown block fields: {sorted(unknown)}")
        check_limit(changes.get("value", self.value), changes.get("limit", self.limit))
        self._update(changes=changes, agent_id=agent_id)

    @event(Updated)
    def _update(self, changes: dict[str, Any], agent_id: str | None) -> None:
        for name, value in changes.items():
            setattr(self, name, value)

    class Attached(Aggregate.Event):
        TOPIC = "convlog.Block.Attached"
        agent_id: str

    class Detached(Aggregate.Event):
        TOPIC = "convlog.Block.Detached"
        agent_id: str

    def attach(self, agent_id: str) -> None:
        self._check_alive()
        if agent_id not in self.agent_ids:
            self._attach(agent_id=agent_id)

    @event(Attached)
    def _attach(self, agent_id: str) -> None:
        self.agent_ids = [*self.agent_ids, agent_id]

    def detach(self, agent_id: str) -> None:
        if agent_id in self.agent_ids:
            self._detach(agent_id=agent_id)

    @event(Detached)
    def _detach(self, agent_id: str) -> None:
        self.agent_ids = [a for a in self.agent_ids if a != agent_id]

    class Deleted(Aggregate.Event):
        TOPIC = "convlog.Block.Deleted"

    def delete(self) -> None:
        """Only once no agent has it (the service detaches them in the same save)."""
        self._check_alive()
        if self.agent_ids:
            raise InvalidArgument("Detach the block from its agents before deleting it")
        self._delete()

    @event(Deleted)
    def _delete(self) -> None:
        self.deleted = True

    def _check_alive(self) -> None:
        if self.deleted:
            raise NotFound("Block not found")
