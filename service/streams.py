"""A turn's response stream: SSE frames queued for the request, or kept for resumption.

Frames are numbered (``seq``); a background run keeps them in the chunk log (in process or in
Redis) so ``POST …/stream`` can replay them. Keepalive pings are added by the reader.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import Any

from service import frames, wire
from service.ports import Chunk, ChunkLog

log = logging.getLogger("convlog.turns")

# A request's frames wait here for its client; when the client stops reading, the turn waits
# with them (backpressure), for at most STALL_SECONDS: then the turn goes on without it.
QUEUE_FRAMES = 1000
STALL_SECONDS = 30.0


class TurnStream:
    def __init__(
        self,
        chunks: ChunkLog,
        background: bool,
        include_types: Sequence[str] | None,
    ) -> None:
        self.chunks = chunks
        self.background = background
        self.include_types = include_types
        self.run_id = ""
        self.seq = 0
        self.queue: asyncio.Queue[Chunk | None] = asyncio.Queue(QUEUE_FRAMES)
        self.detached = False  # nobody reads the request's frames any more
        self.first_at: float | None = None  # perf_counter() of the first frame
        self.stall_seconds = STALL_SECONDS

    def wanted(self, message_type: str) -> bool:
        return self.include_types is None or message_type in self.include_types

    async def message(self, payload: dict[str, Any]) -> None:
        """A LettaMessage, unless the request filtered its type out."""
        if self.wanted(payload["message_type"]):
            await self.emit(payload)

    async def emit(self, payload: dict[str, Any] | None, error: bool = False) -> None:
        """Queue one frame (``None`` payload = ``[DONE]``); background runs number them."""
        if self.first_at is None:
            self.first_at = time.perf_counter()
        self.seq += 1
        if payload is None:
            frame, final = frames.DONE, True
        else:
            if self.background and "seq_id" in payload:
                payload = {**payload, "seq_id": self.seq}
            frame = frames.error(payload) if error else frames.data(payload)
            final = False
        chunk = Chunk(self.seq, frame, final)
        if self.background:
            await self.chunks.append(self.run_id, [chunk])
        elif not self.detached:
            if not self.queue.full():  # the common case, without a timer per frame
                self.queue.put_nowait(chunk)
                return
            try:
                await asyncio.wait_for(self.queue.put(chunk), self.stall_seconds)
            except TimeoutError:
                self._give_up()

    def detach(self) -> None:
        """The client went away: the turn finishes and saves all the same, unread."""
        self.detached = True

    def _give_up(self) -> None:
        """The client stopped reading: end its response with an error frame saying where the
        turn's result will be, and let the turn go on without it.
        """
        log.warning("run %s: the client stopped reading; finishing without it", self.run_id)
        self.detached = True
        while not self.queue.empty():
            self.queue.get_nowait()
        notice = frames.error_message(
            self.run_id,
            "stream_incomplete",
            f"The client did not read this stream for {self.stall_seconds:g} seconds, so it "
            "was ended; the turn went on.",
            f"Its result is saved: GET /v1/runs/{self.run_id}/messages.",
        )
        self.queue.put_nowait(Chunk(self.seq, frames.error(notice), False))
        self.queue.put_nowait(Chunk(self.seq, frames.DONE, True))

    def source(self) -> AsyncIterator[Chunk]:
        if self.background:
            return self.chunks.follow(self.run_id, 0, 0.1, 100)
        return drain(self.queue)


async def drain(queue: asyncio.Queue[Chunk | None]) -> AsyncIterator[Chunk]:
    """The queued frames; those already waiting go out together, as one write to the client
    (a model streams tokens faster than one write each can be sent)."""
    while True:
        chunk = await queue.get()
        if chunk is None:
            return
        batch, ended = [chunk], False
        while not batch[-1].final and not queue.empty():
            following = queue.get_nowait()
            if following is None:
                ended = True
                break
            batch.append(following)
        last = batch[-1]
        if len(batch) > 1:
            last = Chunk(last.seq, "".join(c.frame for c in batch), last.final)
        yield last
        if last.final or ended:
            return


async def _with_silences(
    source: AsyncIterator[Chunk], every: float | None
) -> AsyncGenerator[Chunk | None, None]:
    """The chunks of ``source``, and None after each ``every`` seconds without one (the wait
    for the next chunk goes on across them)."""
    iterator = source.__aiter__()
    while True:
        step = asyncio.ensure_future(iterator.__anext__())
        try:
            while not (await asyncio.wait({step}, timeout=every))[0]:
                yield None
        finally:
            if not step.done():  # the reader went away while waiting
                step.cancel()
        try:
            chunk = step.result()
        except StopAsyncIteration:
            return
        yield chunk


async def with_pings(
    source: AsyncIterator[Chunk], run_id: str, every: float | None
) -> AsyncIterator[str]:
    """Frames of ``source``; a ping after each ``every`` seconds without one."""
    last_seq: int | None = None
    async with aclosing(_with_silences(source, every)) as chunks:
        async for chunk in chunks:
            if chunk is None:
                yield frames.data(wire.ping(run_id, last_seq))
                continue
            last_seq = chunk.seq
            yield chunk.frame
            if chunk.final:
                return


async def until_ended(
    source: AsyncIterator[Chunk],
    run_id: str,
    ended: Callable[[], Awaitable[bool]],
    silence: float,
) -> AsyncIterator[Chunk]:
    """Frames of ``source``, a resumed run's; after each ``silence`` seconds without one, asks
    whether the run has ended. A run that ended without its last frames reaching this reader
    (its process died, or kept them in memory while Redis was down) would otherwise keep the
    reader waiting forever: it gets a notice of where the result is, and ``[DONE]``.
    """
    seq = 0
    async with aclosing(_with_silences(source, silence)) as chunks:
        async for chunk in chunks:
            if chunk is None:
                if await ended():
                    notice = frames.error_message(
                        run_id,
                        "stream_incomplete",
                        "This run ended, but the rest of its stream cannot be read here.",
                        f"Its result is saved: GET /v1/runs/{run_id}/messages.",
                    )
                    yield Chunk(seq, frames.error(notice), False)
                    yield Chunk(seq, frames.DONE, True)
                    return
                continue
            seq = chunk.seq
            yield chunk
            if chunk.final:
                return
