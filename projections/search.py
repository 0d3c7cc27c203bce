"""Full-text search over what users and agents said, for the ``conversation_search`` tool.

SQLite keeps the text in an FTS5 table, PostgreSQL in a table whose stored ``tsvector``
column (``to_tsvector('simple', text)``) has a GIN index: a query is a word match (every
word, any case, no stemming), answered from the index, not by scanning the conversation.
Search is agent-wide (all of an agent's conversations), as in Letta; tool results, system
prompts and summaries are not indexed.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from domain.conversation import Conversation
from projections.messages import plain_text
from projections.projection import Handler, Projection, Writer
from projections.store import ViewStore
from projections.timefmt import to_micros

SEARCHED_TYPES = ("user_message", "assistant_message")
AGENT_CACHE = 100_000
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Found:
    role: str
    text: str
    created_at: int  # microseconds since the epoch
    conversation_id: str
    message_id: str = ""
    agent_id: str = ""


class MessageSearch(Projection):
    name = "search"
    # 2: each row's message id (for POST /v1/messages/search)
    version = 2
    tables: ClassVar[dict[str, list[str]]] = {
        "search_streams": [
            "CREATE TABLE IF NOT EXISTS {search_streams} ("
            " id TEXT PRIMARY KEY, agent_id TEXT NOT NULL)",
        ],
        "search_text": [
            "sqlite: CREATE VIRTUAL TABLE IF NOT EXISTS {search_text} USING fts5("
            " text, agent_id UNINDEXED, conversation_id UNINDEXED, role UNINDEXED,"
            " created_at UNINDEXED, message_id UNINDEXED, tokenize = 'unicode61')",
            "postgres: CREATE TABLE IF NOT EXISTS {search_text} ("
            " text TEXT NOT NULL, agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL,"
            " role TEXT NOT NULL, created_at BIGINT NOT NULL, message_id TEXT NOT NULL,"
            " words tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED)",
            "postgres: CREATE INDEX IF NOT EXISTS {search_text_words}"
            " ON {search_text} USING gin (words)",
            "postgres: CREATE INDEX IF NOT EXISTS {search_text_by_agent}"
            " ON {search_text} (agent_id, created_at)",
        ],
    }

    def __init__(self) -> None:
        # conversation -> agent: a fact that never changes, so remembering it is always
        # right; it lets a batch insert plain rows (one executemany) instead of a lookup each.
        self._agent_of: OrderedDict[str, str] = OrderedDict()

    def handlers(self) -> Mapping[type[Any], Handler]:
        return {
            Conversation.Created: self._created,
            Conversation.MessageAppended: self._appended,
        }

    def _remember(self, conversation_id: str, agent_id: str) -> None:
        self._agent_of[conversation_id] = agent_id
        self._agent_of.move_to_end(conversation_id)
        if len(self._agent_of) > AGENT_CACHE:
            self._agent_of.popitem(last=False)

    def _created(self, e: Conversation.Created, w: Writer) -> None:
        w.insert("search_streams", "id, agent_id", (str(e.originator_id), e.agent_id))
        self._remember(str(e.originator_id), e.agent_id)

    def _appended(self, e: Conversation.MessageAppended, w: Writer) -> None:
        if e.message_type not in SEARCHED_TYPES:
            return
        text = plain_text(e.content)
        if not text.strip():
            return
        conversation_id = str(e.originator_id)
        agent_id = self._agent_of.get(conversation_id)
        if agent_id is None:
            row = w.fetchone(
                "SELECT agent_id FROM {search_streams} WHERE id = %s", (conversation_id,)
            )
            if row is None:
                return
            agent_id = str(row[0])
            self._remember(conversation_id, agent_id)
        w.insert(
            "search_text",
            "text, agent_id, conversation_id, role, created_at, message_id",
            (text, agent_id, conversation_id, e.role, to_micros(e.timestamp), e.message_id),
        )


class SearchQueries:
    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def search(
        self,
        agent_id: str,
        query: str | None,
        roles: list[str] | None,
        limit: int,
        start: int | None = None,
        end: int | None = None,
    ) -> list[Found]:
        """The newest matching messages of an agent; no query means the newest of all."""
        return self._search(["agent_id = %s"], [agent_id], query, roles, limit, start, end)

    def search_organization(
        self,
        organization_id: str,
        query: str,
        *,
        agent_id: str | None,
        conversation_id: str | None,
        limit: int,
        start: int | None = None,
        end: int | None = None,
    ) -> list[Found]:
        """The newest matching messages of an organization's live conversations and agents'
        own contexts, optionally of one agent or one conversation."""
        clauses = [
            "conversation_id IN (SELECT id FROM conversations WHERE organization_id = %s"
            " AND deleted = 0 AND agent_deleted = 0)"
        ]
        params: list[Any] = [organization_id]
        for column, value in (("agent_id", agent_id), ("conversation_id", conversation_id)):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        return self._search(clauses, params, query, None, limit, start, end)

    def _search(
        self,
        clauses: list[str],
        params: list[Any],
        query: str | None,
        roles: list[str] | None,
        limit: int,
        start: int | None,
        end: int | None,
    ) -> list[Found]:
        words = _WORD.findall(query or "")
        if words:
            if self.store.dialect == "sqlite":
                clauses.append("text MATCH %s")
                params.append(" ".join(f'"{word}"' for word in words))
            else:
                clauses.append("words @@ plainto_tsquery('simple', %s)")
                params.append(" ".join(words))
        if roles:
            clauses.append(f"role IN ({', '.join(['%s'] * len(roles))})")
            params += roles
        for op, bound in ((">=", start), ("<=", end)):
            if bound is not None:
                clauses.append(f"created_at {op} %s")
                params.append(bound)
        rows = self.store.query(
            "SELECT role, text, created_at, conversation_id, message_id, agent_id"
            f" FROM search_text WHERE {' AND '.join(clauses)} ORDER BY created_at DESC LIMIT %s",
            [*params, limit],
        )
        return [Found(r[0], r[1], int(r[2]), r[3], r[4], r[5]) for r in rows]
