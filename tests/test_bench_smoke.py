"""Smoke test of the benchmark harness: it runs and prints the documented JSON.

Never asserts on timings: performance targets live in ``bench/``, not in tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.e2e
def test_quick_sqlite_bench_prints_its_json() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--backend", "sqlite", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    document = json.loads(done.stdout)

    assert document["mode"] == "quick"
    assert {"benchmark", "machine", "parameters", "targets", "results", "passed"} <= set(document)
    assert {"cpu_count", "python_version"} <= set(document["machine"])
    assert len(document["results"]) == 1
    result = document["results"][0]
    assert "error" not in result, result.get("error")
    assert result["backend"] == "sqlite"
    assert {"seed", "rebuild", "list_messages", "read_your_writes", "server", "targets"} <= set(
        result
    )
    task = result["letta_code"]
    assert "skipped" in task or task["http_requests"] >= 5, task
    assert {"messages", "conversations", "agents"} <= set(result["rebuild"])
    assert result["rebuild"]["messages"]["events"] > 0
    assert "events_per_second" in result["rebuild"]["messages"]
    for label in ("short", "long"):
        assert {"p50_ms", "p99_ms", "messages"} <= set(result["list_messages"][label])
    assert "p99_ratio_long_to_short" in result["list_messages"]
    assert {"p50_ms", "p99_ms"} <= set(result["read_your_writes"]["pair"])
    assert "peak_rss_mib" in result["server"]
    # The log's audit and export: verify, the chain's cost per append, export rates.
    assert result["audit"]["verify"]["events"] == result["seed"]["log_events"]
    assert {"plain_p50_ms", "chained_p50_ms", "overhead_p50_ms"} <= set(result["audit"]["append"])
    for file_format in ("parquet", "jsonl"):
        assert result["export"][file_format]["events"] == result["seed"]["log_events"]
    assert "p50_ms" in result["time_travel"]["as_of_version"]
    # Turns: both zero-delay models, every concurrency level, CPU per turn from /proc.
    assert {"turns", "turn_history", "compaction", "turn_server"} <= set(result)
    for model in ("builtin", "fake_openai"):
        for level in ("c1", "c4", "c16", "c1_stream_tokens"):
            figures = result["turns"][model][level]
            assert figures["turns"] > 0
            assert figures["turns_per_second"] > 0
            assert {"p50_ms", "p99_ms"} <= set(figures["latency"])
            assert {"p50_ms", "p99_ms"} <= set(figures["first_event"])
            assert "server_cpu_ms" in figures["cpu_per_turn"]
        assert "p50_ratio_long_to_short" in result["turn_history"][model]
    assert "peak_rss_mib_after_turns" in result["turn_server"]
    summary = result["compaction"]["summary"]
    assert {
        "endpoint_p50_ms_large",
        "model_ms_large",
        "endpoint_excluding_model_ms_large",
        "endpoint_excluding_model_ratio_large_to_small",
        "turn_after_to_fresh_p50_ratio",
    } <= set(summary)
    assert result["targets"]
    for verdict in result["targets"]:
        assert {"name", "value", "target", "pass"} <= set(verdict)
        assert verdict["pass"] in (True, False)
    assert isinstance(result["passed"], bool)
