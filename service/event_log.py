"""The event log as the read side and auditors see it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from service.application import ConvlogApplication
from service.audit import ChainStore


@dataclass(frozen=True)
class EventRecord:
    """One stored event, decoded: what ``GET …/events`` lists."""

    position: int  # global order (notification id)
    version: int  # order within the aggregate's stream
    type: str  # the stable topic, e.g. convlog.Conversation.MessageAppended
    timestamp: datetime
    payload: dict[str, Any]
    by: dict[str, Any] | None  # who caused it (Actor.recorded()); None before 0.4.0


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
        records = []
        for position, stored in self._history.select(originator_id, after_version, limit):
            event, by = self.app.decode(stored)
            fields = dict(event.__dict__)
            for key in ("originator_id", "originator_version"):
                fields.pop(key)
            timestamp: datetime = fields.pop("timestamp")
            records.append(
                EventRecord(
                    position=position,
                    version=stored.originator_version,
                    type=stored.topic,
                    timestamp=timestamp,
                    payload=fields,
                    by=by,
                )
            )
        return records
