"""Times in views are integer microseconds since the epoch: they sort the same everywhere."""

from __future__ import annotations

from datetime import UTC, datetime


def to_micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC)


def letta_date(moment: datetime) -> str:
    """Letta's message ``date``: seconds precision with an explicit offset."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()
