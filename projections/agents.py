"""The agent index: each agent's current state, for listing and retrieval."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from domain import ids
from domain.agent import Agent
from projections.projection import Handler, Projection, Writer
from projections.store import ViewStore, page_by_created
from projections.timefmt import to_micros


@dataclass(frozen=True)
class AgentRow:
    id: str  # agent-<uuid>
    organization_id: str
    name: str
    created_at: int
    updated_at: int
    state: dict[str, Any]

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> AgentRow:
        return cls(row[0], row[1], row[2], int(row[3]), int(row[4]), json.loads(row[5]))


STATE_FIELDS = (
    "name",
    "system",
    "agent_type",
    "model",
    "embedding",
    "blocks",
    "settings",
    "created_by_id",
    "tool_ids",
    "tool_rules",
)
COLUMNS = "id, organization_id, name, created_at, updated_at, state"


class AgentIndex(Projection):
    name = "agents"
    # 2: tools, tool rules and memory edits in the state; 3: tags; 4: shared blocks; 5: hidden
    version = 5
    tables: ClassVar[dict[str, list[str]]] = {
        "agents": [
            "CREATE TABLE IF NOT EXISTS {agents} ("
            " id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, name TEXT NOT NULL,"
            " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
            " deleted INTEGER NOT NULL DEFAULT 0, hidden INTEGER NOT NULL DEFAULT 0,"
            " state TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS {agents_by_created}"
            " ON {agents} (organization_id, created_at)",
        ],
        "agent_tags": [
            "CREATE TABLE IF NOT EXISTS {agent_tags} ("
            " agent_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (tag, agent_id))",
        ],
    }

    def handlers(self) -> Mapping[type[Any], Handler]:
        return {
            Agent.Created: self._created,
            Agent.BlockUpdated: self._block_updated,
            Agent.MemoryEdited: self._memory_edited,
            Agent.BlockAttached: self._block_attached,
            Agent.BlockDetached: self._block_detached,
            Agent.ToolAttached: self._tool_attached,
            Agent.ToolDetached: self._tool_detached,
            Agent.ToolRulesChanged: self._tool_rules_changed,
            Agent.Updated: self._updated,
            Agent.Deleted: self._deleted,
        }

    def _tags(self, agent_id: str, tags: list[str] | None, w: Writer) -> None:
        w.execute("DELETE FROM {agent_tags} WHERE agent_id = %s", (agent_id,))
        for tag in dict.fromkeys(tags or []):
            w.insert("agent_tags", "agent_id, tag", (agent_id, tag))

    def _created(self, e: Agent.Created, w: Writer) -> None:
        at = to_micros(e.timestamp)
        state = {name: getattr(e, name) for name in STATE_FIELDS}
        state["last_updated_by_id"] = e.created_by_id
        w.execute(
            "INSERT INTO {agents} (id, organization_id, name, created_at, updated_at, hidden,"
            " state) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                ids.format_id(ids.AGENT, e.originator_id),
                e.organization_id,
                e.name,
                at,
                at,
                int(bool(e.settings.get("hidden"))),
                json.dumps(state),
            ),
        )
        if e.settings.get("tags"):
            self._tags(ids.format_id(ids.AGENT, e.originator_id), e.settings["tags"], w)

    def _change(self, e: Agent.Event, w: Writer, change: Callable[[dict[str, Any]], None]) -> None:
        agent_id = ids.format_id(ids.AGENT, e.originator_id)
        state = json.loads(w.fetchone("SELECT state FROM {agents} WHERE id = %s", (agent_id,))[0])
        change(state)
        w.execute(
            "UPDATE {agents} SET state = %s, updated_at = %s WHERE id = %s",
            (json.dumps(state), to_micros(e.timestamp), agent_id),
        )

    def _block_updated(self, e: Agent.BlockUpdated, w: Writer) -> None:
        def change(state: dict[str, Any]) -> None:
            state["blocks"] = [
                {**b, **e.changes} if b["label"] == e.label else b for b in state["blocks"]
            ]

        self._change(e, w, change)

    def _memory_edited(self, e: Agent.MemoryEdited, w: Writer) -> None:
        def change(state: dict[str, Any]) -> None:
            state["blocks"] = [
                {**b, "value": e.after} if b["label"] == e.label else b for b in state["blocks"]
            ]

        self._change(e, w, change)

    def _block_attached(self, e: Agent.BlockAttached, w: Writer) -> None:
        self._change(e, w, lambda state: state["blocks"].append(e.block))

    def _block_detached(self, e: Agent.BlockDetached, w: Writer) -> None:
        def change(state: dict[str, Any]) -> None:
            state["blocks"] = [b for b in state["blocks"] if b["id"] != e.block_id]

        self._change(e, w, change)

    def _tool_attached(self, e: Agent.ToolAttached, w: Writer) -> None:
        self._change(e, w, lambda state: state["tool_ids"].append(e.tool_id))

    def _tool_detached(self, e: Agent.ToolDetached, w: Writer) -> None:
        def change(state: dict[str, Any]) -> None:
            state["tool_ids"] = [t for t in state["tool_ids"] if t != e.tool_id]

        self._change(e, w, change)

    def _updated(self, e: Agent.Updated, w: Writer) -> None:
        def change(state: dict[str, Any]) -> None:
            for key, value in e.changes.items():
                if key == "settings":
                    state["settings"] = {**state["settings"], **value}
                else:
                    state[key] = value
            state["last_updated_by_id"] = e.updated_by_id

        self._change(e, w, change)
        if "tags" in e.changes.get("settings", {}):
            self._tags(ids.format_id(ids.AGENT, e.originator_id), e.changes["settings"]["tags"], w)
        if "hidden" in e.changes.get("settings", {}):
            w.execute(
                "UPDATE {agents} SET hidden = %s WHERE id = %s",
                (
                    int(bool(e.changes["settings"]["hidden"])),
                    ids.format_id(ids.AGENT, e.originator_id),
                ),
            )
        if "name" in e.changes:
            w.execute(
                "UPDATE {agents} SET name = %s WHERE id = %s",
                (e.changes["name"], ids.format_id(ids.AGENT, e.originator_id)),
            )

    def _tool_rules_changed(self, e: Agent.ToolRulesChanged, w: Writer) -> None:
        self._change(e, w, lambda state: state.update(tool_rules=e.tool_rules))

    def _deleted(self, e: Agent.Deleted, w: Writer) -> None:
        w.execute(
            "UPDATE {agents} SET deleted = 1, updated_at = %s WHERE id = %s",
            (to_micros(e.timestamp), ids.format_id(ids.AGENT, e.originator_id)),
        )


class AgentQueries:
    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def get(self, organization_id: str, agent_id: str) -> AgentRow | None:
        rows = self.store.query(
            f"SELECT {COLUMNS} FROM agents WHERE id = %s AND organization_id = %s AND deleted = 0",
            (agent_id, organization_id),
        )
        return AgentRow.from_row(rows[0]) if rows else None

    def list(
        self,
        organization_id: str,
        *,
        name: str | None,
        ascending: bool,
        after: AgentRow | None,
        before: AgentRow | None,
        limit: int,
        tags: list[str] | None = None,
        match_all_tags: bool = False,
        query_text: str | None = None,
        show_hidden: bool = False,
    ) -> list[AgentRow]:
        clauses = ["organization_id = %s", "deleted = 0"]
        if not show_hidden:
            clauses.append("hidden = 0")
        params: list[Any] = [organization_id]
        if name is not None:
            clauses.append("name = %s")
            params.append(name)
        if tags:
            wanted = list(dict.fromkeys(tags))
            marks = ", ".join(["%s"] * len(wanted))
            every = f" GROUP BY agent_id HAVING COUNT(*) = {len(wanted)}" if match_all_tags else ""
            clauses.append(f"id IN (SELECT agent_id FROM agent_tags WHERE tag IN ({marks}){every})")
            params += wanted
        if query_text:
            clauses.append(self.store.substring("lower(name)"))
            params.append(query_text.lower())
        rows = page_by_created(
            self.store,
            f"SELECT {COLUMNS} FROM agents",
            clauses,
            params,
            ascending=ascending,
            after=after,
            before=before,
            limit=limit,
        )
        return [AgentRow.from_row(row) for row in rows]

    def count(self, organization_id: str, show_hidden: bool = False) -> int:
        hidden = "" if show_hidden else " AND hidden = 0"
        rows = self.store.query(
            f"SELECT COUNT(*) FROM agents WHERE organization_id = %s AND deleted = 0{hidden}",
            (organization_id,),
        )
        return int(rows[0][0])

    def get_including_deleted(self, agent_id: str) -> AgentRow | None:
        rows = self.store.query(f"SELECT {COLUMNS} FROM agents WHERE id = %s", (agent_id,))
        return AgentRow.from_row(rows[0]) if rows else None
