"""Speed as deployed: PostgreSQL + Redis, the fake OpenAI server in its own process, one
worker and ``--workers 2``; C = 1, 4, 16 clients; answers of ~5, ~100 and ~400 chunks, with and
without ``stream_tokens``. Per combination: turns/s, latency p50/p99, time to the first event,
server CPU per turn over every process of the server (parent and workers), and peak RSS per
process. From the CPU of the 5- and 400-chunk answers: the base CPU of a turn and the CPU per
streamed chunk (a straight line through the two).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.cpu import process_cpu_seconds
from bench.fake_model import MODEL, fake_openai_process
from bench.server import mib, proc_status_kib, running_server
from bench.stats import latency_summary, median
from bench.turn_client import TurnTiming, client, create_conversation, send_turn

log = logging.getLogger("bench")
ANSWERS = {"chunks_5": 3, "chunks_100": 98, "chunks_400": 398}  # words the fake echoes back


@dataclass(frozen=True)
class Shape:
    concurrency: tuple[int, ...]
    turns: int  # timed turns per client
    warmup: int
    repeats: int  # of each measurement; medians are reported


def _tree(pid: int) -> list[int]:
    """The process and its descendants (a --workers server's workers), from /proc."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as f:
                    queue += [int(child) for child in f.read().split()]
        except OSError:
            continue
    return found


def _cpu(pids: list[int]) -> float:
    return sum(process_cpu_seconds(pid) or 0.0 for pid in pids)


async def _level(
    base_url: str,
    agent_id: str,
    concurrency: int,
    shape: Shape,
    words: int,
    tokens: bool,
    pids: list[int],
) -> dict[str, Any]:
    text = " ".join(["word"] * words)
    clients = [client(base_url) for _ in range(concurrency)]
    try:
        conversations = await asyncio.gather(
            *(create_conversation(c, agent_id, f"openai/{MODEL}") for c in clients)
        )

        async def turns(c: Any, cid: str, count: int, offset: int) -> list[TurnTiming]:
            return [await send_turn(c, cid, offset + i, tokens, text) for i in range(count)]

        await asyncio.gather(
            *(turns(c, cid, shape.warmup, 0) for c, cid in zip(clients, conversations, strict=True))
        )
        cpu_before, started = _cpu(pids), time.perf_counter()
        timings = await asyncio.gather(
            *(
                turns(c, cid, shape.turns, shape.warmup)
                for c, cid in zip(clients, conversations, strict=True)
            )
        )
        wall, cpu = time.perf_counter() - started, _cpu(pids) - cpu_before
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    flat = [t for per_client in timings for t in per_client]
    return {
        "turns_per_second": round(len(flat) / wall, 1),
        "latency": latency_summary([t.seconds for t in flat]),
        "first_event": latency_summary([t.first_event for t in flat]),
        "server_cpu_ms_per_turn": round(cpu * 1000 / len(flat), 3),
    }


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "turns_per_second": median([r["turns_per_second"] for r in runs]),
        "p50_ms": median([r["latency"]["p50_ms"] for r in runs]),
        "p99_ms": median([r["latency"]["p99_ms"] for r in runs]),
        "first_event_p50_ms": median([r["first_event"]["p50_ms"] for r in runs]),
        "server_cpu_ms_per_turn": median([r["server_cpu_ms_per_turn"] for r in runs]),
    }


def _one_server(base_env: Mapping[str, str], workers: int, shape: Shape) -> dict[str, Any]:
    args = ("--workers", str(workers)) if workers > 1 else ()
    with (
        fake_openai_process() as fake,
        running_server(
            {**base_env, "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "bench"}, args
        ) as server,
    ):
        time.sleep(1.0)  # every worker up (the health check reached one)
        pids = _tree(server.pid)

        async def run() -> dict[str, Any]:
            async with client(server.base_url) as http:
                made = await http.post(
                    "/v1/agents/", json={"name": "deployed", "model": f"openai/{MODEL}"}
                )
                agent_id = str(made.json()["id"])
            out: dict[str, Any] = {}
            for answer, words in ANSWERS.items():
                for tokens in (False, True):
                    key = f"{answer}{'_stream_tokens' if tokens else ''}"
                    out[key] = {}
                    for c in shape.concurrency:
                        runs = [
                            await _level(server.base_url, agent_id, c, shape, words, tokens, pids)
                            for _ in range(shape.repeats)
                        ]
                        out[key][f"c{c}"] = _medians(runs)
            return out

        levels = asyncio.run(run())
        rss = {str(pid): mib(proc_status_kib(pid, "VmHWM")) for pid in _tree(server.pid)}
    return {"workers": workers, "levels": levels, "peak_rss_mib_by_process": rss}


def _per_chunk(result: dict[str, Any], key_suffix: str) -> dict[str, float]:
    """Base CPU per turn and CPU per chunk, from the C=1 5- and 400-chunk answers."""
    small = result["levels"][f"chunks_5{key_suffix}"]["c1"]["server_cpu_ms_per_turn"]
    large = result["levels"][f"chunks_400{key_suffix}"]["c1"]["server_cpu_ms_per_turn"]
    per_chunk_us = (large - small) * 1000 / (ANSWERS["chunks_400"] - ANSWERS["chunks_5"])
    return {"base_ms": round(small, 2), "per_chunk_us": round(per_chunk_us, 1)}


def deployed(server_env: Mapping[str, str], redis_url: str, shape: Shape) -> dict[str, Any]:
    env = {**server_env, "REDIS_URL": redis_url}
    one, two = _one_server(env, 1, shape), _one_server(env, 2, shape)
    c16 = max(shape.concurrency)
    scale = (
        two["levels"]["chunks_5"][f"c{c16}"]["turns_per_second"]
        / one["levels"]["chunks_5"][f"c{c16}"]["turns_per_second"]
    )
    summary = {
        "one_worker": _per_chunk(one, ""),
        "one_worker_stream_tokens": _per_chunk(one, "_stream_tokens"),
        "first_event_p50_ms_c1": one["levels"]["chunks_5"]["c1"]["first_event_p50_ms"],
        "workers_2_scaling_c16": round(scale, 2),
        "peak_rss_mib_per_process": max(
            v for r in (one, two) for v in r["peak_rss_mib_by_process"].values() if v is not None
        ),
    }
    log.info("  deployed: %s", summary)
    return {"summary": summary, "one_worker": one, "two_workers": two}
