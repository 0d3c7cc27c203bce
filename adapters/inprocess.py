"""One-node adapters for the lock, cancel signals and run chunks (no Redis configured).

Across processes without Redis, the conversation's claim in the log still guarantees one active
run, and cancels reach a turn through the run's status in the views; these are the fast path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from service.ports import Chunk

CHUNK_TTL_SECONDS = 3 * 3600
# Frames kept for all background runs together; past it the oldest finished runs' frames go
# first (their messages stay in the log: GET /v1/runs/{id}/messages).
CHUNK_BUDGET_BYTES = 64 * 1024 * 1024


class InProcessLock:
    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}

    async def acquire(self, key: str, token: str, ttl_seconds: float) -> bool:
        now = time.monotonic()
        held = self._held.get(key)
        if held is not None and held[1] > now:
            return False
        self._held[key] = (token, now + ttl_seconds)
        return True

    async def extend(self, key: str, token: str, ttl_seconds: float) -> None:
        held = self._held.get(key)
        if held is not None and held[0] == token:
            self._held[key] = (token, time.monotonic() + ttl_seconds)

    async def release(self, key: str, token: str | None = None) -> None:
        held = self._held.get(key)
        if held is not None and (token is None or held[0] == token):
            del self._held[key]


class InProcessSignals:
    def __init__(self) -> None:
        self._cancelled: dict[str, float] = {}

    async def cancel(self, run_id: str) -> None:
        self._cancelled[run_id] = time.monotonic()
        # Forget old signals: a run is cancelled once, and ends soon after.
        cutoff = time.monotonic() - 3600
        for old in [r for r, at in self._cancelled.items() if at < cutoff]:
            del self._cancelled[old]

    def is_cancelled(self, run_id: str) -> bool:
        return run_id in self._cancelled


@dataclass
class _Stream:
    chunks: list[Chunk] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    expires: float = 0.0
    size: int = 0  # bytes of its frames

    @property
    def finished(self) -> bool:
        return bool(self.chunks) and self.chunks[-1].final


class InProcessChunkLog:
    def __init__(self, budget_bytes: int = CHUNK_BUDGET_BYTES) -> None:
        # In order of creation, so the oldest are evicted first.
        self._streams: dict[str, _Stream] = {}
        self._budget = budget_bytes
        self._size = 0

    def _stream(self, run_id: str) -> _Stream:
        stream = self._streams.get(run_id)
        if stream is None:
            self._expire()
            stream = self._streams[run_id] = _Stream()
        stream.expires = time.monotonic() + CHUNK_TTL_SECONDS
        return stream

    def _expire(self) -> None:
        now = time.monotonic()
        for run_id in [r for r, s in self._streams.items() if s.expires < now]:
            self._drop(run_id)

    def _evict(self) -> None:
        """Keep within the budget: drop the oldest finished runs' frames (live runs stay)."""
        for run_id in [r for r, s in self._streams.items() if s.finished]:
            if self._size <= self._budget:
                return
            self._drop(run_id)

    def _drop(self, run_id: str) -> None:
        self._size -= self._streams.pop(run_id).size

    async def open(self, run_id: str) -> None:
        self._stream(run_id)

    async def append(self, run_id: str, chunks: list[Chunk]) -> None:
        stream = self._stream(run_id)
        stream.chunks.extend(chunks)
        added = sum(len(chunk.frame) for chunk in chunks)
        stream.size += added
        self._size += added
        if self._size > self._budget:
            self._evict()
        stream.changed.set()
        stream.changed = asyncio.Event()

    async def follow(
        self, run_id: str, after: int, poll_interval: float, batch_size: int
    ) -> AsyncIterator[Chunk]:
        stream = self._stream(run_id)
        position = 0
        while True:
            waiter = stream.changed
            pending = stream.chunks[position:]
            for chunk in pending:
                if chunk.seq > after:
                    yield chunk
                if chunk.final:  # even when the reader asked to start past the end
                    return
            position += len(pending)
            await waiter.wait()

    def available_here(self, run_id: str) -> bool:
        return run_id in self._streams
