"""Which server processes are alive, for claims: each process writes a heartbeat, and a run
claimed by a process whose heartbeat stopped (killed, its host lost) is taken over at once
instead of a lease later.

The table is operational state beside the views, not a view of the log: nothing in it needs
rebuilding, and a lost row only means its process is treated as gone. Heartbeats are wall
clock times, so the hosts' clocks must agree to well within ``dead_after`` (NTP does).
"""

from __future__ import annotations

import threading
import time

from projections.store import ViewStore

DDL = (
    "CREATE TABLE IF NOT EXISTS processes ("
    " process_id TEXT PRIMARY KEY, started_at BIGINT NOT NULL, beat_at BIGINT NOT NULL)"
)
# Rows of processes gone this long are deleted by the next beat of any process.
FORGET_AFTER_MICROS = 24 * 3600 * 1_000_000


def now_micros() -> int:
    return time.time_ns() // 1000


class ProcessRegistry:
    def __init__(self, store: ViewStore, dead_after_seconds: float) -> None:
        self.store = store
        self.dead_after_micros = int(dead_after_seconds * 1_000_000)
        # When this process's own heartbeats last started succeeding (None: failing now).
        self._beating_since: float | None = time.monotonic()
        self._guard = threading.Lock()

    def setup(self) -> None:
        self.store.statement(DDL)

    def beat(self, process_id: str) -> None:
        now = now_micros()
        try:
            self.store.statement(
                "INSERT INTO processes (process_id, started_at, beat_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (process_id) DO UPDATE SET beat_at = excluded.beat_at",
                (process_id, now, now),
            )
            self.store.statement(
                "DELETE FROM processes WHERE beat_at < %s", (now - FORGET_AFTER_MICROS,)
            )
        except Exception:
            with self._guard:
                self._beating_since = None
            raise
        with self._guard:
            if self._beating_since is None:
                self._beating_since = time.monotonic()

    def database_failed(self) -> None:
        """A request could not reach the database: answer the next ones 503 at once, until a
        heartbeat gets through again (within a second of the database's return).
        """
        with self._guard:
            self._beating_since = None

    def forget(self, process_id: str) -> None:
        """A clean shutdown: its claims (if any were left) lapse at once."""
        self.store.statement("DELETE FROM processes WHERE process_id = %s", (process_id,))

    @property
    def database_up(self) -> bool:
        """Whether this process's last heartbeat reached the database."""
        with self._guard:
            return self._beating_since is not None

    def trustworthy(self) -> bool:
        """Whether other processes' heartbeats can be judged: not while this process's own
        fail, nor until half a ``dead_after`` since (live processes beat three times in one).
        After a database outage every heartbeat is stale for a moment, and no live process
        may be taken for dead then.
        """
        with self._guard:
            since = self._beating_since
        settled = self.dead_after_micros / 2e6
        return since is not None and time.monotonic() - since >= settled

    def gone(self, process_id: str | None) -> bool:
        """Whether ``process_id`` stopped beating (None: a claim from before 0.4.0)."""
        if process_id is None or not self.trustworthy():
            return False
        rows = self.store.query(
            "SELECT 1 FROM processes WHERE process_id = %s AND beat_at >= %s",
            (process_id, self.alive_since()),
        )
        return not rows

    def alive_since(self) -> int:
        """The oldest heartbeat (micros) of a process still taken to be alive."""
        return now_micros() - self.dead_after_micros
