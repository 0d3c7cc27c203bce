"""The ``runs`` table's rows: each run folded from all of its events (``RunState``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.run import Run
from domain.stops import status_of
from service.export.messages import conversation_id_of

RUN_EVENTS = (Run.Created, Run.StepFinished, Run.Completed, Run.Failed, Run.Cancelled, Run.Deleted)
RUN_TOPICS = frozenset(cls.TOPIC for cls in RUN_EVENTS)


@dataclass
class RunState:
    """A run folded from its events: what a ``runs`` row says."""

    id: str
    position: int = 0  # the last event folded in (the latest row of a run id wins)
    organization_id: str | None = None
    agent_id: str | None = None
    conversation_id: str | None = None
    model: str | None = None
    run_type: str | None = None
    background: bool | None = None
    status: str = "running"
    stop_reason: str | None = None
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    created_at: datetime | None = None
    completed_at: datetime | None = None
    ttft_ns: int | None = None
    deleted: bool = False

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def apply(self, e: Any) -> None:
        """Fold one of the run's events in (tokens are the steps' own: a cancelled or failed
        run counts the model calls it made, as ``tokens_per_day`` does)."""
        if isinstance(e, Run.Created):
            self.organization_id, self.agent_id = e.organization_id, e.agent_id
            self.conversation_id = conversation_id_of(e.stream_id)
            self.model, self.run_type, self.background = e.model, e.run_type, e.background
            self.created_at = e.timestamp
        elif isinstance(e, Run.StepFinished):
            self.steps = max(self.steps, e.number)
            self.prompt_tokens += int(e.usage.get("prompt_tokens") or 0)
            self.completion_tokens += int(e.usage.get("completion_tokens") or 0)
        elif isinstance(e, Run.Completed):
            self._finish(e, status_of(e.stop_reason), e.stop_reason)
            ttft = e.timings.get("ttft_ns")
            self.ttft_ns = int(ttft) if isinstance(ttft, int | float) else None
        elif isinstance(e, Run.Failed):
            self._finish(e, "failed", e.stop_reason)
        elif isinstance(e, Run.Cancelled):
            self._finish(e, "cancelled", "cancelled")
        elif isinstance(e, Run.Deleted):
            self.deleted = True

    def _finish(self, e: Any, status: str, stop_reason: str) -> None:
        self.status, self.stop_reason, self.completed_at = status, stop_reason, e.timestamp

    def row(self) -> tuple[Any, ...]:
        duration = (
            (self.completed_at - self.created_at).total_seconds()
            if self.completed_at and self.created_at
            else None
        )
        return (
            self.id,
            self.conversation_id,
            self.agent_id,
            self.organization_id,
            self.status,
            self.stop_reason,
            self.model,
            self.run_type,
            self.background,
            self.steps,
            self.prompt_tokens,
            self.completion_tokens,
            self.prompt_tokens + self.completion_tokens,
            None if self.created_at is None else self.created_at.isoformat(),
            None if self.completed_at is None else self.completed_at.isoformat(),
            duration,
            None if self.ttft_ns is None else self.ttft_ns / 1e9,
            self.deleted,
            self.position,
        )
