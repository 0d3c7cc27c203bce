"""Verifying the hash chain (``service/chain.py``): the whole log, from a position, or one
stream; the first thing found wrong is reported with its position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol
from uuid import UUID

from service.chain import GENESIS, log_link, stream_link

PAGE = 5_000  # positions per read while verifying


class ChainedEvent(NamedTuple):
    """A position of the log: its stored event and its chain entry, either of which may be
    missing in a damaged log. ``previous_log_hash`` is set by stream reads only (the log hash
    of the entry before this one in the log's order). A tuple: verify makes one per event."""

    position: int
    stream_id: UUID
    version: int
    topic: str | None = None
    state: bytes | None = None  # None: the event is gone, its chain entry remains
    stream_hash: bytes | None = None  # None: stored without a chain entry
    log_hash: bytes | None = None
    previous_log_hash: bytes | None = None


class ChainStore(Protocol):
    """The stored events joined with their chain entries, per backend (adapters/)."""

    def head(self) -> tuple[int, bytes]:
        """The last chained position and its log hash; (0, GENESIS) for an empty log."""
        ...

    def end(self) -> int:
        """The last position that holds an event or a chain entry."""
        ...

    def positions(self, after: int, upto: int) -> list[ChainedEvent]:
        """Every position in (after, upto] that has an event or a chain entry, in order."""
        ...

    def stream(self, stream_id: UUID) -> list[ChainedEvent]:
        """A stream's events and chain entries, by version, with previous log hashes."""
        ...

    def stream_hashes(self, keys: list[tuple[UUID, int]]) -> dict[tuple[UUID, int], bytes]:
        """The chain's stream hashes of these (stream, version) pairs, where it has them."""
        ...

    def log_hash_before(self, position: int) -> bytes:
        """The log hash of the last chain entry before ``position`` (GENESIS if none)."""
        ...


@dataclass(frozen=True)
class Problem:
    position: int
    what: str


@dataclass
class Report:
    checked: int = 0
    last_position: int = 0
    head: str = GENESIS.hex()  # the log hash at last_position
    problem: Problem | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


Progress = Callable[[int, int], None]  # (positions done, end)


def _damage(e: ChainedEvent) -> str | None:
    if e.state is None or e.topic is None:
        return f"the event at position {e.position} was removed (its chain entry remains)"
    if e.stream_hash is None or e.log_hash is None:
        return (
            f"the event at position {e.position} has no chain entry (it was stored outside "
            "convlog, or its entry was removed)"
        )
    return None


def _stream_mismatch(e: ChainedEvent, previous: bytes) -> str | None:
    assert e.state is not None and e.topic is not None
    if stream_link(previous, e.stream_id, e.version, e.topic, e.state) != e.stream_hash:
        return (
            f"the event at position {e.position} (stream {e.stream_id}, version {e.version}) "
            "does not match its hash: its stored bytes, or those of the stream's event before "
            "it, were changed"
        )
    return None


class _LogWalk:
    """The state of a walk over the log: the running log hash and each stream's last hash."""

    def __init__(self, store: ChainStore, start: int) -> None:
        self.store = store
        self.log_hash = store.log_hash_before(start) if start > 1 else GENESIS
        self.from_start = start <= 1
        self.streams: dict[UUID, tuple[int, bytes]] = {}

    def check(self, page: list[ChainedEvent]) -> Problem | None:
        self._load_previous(page)
        for e in page:
            problem = _damage(e) or self._stream_problem(e) or self._log_problem(e)
            if problem:
                return Problem(e.position, problem)
        return None

    def _load_previous(self, page: list[ChainedEvent]) -> None:
        """From a later start, a stream's first event links to a hash before the start."""
        if self.from_start:
            return
        wanted: dict[UUID, int] = {}
        for e in page:
            if e.stream_id not in self.streams:
                wanted.setdefault(e.stream_id, e.version - 1)
        found = self.store.stream_hashes([k for k in wanted.items() if k[1] > 0])
        for (stream_id, version), stream_hash in found.items():
            self.streams.setdefault(stream_id, (version, stream_hash))

    def _stream_problem(self, e: ChainedEvent) -> str | None:
        last_version, last_hash = self.streams.get(e.stream_id, (0, GENESIS))
        if e.version != last_version + 1 and (self.from_start or e.stream_id in self.streams):
            return (
                f"stream {e.stream_id} goes from version {last_version} to {e.version} at "
                f"position {e.position}: events are missing or out of order"
            )
        problem = _stream_mismatch(e, last_hash)
        assert e.stream_hash is not None
        self.streams[e.stream_id] = (e.version, e.stream_hash)
        return problem

    def _log_problem(self, e: ChainedEvent) -> str | None:
        assert e.stream_hash is not None
        if log_link(self.log_hash, e.position, e.stream_hash) != e.log_hash:
            return (
                f"the log's chain breaks at position {e.position}: an event before it was "
                "removed, inserted or reordered, or hashes were rewritten"
            )
        assert e.log_hash is not None
        self.log_hash = e.log_hash
        return None


def verify_log(
    store: ChainStore,
    start: int = 1,
    progress: Progress | None = None,
    expect: tuple[int, bytes] | None = None,
) -> Report:
    """Check every position from ``start`` to the end. ``expect``, a (position, head hash) an
    auditor kept, must still be the log hash at that position."""
    end = store.end()
    walk, report = _LogWalk(store, start), Report()
    after = max(start, 1) - 1
    while after < end and report.problem is None:
        upto = min(after + PAGE, end)
        page = store.positions(after, upto)
        report.problem = walk.check(page)
        if report.problem is None:
            report.checked += len(page)
            if page:
                report.last_position, report.head = page[-1].position, walk.log_hash.hex()
            if expect is not None and after < expect[0] <= upto:
                report.problem = _expected_problem(page, expect)
        else:
            report.checked += sum(1 for e in page if e.position < report.problem.position)
        after = upto
        if progress:
            progress(after, end)
    if expect is not None and report.problem is None and expect[0] > report.last_position:
        report.problem = Problem(expect[0], f"the log ends before position {expect[0]}")
    return report


def _expected_problem(page: list[ChainedEvent], expect: tuple[int, bytes]) -> Problem | None:
    position, head = expect
    at = next((e for e in page if e.position == position), None)
    if at is None:
        return Problem(position, f"position {position} is no longer in the log")
    if at.log_hash != head:
        return Problem(
            position,
            f"the log hash at position {position} is not the one expected: the log up to it "
            "was changed",
        )
    return None


def verify_stream(store: ChainStore, stream_id: UUID) -> Report:
    """One stream's events, in version order: their stream hashes, and each one's link to
    the entry before it in the log."""
    report, last_hash = Report(), GENESIS
    for expected_version, e in enumerate(store.stream(stream_id), start=1):
        problem = _damage(e)
        if problem is None and e.version != expected_version:
            problem = (
                f"stream {stream_id} goes from version {expected_version - 1} to {e.version} "
                f"at position {e.position}: events are missing or out of order"
            )
        problem = problem or _stream_mismatch(e, last_hash)
        if problem is None:
            assert e.stream_hash is not None and e.previous_log_hash is not None
            if log_link(e.previous_log_hash, e.position, e.stream_hash) != e.log_hash:
                problem = f"the log's chain breaks at position {e.position}"
        if problem:
            report.problem = Problem(e.position, problem)
            return report
        assert e.stream_hash is not None and e.log_hash is not None
        last_hash, report.checked = e.stream_hash, report.checked + 1
        report.last_position, report.head = e.position, e.log_hash.hex()
    return report
