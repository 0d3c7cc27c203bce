"""Idempotent sends over HTTP: ``POST …/messages`` (JSON) retried with the otid of a message
an earlier, finished run took. The retry must get that run's answer from the log's views —
no model call, nothing written — in ≤ 5 ms p50. Checked: the answer equals the first one and
the conversation's listing does not grow.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import httpx

from bench.stats import latency_summary

log = logging.getLogger("bench")


def _send(client: httpx.Client, conversation_id: str, otid: str) -> tuple[float, Any]:
    body = {
        "messages": [{"role": "user", "content": f"note {otid[:8]}", "otid": otid}],
        "streaming": False,
    }
    started = time.perf_counter()
    response = client.post(f"/v1/conversations/{conversation_id}/messages", json=body)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"send answered {response.status_code}: {response.text}")
    return elapsed, response.json()


def _listed(client: httpx.Client, conversation_id: str) -> int:
    response = client.get(f"/v1/conversations/{conversation_id}/messages", params={"limit": 1000})
    response.raise_for_status()
    return len(response.json())


def retry_latency(base_url: str, sends: int) -> dict[str, Any]:
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        agent = client.post(
            "/v1/agents/",
            json={"name": "bench-retries", "model": "convlog/builtin", "memory_blocks": []},
        )
        agent.raise_for_status()
        conversation = client.post(
            "/v1/conversations/", params={"agent_id": agent.json()["id"]}, json={}
        )
        conversation.raise_for_status()
        conversation_id = conversation.json()["id"]
        first: dict[str, tuple[float, Any]] = {}
        for _ in range(sends):
            otid = str(uuid.uuid4())
            first[otid] = _send(client, conversation_id, otid)
        listed = _listed(client, conversation_id)
        retries = []
        for otid, (_, answer) in first.items():
            elapsed, again = _send(client, conversation_id, otid)
            if again != answer:
                raise RuntimeError(f"the retry of {otid} answered differently")
            retries.append(elapsed)
        if _listed(client, conversation_id) != listed:
            raise RuntimeError("a retry added messages: it ran again")
    result = {
        "first_send": latency_summary([elapsed for elapsed, _ in first.values()]),
        "retry": latency_summary(retries),
    }
    log.info(
        "  retried send: p50 %.2f ms (first send p50 %.2f ms)",
        result["retry"]["p50_ms"],
        result["first_send"]["p50_ms"],
    )
    return result
