"""Keeps projections caught up with the event log, and rebuilds them blue/green.

Each projection's tables exist in *generations* (``messages_g1``, ``messages_g2`` …). Readers
query the logical name (``messages``), a SQL view onto the active generation. The tracking
position of every generation is written in the same transaction as its rows, so each event is
applied exactly once, and a crash resumes where the last batch committed.

Live catch-up reads the log once for all projections and applies it in batches. A rebuild
fills a new generation from position 0 while the old one keeps serving, then, under the
projector lock, applies the last events and switches the views in one transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from projections.projection import Projection, Writer
from projections.store import Cursor, ViewStore

log = logging.getLogger(__name__)

REGISTRY_DDL = [
    "CREATE TABLE IF NOT EXISTS projection_generations "
    "(name TEXT PRIMARY KEY, active INTEGER NOT NULL, fingerprint TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS projection_tracking "
    "(name TEXT NOT NULL, generation INTEGER NOT NULL, position BIGINT NOT NULL, "
    "PRIMARY KEY (name, generation))",
    # What each generation is being built as, so an interrupted rebuild resumes only into
    # tables of the same shape.
    "CREATE TABLE IF NOT EXISTS projection_builds "
    "(name TEXT NOT NULL, generation INTEGER NOT NULL, fingerprint TEXT NOT NULL, "
    "PRIMARY KEY (name, generation))",
    # When a rebuild last switched each projection to a new generation (microseconds since the
    # epoch). Created by ``setup()`` like the rest, so views of earlier releases gain it in
    # place: it stays empty for a projection until its next rebuild.
    "CREATE TABLE IF NOT EXISTS projection_rebuilds "
    "(name TEXT PRIMARY KEY, generation INTEGER NOT NULL, switched_at BIGINT NOT NULL)",
]


def for_dialect(ddl: str, dialect: str) -> str | None:
    """A statement for this backend: ``sqlite: …`` and ``postgres: …`` are for one of them."""
    prefix, sep, rest = ddl.partition(": ")
    if sep and prefix in ("sqlite", "postgres"):
        return rest if prefix == dialect else None
    return ddl


class EventSource(Protocol):
    """The event log, read in global order (notification ids that only increase)."""

    def read(self, after: int, limit: int, topics: Sequence[str]) -> list[tuple[int, Any]]: ...

    def max_position(self) -> int: ...

    def prepare_for_scan(self) -> None:
        """Ready the log for a full read (PostgreSQL: fresh planner statistics)."""
        ...


@dataclass(frozen=True)
class RebuildResult:
    name: str
    generation: int
    events: int  # applied by this call (a resumed rebuild does not count what came before)
    seconds: float
    resumed_from: int = 0  # the log position an interrupted rebuild had reached

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


# Called with the log position a rebuild has reached (it ends at ``max_position()``).
Progress = Callable[[int], object]


@dataclass(frozen=True)
class GenerationState:
    """What the registry holds for one projection (``Projector.generations``)."""

    name: str
    generation: int  # the active one, which readers see
    position: int  # the last log position the active generation has applied
    # When a rebuild switched the views to the active generation (microseconds since the
    # epoch); None for a generation created by ``setup()`` (or before this was recorded).
    rebuilt_at: int | None
    # (generation, position) of a generation being built beside the active one: a rebuild
    # running now, or one that was interrupted (the next rebuild resumes it).
    building: tuple[int, int] | None


class Projector:
    def __init__(
        self,
        store: ViewStore,
        source: EventSource,
        projections: Sequence[Projection],
        batch_size: int = 500,
    ) -> None:
        self.store = store
        self.source = source
        self.projections = {p.name: p for p in projections}
        self.batch_size = batch_size
        self._topics = tuple(sorted({t for p in projections for t in p.topics}))
        self._lock = threading.Lock()
        self._position = 0  # lowest position this process knows every projection has reached

    # -- setup -------------------------------------------------------------------------------

    def setup(self) -> None:
        """Create the registry and generation 1 of every projection that has none yet; rebuild
        any projection whose code changed shape (its ``version`` differs from the stored one).
        """
        outdated = []
        with self.store.write() as cur:
            for ddl in REGISTRY_DDL:
                cur.execute(ddl)
            for projection in self.projections.values():
                cur.execute(
                    self._sql("SELECT fingerprint FROM projection_generations WHERE name = %s"),
                    (projection.name,),
                )
                row = cur.fetchone()
                if row is None:
                    self._create_generation(cur, projection, 1)
                    self._switch(cur, projection, 1)
                elif row[0] != projection.fingerprint:
                    outdated.append(projection.name)
        for name in outdated:
            log.info("projection %s changed shape: rebuilding it from the log", name)
            self.rebuild(name)

    # -- live catch-up -----------------------------------------------------------------------

    def catch_up(self, until: int | None = None) -> int:
        """Apply every event committed so far (at least up to ``until``); returns the count.

        Called right after each write, so a client reads its own writes without waiting.
        """
        if until is not None and until <= self._position:
            return 0
        applied = 0
        with self._lock:
            # Concurrent writers queue here; whoever held the lock may have applied our write
            # already, and then another (empty) view transaction would only add to the queue.
            if until is not None and until <= self._position:
                return 0
            while True:
                count, lowest = self._catch_up_batch()
                applied += count
                self._position = max(self._position, lowest)
                if count < self.batch_size:
                    return applied

    def _catch_up_batch(self) -> tuple[int, int]:
        with self.store.write() as cur:
            state = self._tracking(cur)
            start = min(pos for _, pos in state.values())
            events = self.source.read(start, self.batch_size, self._topics)
            writers = {
                name: Writer(self.store, cur, self.projections[name].physical_names(gen))
                for name, (gen, _) in state.items()
            }
            for position, event in events:
                for name, (_, done) in state.items():
                    if position > done:
                        self.projections[name].apply(event, writers[name])
            for writer in writers.values():
                writer.flush()
            if not events:
                return 0, start
            last = events[-1][0]
            for name, (gen, done) in state.items():
                if last > done:
                    self._set_position(cur, name, gen, last)
            return len(events), last

    def poll(self) -> int:
        """Catch up if the log has moved past what this process has seen."""
        head = self.source.max_position()
        if head <= self._position:
            return 0
        applied = self.catch_up(until=head)
        # Everything up to head has been read, so events no projection wants are behind us too.
        self._position = max(self._position, head)
        return applied

    def lag(self, limit: int = 100_000) -> int:
        """How many events some projection still has to apply (counted up to ``limit``)."""
        with self.store.read() as cur:
            lowest = min(pos for _, pos in self._tracking(cur).values())
        return len(self.source.read(lowest, limit, self._topics))

    def generations(self) -> list[GenerationState]:
        """Each projection's active generation, its position, when a rebuild last switched to
        it and any generation being built: read in one statement, so from one snapshot.
        """
        with self.store.read() as cur:
            cur.execute(
                self._sql(
                    "SELECT g.name, g.active, t.generation, t.position, r.generation,"
                    " r.switched_at FROM projection_generations g"
                    " JOIN projection_tracking t ON t.name = g.name"
                    " LEFT JOIN projection_rebuilds r ON r.name = g.name"
                )
            )
            rows = list(cur.fetchall())
        active: dict[str, tuple[int, int | None]] = {}
        positions: dict[tuple[str, int], int] = {}
        for name, gen, tracked, position, rebuilt, switched_at in rows:
            at = int(switched_at) if switched_at is not None and int(rebuilt) == int(gen) else None
            active[name] = (int(gen), at)
            positions[(name, int(tracked))] = int(position)
        found = []
        for name in self.projections:
            generation, rebuilt_at = active[name]
            others = sorted(g for n, g in positions if n == name and g != generation)
            building = (others[-1], positions[(name, others[-1])]) if others else None
            found.append(
                GenerationState(
                    name, generation, positions[(name, generation)], rebuilt_at, building
                )
            )
        return found

    # -- rebuild -----------------------------------------------------------------------------

    def rebuild(self, name: str, progress: Progress | None = None) -> RebuildResult:
        """Build a new generation from the log while the active one serves, then switch.

        Each batch commits its position, so a rebuild that was interrupted (a crash, ^C)
        resumes from its last batch into the same generation, if the projection's shape has
        not changed since; otherwise that generation is dropped and it starts over.
        """
        projection = self.projections[name]
        started = time.perf_counter()
        self.source.prepare_for_scan()
        with self.store.write() as cur:
            generation, position = self._generation_to_build(cur, projection)
        resumed_from = position
        tables = projection.physical_names(generation)
        total = 0
        # Fill the new generation without the projector lock: live catch-up ignores it.
        while True:
            events = self.source.read(position, self.batch_size * 4, projection.topics)
            if len(events) < self.batch_size * 4:
                break
            with self.store.write() as cur:
                position = self._apply_all(cur, projection, tables, events)
                self._set_position(cur, name, generation, position)
            total += len(events)
            if progress:
                progress(position)
        # The tail, and the switch, under the lock: no event can slip between them.
        with self._lock, self.store.write() as cur:
            while events:
                position = self._apply_all(cur, projection, tables, events)
                total += len(events)
                events = self.source.read(position, self.batch_size * 4, projection.topics)
            self._set_position(cur, name, generation, position)
            old = self._active(cur, name)
            self._switch(cur, projection, generation)
            self._record_rebuild(cur, name, generation)
            if old is not None:
                self._drop_generation(cur, projection, old)
        if progress:
            progress(self.source.max_position())
        seconds = time.perf_counter() - started
        return RebuildResult(name, generation, total, seconds, resumed_from)

    def _generation_to_build(self, cur: Cursor, projection: Projection) -> tuple[int, int]:
        """(generation, position): an interrupted build of the same shape to resume, or a new
        generation from 0 (dropping any stale one).
        """
        name = projection.name
        active = self._active(cur, name)
        cur.execute(
            self._sql(
                "SELECT t.generation, t.position, b.fingerprint FROM projection_tracking t"
                " LEFT JOIN projection_builds b"
                " ON b.name = t.name AND b.generation = t.generation WHERE t.name = %s"
            ),
            (name,),
        )
        rows = [(int(g), int(p), f) for g, p, f in cur.fetchall()]
        stale = sorted((r for r in rows if r[0] != active), reverse=True)
        resumable = next((r for r in stale if r[2] == projection.fingerprint), None)
        for generation, _, _ in stale:
            if resumable is None or generation != resumable[0]:
                self._drop_generation(cur, projection, generation)
        if resumable is not None:
            log.info("resuming the rebuild of %s from position %d", name, resumable[1])
            return resumable[0], resumable[1]
        generation = max((r[0] for r in rows), default=0) + 1
        self._create_generation(cur, projection, generation)
        cur.execute(
            self._sql(
                "INSERT INTO projection_builds (name, generation, fingerprint) VALUES (%s, %s, %s)"
            ),
            (name, generation, projection.fingerprint),
        )
        return generation, 0

    def _apply_all(
        self,
        cur: Cursor,
        projection: Projection,
        tables: dict[str, str],
        events: list[tuple[int, Any]],
    ) -> int:
        writer = Writer(self.store, cur, tables)
        for _, event in events:
            projection.apply(event, writer)
        writer.flush()
        return int(events[-1][0])

    # -- registry ----------------------------------------------------------------------------

    def _sql(self, template: str) -> Any:
        return self.store.compile(template, {})

    def _active(self, cur: Cursor, name: str) -> int | None:
        cur.execute(self._sql("SELECT active FROM projection_generations WHERE name = %s"), (name,))
        row = cur.fetchone()
        return None if row is None else int(row[0])

    def _tracking(self, cur: Cursor) -> dict[str, tuple[int, int]]:
        cur.execute(
            self._sql(
                "SELECT g.name, g.active, t.position FROM projection_generations g "
                "JOIN projection_tracking t ON t.name = g.name AND t.generation = g.active"
            )
        )
        found = {row[0]: (int(row[1]), int(row[2])) for row in cur.fetchall()}
        return {name: found[name] for name in self.projections}

    def _set_position(self, cur: Cursor, name: str, generation: int, position: int) -> None:
        cur.execute(
            self._sql(
                "UPDATE projection_tracking SET position = %s WHERE name = %s AND generation = %s"
            ),
            (position, name, generation),
        )

    def _create_generation(self, cur: Cursor, projection: Projection, generation: int) -> None:
        names = projection.physical_names(generation)
        for statements in projection.tables.values():
            for statement in statements:
                ddl = for_dialect(statement, self.store.dialect)
                if ddl:
                    cur.execute(self.store.compile(ddl, names))
        cur.execute(
            self._sql(
                "INSERT INTO projection_tracking (name, generation, position) VALUES (%s, %s, 0)"
            ),
            (projection.name, generation),
        )

    def _switch(self, cur: Cursor, projection: Projection, generation: int) -> None:
        names = projection.physical_names(generation)
        for logical in projection.tables:
            view = {"view": logical, "table": names[logical]}
            cur.execute(self.store.compile("DROP VIEW IF EXISTS {view}", view))
            cur.execute(self.store.compile("CREATE VIEW {view} AS SELECT * FROM {table}", view))
        cur.execute(
            self._sql("DELETE FROM projection_generations WHERE name = %s"), (projection.name,)
        )
        cur.execute(
            self._sql(
                "INSERT INTO projection_generations (name, active, fingerprint) VALUES (%s, %s, %s)"
            ),
            (projection.name, generation, projection.fingerprint),
        )

    def _record_rebuild(self, cur: Cursor, name: str, generation: int) -> None:
        cur.execute(self._sql("DELETE FROM projection_rebuilds WHERE name = %s"), (name,))
        cur.execute(
            self._sql(
                "INSERT INTO projection_rebuilds (name, generation, switched_at)"
                " VALUES (%s, %s, %s)"
            ),
            (name, generation, int(time.time() * 1_000_000)),
        )

    def _drop_generation(self, cur: Cursor, projection: Projection, generation: int) -> None:
        names = projection.physical_names(generation)
        for logical in projection.tables:
            cur.execute(
                self.store.compile("DROP TABLE IF EXISTS {table}", {"table": names[logical]})
            )
        key = (projection.name, generation)
        cur.execute(
            self._sql("DELETE FROM projection_tracking WHERE name = %s AND generation = %s"), key
        )
        cur.execute(
            self._sql("DELETE FROM projection_builds WHERE name = %s AND generation = %s"), key
        )
