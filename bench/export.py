"""``convlog export`` rate: a seeded log into Parquet (and JSON lines), as the command does it.

``python -m bench.export [--backend postgres|sqlite] [--conversations N] [--messages M]
[--repeats R] [--workers W]`` seeds a fresh store (N conversations of M messages, a run of two
steps on each), exports the whole log R times per way (Parquet with W workers, Parquet in one
process, JSON lines with W workers) and prints one JSON document: the median rate of each,
every repeat, and whether the target (≥ 100,000 events/s into Parquet) was met.
``export_rate`` is the measurement alone, for a suite that already has a seeded store.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.export_files import clear, open_sink
from adapters.export_pages import log_pages
from bench import machine, seed
from bench.backends import BACKENDS, DEFAULT_POSTGRES_URL, storage
from bench.stats import median
from domain import ids
from domain.run import Run
from runtime.bootstrap import build
from service.export import Exporter
from service.services import Services
from tests.actors import DEFAULT_ACTOR

log = logging.getLogger("bench")

TARGET_EVENTS_PER_SECOND = 100_000  # into Parquet, on PostgreSQL


def export_rate(
    services: Services,
    repeats: int,
    file_format: str = "parquet",
    workers: int = 0,
    out: Path | None = None,
) -> dict[str, Any]:
    """Export the whole log ``repeats`` times (plan, read, write, close: what the command
    times) with ``workers`` processes; the median rate, and every repeat's figures."""
    app, chain = services.ctx.app, services.ctx.log.chain
    root = out or Path(tempfile.mkdtemp(prefix="convlog-export-bench-"))
    runs = []
    try:
        for i in range(repeats):
            directory = root / f"{file_format}-{i}"
            clear(directory)
            started = time.perf_counter()
            exporter = Exporter(app, chain, log_pages(app.recorder, chain))
            plan = exporter.plan()
            sink = open_sink(file_format, directory)
            result = exporter.run(plan, sink, workers=workers)
            sink.close()
            seconds = time.perf_counter() - started
            size = sum(p.stat().st_size for p in directory.iterdir())
            runs.append(
                {
                    "events": result.counts["events"],
                    "messages": result.counts["messages"],
                    "runs": result.counts["runs"],
                    "seconds": round(seconds, 3),
                    "events_per_second": round(result.counts["events"] / seconds),
                    "bytes": size,
                    "workers": result.workers,
                }
            )
            log.info(
                "  export %s, %d workers, #%d: %d events in %.2fs = %.0f events/s (%.1f MiB)",
                file_format,
                result.workers,
                i + 1,
                result.counts["events"],
                seconds,
                result.counts["events"] / seconds,
                size / 2**20,
            )
            shutil.rmtree(directory, ignore_errors=True)
    finally:
        if out is None:
            shutil.rmtree(root, ignore_errors=True)
    return {
        "events": runs[-1]["events"],
        "events_per_second": round(median([r["events_per_second"] for r in runs])),
        "seconds": round(median([r["seconds"] for r in runs]), 3),
        "repeats": runs,
    }


def seed_runs(services: Services, agent_id: str, conversation_ids: list[str]) -> int:
    """A finished two-step run on each conversation (Run events only, as turns write them);
    how many events that made."""
    runs = []
    for conversation_id in conversation_ids:
        stream = str(ids.to_uuid(conversation_id))
        run = Run(
            organization_id=DEFAULT_ACTOR.organization_id,
            agent_id=agent_id,
            conversation_id=conversation_id,
            stream_id=stream,
            run_type="send_message",
            background=False,
            request_config={},
            input_messages=[{"role": "user", "content": "hi"}],
            model="openai/gpt-4o-mini",
        )
        for step in range(2):
            usage = {"prompt_tokens": 100 + step, "completion_tokens": 20}
            run.finish_step(ids.new(ids.STEP), usage, [], 1_000_000)
        run.complete("end_turn", {}, {"ttft_ns": 1_000_000, "total_duration_ns": 2_000_000})
        runs.append(run)
    for start in range(0, len(runs), 100):
        services.ctx.app.save_new(DEFAULT_ACTOR, *runs[start : start + 100])
    return 4 * len(runs)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__)
    p.add_argument("--backend", choices=BACKENDS, default="postgres")
    p.add_argument("--conversations", type=int, default=1000)
    p.add_argument("--messages", type=int, default=100, help="messages per conversation")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="as convlog export --workers (default %(default)s: its auto); each format is "
        "also measured with none",
    )
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_POSTGRES_URL,
        help="a fresh schema is made there and dropped afterwards (default %(default)s)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s bench: %(message)s"
    )
    logging.getLogger("convlog").setLevel(logging.WARNING)
    document: dict[str, Any] = {
        "benchmark": "convlog export",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine.info(),
        "backend": args.backend,
    }
    with storage(args.backend, args.postgres_url) as store:
        services = build(store.settings)
        try:
            started = time.perf_counter()
            agent_id = seed.create_agent(services)
            log.info("seeding %d conversations x %d messages", args.conversations, args.messages)
            seeded = seed.seed(services, agent_id, args.conversations, args.messages)
            run_events = seed_runs(services, agent_id, seeded.conversation_ids)
            document["seed"] = {
                "conversations": args.conversations,
                "messages_per_conversation": args.messages,
                "run_events": run_events,
                "log_events": services.ctx.log.max_position(),
                "seconds": round(time.perf_counter() - started, 1),
            }
            document["export"] = {
                "parquet": export_rate(services, args.repeats, "parquet", args.workers),
                "parquet_one_process": export_rate(services, args.repeats, "parquet", 0),
                "jsonl": export_rate(services, args.repeats, "jsonl", args.workers),
            }
        finally:
            services.close()
    parquet = document["export"]["parquet"]["events_per_second"]
    document["target"] = {
        "name": "export_parquet_events_per_second",
        "threshold": TARGET_EVENTS_PER_SECOND,
        "value": parquet,
        "passed": parquet >= TARGET_EVENTS_PER_SECOND,
    }
    document["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
