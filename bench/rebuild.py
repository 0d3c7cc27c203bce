"""Projection rebuild rate: ``Projector.rebuild(name)`` from position 0, blue/green."""

from __future__ import annotations

import logging
from typing import Any

from bench.stats import median
from service.services import Services

log = logging.getLogger("bench")


def rebuild_rate(services: Services, name: str, repeats: int) -> dict[str, Any]:
    """Rebuild ``name`` ``repeats`` times; the median rate, and every repeat's figures."""
    runs = []
    for i in range(repeats):
        result = services.projector.rebuild(name)
        log.info(
            "  rebuild %s #%d: %d events in %.2fs = %.0f events/s",
            name,
            i + 1,
            result.events,
            result.seconds,
            result.rate,
        )
        runs.append(
            {
                "events": result.events,
                "seconds": round(result.seconds, 3),
                "events_per_second": round(result.rate),
            }
        )
    return {
        "events": runs[-1]["events"],
        "events_per_second": round(median([r["events_per_second"] for r in runs])),
        "seconds": round(median([r["seconds"] for r in runs]), 3),
        "repeats": runs,
    }


def rebuild_all(services: Services, repeats: int) -> dict[str, dict[str, Any]]:
    """Every projection, ``messages`` first (the one with a target)."""
    names = sorted(services.projector.projections, key=lambda n: (n != "messages", n))
    return {name: rebuild_rate(services, name, repeats) for name in names}
