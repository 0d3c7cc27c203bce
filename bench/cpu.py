"""CPU time from /proc: one process (``utime + stime`` of /proc/<pid>/stat, all its threads),
every process with a given name (PostgreSQL backends, Redis), and the whole machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after its closing one.
    close = text.rfind(")")
    if close < 0:
        return None
    return [text[text.find("(") + 1 : close], *text[close + 2 :].split()]


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far (every thread), None if it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # fields[0] is comm, then state (field 3 of stat(5)) …; utime and stime are fields 14, 15.
    return (int(fields[12]) + int(fields[13])) / _TICKS


def named_cpu_seconds(name: str) -> float:
    """CPU seconds of every live process whose command name is ``name``."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        if fields is not None and fields[0] == name:
            total += int(fields[12]) + int(fields[13])
    return total / _TICKS


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, over every CPU."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / _TICKS, total / _TICKS


@dataclass(frozen=True)
class CpuSample:
    at: float
    processes: dict[str, float | None]  # label -> CPU seconds of that pid
    named: dict[str, float]  # process name -> CPU seconds of all of them
    machine_busy: float
    machine_total: float


class CpuMeter:
    """CPU used between two samples, by the pids and process names given."""

    NAMED = ("postgres", "redis-server")

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)

    def sample(self) -> CpuSample:
        busy, total = machine_cpu_seconds()
        return CpuSample(
            at=time.perf_counter(),
            processes={label: process_cpu_seconds(pid) for label, pid in self.pids.items()},
            named={name: named_cpu_seconds(name) for name in self.NAMED},
            machine_busy=busy,
            machine_total=total,
        )

    @staticmethod
    def per_unit(start: CpuSample, end: CpuSample, units: int) -> dict[str, float | None]:
        """CPU milliseconds per unit (per turn) of each source, and the machine's busy share."""
        out: dict[str, float | None] = {}
        for label, before in start.processes.items():
            after = end.processes.get(label)
            out[f"{label}_cpu_ms"] = (
                None
                if before is None or after is None or not units
                else round((after - before) * 1000 / units, 3)
            )
        for name, before_named in start.named.items():
            key = name.replace("-server", "")
            out[f"{key}_cpu_ms"] = (
                round((end.named[name] - before_named) * 1000 / units, 3) if units else None
            )
        span = end.machine_total - start.machine_total
        out["machine_busy_fraction"] = (
            round((end.machine_busy - start.machine_busy) / span, 3) if span > 0 else None
        )
        return out
