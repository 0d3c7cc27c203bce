"""What authentication costs: the same cheap request (``GET /v1/agents/count``) to a server
with ``CONVLOG_AUTH=off`` and to one with ``required`` on the same store, interleaved so that
machine noise hits both alike; and how long a key revoked by another process keeps working.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

import httpx
from starlette.requests import Request

from api.auth import actor_of
from bench.server import running_server
from bench.stats import latency_summary, median
from domain.api_key import organization_id
from service.actor import operator
from service.services import Services

log = logging.getLogger("bench")
PATH = "/v1/agents/count"


def _timed(client: httpx.Client, headers: Mapping[str, str]) -> float:
    started = time.perf_counter()
    response = client.get(PATH, headers=headers)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{PATH} answered {response.status_code}: {response.text}")
    return elapsed


def key_check_us(services: Services, key: str, calls: int = 20_000) -> float:
    """The key check alone, in this process, once the key is remembered: µs per request."""
    scope = {
        "type": "http",
        "headers": [(b"authorization", f"Bearer {key}".encode())],
    }

    async def run() -> float:
        await actor_of(Request(scope), services.keys, True)  # looked up once, then remembered
        started = time.perf_counter()
        for _ in range(calls):
            await actor_of(Request(scope), services.keys, True)
        return (time.perf_counter() - started) / calls * 1e6

    return round(asyncio.run(run()), 2)


def auth_overhead(
    services: Services, server_env: Mapping[str, str], requests: int, repeats: int
) -> dict[str, Any]:
    """p50s with and without a key check, over ``repeats`` interleaved rounds; then the time
    from a revocation (made here, another process) until the server refuses the key.
    """
    issued = services.keys.issue(operator(organization_id("bench")), "bench", "auth")
    with ExitStack() as stack:
        off = stack.enter_context(running_server({**server_env, "CONVLOG_AUTH": "off"}))
        on = stack.enter_context(running_server({**server_env, "CONVLOG_AUTH": "required"}))
        plain = stack.enter_context(httpx.Client(base_url=off.base_url, timeout=30.0))
        keyed = stack.enter_context(httpx.Client(base_url=on.base_url, timeout=30.0))
        headers = {"authorization": f"Bearer {issued.key}"}
        for _ in range(50):  # warm both: connections, caches, code paths
            _timed(plain, {})
            _timed(keyed, headers)
        rounds: dict[str, list[float]] = {"off": [], "required": []}
        samples: dict[str, list[float]] = {"off": [], "required": []}
        for _ in range(repeats):
            these_off = [_timed(plain, {}) for _ in range(requests)]
            these_on = [_timed(keyed, headers) for _ in range(requests)]
            samples["off"] += these_off
            samples["required"] += these_on
            rounds["off"].append(latency_summary(these_off)["p50_ms"])
            rounds["required"].append(latency_summary(these_on)["p50_ms"])
        added = [b - a for a, b in zip(rounds["off"], rounds["required"], strict=True)]
        services.keys.revoke(operator(issued.organization_id), issued.id)
        revoked_at = time.perf_counter()
        while keyed.get(PATH, headers=headers).status_code != 401:
            if time.perf_counter() - revoked_at > 30:
                raise RuntimeError("the revoked key still works after 30 s")
            time.sleep(0.005)
        revocation_ms = round((time.perf_counter() - revoked_at) * 1000, 1)
    off_summary = latency_summary(samples["off"])
    on_summary = latency_summary(samples["required"])
    result: dict[str, Any] = {
        "off": off_summary,
        "required": on_summary,
        "added_p50_ms_by_round": [round(a, 3) for a in added],
        "added_p50_ms": round(median(added), 3),
        "revocation_effective_ms": revocation_ms,
        "key_check_in_process_us": key_check_us(
            services,
            services.keys.issue(operator(issued.organization_id), "bench", "in-process").key,
        ),
    }
    log.info(
        "  auth: +%.3f ms p50 (off %.3f, required %.3f); revocation took %.0f ms",
        result["added_p50_ms"],
        off_summary["p50_ms"],
        on_summary["p50_ms"],
        revocation_ms,
    )
    return result
