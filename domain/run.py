"""The Run aggregate: one turn of a conversation, from start to a terminal status.

A run keeps what Letta's Run JSON shows, and, for auditors, what a failed attempt was given:
the input that did not enter the conversation's context and the error that stopped it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, NotFound
from domain.stops import status_of

ACTIVE = "running"
TERMINAL = ("completed", "failed", "cancelled")


class Run(Aggregate):
    TOPIC = "convlog.Run"
    # Snapshot state version: 2 added otids.
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["otids"] = []

    class Created(Aggregate.Created):
        """RunStarted in the log (the library's name for a creation event is Created)."""

        TOPIC = "convlog.Run.Started"
        organization_id: str
        agent_id: str
        conversation_id: str | None
        stream_id: str
        run_type: str
        background: bool
        request_config: dict[str, Any]
        input_messages: list[dict[str, Any]]
        model: str

    @event(Created)
    def __init__(
        self,
        organization_id: str,
        agent_id: str,
        conversation_id: str | None,
        stream_id: str,
        run_type: str,
        background: bool,
        request_config: dict[str, Any],
        input_messages: list[dict[str, Any]],
        model: str,
    ) -> None:
        self.organization_id = organization_id
        self.agent_id = agent_id
        # The Letta conversation id (None in agent-direct mode) and the stream the run writes to.
        self.conversation_id = conversation_id
        self.stream_id = stream_id
        self.run_type = run_type
        self.background = background
        self.request_config = request_config
        self.model = model
        # The client's ids of the input messages: a retry carrying one gets this run's answer.
        self.otids = otids_of(input_messages)
        self.status = ACTIVE
        self.stop_reason: str | None = None
        self.steps = 0
        self.deleted = False

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE

    class StepFinished(Aggregate.Event):
        """One step's work was saved (with its messages, in the same transaction)."""

        TOPIC = "convlog.Run.StepFinished"
        step_id: str
        number: int
        usage: dict[str, Any]
        tool_call_ids: list[str]
        duration_ns: int  # from the step's start to its save: the model call and the tools

    def finish_step(
        self, step_id: str, usage: dict[str, Any], tool_call_ids: list[str], duration_ns: int
    ) -> None:
        self._check_active()
        self._finish_step(
            step_id=step_id,
            number=self.steps + 1,
            usage=usage,
            tool_call_ids=tool_call_ids,
            duration_ns=duration_ns,
        )

    @event(StepFinished)
    def _finish_step(
        self,
        step_id: str,
        number: int,
        usage: dict[str, Any],
        tool_call_ids: list[str],
        duration_ns: int,
    ) -> None:
        self.steps = number

    class Completed(Aggregate.Event):
        TOPIC = "convlog.Run.Completed"
        stop_reason: str
        usage: dict[str, Any]
        timings: dict[str, int]

    class Failed(Aggregate.Event):
        TOPIC = "convlog.Run.Failed"
        stop_reason: str
        error: dict[str, Any]
        usage: dict[str, Any]

    class Cancelled(Aggregate.Event):
        TOPIC = "convlog.Run.Cancelled"
        reason: str

    def complete(self, stop_reason: str, usage: dict[str, Any], timings: dict[str, int]) -> None:
        self._check_active()
        self._complete(stop_reason=stop_reason, usage=usage, timings=timings)

    @event(Completed)
    def _complete(self, stop_reason: str, usage: dict[str, Any], timings: dict[str, int]) -> None:
        self.status = status_of(stop_reason)
        self.stop_reason = stop_reason

    def fail(self, stop_reason: str, error: dict[str, Any], usage: dict[str, Any]) -> None:
        """Record a failed attempt; its input stays on the run (see Started), not in context."""
        self._check_active()
        self._fail(stop_reason=stop_reason, error=error, usage=usage)

    @event(Failed)
    def _fail(self, stop_reason: str, error: dict[str, Any], usage: dict[str, Any]) -> None:
        self.status = "failed"
        self.stop_reason = stop_reason

    def cancel(self, reason: str) -> None:
        self._check_active()
        self._cancel(reason=reason)

    @event(Cancelled)
    def _cancel(self, reason: str) -> None:
        self.status = "cancelled"
        self.stop_reason = "cancelled"

    class Deleted(Aggregate.Event):
        TOPIC = "convlog.Run.Deleted"

    def delete(self) -> None:
        """Hide a finished run from the API; its events stay in the log."""
        if self.is_active:
            raise Conflict(f"Run {self.id} is still {self.status}: cancel it first")
        if self.deleted:
            raise NotFound(f"Run with id 'run-{self.id}' not found")
        self._delete()

    @event(Deleted)
    def _delete(self) -> None:
        self.deleted = True

    def _check_active(self) -> None:
        if not self.is_active:
            raise Conflict(f"Run {self.id} is already {self.status}")


def lease_expired(lease_until: datetime | None, now: datetime) -> bool:
    return lease_until is None or lease_until <= now


def otids_of(messages: list[dict[str, Any]]) -> list[str]:
    return [m["otid"] for m in messages if m.get("otid")]
