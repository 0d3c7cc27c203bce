"""The eventsourcing Application: one event store for every aggregate of convlog."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.agent import Agent
from domain.conversation import Conversation

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")

SAVE_ATTEMPTS = 30


class ConvlogApplication(Application[UUID]):
    name = "convlog"
    # Light aggregate state keeps snapshots small; they bound load time for long streams.
    # Agents gain an event per conversation opened: snapshot them often, so opening one stays
    # cheap however many came before.
    snapshotting_intervals = {Conversation: 100, Agent: 20}  # noqa: RUF012 (library attribute)

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    def save_retrying(self, command: Callable[[], list[Aggregate]]) -> int:
        """Run a load-decide-save command, re-running it on an optimistic-concurrency clash.

        ``command`` loads fresh aggregates, changes them and returns them; a failed save leaves
        those copies dirty, so each attempt starts from a new load. Returns the last position.
        """
        _, position = self.save_with_result(lambda: (command(), None))
        return position

    def save_with_result(self, command: Callable[[], tuple[list[Aggregate], T]]) -> tuple[T, int]:
        """``save_retrying`` for a command that also returns what it made (from its last,
        successful attempt), with the last position saved.
        """
        for attempt in range(SAVE_ATTEMPTS):
            aggregates, result = command()
            try:
                recordings = self.save(*aggregates)
            except IntegrityError:
                if attempt == SAVE_ATTEMPTS - 1:
                    raise
                # Back off a little, at random, so clashing writers stop meeting in lockstep.
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                continue
            return result, recordings[-1].notification.id if recordings else 0
        raise AssertionError("unreachable")

    def save_new(self, *aggregates: Any) -> int:
        recordings = self.save(*aggregates)
        return recordings[-1].notification.id if recordings else 0
