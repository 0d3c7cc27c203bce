"""``python -m tests.faults [--quick] [--only NAME]``: JSON on stdout, logs on stderr."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.fake_openai import FakeOpenAI
from tests.faults.scenarios import FULL, NEEDS_POSTGRES, QUICK, SCENARIOS
from tests.services import POSTGRES_URL

log = logging.getLogger("faults")


def run(names: list[str], quick: bool, database_url: str) -> dict[str, Any]:
    pace = QUICK if quick else FULL
    results: dict[str, Any] = {}
    with FakeOpenAI() as fake, tempfile.TemporaryDirectory(prefix="convlog-faults-") as tmp:
        for name in names:
            log.info("== %s", name)
            started = time.monotonic()
            scenario = SCENARIOS[name]
            root = Path(tmp) / name
            try:
                if name in NEEDS_POSTGRES:
                    figures = scenario(fake, root, pace, database_url)
                else:
                    figures = scenario(fake, root, pace)
            except Exception as exc:
                log.exception("%s failed", name)
                figures = {"error": repr(exc)}
            figures["seconds"] = round(time.monotonic() - started, 1)
            figures["passed"] = _passed(figures)
            log.info("   %s", json.dumps(figures))
            results[name] = figures
    return {
        "faults": "convlog",
        "mode": "quick" if quick else "full",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pace": asdict(pace),
        "scenarios": results,
        "passed": all(r["passed"] for r in results.values()),
    }


def _passed(figures: dict[str, Any]) -> bool:
    """Nothing unanswered, lost or duplicated, and a recovery (a good turn after the fault)."""
    return (
        "error" not in figures
        and figures.get("unanswered") == 0
        and figures.get("lost") == 0
        and figures.get("duplicated") == 0
        and figures.get("recovery_seconds") is not None
    )


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    p.add_argument("--quick", action="store_true", help="short outages, two writers (CI)")
    p.add_argument("--only", action="append", choices=list(SCENARIOS), help="repeatable")
    p.add_argument("--database-url", default=POSTGRES_URL)
    args = p.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    document = run(args.only or list(SCENARIOS), args.quick, args.database_url)
    print(json.dumps(document, indent=2))
    return 0 if document["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
