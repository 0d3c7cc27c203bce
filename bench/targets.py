"""The performance targets, and how a run's figures are judged against them."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    path: tuple[str, ...]  # where the figure sits in one backend's result
    op: str  # ">=" or "<="
    threshold: float
    unit: str
    backends: tuple[str, ...] = ("sqlite", "postgres")


TARGETS = (
    Target(
        "rebuild_messages_rate",
        "rebuild of the messages projection over ~100k MessageAppended events",
        ("rebuild", "messages", "events_per_second"),
        ">=",
        30_000,
        "events/s",
        backends=("postgres",),
    ),
    Target(
        "list_messages_p99_short",
        "GET …/messages?limit=50 on the short conversation, p99",
        ("list_messages", "short", "p99_ms"),
        "<=",
        5.0,
        "ms",
    ),
    Target(
        "list_messages_p99_long",
        "GET …/messages?limit=50 on the long conversation, p99",
        ("list_messages", "long", "p99_ms"),
        "<=",
        5.0,
        "ms",
    ),
    Target(
        "list_messages_p99_ratio",
        "p99(long) / p99(short): page cost must not grow with the conversation",
        ("list_messages", "p99_ratio_long_to_short"),
        "<=",
        1.5,
        "x",
    ),
    Target(
        "create_then_list_p50",
        "POST /v1/conversations/ then GET …/messages of the new one, p50 of the pair",
        ("read_your_writes", "pair", "p50_ms"),
        "<=",
        5.0,
        "ms",
    ),
)

_OPS: Mapping[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}


def _lookup(result: Mapping[str, Any], path: tuple[str, ...]) -> float | None:
    node: Any = result
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) else None


def evaluate(backend: str, result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One entry per target that applies to ``backend``; ``pass`` is None when the figure is
    missing (the measurement failed or was skipped).
    """
    verdicts = []
    for t in TARGETS:
        if backend not in t.backends:
            continue
        value = _lookup(result, t.path)
        verdicts.append(
            {
                "name": t.name,
                "description": t.description,
                "figure": ".".join(t.path),
                "value": value,
                "op": t.op,
                "target": t.threshold,
                "unit": t.unit,
                "pass": None if value is None else _OPS[t.op](value, t.threshold),
            }
        )
    return verdicts
