"""Read-your-writes cost: ``POST /v1/conversations/?agent_id=…`` then at once
``GET /v1/conversations/{new id}/messages``; the pair is timed, and each half.

Every GET must already list the new conversation's system message: a miss is counted (it
would mean the write answered before its views were up to date).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from bench.stats import latency_summary

log = logging.getLogger("bench")


def _pair(client: httpx.Client, agent_id: str) -> tuple[float, float, bool]:
    """(seconds for the POST, seconds for the GET, whether the GET saw the write)."""
    clock = time.perf_counter
    started = clock()
    created = client.post("/v1/conversations/", params={"agent_id": agent_id}, json={})
    posted = clock()
    if created.status_code != 200:
        raise RuntimeError(
            f"POST /v1/conversations/ answered {created.status_code}: {created.text}"
        )
    conversation_id = created.json()["id"]
    listed = client.get(f"/v1/conversations/{conversation_id}/messages")
    done = clock()
    if listed.status_code != 200:
        raise RuntimeError(f"GET messages answered {listed.status_code}: {listed.text}")
    seen = len(listed.json()) >= 1
    return posted - started, done - posted, seen


def read_your_writes(base_url: str, agent_id: str, pairs: int, warmup: int) -> dict[str, Any]:
    post: list[float] = []
    get: list[float] = []
    both: list[float] = []
    misses = 0
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        for _ in range(warmup):
            _pair(client, agent_id)
        for _ in range(pairs):
            p, g, seen = _pair(client, agent_id)
            post.append(p)
            get.append(g)
            both.append(p + g)
            misses += not seen
    result: dict[str, Any] = {
        "pairs": pairs,
        "pair": latency_summary(both),
        "post": latency_summary(post),
        "get": latency_summary(get),
        "stale_reads": misses,
        # Does a create get slower as the agent gathers conversations?
        "pair_p50_first_100_ms": latency_summary(both[:100])["p50_ms"],
        "pair_p50_last_100_ms": latency_summary(both[-100:])["p50_ms"],
    }
    log.info(
        "  POST conversation + GET messages: p50 %.2f ms, p99 %.2f ms (stale reads: %d)",
        result["pair"]["p50_ms"],
        result["pair"]["p99_ms"],
        misses,
    )
    return result
