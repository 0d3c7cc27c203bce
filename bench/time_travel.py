"""Time travel over HTTP: ``GET /v1/conversations/{id}/messages?as_of_version=v&limit=50`` on a
long conversation at random versions (p50/p99), the same with ``as_of`` at random times, the
live page for comparison, and the first request's cost (the whole stream read from the log and
folded once; later requests at any version up to it are answered from memory).

Run on its own (a fresh SQLite or PostgreSQL store, a 10,000-message conversation, the real
server): ``python -m bench.time_travel [--messages N] [--requests N] [--backend B]``. JSON on
stdout, with the target's verdict. ``bench/suite.py`` runs ``time_travel_latency`` on its long
conversation too.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx

from bench.message_latency import PAGE
from bench.stats import latency_summary, ms

log = logging.getLogger("bench")

AS_OF_VERSION = "x-as-of-version"


def _timed(client: httpx.Client, path: str, params: dict[str, Any]) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} {params}: {response.status_code} {response.text[:300]}")
    return elapsed, response


def time_travel_latency(
    base_url: str, conversation_id: str, messages: int, requests: int, warmup: int, seed: int = 7
) -> dict[str, Any]:
    """``messages``: how many the conversation lists (for the report)."""
    rng = random.Random(seed)
    path = f"/v1/conversations/{conversation_id}/messages"
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        live = client.get(f"/v1/conversations/{conversation_id}")
        live.raise_for_status()
        created = datetime.fromisoformat(live.json()["created_at"])
        last = datetime.fromisoformat(live.json()["last_message_at"] or live.json()["created_at"])
        # The first request reads the stream from the log and folds it: the cold cost.
        cold, first = _timed(client, path, {"as_of": "9999-01-01T00:00:00Z", "limit": PAGE})
        end = int(first.headers[AS_OF_VERSION])
        versions = [rng.randint(2, end) for _ in range(warmup + requests)]
        by_version: list[float] = []
        for i, version in enumerate(versions):
            elapsed, response = _timed(client, path, {"as_of_version": version, "limit": PAGE})
            if len(response.json()) != min(PAGE, version - 1):  # version 2 is the system message
                raise RuntimeError(f"as_of_version={version}: {len(response.json())} items")
            if i >= warmup:
                by_version.append(elapsed)
        span = (last - created).total_seconds()
        by_time: list[float] = []
        for _ in range(requests):
            moment = created.timestamp() + rng.uniform(0, span)
            at = datetime.fromtimestamp(moment, tz=created.tzinfo).isoformat()
            elapsed, _ = _timed(client, path, {"as_of": at, "limit": PAGE})
            by_time.append(elapsed)
        live_page: list[float] = []
        for _ in range(requests):
            elapsed, _ = _timed(client, path, {"limit": PAGE})
            live_page.append(elapsed)
        cursor_pages: list[float] = []
        for version in versions[:requests]:
            page = client.get(path, params={"as_of_version": version, "limit": PAGE})
            items = page.json()
            if not items:
                continue
            elapsed, _ = _timed(
                client, path, {"as_of_version": version, "limit": PAGE, "before": items[-1]["id"]}
            )
            cursor_pages.append(elapsed)
    result: dict[str, Any] = {
        "conversation_id": conversation_id,
        "messages": messages,
        "versions": end,
        "page_size": PAGE,
        "cold_first_request_ms": ms(cold),
        "as_of_version": latency_summary(by_version),
        "as_of_version_with_cursor": latency_summary(cursor_pages),
        "as_of": latency_summary(by_time),
        "live": latency_summary(live_page),
    }
    log.info(
        "  time travel (%d messages): cold %.1f ms, as_of_version p50 %.2f ms p99 %.2f ms, "
        "as_of p50 %.2f ms, live p50 %.2f ms",
        messages,
        result["cold_first_request_ms"],
        result["as_of_version"]["p50_ms"],
        result["as_of_version"]["p99_ms"],
        result["as_of"]["p50_ms"],
        result["live"]["p50_ms"],
    )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    from bench import seed
    from bench.backends import DEFAULT_POSTGRES_URL, storage
    from bench.server import running_server
    from bench.targets import evaluate
    from runtime.bootstrap import build
    from tests.actors import DEFAULT_ACTOR

    p = argparse.ArgumentParser(prog="python -m bench.time_travel", description=__doc__)
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = p.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s bench: %(message)s"
    )
    for name in ("convlog", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with storage(args.backend, args.postgres_url) as store:
        services = build(store.settings)
        try:
            agent_id = seed.create_agent(services)
            row = services.conversations.create(DEFAULT_ACTOR, agent_id)
            log.info("  seeding one conversation of %d messages", args.messages)
            seed.append_messages(services, row.id, args.messages)
            services.projector.catch_up()
        finally:
            services.close()
        with running_server(store.server_env) as server:
            figures = time_travel_latency(
                server.base_url, row.conversation_id, args.messages + 1, args.requests, args.warmup
            )
    result = {"backend": args.backend, "time_travel": figures}
    verdicts = [v for v in evaluate(args.backend, result) if v["figure"].startswith("time_travel")]
    json.dump({**result, "targets": verdicts}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if all(v["pass"] for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
