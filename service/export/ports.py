"""What an export reads from and writes to: the log by position range (``LogPages``,
adapters/export_pages.py) and a file per table (``TableSink``, adapters/export_files.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from service.audit import ChainStore
from service.export.tables import Columns

# A stored event at its position, with its chain entry: position, stream id (canonical UUID
# text), version, topic, state, stream hash and log hash (None when it has no chain entry).
LogRow = tuple[int, str, int, str, bytes, bytes | None, bytes | None]


class LogPages(Protocol):
    """The stored events by position range, as plain rows (adapters/export_pages.py)."""

    def page(self, after: int, upto: int) -> list[LogRow]:
        """Every stored event in (after, upto], in position order."""
        ...


@runtime_checkable
class SharedPages(LogPages, Protocol):
    """Pages that worker processes can read too, each with a connection of its own."""

    def for_worker(self) -> SharedPages:
        """A reader for a forked worker process (called there)."""
        ...

    def first_rows(self, streams: Sequence[str]) -> list[LogRow]:
        """The first stored event of each of these streams (those that have one)."""
        ...


class ChainPages:
    """``LogPages`` over the hash chain's reader: every backend has one."""

    def __init__(self, chain: ChainStore) -> None:
        self._chain = chain

    def page(self, after: int, upto: int) -> list[LogRow]:
        return [
            (e.position, str(e.stream_id), e.version, e.topic, e.state, e.stream_hash, e.log_hash)
            for e in self._chain.positions(after, upto)
            if e.topic is not None and e.state is not None
        ]


class TableSink(Protocol):
    """Where the rows go: a file per table (adapters/export_files.py), batches appended in
    the order given. ``encode`` makes a batch's bytes for ``write_encoded``; it touches no
    file, so worker processes can run it."""

    def write(self, table: str, columns: Columns) -> None: ...

    def encode(self, table: str, columns: Columns) -> bytes: ...

    def write_encoded(self, table: str, data: bytes) -> None: ...
