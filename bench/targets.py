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


TARGETS: tuple[Target, ...] = (
    Target(
        "deployed_base_cpu",
        "server CPU of a turn on the provider path, apart from its chunks (C=1, one worker, "
        "PostgreSQL + Redis)",
        ("deployed", "summary", "one_worker", "base_ms"),
        "<=",
        5.0,
        "ms",
        ("postgres",),
    ),
    Target(
        "deployed_cpu_per_chunk",
        "server CPU per streamed chunk of the model's answer (C=1, one worker)",
        ("deployed", "summary", "one_worker", "per_chunk_us"),
        "<=",
        20.0,
        "µs",
        ("postgres",),
    ),
    Target(
        "deployed_cpu_per_chunk_stream_tokens",
        "server CPU per streamed chunk with stream_tokens (each chunk also sent to the client)",
        ("deployed", "summary", "one_worker_stream_tokens", "per_chunk_us"),
        "<=",
        20.0,
        "µs",
        ("postgres",),
    ),
    Target(
        "deployed_first_event_p50",
        "time to the first event at C=1, one worker, p50",
        ("deployed", "summary", "first_event_p50_ms_c1"),
        "<=",
        10.0,
        "ms",
        ("postgres",),
    ),
    Target(
        "deployed_workers_scaling",
        "turns/s at C=16 with --workers 2 over one worker's",
        ("deployed", "summary", "workers_2_scaling_c16"),
        ">=",
        1.7,
        "x",
        ("postgres",),
    ),
    Target(
        "deployed_peak_rss",
        "peak RSS of any one server process (workers included)",
        ("deployed", "summary", "peak_rss_mib_per_process"),
        "<=",
        150.0,
        "MiB",
        ("postgres",),
    ),
    Target(
        "letta_code_task_server_cpu",
        "server CPU of Letta Code's one-tool headless task (letta -p, a Bash call), median",
        ("letta_code", "server_cpu_ms"),
        "<=",
        100.0,
        "ms",
    ),
    Target(
        "auth_added_p50",
        "what checking an API key adds to GET /v1/agents/count, p50 (median over rounds)",
        ("auth", "added_p50_ms"),
        "<=",
        0.2,
        "ms",
    ),
    Target(
        "auth_revocation",
        "from a key revoked by another process until the server refuses it",
        ("auth", "revocation_effective_ms"),
        "<=",
        1000.0,
        "ms",
    ),
    Target(
        "fork_p50_long",
        "POST …/fork of the 10,000-message conversation, p50 (nothing is copied)",
        ("fork", "long", "p50_ms"),
        "<=",
        10.0,
        "ms",
    ),
    Target(
        "retried_send_p50",
        "POST …/messages retried with a known otid (answered from the log, no model call), p50",
        ("retried_send", "retry", "p50_ms"),
        "<=",
        5.0,
        "ms",
    ),
    Target(
        "fork_p50_ratio",
        "fork p50 long / short: a fork's cost must not grow with the conversation",
        ("fork", "p50_ratio_long_to_short"),
        "<=",
        1.5,
        "x",
    ),
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

TOOL_TARGETS: tuple[Target, ...] = (
    Target(
        "server_cpu_per_step_c16_tools",
        "server CPU per step of a two-step tool turn (memory_insert, then the answer), C=16",
        ("tool_turns", "c16", "cpu_per_step", "server_cpu_ms"),
        "<=",
        6.0,
        "ms",
        backends=("postgres",),
    ),
    Target(
        "tool_turn_history_p50_ratio",
        "two-step tool turn p50 at 1,000 messages of history (tool messages included) / at 10",
        ("tool_history", "p50_ratio_long_to_short"),
        "<=",
        1.3,
        "x",
        backends=("postgres",),
    ),
    Target(
        "conversation_search_p99",
        "conversation_search query over an agent's 10,000 messages, p99",
        ("conversation_search", "latency", "p99_ms"),
        "<=",
        20.0,
        "ms",
    ),
)

# Turn targets hold on PostgreSQL + Redis with a zero-delay model: each model of the run.
TURN_MODEL_LABELS = ("builtin", "fake_openai")
_PG = ("postgres",)


def _turn_targets(model: str) -> tuple[Target, ...]:
    return (
        Target(
            f"turns_per_second_c16_{model}",
            f"turns/s with 16 concurrent clients ({model} model)",
            ("turns", model, "c16", "turns_per_second"),
            ">=",
            100,
            "turns/s",
            backends=_PG,
        ),
        Target(
            f"turn_latency_p99_c16_{model}",
            f"turn latency (send to [DONE]) p99 with 16 concurrent clients ({model} model)",
            ("turns", model, "c16", "latency", "p99_ms"),
            "<=",
            300.0,
            "ms",
            backends=_PG,
        ),
        Target(
            f"first_event_p50_c1_{model}",
            f"time to the first data: line, p50, one client ({model} model)",
            ("turns", model, "c1", "first_event", "p50_ms"),
            "<=",
            20.0,
            "ms",
            backends=_PG,
        ),
        Target(
            f"server_cpu_per_turn_c16_{model}",
            f"server process CPU (utime + stime) per turn with 16 clients ({model} model)",
            ("turns", model, "c16", "cpu_per_turn", "server_cpu_ms"),
            "<=",
            8.0,
            "ms",
            backends=_PG,
        ),
        Target(
            f"turn_history_p50_ratio_{model}",
            f"turn p50 at 1,000 messages of history / at 10 ({model} model)",
            ("turn_history", model, "p50_ratio_long_to_short"),
            "<=",
            1.3,
            "x",
            backends=_PG,
        ),
    )


TARGETS += (
    *(t for model in TURN_MODEL_LABELS for t in _turn_targets(model)),
    *TOOL_TARGETS,
    Target(
        "turn_server_peak_rss",
        "turn server peak RSS (VmHWM) over the turn and history runs",
        ("turn_server", "peak_rss_mib_after_turns"),
        "<=",
        150.0,
        "MiB",
        backends=_PG,
    ),
    Target(
        "compact_large_excluding_model",
        "POST …/compact (mode all) on 10,000 messages, p50, less the model call",
        ("compaction", "summary", "endpoint_excluding_model_ms_large"),
        "<=",
        50.0,
        "ms",
    ),
    Target(
        "compact_large_to_small_ratio",
        "compaction without the model call: 10,000 messages / 100 messages",
        ("compaction", "summary", "endpoint_excluding_model_ratio_large_to_small"),
        "<=",
        2.0,
        "x",
    ),
    Target(
        "turn_after_compaction_ratio",
        "turn right after a compaction / first turn on a fresh conversation, p50",
        ("compaction", "summary", "turn_after_to_fresh_p50_ratio"),
        "<=",
        1.2,
        "x",
    ),
)

TARGETS += (
    Target(
        "time_travel_page_p50",
        "GET …/messages?as_of_version=v&limit=50 on the 10,000-message conversation, random v, "
        "p50 (bench/time_travel.py)",
        ("time_travel", "as_of_version", "p50_ms"),
        "<=",
        50.0,
        "ms",
    ),
)

TARGETS += (
    Target(
        "audit_verify_rate",
        "convlog audit verify over the seeded log (every event's two hashes recomputed)",
        ("audit", "verify", "events_per_second"),
        ">=",
        50_000.0,
        "events/s",
        ("postgres",),
    ),
    Target(
        "chain_append_overhead_p50",
        "what the hash chain adds to a one-event append, p50 (chained minus the library's own "
        "recorder, alternating blocks)",
        ("audit", "append", "overhead_p50_ms"),
        "<=",
        0.3,
        "ms",
        ("postgres",),
    ),
    Target(
        "export_parquet_rate",
        "convlog export --format parquet of the seeded log (events, messages and runs tables)",
        ("export", "parquet", "events_per_second"),
        ">=",
        100_000.0,
        "events/s",
        ("postgres",),
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
