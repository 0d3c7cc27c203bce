"""A whole log's pages read and made into rows by forked worker processes (on PostgreSQL,
``Exporter.run(workers=…)``), each with a connection of its own; the export's own process
folds the runs and writes the workers' rows in log order.

A worker leaves each table's rows encoded by the sink in a spool file (in /dev/shm when it
can) and hands back their paths, with the page's run rows for the export's own process to
fold."""

from __future__ import annotations

import gc
import multiprocessing
import os
import tempfile
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from domain.conversation import Conversation
from service.application import ConvlogApplication
from service.export.decoding import EventDecoder
from service.export.messages import (
    CONVERSATION_CREATED,
    MESSAGE_TOPICS,
    Owner,
    conversation_id_of,
    owner_of,
)
from service.export.page_rows import Made, make
from service.export.ports import LogRow, SharedPages, TableSink
from service.export.runs import RUN_TOPICS
from service.export.tables import Columns
from service.export.walk import Walk


@dataclass
class _Worker:
    """A forked worker's own: its decoder, its reader (its own connection), the sink's
    encoder, where it leaves what it made, and the owners of the conversations it met."""

    decoder: EventDecoder
    pages: SharedPages
    sink: TableSink
    spool: Path
    owners: dict[str, Owner] = field(default_factory=dict)

    def owners_of(self, rows: list[LogRow]) -> dict[str, Owner]:
        wanted = {r[1] for r in rows if r[3] in MESSAGE_TOPICS}
        missing = wanted - self.owners.keys()
        if missing:
            if len(self.owners) > 100_000:
                self.owners.clear()
            found = [r for r in rows if r[3] == CONVERSATION_CREATED and r[1] in missing]
            rest = missing - {r[1] for r in found}
            if rest:
                found += self.pages.first_rows(sorted(rest))
            for row in found:
                created = self.decoder.read(row[1], row[2], row[3], row[4], True)[3]
                if isinstance(created, Conversation.Created):
                    self.owners[row[1]] = owner_of(row[1], created)
            for stream in missing - self.owners.keys():
                self.owners[stream] = Owner(conversation_id_of(stream), None, None)
        return {stream: self.owners[stream] for stream in wanted}


_WORKER: _Worker | None = None  # in a worker process


def _start_worker(
    app: ConvlogApplication, pages: SharedPages, sink: TableSink, spool: Path
) -> None:
    global _WORKER
    gc.disable()
    _WORKER = _Worker(EventDecoder(app), pages.for_worker(), sink, spool)


def _work(after: int, upto: int) -> Made:
    """In a worker: read a page, make its rows, leave them encoded in the spool."""
    worker = _WORKER
    assert worker is not None
    rows = worker.pages.page(after, upto)
    made = make(worker.decoder, rows, worker.owners_of(rows))
    data: dict[str, Columns | Path] = {}
    for table, columns in made.data.items():
        assert isinstance(columns, dict)
        path = worker.spool / f"{upto}.{table}"
        path.write_bytes(worker.sink.encode(table, columns))
        data[table] = path
    folded = [r for r in rows if r[3] in RUN_TOPICS]
    return Made(data, made.counts, made.last_position, folded)


def in_workers(
    app: ConvlogApplication,
    pages: SharedPages,
    sink: TableSink,
    bounds: Sequence[tuple[int, int]],
    walk: Walk,
    workers: int,
    done: Callable[[int, Made], None],
) -> None:
    """The pages of ``bounds`` made by ``workers`` forked processes, two pages a worker in
    hand; each page's runs folded into ``walk`` and the page handed to ``done``, in order."""
    pending = iter(bounds)
    ahead: deque[tuple[int, Future[Made]]] = deque()
    spool_root = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with (
        tempfile.TemporaryDirectory(prefix="convlog-export-", dir=spool_root) as spool,
        ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(app, pages, sink, Path(spool)),
        ) as pool,
    ):

        def submit() -> None:
            found = next(pending, None)
            if found is not None:
                ahead.append((found[1], pool.submit(_work, *found)))

        with warnings.catch_warnings():
            # Python 3.12 warns of forking a process with threads (the database pool's):
            # the workers use none of what those threads hold, only a connection of their own.
            warnings.filterwarnings("ignore", "This process .* is multi-threaded")
            submit()  # the workers are forked here
        try:
            for _ in range(2 * workers - 1):
                submit()
            while ahead:
                upto, job = ahead.popleft()
                made = job.result()  # a worker that died: BrokenProcessPool
                submit()
                walk.fold(made.folded)
                done(upto, made)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
