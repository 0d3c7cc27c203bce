"""Forks over HTTP: ``POST /v1/conversations/{id}/fork`` of a short and of a 10,000-message
conversation (p50/p99 and the ratio long ÷ short: nothing is copied, so it must not grow),
and ``GET …/messages?limit=50`` of the long conversation's fork (its page is the newest
messages across the shared prefix).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from bench.message_latency import PAGE
from bench.stats import latency_summary

log = logging.getLogger("bench")


def _fork(client: httpx.Client, conversation_id: str) -> tuple[float, str]:
    started = time.perf_counter()
    response = client.post(f"/v1/conversations/{conversation_id}/fork")
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"fork of {conversation_id}: {response.status_code} {response.text}")
    return elapsed, str(response.json()["id"])


def fork_latency(
    base_url: str, conversations: dict[str, tuple[str, int]], forks: int, warmup: int
) -> dict[str, Any]:
    """``conversations`` maps ``short``/``long`` to (conversation id, messages)."""
    samples: dict[str, list[float]] = {label: [] for label in conversations}
    children: dict[str, str] = {}
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        for conversation_id, _ in conversations.values():
            for _ in range(warmup):
                _fork(client, conversation_id)
        for i in range(forks):  # alternate, so noise hits both alike
            for label, (conversation_id, _) in sorted(conversations.items(), reverse=i % 2 == 1):
                elapsed, children[label] = _fork(client, conversation_id)
                samples[label].append(elapsed)
        child = children["long"]
        page = client.get(f"/v1/conversations/{child}/messages", params={"limit": PAGE})
        page.raise_for_status()
        if len(page.json()) != PAGE:
            raise RuntimeError(f"the fork of the long conversation listed {len(page.json())}")
        listing = []
        for _ in range(forks):
            started = time.perf_counter()
            client.get(f"/v1/conversations/{child}/messages", params={"limit": PAGE})
            listing.append(time.perf_counter() - started)
    result: dict[str, Any] = {"forks_per_conversation": forks}
    for label, (_, messages) in conversations.items():
        result[label] = {"messages": messages, **latency_summary(samples[label])}
        log.info("  fork (%s, %d messages): p50 %.2f ms", label, messages, result[label]["p50_ms"])
    short = result["short"]["p50_ms"]
    result["p50_ratio_long_to_short"] = (
        round(result["long"]["p50_ms"] / short, 3) if short else None
    )
    result["list_fork_of_long"] = latency_summary(listing)
    return result
