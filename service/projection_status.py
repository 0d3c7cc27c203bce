"""How far each projection is behind the log, and its rebuilds: what ``convlog projections
status`` prints and ``GET /v1/admin/projections`` answers (the same JSON).

Cheap on purpose, so an operator can poll it: the registry in one query, the log's head, and
for each projection the first event it has still to apply (one indexed read of one row).
``lag_events`` is therefore counted in log *positions*, not events: from the projection's
position to the head, it includes events of kinds the projection ignores (and any gaps in the
numbering). It is 0 whenever the projection has nothing left to apply, even when events it
ignores lie beyond its position. ``lag_seconds`` is the age of the oldest event it has not
applied (0 when caught up).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from projections.projector import Projector
from projections.timefmt import from_micros


@dataclass(frozen=True)
class Rebuilding:
    """A generation being built beside the active one (or a rebuild that was interrupted:
    the next ``convlog projections rebuild`` of that projection resumes it)."""

    generation: int
    position: int


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    generation: int  # the active generation, which readers see
    position: int  # the last log position it has applied
    lag_events: int  # log positions between ``position`` and the head (0 when caught up)
    lag_seconds: float  # age of the oldest event it has not applied (0 when caught up)
    last_rebuilt_at: datetime | None  # when a rebuild switched to this generation
    rebuilding: Rebuilding | None

    def as_json(self) -> dict[str, Any]:
        rebuilt = self.last_rebuilt_at
        return {
            "name": self.name,
            "generation": self.generation,
            "position": self.position,
            "lag_events": self.lag_events,
            "lag_seconds": round(self.lag_seconds, 3),
            "last_rebuilt_at": None if rebuilt is None else _iso(rebuilt),
            "rebuilding": None
            if self.rebuilding is None
            else {"generation": self.rebuilding.generation, "position": self.rebuilding.position},
        }


@dataclass(frozen=True)
class ProjectionsStatus:
    head: int  # the log's last position
    projections: tuple[ProjectionStatus, ...]

    def as_json(self) -> dict[str, Any]:
        return {"head": self.head, "projections": [p.as_json() for p in self.projections]}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _now() -> datetime:
    return datetime.now(UTC)


class ProjectionStatusService:
    def __init__(self, projector: Projector, clock: Callable[[], datetime] = _now) -> None:
        self.projector = projector
        self.clock = clock

    def status(self) -> ProjectionsStatus:
        # The registry before the head: every position read is then at most the head.
        states = self.projector.generations()
        source = self.projector.source
        head = source.max_position()
        now = self.clock()
        found = []
        for state in states:
            topics = self.projector.projections[state.name].topics
            waiting = source.read(state.position, 1, topics)
            if waiting and waiting[0][0] <= head:
                lag_events = max(0, head - state.position)
                oldest: datetime = waiting[0][1].timestamp
                lag_seconds = max(0.0, (now - oldest).total_seconds())
            else:  # nothing it applies is waiting (or only what was written after ``head``)
                lag_events, lag_seconds = 0, 0.0
            found.append(
                ProjectionStatus(
                    name=state.name,
                    generation=state.generation,
                    position=state.position,
                    lag_events=lag_events,
                    lag_seconds=lag_seconds,
                    last_rebuilt_at=None
                    if state.rebuilt_at is None
                    else from_micros(state.rebuilt_at),
                    rebuilding=None if state.building is None else Rebuilding(*state.building),
                )
            )
        return ProjectionsStatus(head, tuple(found))
