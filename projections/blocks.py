"""Every memory block, for ``/v1/blocks``: shared blocks (``Block`` events) and the blocks
agents were created with (their owner's ``Agent`` events). A shared block's copies in its
agents are not rows of their own: the ``Block`` row is the block.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from domain import ids
from domain.agent import Agent
from domain.block import Block
from projections.projection import Handler, Projection, Writer
from projections.store import ViewStore, page_by_created
from projections.timefmt import to_micros

COLUMNS = (
    "id, organization_id, owner_agent_id, label, value, limit_, description, read_only,"
    " metadata, created_at, agent_ids"
)


@dataclass(frozen=True)
class BlockRow:
    id: str
    organization_id: str
    owner_agent_id: str | None  # None: a shared block
    label: str
    value: str
    limit: int
    description: str | None
    read_only: bool
    metadata: dict[str, Any]
    created_at: int
    agent_ids: list[str]  # the agents that have it

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> BlockRow:
        values = list(row)
        values[7] = bool(values[7])
        values[8] = json.loads(values[8])
        values[10] = json.loads(values[10])
        return cls(*values)

    def wire(self) -> dict[str, Any]:
        fields = ("id", "label", "value", "limit", "description", "read_only", "metadata")
        return {name: getattr(self, name) for name in fields}


class BlockIndex(Projection):
    name = "blocks"
    version = 1
    tables: ClassVar[dict[str, list[str]]] = {
        "blocks": [
            "CREATE TABLE IF NOT EXISTS {blocks} ("
            " id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, owner_agent_id TEXT,"
            " label TEXT NOT NULL, value TEXT NOT NULL, limit_ INTEGER NOT NULL,"
            " description TEXT, read_only INTEGER NOT NULL, metadata TEXT NOT NULL,"
            " created_at BIGINT NOT NULL, agent_ids TEXT NOT NULL,"
            " deleted INTEGER NOT NULL DEFAULT 0)",
            "CREATE INDEX IF NOT EXISTS {blocks_by_org} ON {blocks} (organization_id, created_at)",
            "CREATE INDEX IF NOT EXISTS {blocks_by_owner} ON {blocks} (owner_agent_id, label)",
        ]
    }

    def handlers(self) -> Mapping[type[Any], Handler]:
        return {
            Block.Created: self._created,
            Block.Updated: self._updated,
            Block.Attached: self._agents_changed,
            Block.Detached: self._agents_changed,
            Block.Deleted: self._deleted,
            Agent.Created: self._agent_created,
            Agent.BlockUpdated: self._owned_updated,
            Agent.MemoryEdited: self._owned_edited,
            Agent.Deleted: self._agent_deleted,
        }

    def _insert(self, w: Writer, owner: str | None, block: Mapping[str, Any], at: int) -> None:
        w.insert(
            "blocks",
            COLUMNS,
            (
                block["id"],
                block["organization_id"],
                owner,
                block["label"],
                block["value"],
                block["limit"],
                block.get("description"),
                int(bool(block.get("read_only"))),
                json.dumps(block.get("metadata") or {}),
                at,
                json.dumps([owner] if owner else []),
            ),
        )

    def _created(self, e: Block.Created, w: Writer) -> None:
        block = {
            "id": ids.format_id(ids.BLOCK, e.originator_id),
            "organization_id": e.organization_id,
            "label": e.label,
            "value": e.value,
            "limit": e.limit,
            "description": e.description,
            "read_only": e.read_only,
            "metadata": e.metadata,
        }
        self._insert(w, None, block, to_micros(e.timestamp))

    def _set(self, w: Writer, where: str, key: tuple[Any, ...], changes: dict[str, Any]) -> None:
        columns = {"limit": "limit_"}
        values = {
            columns.get(k, k): (
                json.dumps(v) if k == "metadata" else int(v) if k == "read_only" else v
            )
            for k, v in changes.items()
        }
        if values:  # column names come from the aggregates' fixed block fields
            assignments = ", ".join(f"{column} = %s" for column in values)
            w.execute(
                f"UPDATE {{blocks}} SET {assignments} WHERE {where}", (*values.values(), *key)
            )

    def _updated(self, e: Block.Updated, w: Writer) -> None:
        self._set(w, "id = %s", (ids.format_id(ids.BLOCK, e.originator_id),), dict(e.changes))

    def _agents_changed(self, e: Block.Attached | Block.Detached, w: Writer) -> None:
        block_id = ids.format_id(ids.BLOCK, e.originator_id)
        found = json.loads(
            w.fetchone("SELECT agent_ids FROM {blocks} WHERE id = %s", (block_id,))[0]
        )
        agents = [a for a in found if a != e.agent_id]
        if isinstance(e, Block.Attached):
            agents.append(e.agent_id)
        w.execute(
            "UPDATE {blocks} SET agent_ids = %s WHERE id = %s", (json.dumps(agents), block_id)
        )

    def _deleted(self, e: Block.Deleted, w: Writer) -> None:
        block_id = ids.format_id(ids.BLOCK, e.originator_id)
        w.execute("UPDATE {blocks} SET deleted = 1 WHERE id = %s", (block_id,))

    def _agent_created(self, e: Agent.Created, w: Writer) -> None:
        owner = ids.format_id(ids.AGENT, e.originator_id)
        for block in e.blocks:
            self._insert(
                w, owner, {**block, "organization_id": e.organization_id}, to_micros(e.timestamp)
            )

    def _owned_updated(self, e: Agent.BlockUpdated, w: Writer) -> None:
        # A shared block's copy changes too: its row (no owner) is kept by Block.Updated.
        owner = ids.format_id(ids.AGENT, e.originator_id)
        self._set(w, "owner_agent_id = %s AND label = %s", (owner, e.label), dict(e.changes))

    def _owned_edited(self, e: Agent.MemoryEdited, w: Writer) -> None:
        owner = ids.format_id(ids.AGENT, e.originator_id)
        self._set(w, "owner_agent_id = %s AND label = %s", (owner, e.label), {"value": e.after})

    def _agent_deleted(self, e: Agent.Deleted, w: Writer) -> None:
        owner = ids.format_id(ids.AGENT, e.originator_id)
        w.execute("UPDATE {blocks} SET deleted = 1 WHERE owner_agent_id = %s", (owner,))


class BlockQueries:
    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def get(self, organization_id: str, block_id: str) -> BlockRow | None:
        rows = self.store.query(
            f"SELECT {COLUMNS} FROM blocks WHERE id = %s AND organization_id = %s AND deleted = 0",
            (block_id, organization_id),
        )
        return BlockRow.from_row(rows[0]) if rows else None

    def page(
        self,
        organization_id: str,
        *,
        label: str | None,
        ascending: bool,
        after: BlockRow | None,
        before: BlockRow | None,
        limit: int,
    ) -> list[BlockRow]:
        clauses, params = ["organization_id = %s", "deleted = 0"], [organization_id]
        if label is not None:
            clauses.append("label = %s")
            params.append(label)
        rows = page_by_created(
            self.store,
            f"SELECT {COLUMNS} FROM blocks",
            clauses,
            params,
            ascending=ascending,
            after=after,
            before=before,
            limit=limit,
        )
        return [BlockRow.from_row(row) for row in rows]
