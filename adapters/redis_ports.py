"""Redis adapters: the fast lock, cancel signals and background-run chunks across processes.

Nothing here is the only copy of anything: the claim on a conversation and every run's status
are events in the log; Redis makes them fast and visible to every process at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from service.ports import Chunk

log = logging.getLogger("convlog.redis")

CHUNK_TTL_SECONDS = 3 * 3600
CHUNK_MAXLEN = 10_000
CANCEL_CHANNEL = "convlog:cancel"

# Compare-and-set scripts: only the holder's token may extend or free a lock.
_EXTEND = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


def connect(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=True)


class RedisLock:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def acquire(self, key: str, token: str, ttl_seconds: float) -> bool:
        return bool(await self._redis.set(key, token, nx=True, px=int(ttl_seconds * 1000)))

    async def extend(self, key: str, token: str, ttl_seconds: float) -> None:
        await self._redis.eval(_EXTEND, 1, key, token, int(ttl_seconds * 1000))

    async def release(self, key: str, token: str | None = None) -> None:
        if token is None:
            await self._redis.delete(key)
        else:
            await self._redis.eval(_RELEASE, 1, key, token)


class RedisSignals:
    """Cancels are published to every process; each keeps the ids it heard in memory."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._cancelled: set[str] = set()
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(CANCEL_CHANNEL)
        self._listener = asyncio.create_task(self._listen(pubsub), name="redis cancel listener")

    async def _listen(self, pubsub: Any) -> None:
        try:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    self._cancelled.add(message["data"])
                    if len(self._cancelled) > 100_000:
                        self._cancelled.clear()  # old cancels: their runs have long ended
        finally:
            await pubsub.aclose()

    async def cancel(self, run_id: str) -> None:
        self._cancelled.add(run_id)
        await self._redis.publish(CANCEL_CHANNEL, run_id)

    def is_cancelled(self, run_id: str) -> bool:
        return run_id in self._cancelled

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)


class RedisChunkLog:
    """Each background run's frames in the Redis stream ``sse:run:<run_id>`` (3 h TTL)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    @staticmethod
    def key(run_id: str) -> str:
        return f"sse:run:{run_id}"

    async def open(self, run_id: str) -> None:
        pass  # the stream key appears with the first chunk; readers block until then

    async def append(self, run_id: str, chunks: list[Chunk]) -> None:
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
        key = self.key(run_id)
        last = "0-0"
        block_ms = max(1, int(poll_interval * 1000))
        while True:
            found: Any = await self._redis.xread({key: last}, count=batch_size, block=block_ms)
            for _, entries in found or []:
                for entry_id, fields in entries:
                    last = entry_id
                    chunk = Chunk(int(fields["seq_id"]), fields["data"], "complete" in fields)
                    if chunk.seq > after:
                        yield chunk
                    if chunk.final:
                        return

    def available_here(self, run_id: str) -> bool:
        return True
