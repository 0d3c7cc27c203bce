"""What ``GET /metrics`` shows (Prometheus' text format, ``prometheus-client``): requests by route
and status, turns by stop reason, steps per turn, model latency and tokens by handle, time to
the first event, conversations found busy, and, read when scraped, the projections' lag and the
database pools' use.

Labels never carry an id or anything a tenant wrote: routes are templates, handles are the
operator's models. So the figures are server-wide, like health, and the route is public.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric

from service.model import Usage

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REGISTRY = CollectorRegistry(auto_describe=True)
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Histogram(
    "convlog_http_request_duration_seconds",
    "Time to the response's start, by route template, method and status",
    ("route", "method", "status"),
    buckets=_FAST,
    registry=REGISTRY,
)
TURNS = Counter(
    "convlog_turns", "Turns that ended, by stop reason", ("stop_reason",), registry=REGISTRY
)
STEPS = Histogram(
    "convlog_turn_steps",
    "Model steps per turn",
    buckets=(1, 2, 3, 5, 8, 13, 21, 50),
    registry=REGISTRY,
)
FIRST_EVENT = Histogram(
    "convlog_turn_first_event_seconds",
    "From a turn's start to the first event its client was sent",
    buckets=_FAST,
    registry=REGISTRY,
)
MODEL_CALLS = Histogram(
    "convlog_model_call_duration_seconds",
    "One model call, from the request to the whole answer, by model handle",
    ("handle",),
    buckets=_FAST,
    registry=REGISTRY,
)
MODEL_TOKENS = Counter(
    "convlog_model_tokens",
    "Tokens the model reported, by handle and kind (prompt, completion)",
    ("handle", "kind"),
    registry=REGISTRY,
)
BUSY = Counter(
    "convlog_conversation_busy",
    "Sends refused (409) because their conversation had a run in progress",
    registry=REGISTRY,
)


def model_call(handle: str, seconds: float, usage: Usage) -> None:
    MODEL_CALLS.labels(handle).observe(seconds)
    MODEL_TOKENS.labels(handle, "prompt").inc(usage.prompt_tokens)
    MODEL_TOKENS.labels(handle, "completion").inc(usage.completion_tokens)


def turn_ended(stop_reason: str, steps: int, first_event_seconds: float | None) -> None:
    TURNS.labels(stop_reason).inc()
    STEPS.observe(steps)
    if first_event_seconds is not None:
        FIRST_EVENT.observe(first_event_seconds)


# name -> a reading taken at scrape time: {label values: value}
Reading = Callable[[], dict[tuple[str, ...], float]]


class Readings:
    """Gauges read when scraped (what is expensive or lives elsewhere: the log's head, pools)."""

    def __init__(self) -> None:
        self._gauges: list[tuple[str, str, tuple[str, ...], Reading]] = []

    def add(self, name: str, text: str, labels: tuple[str, ...], read: Reading) -> None:
        self._gauges.append((name, text, labels, read))

    def collect(self) -> Iterator[Metric]:
        for name, text, labels, read in self._gauges:
            family = GaugeMetricFamily(name, text, labels=list(labels))
            try:
                values = read()
            except Exception:  # a database that is down shows as a missing reading
                values = {}
            for label_values, value in values.items():
                family.add_metric(list(label_values), value)
            yield family


class _Both:
    def __init__(self, readings: Readings) -> None:
        self.readings = readings

    def collect(self) -> Iterator[Metric]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # several workers: every one's counts
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            yield from merged.collect()
        else:
            yield from REGISTRY.collect()
        yield from self.readings.collect()


def render(readings: Readings) -> bytes:
    scraped: Any = _Both(readings)  # generate_latest reads any object with collect()
    return bytes(generate_latest(scraped))
