"""``convlog export``: the log as tables for analysts (events, messages, runs), in JSON lines or
Parquet, whole or from a position on (docs/export.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime.settings import Settings


def _position(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a log position (0 or more), not {text!r}")
    return int(text)


def _workers(text: str) -> int:
    if text == "auto":
        return min(4, os.cpu_count() or 1)
    if text.isdigit() and int(text) <= 32:
        return int(text)
    raise argparse.ArgumentTypeError(f"--workers takes 0 to 32 or auto, not {text!r}")


def export(settings: Settings, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from adapters.export_files import clear, open_sink, refusal, write_manifest
    from adapters.export_pages import log_pages
    from runtime.bootstrap import open_services
    from service.export import Exporter, ExportRefused

    directory = Path(args.out)
    refused = refusal(directory, args.overwrite)
    if refused:
        print(f"convlog: {refused}", file=sys.stderr)
        return 2
    services = open_services(settings, catch_up=False)  # reads the log only, never the views
    try:
        app, chain = services.ctx.app, services.ctx.log.chain
        exporter = Exporter(app, chain, log_pages(app.recorder, chain))
        try:
            plan = exporter.plan(args.since, args.conversation)
        except ExportRefused as exc:
            print(f"convlog: {exc}", file=sys.stderr)
            return 2
        started = time.perf_counter()
        clear(directory)
        sink = open_sink(args.format, directory)
        total = plan.end - plan.since
        with tqdm(total=total, desc="export", unit="ev", unit_scale=True) as bar:

            def advance(done: int, total: int) -> None:
                bar.update(done - bar.n)

            try:
                result = exporter.run(plan, sink, advance, workers=args.workers)
            except BaseException:
                sink.abort()
                raise
        sink.close()
        seconds = time.perf_counter() - started  # the files closed, not only the rows made
    finally:
        services.close()
    summary: dict[str, Any] = {
        "format": args.format,
        "out": str(directory),
        "conversation": plan.conversation,
        "since": plan.since,
        "next_since": result.next_since,
        "last_position": result.last_position,
        "head": {"position": plan.head[0], "log_hash": plan.head[1].hex()},
        "counts": result.counts,
        "seconds": round(seconds, 3),
        "events_per_second": round(result.counts["events"] / seconds) if seconds > 0 else None,
        "workers": result.workers,
    }
    write_manifest(
        directory,
        {
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **{
                k: v
                for k, v in summary.items()
                if k not in ("out", "seconds", "events_per_second", "workers")
            },
            "files": {t: sink.paths[t].name for t in result.counts},
        },
    )
    print(json.dumps(summary))
    return 0


def add_commands(commands: Any) -> None:
    p = commands.add_parser(
        "export",
        help="write the log as tables (events, messages, runs) for analysts: JSON lines or Parquet",
    )
    p.add_argument("--format", choices=("jsonl", "parquet"), required=True)
    p.add_argument("--out", required=True, help="the directory to write (created; must be empty)")
    p.add_argument("--conversation", help="only this conversation (conv-…) and its runs")
    p.add_argument(
        "--since",
        type=_position,
        default=0,
        help="only events after this log position (an earlier export's next_since)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier export's files in --out (other files are left alone)",
    )
    p.add_argument(
        "--workers",
        type=_workers,
        default="auto",
        help="processes that read the log and make the rows, beside this one (PostgreSQL, "
        "whole-log exports): a number (0: this one alone), or auto (one per CPU, up to 4)",
    )
    p.set_defaults(run=export)
