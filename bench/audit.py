"""The hash chain's cost and speed: what it adds to an append, and how fast the log verifies.

The append overhead compares the library's own recorder with the chained one on the same
database, each on its own events table (and the chained one on its own chain table), in
alternating blocks so that drift in the machine's load falls on both alike.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

from adapters.chained_recorders import ChainedPostgresRecorder, ChainedSQLiteRecorder
from bench.stats import median
from service.audit import verify_log
from service.services import Services

log = logging.getLogger("bench")
STATE = b'{"message_id":"message-x","role":"user","content":"' + b"word " * 40 + b'"}'


def _recorders(services: Services, suffix: str) -> tuple[Any, Any]:
    """A plain and a chained recorder beside the store's own tables."""
    recorder: Any = services.ctx.app.recorder
    if isinstance(recorder, PostgresApplicationRecorder):
        pair: tuple[Any, Any] = (
            PostgresApplicationRecorder(recorder.datastore, events_table_name=f"plain_{suffix}"),
            ChainedPostgresRecorder(recorder.datastore, events_table_name=f"chained_{suffix}"),
        )
    else:
        pair = (
            SQLiteApplicationRecorder(recorder.datastore, f"plain_{suffix}"),
            ChainedSQLiteRecorder(recorder.datastore, f"chained_{suffix}"),
        )
    for r in pair:
        r.create_table()
    return pair


def append_overhead(services: Services, appends: int, block: int = 50) -> dict[str, Any]:
    """p50 of one single-event append (its own transaction), plain and chained."""
    plain, chained = _recorders(services, uuid.uuid4().hex[:8])
    streams = [uuid.uuid4() for _ in range(20)]  # round-robin, as conversations interleave
    versions = {id(r): dict.fromkeys(streams, 0) for r in (plain, chained)}
    times: dict[int, list[float]] = {id(plain): [], id(chained): []}
    for i in range(appends // block):
        for recorder in (plain, chained) if i % 2 == 0 else (chained, plain):
            for j in range(block):
                stream = streams[j % len(streams)]
                versions[id(recorder)][stream] += 1
                event = StoredEvent(stream, versions[id(recorder)][stream], "bench.Appended", STATE)
                started = time.perf_counter()
                recorder.insert_events([event])
                times[id(recorder)].append(time.perf_counter() - started)
    plain_ms, chained_ms = (median(times[id(r)]) * 1000 for r in (plain, chained))
    found = {
        "appends_each": len(times[id(plain)]),
        "plain_p50_ms": round(plain_ms, 3),
        "chained_p50_ms": round(chained_ms, 3),
        "overhead_p50_ms": round(chained_ms - plain_ms, 3),
    }
    log.info("  chain append overhead: %s", found)
    return found


def verify_rate(services: Services, repeats: int) -> dict[str, Any]:
    """``verify_log`` over the whole store, as ``convlog audit verify`` runs it."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        report = verify_log(services.ctx.log.chain)
        seconds = time.perf_counter() - started
        if not report.intact:
            raise RuntimeError(f"the seeded log does not verify: {report.problem}")
        runs.append({"events": report.checked, "seconds": round(seconds, 3)})
    rate = median([r["events"] / r["seconds"] for r in runs])
    found = {"events": runs[-1]["events"], "events_per_second": round(rate), "repeats": runs}
    log.info("  verify: %d events at %.0f events/s", found["events"], rate)
    return found
