"""Turn throughput and latency: C concurrent clients, each on its own new conversation, each
sending M messages and reading every stream to ``[DONE]``; turns/s, turn latency, time to the
first ``data:`` line, and the CPU the server (and the model server, PostgreSQL, Redis and the
load generator itself) spent per turn, from /proc.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bench.cpu import CpuMeter
from bench.stats import latency_summary
from bench.turn_client import TurnTiming, client, create_conversation, send_turn

log = logging.getLogger("bench")


async def _level(
    base_url: str,
    agent_id: str,
    model: str,
    concurrency: int,
    messages: int,
    warmup: int,
    stream_tokens: bool,
    meter: CpuMeter,
) -> dict[str, Any]:
    clients = [client(base_url) for _ in range(concurrency)]
    try:
        conversations = await asyncio.gather(
            *(create_conversation(c, agent_id, model) for c in clients)
        )
        # Warm each client's connection and conversation (the server's caches of it) first.
        await asyncio.gather(
            *(
                _turns(c, cid, warmup, stream_tokens, offset=0)
                for c, cid in zip(clients, conversations, strict=True)
            )
        )
        before = meter.sample()
        started = time.perf_counter()
        timings = await asyncio.gather(
            *(
                _turns(c, cid, messages, stream_tokens, offset=warmup)
                for c, cid in zip(clients, conversations, strict=True)
            )
        )
        wall = time.perf_counter() - started
        after = meter.sample()
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    flat = [t for per_client in timings for t in per_client]
    turns = len(flat)
    result: dict[str, Any] = {
        "concurrency": concurrency,
        "messages_per_client": messages,
        "stream_tokens": stream_tokens,
        "turns": turns,
        "seconds": round(wall, 3),
        "turns_per_second": round(turns / wall, 1),
        "latency": latency_summary([t.seconds for t in flat]),
        "first_event": latency_summary([t.first_event for t in flat]),
        "cpu_per_turn": CpuMeter.per_unit(before, after, turns),
    }
    log.info(
        "  turns %s C=%d%s: %.0f turns/s, latency p50 %.1f ms p99 %.1f ms, "
        "first event p50 %.1f ms, server CPU %.2f ms/turn",
        model,
        concurrency,
        " (stream_tokens)" if stream_tokens else "",
        result["turns_per_second"],
        result["latency"]["p50_ms"],
        result["latency"]["p99_ms"],
        result["first_event"]["p50_ms"],
        result["cpu_per_turn"]["server_cpu_ms"] or 0.0,
    )
    return result


async def _turns(
    http: Any, conversation_id: str, count: int, stream_tokens: bool, offset: int
) -> list[TurnTiming]:
    return [await send_turn(http, conversation_id, offset + i, stream_tokens) for i in range(count)]


def turn_throughput(
    base_url: str,
    agent_id: str,
    models: Mapping[str, str],
    concurrency: Sequence[int],
    messages: int,
    warmup: int,
    pids: Mapping[str, int],
) -> dict[str, Any]:
    """``models`` maps a label (``builtin``, ``fake_openai``) to the handle its conversations
    use. Per model: one entry per concurrency level ``c<C>``, and ``c1_stream_tokens`` (C = 1
    with ``stream_tokens``, where the first event is the first token rather than the answer).
    """
    meter = CpuMeter({**pids, "client": os.getpid()})

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for label, handle in models.items():
            per_model: dict[str, Any] = {"handle": handle}
            for c in concurrency:
                per_model[f"c{c}"] = await _level(
                    base_url, agent_id, handle, c, messages, warmup, False, meter
                )
            per_model["c1_stream_tokens"] = await _level(
                base_url, agent_id, handle, 1, messages, warmup, True, meter
            )
            out[label] = per_model
        return out

    return asyncio.run(run())
