"""Time travel: a conversation, its message list, or an agent as it was at an earlier version
or time, computed from the event log (never from today's views). See ``docs/time-travel.md``.

A version is the aggregate's own event version (``originator_version``: every event of its
stream counts, runs' claims included); a time picks the last version whose event's time is at
or before it. Each stream read is folded once into a ``StreamPast`` (``projections/history.py``)
and kept in a small LRU: the past never changes, so a later request at any version up to the
latest seen is answered from memory, and a request past it reads only the newer events.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from domain import ids
from domain.agent import Agent
from domain.errors import InvalidArgument
from projections.agents import STATE_FIELDS, AgentRow
from projections.conversations import ConversationRow
from projections.history import StreamPast
from projections.timefmt import from_micros
from service.actor import Actor
from service.agents import AgentService
from service.application import ConvlogApplication
from service.context import Context
from service.conversations import ConversationService

# How much the folded streams may hold together, in ``StreamPast.weight`` (about bytes: a
# 10,000-message conversation of 200-character messages weighs ~8 MB).
DEFAULT_CAPACITY = 32_000_000
# Versions above this are past the end of any stream (and beyond what a database column takes).
MAX_VERSION = 2**62
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AsOf:
    """The point in a stream's past a read is about: a version, or a time (at most one)."""

    version: int | None = None
    moment: datetime | None = None

    @property
    def given(self) -> bool:
        return self.version is not None or self.moment is not None

    def check(self) -> None:
        if self.version is not None and self.moment is not None:
            raise InvalidArgument("Give as_of_version or as_of, not both")
        if self.version is not None and self.version < 1:
            raise InvalidArgument(
                f"as_of_version={self.version} is not a version: versions start at 1"
            )


@dataclass(frozen=True)
class PastConversation:
    version: int  # the conversation's version answered
    row: ConversationRow  # its index row as it was then
    in_context_ids: list[str]


@dataclass(frozen=True)
class PastMessages:
    version: int  # the stream's version answered
    items: list[str]  # the page, each item JSON text


@dataclass(frozen=True)
class PastAgent:
    version: int  # the agent's version answered
    moment: datetime  # the time its own context is shown as of
    row: AgentRow  # its index row as it was then (blocks included)
    message_ids: list[str]  # its own context's in-context message ids then


def micros_of(moment: datetime) -> int:
    """Exact microseconds since the epoch (a time without an offset is UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1)


class PastCache:
    """Streams folded so far, the least recently used dropped first once they weigh more
    than ``capacity`` together (the one being read always stays).
    """

    def __init__(self, app: ConvlogApplication, capacity: int = DEFAULT_CAPACITY) -> None:
        self.app = app
        self.capacity = capacity
        self._pasts: OrderedDict[str, StreamPast] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.reads = 0  # event reads from the log (for tests and the benchmark)

    def past(self, stream_id: str, until: int | None = None) -> StreamPast:
        """The stream folded to at least ``until`` (None: to its end now). It may hold fewer
        events when the stream is shorter: callers check ``version``.
        """
        with self._lock:
            past = self._pasts.get(stream_id)
            if past is None:
                past = self._pasts[stream_id] = StreamPast(stream_id)
                self._locks[stream_id] = threading.Lock()
            self._pasts.move_to_end(stream_id)
            lock = self._locks[stream_id]
        if until is None or past.version < until:
            with lock:
                if until is None or past.version < until:
                    self.reads += 1
                    for event in self.app.events.get(UUID(stream_id), gt=past.version, lte=until):
                        past.apply(event)
            self._evict(stream_id)
        return past

    def _evict(self, keep: str) -> None:
        with self._lock:
            held = sum(p.weight for p in self._pasts.values())
            for stream_id in list(self._pasts):
                if held <= self.capacity:
                    break
                if stream_id == keep:
                    continue
                held -= self._pasts.pop(stream_id).weight
                self._locks.pop(stream_id, None)

    def past_of(self, stream_id: str, version: int) -> StreamPast:
        """An ancestor's past, folded at least to ``version`` (it exists up to there)."""
        past = self.past(stream_id, version)
        if past.version < version:
            raise ValueError(f"{stream_id} has no version {version} in the log")
        return past


class TimeTravelService:
    def __init__(
        self,
        ctx: Context,
        conversations: ConversationService,
        agents: AgentService,
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.ctx = ctx
        self.conversations = conversations
        self.agents = agents
        self.cache = PastCache(ctx.app, capacity)

    # -- versions --------------------------------------------------------------------------

    def _at(self, stream_id: str, as_of: AsOf, what: str) -> tuple[StreamPast, int]:
        """The stream's past and the version ``as_of`` names (400 when there is none)."""
        as_of.check()
        if as_of.version is not None:
            past = self.cache.past(stream_id, 0)  # as folded so far: often far enough
            if as_of.version > past.version:  # read on to it (or to the end, if sooner)
                until = as_of.version if as_of.version <= MAX_VERSION else None
                past = self.cache.past(stream_id, until)
            if as_of.version > past.version:
                raise InvalidArgument(
                    f"as_of_version={as_of.version} is past the end of {what}: "
                    f"its latest version is {past.version}"
                )
            return past, as_of.version
        assert as_of.moment is not None
        past = self.cache.past(stream_id)
        try:
            version = past.version_at(micros_of(as_of.moment))
        except OverflowError:  # before year 1 in UTC
            version = 0
        if version == 0:
            created = from_micros(past.stamp(1)).isoformat() if past.version else "never"
            raise InvalidArgument(
                f"as_of={as_of.moment.isoformat()} is before {what} was created ({created})"
            )
        return past, version

    # -- conversations ---------------------------------------------------------------------

    def conversation(self, actor: Actor, conversation_id: str, as_of: AsOf) -> PastConversation:
        """``GET /v1/conversations/{id}`` as it was: 404 exactly as the live route."""
        as_of.check()
        live = self.conversations.get(actor, conversation_id)
        past, version = self._at(live.id, as_of, f"conversation {conversation_id}")
        row = past.row_at(version)
        in_context = past.in_context_ids(version, self.cache.past_of, row.window)
        return PastConversation(version, row, in_context)

    def messages(
        self,
        actor: Actor,
        conversation_id: str,
        as_of: AsOf,
        *,
        before: str | None,
        after: str | None,
        limit: int | None,
        ascending: bool,
        types: Sequence[str] | None = None,
    ) -> PastMessages:
        """A page of the message list as it was, with the live route's cursors and filters
        (``ConversationService.messages``): an agent id is the agent's own context.
        """
        as_of.check()
        stream = str(self.conversations.resolve(actor, conversation_id))
        past, version = self._at(stream, as_of, f"conversation {conversation_id}")
        segs = past.segments(version, self.cache.past_of)
        keys: dict[str, int | None] = {}
        for name, message_id in (("before", before), ("after", after)):
            if message_id is None:
                keys[name] = None
                continue
            key = past.key_of(version, self.cache.past_of, segs, message_id)
            if key is None:
                raise InvalidArgument(
                    f"Cursor {name}={message_id} is not a message of {conversation_id}"
                )
            keys[name] = key
        items = past.page(
            version,
            self.cache.past_of,
            ascending=ascending,
            after=keys["after"],
            before=keys["before"],
            limit=limit,
            types=list(types) if types is not None else None,
        )
        return PastMessages(version, items)

    # -- agents ----------------------------------------------------------------------------

    def agent(self, actor: Actor, agent_id: str, as_of: AsOf) -> PastAgent:
        """``GET /v1/agents/{id}`` as it was. Its blocks are its own copies at that version
        (every change to a shared block is recorded on each agent's copy in the same save);
        its own context is shown as of the time of that version's event (``as_of_version``)
        or of ``as_of``, never before the agent's creation was complete.
        """
        as_of.check()
        self.agents.get(actor, agent_id)  # 404 as the live route
        uuid = ids.to_uuid(agent_id)
        past, version = self._at(str(uuid), as_of, f"agent {agent_id}")
        agent: Any = self.ctx.app.repository.get(uuid, version=version)
        assert isinstance(agent, Agent)
        state = {name: getattr(agent, name) for name in STATE_FIELDS}
        state["last_updated_by_id"] = agent.last_updated_by_id
        row = AgentRow(
            id=agent_id,
            organization_id=agent.organization_id,
            name=agent.name,
            created_at=past.stamp(1),
            updated_at=past.touched_at(version),
            state=json.loads(json.dumps(state)),  # as the index stores it
        )
        if as_of.moment is None:
            micros, moment = past.stamp(version), from_micros(past.stamp(version))
        else:
            micros, moment = micros_of(as_of.moment), as_of.moment
            moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        own = self.cache.past(str(ids.default_conversation_id(uuid)))
        # The own context is made in the agent's creation save, just after the agent.
        own_version = max(own.version_at(micros), own.first_system)
        message_ids: list[str] = []
        if own_version:
            own_row = own.row_at(own_version)
            message_ids = own.in_context_ids(own_version, self.cache.past_of, own_row.window)
        return PastAgent(version, moment, row, message_ids)
