"""Compaction cost: ``POST /v1/conversations/{id}/compact`` in mode ``all`` with the built-in
model (which summarizes without a network call) on conversations of 100 and 10,000 messages,
and the turn right after it against the first turn of a fresh conversation.

The endpoint's time includes the built-in model's summary (its "model call"). The split is
measured in-process through the same ``CompactionService`` on sibling conversations (seeded
alike, before the server starts), with the model wrapped in a timer: ``total_ms``,
``model_ms`` and ``excluding_model_ms = total - model``. The wrapper times the model's stream
only; building the transcript it is given counts as compaction work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from bench import seed
from bench.stats import latency_summary, median
from bench.turn_client import client, compact, create_conversation, send_turn
from service.compaction import CompactionService
from service.model import ChatModel, ModelRequest, StreamItem
from service.services import Services
from tests.actors import DEFAULT_ACTOR

log = logging.getLogger("bench")

BUILTIN = "convlog/builtin"
SETTINGS: dict[str, Any] = {"mode": "all", "model": BUILTIN}


class TimedModel:
    """A ChatModel that adds up the time spent inside the wrapped model's streams."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.seconds = 0.0

    def check(self, handle: str) -> None:
        self.inner.check(handle)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        clock = time.perf_counter
        started = clock()
        try:
            async for item in self.inner.stream(request):
                yield item
        finally:
            self.seconds += clock() - started

    def payload(self, request: ModelRequest) -> dict[str, Any]:
        return self.inner.payload(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def seed_conversations(
    services: Services, agent_id: str, sizes: Sequence[int], count: int
) -> dict[int, list[str]]:
    """``count`` conversations (API ids) per size, each of ``size`` messages with the system one."""
    out: dict[int, list[str]] = {}
    for size in sizes:
        created = []
        for _ in range(count):
            row = services.conversations.create(DEFAULT_ACTOR, agent_id)
            seed.append_messages(services, row.id, size - 1)
            created.append(row.conversation_id)
        out[size] = created
    services.projector.catch_up()
    return out


def split_in_process(
    services: Services, seeded: Mapping[int, Sequence[str]], warmup: str
) -> dict[str, Any]:
    """Compact each conversation through the service in this process, timing the model apart;
    ``warmup`` is compacted first, untimed (the first compaction of a process pays for the
    thread pool and first-use code paths).
    """
    timed = TimedModel(services.model)
    compaction = CompactionService(services.ctx, timed, dict(services.context_windows))

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        await compaction.compact(DEFAULT_ACTOR, warmup, dict(SETTINGS))
        for size, conversation_ids in seeded.items():
            runs = []
            for conversation_id in conversation_ids:
                timed.seconds = 0.0
                started = time.perf_counter()
                done = await compaction.compact(DEFAULT_ACTOR, conversation_id, dict(SETTINGS))
                total = time.perf_counter() - started
                runs.append(
                    {
                        "total_ms": round(total * 1000, 3),
                        "model_ms": round(timed.seconds * 1000, 3),
                        "excluding_model_ms": round((total - timed.seconds) * 1000, 3),
                        "num_messages_before": done.num_messages_before,
                    }
                )
            out[f"messages_{size}"] = {
                "messages": size,
                "conversations": len(runs),
                **{
                    key: round(median([r[key] for r in runs]), 3)
                    for key in ("total_ms", "model_ms", "excluding_model_ms")
                },
                "runs": runs,
            }
            log.info(
                "  compact in-process, %d messages: %.1f ms, of which model %.1f ms",
                size,
                out[f"messages_{size}"]["total_ms"],
                out[f"messages_{size}"]["model_ms"],
            )
        return out

    return asyncio.run(run())


def compaction_over_http(
    base_url: str, agent_id: str, seeded: Mapping[int, Sequence[str]]
) -> dict[str, Any]:
    """Per size: time ``POST …/compact`` on each conversation, then one turn on it at once,
    interleaved with the first turn of a fresh conversation (created untimed just before).
    """

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {"settings": SETTINGS}
        after_all: list[float] = []
        fresh_all: list[float] = []
        async with client(base_url) as http:
            # Warm the connection and the server's code paths (not measured).
            warm = await create_conversation(http, agent_id)
            await send_turn(http, warm, 0)
            for size, conversation_ids in seeded.items():
                compactions: list[float] = []
                after: list[float] = []
                fresh: list[float] = []
                before_after: list[tuple[int, int]] = []
                for conversation_id in conversation_ids:
                    fresh_id = await create_conversation(http, agent_id)
                    fresh.append((await send_turn(http, fresh_id, 0)).seconds)
                    seconds, body = await compact(http, conversation_id, SETTINGS)
                    compactions.append(seconds)
                    before_after.append((body["num_messages_before"], body["num_messages_after"]))
                    after.append((await send_turn(http, conversation_id, 1)).seconds)
                after_all += after
                fresh_all += fresh
                entry: dict[str, Any] = {
                    "messages": size,
                    "conversations": len(conversation_ids),
                    "compact": latency_summary(compactions),
                    "num_messages_before_after": before_after[0],
                    "turn_after_compaction": latency_summary(after),
                    "turn_on_fresh_conversation": latency_summary(fresh),
                }
                entry["turn_after_to_fresh_p50_ratio"] = _ratio(
                    entry["turn_after_compaction"]["p50_ms"],
                    entry["turn_on_fresh_conversation"]["p50_ms"],
                )
                out[f"messages_{size}"] = entry
                log.info(
                    "  compact over HTTP, %d messages: p50 %.1f ms; next turn p50 %.1f ms "
                    "vs fresh %.1f ms",
                    size,
                    entry["compact"]["p50_ms"],
                    entry["turn_after_compaction"]["p50_ms"],
                    entry["turn_on_fresh_conversation"]["p50_ms"],
                )
        out["turn_after_compaction"] = latency_summary(after_all)
        out["turn_on_fresh_conversation"] = latency_summary(fresh_all)
        out["turn_after_to_fresh_p50_ratio"] = _ratio(
            out["turn_after_compaction"]["p50_ms"], out["turn_on_fresh_conversation"]["p50_ms"]
        )
        return out

    return asyncio.run(run())


def summarize(
    http: Mapping[str, Any], in_process: Mapping[str, Any], sizes: Sequence[int]
) -> dict[str, Any]:
    """The headline figures, the largest size against the smallest. The endpoint's time
    without the model call is its p50 less the median model time measured in-process.
    """
    small, large = min(sizes), max(sizes)
    out: dict[str, Any] = {"small_messages": small, "large_messages": large}
    for label, size in (("small", small), ("large", large)):
        endpoint = http[f"messages_{size}"]["compact"]["p50_ms"]
        split = in_process[f"messages_{size}"]
        out[f"endpoint_p50_ms_{label}"] = endpoint
        out[f"model_ms_{label}"] = split["model_ms"]
        out[f"endpoint_excluding_model_ms_{label}"] = round(endpoint - split["model_ms"], 3)
        out[f"in_process_excluding_model_ms_{label}"] = split["excluding_model_ms"]
    out["endpoint_ratio_large_to_small"] = _ratio(
        out["endpoint_p50_ms_large"], out["endpoint_p50_ms_small"]
    )
    out["endpoint_excluding_model_ratio_large_to_small"] = _ratio(
        out["endpoint_excluding_model_ms_large"], out["endpoint_excluding_model_ms_small"]
    )
    out["in_process_excluding_model_ratio_large_to_small"] = _ratio(
        out["in_process_excluding_model_ms_large"], out["in_process_excluding_model_ms_small"]
    )
    out["turn_after_to_fresh_p50_ratio"] = http["turn_after_to_fresh_p50_ratio"]
    return out


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None
