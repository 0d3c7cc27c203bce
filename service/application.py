"""The eventsourcing Application: one event store for every aggregate of convlog.

Every save names who made it (an ``Actor``); each stored event records that as ``by`` beside
its own fields. The domain events never see it: it is about the request, not the aggregate.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Mapper, StoredEvent

from domain.agent import Agent
from domain.conversation import Conversation
from service.actor import Actor
from service.tracing import tracer

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")

SAVE_ATTEMPTS = 30

# Who the save in progress (in this thread or task) is for; read by the mapper.
_acting: ContextVar[dict[str, Any] | None] = ContextVar("acting", default=None)


@contextmanager
def _acting_as(actor: Actor) -> Iterator[None]:
    token = _acting.set(actor.recorded())
    try:
        yield
    finally:
        _acting.reset(token)


class ActorMapper(Mapper[UUID]):
    """Adds ``by`` to each stored event's state, and takes it off again when reading."""

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        by = _acting.get()
        if by is None:
            return super().to_stored_event(domain_event)
        # The library's mapper encodes the event's attributes: give it a copy that has ``by``.
        copy = object.__new__(type(domain_event))
        object.__setattr__(copy, "__dict__", {**vars(domain_event), "by": by})
        return super().to_stored_event(copy)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        return self.decode(stored_event)[0]

    def decode(
        self, stored_event: StoredEvent
    ) -> tuple[DomainEventProtocol[UUID], dict[str, Any] | None]:
        """The event, and who caused it (None for events stored before 0.4.0)."""
        domain_event = super().to_domain_event(stored_event)
        by: dict[str, Any] | None = vars(domain_event).pop("by", None)
        return domain_event, by


class ConvlogApplication(Application[UUID]):
    name = "convlog"
    # Light aggregate state keeps snapshots small; they bound load time for long streams.
    # Agents gain an event per conversation opened: snapshot them often, so opening one stays
    # cheap however many came before.
    snapshotting_intervals = {Conversation: 100, Agent: 20}  # noqa: RUF012 (library attribute)

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        memory_recorder: Callable[[], ApplicationRecorder] | None = None,
    ) -> None:
        # The in-memory store takes no recorder class from the environment (the others do:
        # APPLICATION_RECORDER_TOPIC), so the hash-chained one is given here.
        self._memory_recorder = memory_recorder
        super().__init__(env=env)

    def construct_recorder(self) -> ApplicationRecorder:
        if self._memory_recorder is not None:
            return self._memory_recorder()
        return super().construct_recorder()

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=ActorMapper)

    def decode(
        self, stored: StoredEvent
    ) -> tuple[DomainEventProtocol[UUID], dict[str, Any] | None]:
        """A stored event and who caused it."""
        assert isinstance(self.mapper, ActorMapper)
        return self.mapper.decode(stored)

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    def save_retrying(self, by: Actor, command: Callable[[], list[Aggregate]]) -> int:
        """Run a load-decide-save command, re-running it on an optimistic-concurrency clash.

        ``command`` loads fresh aggregates, changes them and returns them; a failed save leaves
        those copies dirty, so each attempt starts from a new load. Returns the last position.
        """
        _, position = self.save_with_result(by, lambda: (command(), None))
        return position

    def save_with_result(
        self, by: Actor, command: Callable[[], tuple[list[Aggregate], T]]
    ) -> tuple[T, int]:
        """``save_retrying`` for a command that also returns what it made (from its last,
        successful attempt), with the last position saved.
        """
        for attempt in range(SAVE_ATTEMPTS):
            aggregates, result = command()
            try:
                return result, self._save_once(by, aggregates)
            except IntegrityError:
                if attempt == SAVE_ATTEMPTS - 1:
                    raise
                # Back off a little, at random, so clashing writers stop meeting in lockstep.
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise AssertionError("unreachable")

    def _save_once(self, by: Actor, aggregates: list[Aggregate]) -> int:
        """Save; the last position (0 when it is not known). IntegrityError on a clash."""
        pending = [e for a in aggregates for e in a.pending_events]
        try:
            with (
                tracer.start_as_current_span(
                    "log transaction", attributes={"events": len(pending)}
                ),
                _acting_as(by),
            ):
                recordings = self.save(*aggregates)
        except IntegrityError:
            if pending and self._already_saved(pending[0]):
                return 0  # the views catch up with it on their next poll
            raise
        return recordings[-1].notification.id if recordings else 0

    def _already_saved(self, event: Any) -> bool:
        """Whether ``event`` itself is stored: the save committed, but its answer was lost
        with the connection, and the store's own retry then clashed with it. Telling this
        from a clash with another writer keeps a command from being applied twice.
        """
        found = self.recorder.select_events(
            event.originator_id, gt=event.originator_version - 1, lte=event.originator_version
        )
        if not found or found[0].topic != type(event).TOPIC:
            return False
        stored, _ = self.decode(found[0])
        return bool(getattr(stored, "timestamp", None) == event.timestamp)

    def save_new(self, by: Actor, *aggregates: Aggregate) -> int:
        """Save new aggregates: no other writer can clash with them."""
        return self._save_once(by, list(aggregates))
