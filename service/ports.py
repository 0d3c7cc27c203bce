"""Ports for what may cross process boundaries: the fast lock, cancel signals, run chunks.

Each has an in-process adapter (one node, no Redis) and a Redis adapter (several processes).
None holds anything that matters on its own: the conversation's claim on its active run and
the run's status are events in the log; these only make the common path fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


class Lock(Protocol):
    async def acquire(self, key: str, token: str, ttl_seconds: float) -> bool:
        """Take ``key`` if free (non-blocking); it lapses after ``ttl_seconds``."""
        ...

    async def extend(self, key: str, token: str, ttl_seconds: float) -> None:
        """Push back the lapse of a lock still held by ``token``."""
        ...

    async def release(self, key: str, token: str | None = None) -> None:
        """Free ``key`` (only if still held by ``token``, when one is given)."""
        ...


class Signals(Protocol):
    async def cancel(self, run_id: str) -> None:
        """Tell every process that ``run_id`` was cancelled."""
        ...

    def is_cancelled(self, run_id: str) -> bool:
        """Whether a cancel for ``run_id`` reached this process (cheap, no I/O)."""
        ...


@dataclass(frozen=True)
class Chunk:
    seq: int
    frame: str  # the exact SSE text to send
    final: bool


class ChunkLog(Protocol):
    """A background run's stream, kept for resumption (``POST …/stream``) for 3 hours."""

    async def open(self, run_id: str) -> None:
        """Start a run's stream before its first chunk, so readers can attach at once."""
        ...

    async def append(self, run_id: str, chunks: list[Chunk]) -> None: ...

    def follow(
        self, run_id: str, after: int, poll_interval: float, batch_size: int
    ) -> AsyncIterator[Chunk]:
        """Chunks with seq > ``after``, waiting for new ones, until the final chunk."""
        ...

    def available_here(self, run_id: str) -> bool:
        """Whether this process can follow ``run_id`` (always true when shared)."""
        ...
