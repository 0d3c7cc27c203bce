"""Redis adapters: the fast lock, cancel signals and background-run chunks across processes.

Nothing here is the only copy of anything: the claim on a conversation and every run's status
are events in the log; Redis makes them fast and visible to every process at once. So when
Redis fails, each adapter falls back instead of failing the request: the lock to the claim in
the log alone, cancels to the run's status in the views, a background run's frames to this
process's memory. Every Redis call is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from adapters.inprocess import InProcessChunkLog
from service.ports import Chunk

log = logging.getLogger("convlog.redis")

CHUNK_TTL_SECONDS = 3 * 3600
CHUNK_MAXLEN = 10_000
CANCEL_CHANNEL = "convlog:cancel"
# Bounds every Redis call: a Redis that does not answer is treated as down.
TIMEOUT_SECONDS = 2.0
# What a Redis failure looks like: its own errors, a timeout, or the socket's.
FAILURES = (RedisError, OSError, TimeoutError)

# Compare-and-set scripts: only the holder's token may extend or free a lock.
_EXTEND = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


def connect(url: str) -> Redis:
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=TIMEOUT_SECONDS,
        socket_connect_timeout=TIMEOUT_SECONDS,
        health_check_interval=10,
    )


class _Degrades:
    """Logs the first failure of a run of them, and the recovery, not every call."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.down = False

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            log.warning("Redis is unavailable (%s); %s", exc, self.what)
        self.down = True

    def worked(self) -> None:
        if self.down:
            log.warning("Redis is back")
        self.down = False


class RedisLock:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._health = _Degrades("the claim in the log alone guards each conversation")

    async def acquire(self, key: str, token: str, ttl_seconds: float) -> bool:
        try:
            taken = await self._redis.set(key, token, nx=True, px=int(ttl_seconds * 1000))
        except FAILURES as exc:
            self._health.failed(exc)
            return True  # the claim in the log decides
        self._health.worked()
        return bool(taken)

    async def extend(self, key: str, token: str, ttl_seconds: float) -> None:
        try:
            await self._redis.eval(_EXTEND, 1, key, token, int(ttl_seconds * 1000))
        except FAILURES as exc:
            self._health.failed(exc)

    async def release(self, key: str, token: str | None = None) -> None:
        try:
            if token is None:
                await self._redis.delete(key)
            else:
                await self._redis.eval(_RELEASE, 1, key, token)
        except FAILURES as exc:
            self._health.failed(exc)  # it lapses on its own, within a heartbeat's time


class RedisSignals:
    """Cancels are published to every process; each keeps the ids it heard in memory. While
    Redis is down a cancel still reaches the turn through the run's status in the views, and
    the listener resubscribes when Redis is back.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._cancelled: set[str] = set()
        self._listener: asyncio.Task[None] | None = None
        self._health = _Degrades("cancels reach other processes through the log")

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="redis cancel listener")

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(CANCEL_CHANNEL)
                    self._health.worked()
                    backoff = 0.1
                    while True:
                        message = await pubsub.get_message(timeout=1.0)
                        if message is not None and message.get("type") == "message":
                            self._heard(message["data"])
            except FAILURES as exc:
                self._health.failed(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def _heard(self, run_id: str) -> None:
        self._cancelled.add(run_id)
        if len(self._cancelled) > 100_000:
            self._cancelled.clear()  # old cancels: their runs have long ended

    async def cancel(self, run_id: str) -> None:
        self._cancelled.add(run_id)
        try:
            await self._redis.publish(CANCEL_CHANNEL, run_id)
        except FAILURES as exc:
            self._health.failed(exc)

    def is_cancelled(self, run_id: str) -> bool:
        return run_id in self._cancelled

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)


class RedisChunkLog:
    """Each background run's frames in the Redis stream ``sse:run:<run_id>`` (3 h TTL). A run
    whose frames could not all go to Redis keeps them in this process instead, from its first
    frame: it resumes here (the views' run messages have its answer everywhere).
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._local = InProcessChunkLog()
        self._local_runs: set[str] = set()
        self._written: dict[str, list[Chunk]] = {}  # frames of runs still in progress
        self._health = _Degrades("background streams resume only on the process running them")

    @staticmethod
    def key(run_id: str) -> str:
        return f"sse:run:{run_id}"

    async def open(self, run_id: str) -> None:
        self._written[run_id] = []  # the stream key appears with the first chunk

    async def append(self, run_id: str, chunks: list[Chunk]) -> None:
        if run_id in self._local_runs:
            await self._local.append(run_id, chunks)
        else:
            try:
                await self._xadd(run_id, chunks)
                self._health.worked()
                self._written.setdefault(run_id, []).extend(chunks)
            except FAILURES as exc:
                self._health.failed(exc)
                self._local_runs.add(run_id)
                await self._local.append(run_id, [*self._written.get(run_id, []), *chunks])
        if chunks and chunks[-1].final:
            self._written.pop(run_id, None)

    async def _xadd(self, run_id: str, chunks: list[Chunk]) -> None:
        key = self.key(run_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for chunk in chunks:
                fields = {"seq_id": chunk.seq, "data": chunk.frame}
                if chunk.final:
                    fields["complete"] = "true"
                pipe.xadd(key, fields, maxlen=CHUNK_MAXLEN, approximate=True)  # type: ignore[arg-type]
            pipe.expire(key, CHUNK_TTL_SECONDS)
            await pipe.execute()

    async def follow(
        self, run_id: str, after: int, poll_interval: float, batch_size: int
    ) -> AsyncIterator[Chunk]:
        if run_id in self._local_runs:
            async for chunk in self._local.follow(run_id, after, poll_interval, batch_size):
                yield chunk
            return
        key = self.key(run_id)
        last = "0-0"
        block_ms = max(1, int(min(poll_interval, TIMEOUT_SECONDS / 2) * 1000))
        while True:
            if run_id in self._local_runs:  # Redis failed while this reader followed it
                async for chunk in self._local.follow(run_id, after, poll_interval, batch_size):
                    yield chunk
                return
            try:
                found: Any = await self._redis.xread({key: last}, count=batch_size, block=block_ms)
            except FAILURES as exc:
                self._health.failed(exc)
                await asyncio.sleep(poll_interval)
                continue
            for _, entries in found or []:
                for entry_id, fields in entries:
                    last = entry_id
                    chunk = Chunk(int(fields["seq_id"]), fields["data"], "complete" in fields)
                    if chunk.seq > after:
                        after = chunk.seq
                        yield chunk
                    if chunk.final:
                        return

    def available_here(self, run_id: str) -> bool:
        return run_id not in self._local_runs or self._local.available_here(run_id)
