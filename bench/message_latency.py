"""Latency of ``GET /v1/conversations/{id}/messages?limit=50`` on a short and a long
conversation, through one keep-alive httpx client against the real server.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from bench.stats import latency_summary, median

log = logging.getLogger("bench")

PAGE = 50


def _path(conversation_id: str) -> str:
    return f"/v1/conversations/{conversation_id}/messages?limit={PAGE}"


def check_page(client: httpx.Client, conversation_id: str) -> None:
    response = client.get(_path(conversation_id))
    response.raise_for_status()
    items = response.json()
    if len(items) != PAGE:
        raise RuntimeError(f"expected {PAGE} messages from {conversation_id}, got {len(items)}")


def sample(client: httpx.Client, paths: dict[str, str], rounds: int) -> dict[str, list[float]]:
    """Seconds per request (sent, answered 200 and read in full), per label. Requests to the
    labels alternate, so a burst of noise on a shared machine hits every label alike.
    """
    samples: dict[str, list[float]] = {label: [] for label in paths}
    items = list(paths.items())
    clock = time.perf_counter
    for i in range(rounds):
        for label, path in items if i % 2 == 0 else reversed(items):
            started = clock()
            response = client.get(path)
            elapsed = clock() - started
            if response.status_code != 200:
                raise RuntimeError(f"GET {path} answered {response.status_code}: {response.text}")
            samples[label].append(elapsed)
    return samples


def message_latency(
    base_url: str,
    conversations: dict[str, tuple[str, int]],
    requests: int,
    warmup: int,
    repeats: int,
) -> dict[str, Any]:
    """``conversations`` maps a label (``short``/``long``) to (conversation id, messages).

    Each repeat sends ``requests`` requests per conversation, interleaved; p50/p99 are the
    medians over the repeats (``pooled`` has all of them together).
    """
    labels = list(conversations)
    paths = {label: _path(conversations[label][0]) for label in labels}
    per_label: dict[str, list[list[float]]] = {label: [] for label in labels}
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        for label in labels:
            check_page(client, conversations[label][0])
        sample(client, paths, warmup)
        for _ in range(repeats):
            for label, samples in sample(client, paths, requests).items():
                per_label[label].append(samples)
    result: dict[str, Any] = {"page_size": PAGE, "requests_per_repeat": requests}
    for label in labels:
        repeats_summary = [latency_summary(s) for s in per_label[label]]
        pooled = [x for s in per_label[label] for x in s]
        result[label] = {
            "conversation_id": conversations[label][0],
            "messages": conversations[label][1],
            "p50_ms": round(median([s["p50_ms"] for s in repeats_summary]), 3),
            "p99_ms": round(median([s["p99_ms"] for s in repeats_summary]), 3),
            "pooled": latency_summary(pooled),
            "repeats": repeats_summary,
        }
        log.info(
            "  GET messages (%s, %d messages): p50 %.2f ms, p99 %.2f ms",
            label,
            conversations[label][1],
            result[label]["p50_ms"],
            result[label]["p99_ms"],
        )
    return result
