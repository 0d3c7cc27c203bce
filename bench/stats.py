"""Small, dependency-free statistics over timing samples."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0 to 100) with linear interpolation between closest ranks."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def ms(seconds: float) -> float:
    """Seconds → milliseconds, rounded for the report."""
    return round(seconds * 1000.0, 3)


def latency_summary(samples: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean of one series of latencies (seconds in, milliseconds out)."""
    return {
        "p50_ms": ms(percentile(samples, 50)),
        "p90_ms": ms(percentile(samples, 90)),
        "p99_ms": ms(percentile(samples, 99)),
        "max_ms": ms(max(samples)),
        "mean_ms": ms(statistics.fmean(samples)),
        "count": len(samples),
    }


def median_of_repeats(repeats: Sequence[dict[str, float]], key: str) -> float:
    return round(median([r[key] for r in repeats]), 3)
