"""The export itself: what to export (``Plan``, or ``ExportRefused``), then the log read a page
at a time and each page's rows handed to the sink in log order (``Exporter``), and what came of
it (``Result``)."""

from __future__ import annotations

import gc
import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain import ids
from domain.conversation import Conversation
from service.application import ConvlogApplication
from service.audit import ChainStore
from service.export.decoding import EventDecoder
from service.export.page_rows import Made, make
from service.export.ports import ChainPages, LogPages, LogRow, SharedPages, TableSink
from service.export.tables import TABLES, columns_of
from service.export.walk import Walk, first_event
from service.export.workers import in_workers

PAGE = 10_000  # log positions per read
RUN_FLUSH = 50_000  # finished runs held before their rows are written early

Progress = Callable[[int, int], None]  # (positions read, positions to read)


class ExportRefused(Exception):
    """Bad input, worded for the person who gave it."""


@dataclass(frozen=True)
class Plan:
    since: int  # export positions after this…
    end: int  # …up to this one (the log's last position when the export started)
    head: tuple[int, bytes]  # the chain's head then: its position and log hash
    conversation: str | None  # conv-…: only its stream and its runs


@dataclass
class Result:
    plan: Plan
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    last_position: int = 0  # the last position exported (the plan's since if none)
    seconds: float = 0.0
    workers: int = 0  # the processes that made the rows (0: the export's own)

    @property
    def next_since(self) -> int:
        """Where the next incremental export starts: every position up to the end was read
        (a conversation's export skips what is not its own)."""
        return self.plan.end

    @property
    def events_per_second(self) -> float:
        return self.counts["events"] / self.seconds if self.seconds > 0 else 0.0


class _Output:
    """An export's rows into the sink, in log order: each page's, then the runs finished so
    far; counted in the result, with progress reported after each page."""

    def __init__(
        self, sink: TableSink, walk: Walk, result: Result, progress: Progress | None
    ) -> None:
        self._sink = sink
        self._walk = walk
        self._result = result
        self._progress = progress

    def rows(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self._sink.write(table, columns_of(table, rows))
            self._result.counts[table] += len(rows)

    def page(self, upto: int, made: Made) -> None:
        """A page's rows (a worker's spool files are read and removed), up to ``upto``."""
        result = self._result
        for table, data in made.data.items():
            if isinstance(data, Path):
                self._sink.write_encoded(table, data.read_bytes())
                data.unlink()
            else:
                self._sink.write(table, data)
            result.counts[table] += made.counts[table]
        if made.last_position:
            result.last_position = made.last_position
        self.rows("runs", self._walk.finished_runs(RUN_FLUSH))
        if self._progress:
            plan = result.plan
            self._progress(upto - plan.since, plan.end - plan.since)


class Exporter:
    """Reads the log a page at a time (the next page while this one is worked on), makes
    each page's rows and hands them to the sink."""

    def __init__(
        self,
        app: ConvlogApplication,
        chain: ChainStore,
        pages: LogPages | None = None,
        page_size: int = PAGE,
    ) -> None:
        self._app = app
        self._chain = chain
        self._pages = pages or ChainPages(chain)
        self._page_size = page_size

    def plan(self, since: int = 0, conversation: str | None = None) -> Plan:
        """What to export, or ExportRefused naming what is wrong."""
        head = self._chain.head()
        end = max(self._chain.end(), head[0])
        if since < 0:
            raise ExportRefused(f"--since takes a log position (0 or more), not {since}")
        if since > end:
            raise ExportRefused(f"--since {since} is past the log's head ({end})")
        if conversation is not None:
            created = (
                first_event(self._app, ids.to_uuid(conversation))
                if ids.is_valid(ids.CONVERSATION, conversation)
                else None
            )
            if not isinstance(created, Conversation.Created):
                raise ExportRefused(f"no conversation {conversation!r} in the log")
        return Plan(since, end, head, conversation)

    def run(
        self, plan: Plan, sink: TableSink, progress: Progress | None = None, workers: int = 0
    ) -> Result:
        """Export ``plan`` into ``sink``. With ``workers`` (and pages they can read, a whole
        log's export, and fork), forked processes read and make the pages' rows, while this
        one folds the runs and writes, in order; else this process does it all."""
        started = time.perf_counter()
        walk = Walk(self._app, plan.conversation)
        result = Result(plan, last_position=plan.since)
        parallel = self._parallel(plan, workers)
        result.workers = workers if parallel else 0
        out = _Output(sink, walk, result, progress)
        # Millions of short-lived containers, no cycles: the collector would only cost time.
        collecting = gc.isenabled()
        gc.disable()
        try:
            if parallel:
                assert isinstance(self._pages, SharedPages)
                bounds = self._bounds(plan.since, plan.end)
                in_workers(self._app, self._pages, sink, bounds, walk, workers, out.page)
            else:
                decoder = EventDecoder(self._app)
                for upto, rows in self._read(plan.since, plan.end):
                    kept, owners = walk.prepare(rows)
                    out.page(upto, make(decoder, kept, owners))
            out.rows("runs", walk.all_runs())
        finally:
            if collecting:
                gc.enable()
        result.seconds = time.perf_counter() - started
        return result

    def _parallel(self, plan: Plan, workers: int) -> bool:
        """Whether forked workers make the rows: asked for, a whole log's export, pages they
        can read, and fork to start them with."""
        return (
            workers > 0
            and plan.conversation is None
            and isinstance(self._pages, SharedPages)
            and "fork" in multiprocessing.get_all_start_methods()
        )

    def _bounds(self, since: int, end: int) -> list[tuple[int, int]]:
        return [(a, min(a + self._page_size, end)) for a in range(since, end, self._page_size)]

    def _read(self, since: int, end: int) -> Iterator[tuple[int, list[LogRow]]]:
        """The pages of (since, end], the next one read while this one is worked on."""
        bounds = self._bounds(since, end)
        if not bounds:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-read") as reader:
            ahead: Future[list[LogRow]] = reader.submit(self._pages.page, *bounds[0])
            for i, (_, upto) in enumerate(bounds):
                rows = ahead.result()
                if i + 1 < len(bounds):
                    ahead = reader.submit(self._pages.page, *bounds[i + 1])
                yield upto, rows
