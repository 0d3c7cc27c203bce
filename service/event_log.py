"""The event log as the read side and auditors see it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

from eventsourcing.persistence import StoredEvent

from service.application import ConvlogApplication
from service.audit import ChainStore
from service.chain import GENESIS

log = logging.getLogger("convlog")


@dataclass(frozen=True)
class EventRecord:
    """One stored event, decoded: what ``GET …/events`` lists."""

    position: int  # global order (notification id)
    version: int  # order within the aggregate's stream
    type: str  # the stable topic, e.g. convlog.Conversation.MessageAppended
    timestamp: datetime | None  # None (and no payload) when the stored bytes do not decode
    payload: dict[str, Any] | None
    by: dict[str, Any] | None  # who caused it (Actor.recorded()); None before 0.4.0
    stream_id: UUID
    stored_state: str  # the stored bytes the hash covers (JSON text, "by" included)
    hash: str | None  # its stream hash (service/chain.py), hex; None if it has no chain entry
    previous_hash: str | None  # the stream hash of the version before (zeros for version 1)
    error: str | None = None  # why the stored bytes could not be decoded (a damaged log)


class StoredHistory(Protocol):
    """Backend-specific: an aggregate's stored events with their global positions."""

    def select(
        self, originator_id: UUID, after_version: int, limit: int
    ) -> list[tuple[int, StoredEvent]]: ...

    def analyze(self) -> None:
        """Refresh the store's query-planner statistics, where it has any."""
        ...


class EventLog:
    """Reads the log in global order (for projections) and per stream (for auditors)."""

    def __init__(self, app: ConvlogApplication, history: StoredHistory, chain: ChainStore) -> None:
        self.app = app
        self._history = history
        self.chain = chain  # the hash chain over the log (service/audit.py verifies it)

    def read(self, after: int, limit: int, topics: Sequence[str]) -> list[tuple[int, Any]]:
        notifications = self.app.recorder.select_notifications(
            start=after, limit=limit, topics=topics, inclusive_of_start=False
        )
        to_event = self.app.mapper.to_domain_event
        return [(n.id, to_event(n)) for n in notifications]

    def max_position(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def prepare_for_scan(self) -> None:
        self._history.analyze()

    def history(self, originator_id: UUID, after_version: int, limit: int) -> list[EventRecord]:
        found = self._history.select(originator_id, after_version, limit)
        versions = [stored.originator_version for _, stored in found]
        wanted = sorted(set(versions) | {v - 1 for v in versions if v > 1})
        hashes = self.chain.stream_hashes([(originator_id, v) for v in wanted])
        hashes[(originator_id, 0)] = GENESIS
        return [self._record(position, stored, hashes) for position, stored in found]

    def _record(
        self, position: int, stored: StoredEvent, hashes: dict[tuple[UUID, int], bytes]
    ) -> EventRecord:
        timestamp: datetime | None = None
        fields: dict[str, Any] | None = None
        by, error = None, None
        try:
            event, by = self.app.decode(stored)
            fields = dict(event.__dict__)
            for key in ("originator_id", "originator_version"):
                fields.pop(key)
            timestamp = fields.pop("timestamp")
        except Exception:  # an auditor still sees the damaged event, its bytes and hashes
            error_id = uuid4().hex[:12]
            log.exception(
                "could not decode the event at position %d (error id %s)", position, error_id
            )
            error = f"The stored event could not be decoded (error id {error_id})."
        stream, version = UUID(str(stored.originator_id)), stored.originator_version
        own, before = hashes.get((stream, version)), hashes.get((stream, version - 1))
        return EventRecord(
            position=position,
            version=version,
            type=stored.topic,
            timestamp=timestamp,
            payload=fields,
            by=by,
            stream_id=stream,
            stored_state=stored.state.decode("utf-8", errors="replace"),
            hash=own.hex() if own else None,
            previous_hash=before.hex() if before else None,
            error=error,
        )
