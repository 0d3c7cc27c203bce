"""``python -m bench [--backend sqlite|postgres|all] [--quick]``: JSON on stdout, logs on stderr."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from bench import machine
from bench.backends import (
    BACKENDS,
    DEFAULT_POSTGRES_URL,
    DEFAULT_REDIS_URL,
    postgres_server_version,
)
from bench.suite import FULL, QUICK, run_backend
from bench.targets import TARGETS


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a much smaller run (5k events, 200 requests, 3 turns per client) for smoke tests; "
        "figures not meaningful",
    )
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_POSTGRES_URL,
        help="database for the postgres backend; each run uses, then drops, a fresh schema "
        "(default BENCH_DATABASE_URL or %(default)s)",
    )
    p.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL,
        help="Redis for the postgres backend's turn measurements (PostgreSQL + Redis); "
        "SQLite runs them single node (default BENCH_REDIS_URL or %(default)s)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s bench: %(message)s"
    )
    # Quiet the server's and the HTTP client's loggers: httpx logs every request at INFO,
    # which would also land inside the timed loops.
    for name in ("convlog", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    params = QUICK if args.quick else FULL
    backends = list(BACKENDS) if args.backend == "all" else [args.backend]
    started = time.perf_counter()
    info = machine.info()
    if "postgres" in backends:
        try:
            info["postgres_server_version"] = postgres_server_version(args.postgres_url)
        except Exception as exc:  # reported again, per backend, by the run itself
            info["postgres_server_version"] = f"unreachable: {exc}"
    results = [run_backend(b, params, args.postgres_url, args.redis_url) for b in backends]
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    document: dict[str, Any] = {
        "benchmark": "convlog",
        "format": 1,
        "mode": "quick" if args.quick else "full",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": info,
        "parameters": asdict(params),
        "targets": [asdict(t) for t in TARGETS],
        "results": results,
        "passed": all(r["passed"] for r in results),
    }
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
