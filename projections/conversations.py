"""The conversation index: one row per conversation, for listing, sorting and lookups."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from domain import ids
from domain.agent import Agent
from domain.conversation import Conversation
from projections.message_reads import Window
from projections.projection import Handler, Projection, Writer
from projections.store import ViewStore
from projections.timefmt import to_micros

ORDER_COLUMNS = {
    "created_at": "created_at",
    "last_message_at": "last_message_at",
    "last_run_completion": "last_run_completion",
}
# NULL sort keys go last in both directions.
_NULL_LAST_ASC = 2**62
_NULL_LAST_DESC = -1

COLUMNS = (
    "id, agent_id, organization_id, summary, model, model_settings, isolated_block_ids,"
    " created_by_id, last_updated_by_id, created_at, updated_at, last_message_at,"
    " last_run_completion, message_count, context_from, context_epoch, system_position,"
    " summary_position, system_epoch, active_run_id, forked"
)


@dataclass(frozen=True)
class ConversationRow:
    id: str  # the aggregate's UUID as text
    agent_id: str
    organization_id: str
    summary: str | None
    model: str | None
    model_settings: dict[str, Any] | None
    isolated_block_ids: list[str]
    created_by_id: str | None
    last_updated_by_id: str | None
    created_at: int
    updated_at: int
    last_message_at: int | None
    last_run_completion: int | None
    message_count: int
    context_from: int
    context_epoch: int
    system_position: int
    summary_position: int | None
    system_epoch: int
    active_run_id: str | None  # the run holding the conversation, if any
    forked: bool  # lists a parent's messages (projections/lineage.py)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> ConversationRow:
        values = list(row)
        values[5] = json.loads(values[5]) if values[5] else None
        values[6] = json.loads(values[6])
        values[20] = bool(values[20])
        return cls(*values)

    @property
    def conversation_id(self) -> str:
        return f"{ids.CONVERSATION}-{self.id}"

    @property
    def context_version(self) -> tuple[int, int]:
        """Changes when messages already in context change: (any of them, the system one)."""
        return (self.context_epoch, self.system_epoch)

    @property
    def window(self) -> Window:
        return Window(
            self.id, self.system_position, self.summary_position, self.context_from, self.forked
        )


class ConversationIndex(Projection):
    """One row per conversation. ``StreamPast.row_at`` (``projections/history.py``) folds the
    same rules in memory for time travel: change both (tests/integration/
    test_time_travel_properties.py holds them equal at every version).
    """

    name = "conversations"
    version = 7  # 4: system_epoch; 5: key_shift (forks); 6: forked; 7: active_holder
    tables: ClassVar[dict[str, list[str]]] = {
        "conversations": [
            "CREATE TABLE IF NOT EXISTS {conversations} ("
            " id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, organization_id TEXT NOT NULL,"
            " is_default INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,"
            " summary TEXT, model TEXT, model_settings TEXT, isolated_block_ids TEXT NOT NULL,"
            " created_by_id TEXT, last_updated_by_id TEXT,"
            " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
            " last_message_at BIGINT, last_run_completion BIGINT,"
            " message_count INTEGER NOT NULL DEFAULT 0, context_from INTEGER NOT NULL DEFAULT 0,"
            " active_run_id TEXT, lease_until BIGINT, agent_deleted INTEGER NOT NULL DEFAULT 0,"
            " context_epoch INTEGER NOT NULL DEFAULT 0, system_position INTEGER NOT NULL DEFAULT 0,"
            " summary_position INTEGER, system_epoch INTEGER NOT NULL DEFAULT 0,"
            " key_shift INTEGER NOT NULL DEFAULT 0, forked INTEGER NOT NULL DEFAULT 0,"
            " active_holder TEXT)",
            "CREATE INDEX IF NOT EXISTS {conversations_by_agent}"
            " ON {conversations} (organization_id, agent_id, created_at)",
            "CREATE INDEX IF NOT EXISTS {conversations_by_created}"
            " ON {conversations} (organization_id, created_at)",
            "CREATE INDEX IF NOT EXISTS {conversations_claimed}"
            " ON {conversations} (lease_until) WHERE active_run_id IS NOT NULL",
        ]
    }

    def handlers(self) -> Mapping[type[Any], Handler]:
        return {
            Conversation.Created: self._created,
            Conversation.MessageAppended: self._appended,
            Conversation.Updated: self._updated,
            Conversation.Deleted: self._deleted,
            Agent.Deleted: self._agent_deleted,
            Conversation.SystemMessageRecompiled: self._context_changed,
            Conversation.Compacted: self._compacted,
            Conversation.ContextReset: self._reset,
            Conversation.Forked: self._forked,
            Conversation.RunClaimed: self._run_claimed,
            Conversation.RunLeaseRenewed: self._lease_renewed,
            Conversation.RunReleased: self._run_released,
        }

    def _created(self, e: Conversation.Created, w: Writer) -> None:
        at = to_micros(e.timestamp)
        w.execute(
            "INSERT INTO {conversations} (id, agent_id, organization_id, is_default, summary,"
            " model, model_settings, isolated_block_ids, created_by_id, last_updated_by_id,"
            " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                str(e.originator_id),
                e.agent_id,
                e.organization_id,
                int(e.is_default),
                e.summary,
                e.model,
                None if e.model_settings is None else json.dumps(e.model_settings),
                json.dumps([b["id"] for b in e.isolated_blocks]),
                e.created_by_id,
                e.created_by_id,
                at,
                at,
            ),
        )

    def _appended(self, e: Conversation.MessageAppended, w: Writer) -> None:
        if e.role == "system":
            # The first message is the system prompt: the context starts there.
            w.execute(
                "UPDATE {conversations} SET message_count = message_count + 1,"
                " context_from = CASE WHEN context_from = 0 THEN %s ELSE context_from END,"
                " system_position = CASE WHEN system_position = 0 THEN %s ELSE system_position END"
                " WHERE id = %s",
                (e.originator_version, e.originator_version, str(e.originator_id)),
            )
            return
        w.execute(
            "UPDATE {conversations} SET message_count = message_count + 1, last_message_at = %s"
            " WHERE id = %s",
            (to_micros(e.timestamp), str(e.originator_id)),
        )

    def _updated(self, e: Conversation.Updated, w: Writer) -> None:
        changes = dict(e.changes)
        if "model_settings" in changes:
            changes["model_settings"] = json.dumps(changes["model_settings"])
        changes["last_updated_by_id"] = e.updated_by_id
        changes["updated_at"] = to_micros(e.timestamp)
        # Column names come from the aggregate's fixed UPDATABLE_FIELDS, never from input.
        assignments = ", ".join(f"{column} = %s" for column in changes)
        w.execute(
            f"UPDATE {{conversations}} SET {assignments} WHERE id = %s",
            (*changes.values(), str(e.originator_id)),
        )

    def _deleted(self, e: Conversation.Deleted, w: Writer) -> None:
        w.execute(
            "UPDATE {conversations} SET deleted = 1, updated_at = %s WHERE id = %s",
            (to_micros(e.timestamp), str(e.originator_id)),
        )

    def _context_changed(self, e: Conversation.SystemMessageRecompiled, w: Writer) -> None:
        # The system message changed: caches of the context re-read that one message.
        w.execute(
            "UPDATE {conversations} SET system_epoch = system_epoch + 1 WHERE id = %s",
            (str(e.originator_id),),
        )

    def _compacted(self, e: Conversation.Compacted, w: Writer) -> None:
        # Positions in the window are listing keys: a fork's own events are shifted.
        w.execute(
            "UPDATE {conversations} SET message_count = message_count + 1,"
            " context_from = %s, summary_position = %s + key_shift,"
            " context_epoch = context_epoch + 1 WHERE id = %s",
            (e.keep_from, e.originator_version, str(e.originator_id)),
        )

    def _forked(self, e: Conversation.Forked, w: Writer) -> None:
        # The parent's window at the fork point comes along (it is in the same keys).
        w.execute(
            "UPDATE {conversations} SET key_shift = %s, forked = 1,"
            " context_from = COALESCE(%s, context_from), summary_position = %s WHERE id = %s",
            (e.key_shift, e.context_from, e.summary_key, str(e.originator_id)),
        )

    def _reset(self, e: Conversation.ContextReset, w: Writer) -> None:
        w.execute(
            "UPDATE {conversations} SET context_from = %s, summary_position = NULL,"
            " context_epoch = context_epoch + 1 WHERE id = %s",
            (e.keep_from, str(e.originator_id)),
        )

    def _agent_deleted(self, e: Agent.Deleted, w: Writer) -> None:
        # Hidden at once; each conversation also records its own Deleted event right after.
        w.execute(
            "UPDATE {conversations} SET agent_deleted = 1 WHERE agent_id = %s",
            (ids.format_id(ids.AGENT, e.originator_id),),
        )

    def _run_claimed(self, e: Conversation.RunClaimed, w: Writer) -> None:
        w.execute(
            "UPDATE {conversations} SET active_run_id = %s, lease_until = %s, active_holder = %s"
            " WHERE id = %s",
            (e.run_id, to_micros(e.lease_until), e.holder, str(e.originator_id)),
        )

    def _lease_renewed(self, e: Conversation.RunLeaseRenewed, w: Writer) -> None:
        w.execute(
            "UPDATE {conversations} SET lease_until = %s WHERE id = %s",
            (to_micros(e.lease_until), str(e.originator_id)),
        )

    def _run_released(self, e: Conversation.RunReleased, w: Writer) -> None:
        w.execute(
            "UPDATE {conversations} SET active_run_id = NULL, lease_until = NULL,"
            " active_holder = NULL, last_run_completion = %s WHERE id = %s",
            (to_micros(e.timestamp), str(e.originator_id)),
        )


class ConversationQueries:
    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def get(self, organization_id: str, conversation_uuid: str) -> ConversationRow | None:
        """A live, listed conversation (not deleted, not an agent's own context)."""
        rows = self.store.query(
            f"SELECT {COLUMNS} FROM conversations WHERE id = %s AND organization_id = %s"
            " AND deleted = 0 AND agent_deleted = 0 AND is_default = 0",
            (conversation_uuid, organization_id),
        )
        return ConversationRow.from_row(rows[0]) if rows else None

    def readable_by(self, organization_id: str, conversation_uuid: str) -> bool:
        """Whether the organization may read this stream: a live conversation, or the own
        context of one of its live agents."""
        rows = self.store.query(
            "SELECT 1 FROM conversations WHERE id = %s AND organization_id = %s"
            " AND deleted = 0 AND agent_deleted = 0",
            (conversation_uuid, organization_id),
        )
        return bool(rows)

    def get_any(self, conversation_uuid: str) -> ConversationRow | None:
        """Any conversation, including deleted ones and agents' own contexts."""
        rows = self.store.query(
            f"SELECT {COLUMNS} FROM conversations WHERE id = %s", (conversation_uuid,)
        )
        return ConversationRow.from_row(rows[0]) if rows else None

    def get_many(self, conversation_uuids: list[str]) -> dict[str, ConversationRow]:
        """Rows by id, deleted ones and agents' own contexts included."""
        if not conversation_uuids:
            return {}
        marks = ", ".join(["%s"] * len(conversation_uuids))
        rows = self.store.query(
            f"SELECT {COLUMNS} FROM conversations WHERE id IN ({marks})", conversation_uuids
        )
        found = [ConversationRow.from_row(row) for row in rows]
        return {row.id: row for row in found}

    def ids_of_agent(self, agent_id: str, include_deleted_agent: bool = False) -> list[str]:
        """Every conversation of an agent not deleted itself, its own context included."""
        rows = self.store.query(
            "SELECT id FROM conversations WHERE agent_id = %s AND deleted = 0"
            + ("" if include_deleted_agent else " AND agent_deleted = 0"),
            (agent_id,),
        )
        return [row[0] for row in rows]

    def lapsed_claims(self, now_micros: int, alive_since: int) -> list[tuple[str, str, str]]:
        """(conversation uuid, run id, organization id) of claims whose process died: its
        heartbeat stopped before ``alive_since`` (see processes.py), or its lease ran out.
        """
        rows = self.store.query(
            "SELECT id, active_run_id, organization_id FROM conversations"
            " WHERE active_run_id IS NOT NULL AND (lease_until < %s OR (active_holder IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM processes p"
            " WHERE p.process_id = active_holder AND p.beat_at >= %s)))",
            (now_micros, alive_since),
        )
        return [(row[0], row[1], row[2]) for row in rows]

    def message_count_of_agent(self, organization_id: str, agent_id: str) -> int:
        rows = self.store.query(
            "SELECT COALESCE(SUM(message_count), 0) FROM conversations"
            " WHERE organization_id = %s AND agent_id = %s",
            (organization_id, agent_id),
        )
        return int(rows[0][0])

    def sort_key(self, row: ConversationRow, order_by: str, ascending: bool) -> int:
        value = getattr(row, ORDER_COLUMNS[order_by])
        if value is None:
            return _NULL_LAST_ASC if ascending else _NULL_LAST_DESC
        return int(value)

    def list(
        self,
        organization_id: str,
        *,
        agent_id: str | None,
        summary_search: str | None,
        order_by: str,
        ascending: bool,
        after: ConversationRow | None,
        limit: int,
    ) -> list[ConversationRow]:
        null = _NULL_LAST_ASC if ascending else _NULL_LAST_DESC
        key = f"COALESCE({ORDER_COLUMNS[order_by]}, {null})"
        clauses = ["organization_id = %s", "deleted = 0", "agent_deleted = 0", "is_default = 0"]
        params: list[Any] = [organization_id]
        if agent_id is not None:
            clauses.append("agent_id = %s")
            params.append(agent_id)
        if summary_search:
            clauses.append("summary IS NOT NULL AND " + self.store.substring("summary"))
            params.append(summary_search)
        direction = "ASC" if ascending else "DESC"
        if after is not None:
            clauses.append(f"({key}, id) {'>' if ascending else '<'} (%s, %s)")
            params += [self.sort_key(after, order_by, ascending), after.id]
        params.append(limit)
        sql = (
            f"SELECT {COLUMNS} FROM conversations WHERE {' AND '.join(clauses)}"
            f" ORDER BY {key} {direction}, id {direction} LIMIT %s"
        )
        return [ConversationRow.from_row(row) for row in self.store.query(sql, params)]
