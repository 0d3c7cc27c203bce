"""Exporting the log for analysts (``convlog export``, docs/export.md): three tables built from
the stored events alone, never from the views.

- ``events``: every stored event, with who caused it, its fields as JSON and its two hashes;
- ``messages``: one row per message appended to a conversation (and per compaction summary);
- ``runs``: one row per run, folded from all of the run's events up to the head.

The log is read in large pages of stored rows (``LogPages``); each event's state is decoded
once, with orjson when it holds nothing but JSON and its timestamp (nearly always), else by the
application's own mapper, and becomes a typed domain event that the row builders read. Each
page's ``events`` and ``messages`` rows go to a ``TableSink`` (adapters/export_files.py: JSON
lines or Parquet) as columns; the runs, which need every event of a run, are folded as the pages
go by and written at the end. On PostgreSQL a whole log's pages can be read and made into rows
by forked worker processes (``Exporter.run(workers=…)``), each with a connection of its own;
the export's own process then folds the runs and writes the workers' rows in log order.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

import orjson
from eventsourcing.persistence import JSONTranscoder, StoredEvent
from eventsourcing.utils import resolve_topic

from domain import ids
from domain.conversation import Conversation
from domain.run import Run
from domain.stops import status_of
from projections.messages import context_row, plain_text, summary_listed
from service.application import ConvlogApplication
from service.audit import ChainStore

PAGE = 10_000  # log positions per read

# -- the tables ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    # int (64-bit), float (64-bit), bool, str, json (a JSON document, as text), time (ISO
    # 8601 text with its offset, as stored; written as UTC microseconds), actor
    # (organization_id, user_id, key_id: the ``by`` of a stored event)
    kind: str


def _columns(spec: str) -> tuple[Column, ...]:
    return tuple(Column(*item.split(":")) for item in spec.split())


EVENTS = _columns(
    "position:int stream_id:str version:int type:str timestamp:time actor:actor"
    " payload:json hash:str log_hash:str"
)
MESSAGES = _columns(
    "position:int message_id:str conversation_id:str agent_id:str organization_id:str"
    " run_id:str step_id:str message_type:str role:str text:str tool_name:str"
    " tool_call_id:str tokens:int created_at:time"
)
RUNS = _columns(
    "id:str conversation_id:str agent_id:str organization_id:str status:str stop_reason:str"
    " model:str run_type:str background:bool steps:int prompt_tokens:int"
    " completion_tokens:int total_tokens:int created_at:time completed_at:time"
    " duration_seconds:float ttft_seconds:float deleted:bool position:int"
)
TABLES: dict[str, tuple[Column, ...]] = {"events": EVENTS, "messages": MESSAGES, "runs": RUNS}
ACTOR_FIELDS = ("organization_id", "user_id", "key_id")

Columns = dict[str, list[Any]]  # one batch of a table: column name -> values, all one length


def columns_of(table: str, rows: list[tuple[Any, ...]]) -> Columns:
    """Row tuples (in the table's column order) as columns."""
    names = [c.name for c in TABLES[table]]
    if not rows:
        return {name: [] for name in names}
    return dict(zip(names, map(list, zip(*rows, strict=True)), strict=True))


# -- ports ---------------------------------------------------------------------------------------

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


# -- decoding -------------------------------------------------------------------------------------

_TRANSCODED = b'"_type_"'
# orjson reads an integer beyond 64 bits as a float: a state with 19 digits in a row (such an
# integer, or a longer one, or digits in a text) goes the mapper's way. Digits become zeros
# first, so that one search finds any of them.
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def quick_json(state: bytes) -> bool:
    """Whether orjson reads ``state`` as the mapper would, its timestamp the only transcoded
    value in it."""
    zeroed = state.translate(_DIGITS)
    return zeroed.count(_TRANSCODED) == 1 and _LONG_NUMBER not in zeroed


_NOT_FIELDS = ("originator_id", "originator_version", "timestamp")


def payload_json(fields: dict[str, Any]) -> str:
    """An event's fields as compact JSON text (times in ISO 8601, UUIDs hyphenated)."""
    try:
        return orjson.dumps(fields).decode()
    except TypeError:  # an integer beyond 64 bits, or a type orjson does not know
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


Decoded = tuple[str, dict[str, Any] | None, str, Any]  # time (ISO 8601), by, payload, event


class EventDecoder:
    """Stored events as the application's mapper would decode them (upcasters included): the
    time, who caused it, the fields as JSON text, and the typed event when asked for.

    The quick way parses the stored JSON with orjson, when it is plain JSON whose only
    transcoded value is the timestamp (no other times or UUIDs inside): nearly every event.
    Anything else goes the mapper's way."""

    def __init__(self, app: ConvlogApplication) -> None:
        self._app = app
        mapper = app.mapper
        self._raw = (
            mapper.cipher is None
            and mapper.compressor is None
            and type(mapper.transcoder) is JSONTranscoder
        )
        self._classes: dict[str, tuple[type[Any], int]] = {}
        self._uuids: dict[str, UUID] = {}
        # Topics the quick way takes as they are: plain JSON, a class never upcast.
        self.quick_topics: dict[str, bool] = {}

    def event_class(self, topic: str) -> tuple[type[Any], int]:
        """The class of a topic, and its class version."""
        found = self._classes.get(topic)
        if found is None:
            cls = resolve_topic(topic)
            found = self._classes[topic] = (cls, getattr(cls, "class_version", 1))
        return found

    def quick_topic(self, topic: str) -> bool:
        """Whether the quick way may take this topic's events without upcasting them."""
        found = self.quick_topics[topic] = self._raw and self.event_class(topic)[1] == 1
        return found

    def typed(
        self, topic: str, fields: dict[str, Any], stream_id: str, version: int, at: str
    ) -> Any:
        """The domain event of quickly decoded ``fields`` (which it takes over)."""
        return self._typed(self.event_class(topic)[0], fields, stream_id, version, at)

    def uuid(self, stream_id: str) -> UUID:
        found = self._uuids.get(stream_id)
        if found is None:
            if len(self._uuids) > 100_000:
                self._uuids.clear()
            found = self._uuids[stream_id] = UUID(stream_id)
        return found

    def _quick(self, state: bytes) -> dict[str, Any] | None:
        """The stored JSON parsed, if the quick way may take it (its timestamp still
        transcoded, ``by`` and the class version still in): else None."""
        if not self._raw or not quick_json(state):
            return None
        try:
            fields = orjson.loads(state)
        except orjson.JSONDecodeError:  # e.g. an integer beyond 64 bits: the slow way
            return None
        stamp = fields.get("timestamp") if isinstance(fields, dict) else None
        if not isinstance(stamp, dict) or stamp.get("_type_") != "datetime_iso":
            return None
        found: dict[str, Any] = fields
        return found

    @staticmethod
    def _upcast(cls: type[Any], latest: int, fields: dict[str, Any]) -> None:
        stored = fields.pop("class_version", 1)
        while stored < latest:
            getattr(cls, f"upcast_v{stored}_v{stored + 1}")(fields)
            stored += 1

    def _typed(
        self, cls: type[Any], fields: dict[str, Any], stream_id: str, version: int, at: str
    ) -> Any:
        """The domain event of quickly decoded ``fields`` (which it takes over), as the
        mapper makes it."""
        fields["originator_id"] = self.uuid(stream_id)
        fields["originator_version"] = version
        fields["timestamp"] = datetime.fromisoformat(at)
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", fields)
        return event

    def _slow(self, stream_id: str, version: int, topic: str, state: bytes) -> Decoded:
        """The mapper's way."""
        event, by = self._app.decode(StoredEvent(self.uuid(stream_id), version, topic, state))
        fields = {k: v for k, v in vars(event).items() if k not in _NOT_FIELDS}
        at: datetime = vars(event)["timestamp"]
        return at.isoformat(), by, payload_json(fields), event

    def read(self, stream_id: str, version: int, topic: str, state: bytes, typed: bool) -> Decoded:
        """One stored event; its typed event only if ``typed`` (else None)."""
        fields = self._quick(state)
        if fields is None:
            return self._slow(stream_id, version, topic, state)
        at: str = fields.pop("timestamp")["_data_"]
        by = fields.pop("by", None)
        cls, latest = self.event_class(topic)
        if "class_version" in fields or latest > 1:
            self._upcast(cls, latest, fields)
        payload = payload_json(fields)
        return at, by, payload, self._typed(cls, fields, stream_id, version, at) if typed else None


# -- rows -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """A conversation, and whose it is (from its Created event)."""

    conversation_id: str  # conv-…
    agent_id: str | None
    organization_id: str | None


def _conversation_id(stream_id: str) -> str:
    return f"{ids.CONVERSATION}-{stream_id}"


def _tokens(extra: dict[str, Any]) -> int | None:
    usage = extra.get("usage")
    if not isinstance(usage, dict):
        return None
    total = usage.get("total_tokens")
    if isinstance(total, int):
        return total
    parts = [usage.get(k) for k in ("prompt_tokens", "completion_tokens")]
    return sum(p for p in parts if isinstance(p, int)) if any(parts) else None


def message_row(
    e: Conversation.MessageAppended, position: int, owner: Owner, created_at: str
) -> tuple[Any, ...]:
    """A ``messages`` row: the text as the message list keeps it for the model (a tool call
    reads ``name(arguments)``), a reasoning message's reasoning; the tools called or the one
    that answered."""
    if not needs_context_row(e.message_type, e.extra):
        return plain_message_row(vars(e), position, owner, created_at)
    found = context_row(e)
    return _message(vars(e), position, owner, created_at, found.text, found.calls)


def needs_context_row(message_type: str, extra: dict[str, Any]) -> bool:
    """Whether a message's row needs what ``context_row`` makes of tool calls and results."""
    return "tool_calls" in extra or message_type == "tool_return_message"


def plain_message_row(
    fields: dict[str, Any], position: int, owner: Owner, created_at: str
) -> tuple[Any, ...]:
    """``message_row`` of a message without tool calls or results, from its event's fields
    (``vars(event)``; the export's quick way has them before it makes an event): its text is
    what ``context_row`` makes of it, the content's text."""
    return _message(fields, position, owner, created_at, plain_text(fields["content"]), None)


def _message(
    fields: dict[str, Any],
    position: int,
    owner: Owner,
    created_at: str,
    text: str,
    calls: list[dict[str, Any]] | None,
) -> tuple[Any, ...]:
    message_type, extra = fields["message_type"], fields["extra"]
    if not text and message_type == "reasoning_message":
        text = str(extra.get("reasoning") or "")
    answer = message_type == "tool_return_message"
    if calls:
        tool_name: str | None = ",".join(str(c.get("name")) for c in calls)
    else:
        tool_name = extra.get("name") if answer else None
    return (
        position,
        fields["message_id"],
        owner.conversation_id,
        owner.agent_id,
        owner.organization_id,
        fields["run_id"],
        fields["step_id"],
        message_type,
        fields["role"],
        text,
        tool_name,
        extra.get("tool_call_id") if answer else None,
        _tokens(extra) if "usage" in extra else None,
        created_at,
    )


def summary_row(
    e: Conversation.Compacted, position: int, owner: Owner, created_at: str
) -> tuple[Any, ...]:
    """A compaction's summary, listed where it was made (as the message list has it)."""
    listed = summary_listed(e)
    return (
        position,
        listed.message_id,
        owner.conversation_id,
        owner.agent_id,
        owner.organization_id,
        e.run_id,
        None,
        listed.message_type,
        listed.role,
        e.summary,
        None,
        None,
        None,
        created_at,
    )


@dataclass
class RunState:
    """A run folded from its events: what a ``runs`` row says."""

    id: str
    position: int = 0  # the last event folded in (the latest row of a run id wins)
    organization_id: str | None = None
    agent_id: str | None = None
    conversation_id: str | None = None
    model: str | None = None
    run_type: str | None = None
    background: bool | None = None
    status: str = "running"
    stop_reason: str | None = None
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    created_at: datetime | None = None
    completed_at: datetime | None = None
    ttft_ns: int | None = None
    deleted: bool = False

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def apply(self, e: Any) -> None:
        """Fold one of the run's events in (tokens are the steps' own: a cancelled or failed
        run counts the model calls it made, as ``tokens_per_day`` does)."""
        if isinstance(e, Run.Created):
            self.organization_id, self.agent_id = e.organization_id, e.agent_id
            self.conversation_id = _conversation_id(e.stream_id)
            self.model, self.run_type, self.background = e.model, e.run_type, e.background
            self.created_at = e.timestamp
        elif isinstance(e, Run.StepFinished):
            self.steps = max(self.steps, e.number)
            self.prompt_tokens += int(e.usage.get("prompt_tokens") or 0)
            self.completion_tokens += int(e.usage.get("completion_tokens") or 0)
        elif isinstance(e, Run.Completed):
            self._finish(e, status_of(e.stop_reason), e.stop_reason)
            ttft = e.timings.get("ttft_ns")
            self.ttft_ns = int(ttft) if isinstance(ttft, int | float) else None
        elif isinstance(e, Run.Failed):
            self._finish(e, "failed", e.stop_reason)
        elif isinstance(e, Run.Cancelled):
            self._finish(e, "cancelled", "cancelled")
        elif isinstance(e, Run.Deleted):
            self.deleted = True

    def _finish(self, e: Any, status: str, stop_reason: str) -> None:
        self.status, self.stop_reason, self.completed_at = status, stop_reason, e.timestamp

    def row(self) -> tuple[Any, ...]:
        duration = (
            (self.completed_at - self.created_at).total_seconds()
            if self.completed_at and self.created_at
            else None
        )
        return (
            self.id,
            self.conversation_id,
            self.agent_id,
            self.organization_id,
            self.status,
            self.stop_reason,
            self.model,
            self.run_type,
            self.background,
            self.steps,
            self.prompt_tokens,
            self.completion_tokens,
            self.prompt_tokens + self.completion_tokens,
            None if self.created_at is None else self.created_at.isoformat(),
            None if self.completed_at is None else self.completed_at.isoformat(),
            duration,
            None if self.ttft_ns is None else self.ttft_ns / 1e9,
            self.deleted,
            self.position,
        )


RUN_EVENTS = (Run.Created, Run.StepFinished, Run.Completed, Run.Failed, Run.Cancelled, Run.Deleted)
RUN_TOPICS = frozenset(cls.TOPIC for cls in RUN_EVENTS)
CONVERSATION_CREATED = Conversation.Created.TOPIC
MESSAGE_APPENDED = Conversation.MessageAppended.TOPIC
COMPACTED = Conversation.Compacted.TOPIC
RUN_STARTED = Run.Created.TOPIC
MESSAGE_TOPICS = frozenset({MESSAGE_APPENDED, COMPACTED})  # what ``messages`` rows are made of
# What the export's own process folds as it goes: whose each conversation is, and the runs.
FOLDED = frozenset({CONVERSATION_CREATED, *RUN_TOPICS})


# -- the export -----------------------------------------------------------------------------------


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


Progress = Callable[[int, int], None]  # (positions read, positions to read)

RUN_FLUSH = 50_000  # finished runs held before their rows are written early


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
        walk = _Walk(self._app, plan)
        result = Result(plan, last_position=plan.since)
        parallel = (
            workers > 0
            and plan.conversation is None
            and isinstance(self._pages, SharedPages)
            and "fork" in multiprocessing.get_all_start_methods()
        )
        result.workers = workers if parallel else 0

        def write(table: str, rows: list[tuple[Any, ...]]) -> None:
            if rows:
                sink.write(table, columns_of(table, rows))
                result.counts[table] += len(rows)

        def done(upto: int, made: Made) -> None:
            for table, data in made.data.items():
                if isinstance(data, Path):
                    sink.write_encoded(table, data.read_bytes())
                    data.unlink()
                else:
                    sink.write(table, data)
                result.counts[table] += made.counts[table]
            if made.last_position:
                result.last_position = made.last_position
            write("runs", walk.finished_runs(RUN_FLUSH))
            if progress:
                progress(upto - plan.since, plan.end - plan.since)

        # Millions of short-lived containers, no cycles: the collector would only cost time.
        collecting = gc.isenabled()
        gc.disable()
        try:
            if parallel:
                assert isinstance(self._pages, SharedPages)
                self._in_workers(plan, sink, walk, workers, self._pages, done)
            else:
                decoder = EventDecoder(self._app)
                for upto, rows in self._read(plan.since, plan.end):
                    kept, owners = walk.prepare(rows)
                    done(upto, make(decoder, kept, owners))
            write("runs", walk.all_runs())
        finally:
            if collecting:
                gc.enable()
        result.seconds = time.perf_counter() - started
        return result

    def _in_workers(
        self,
        plan: Plan,
        sink: TableSink,
        walk: _Walk,
        workers: int,
        pages: SharedPages,
        done: Callable[[int, Made], None],
    ) -> None:
        bounds = iter(self._bounds(plan.since, plan.end))
        ahead: deque[tuple[int, Future[Made]]] = deque()
        spool_root = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        with (
            tempfile.TemporaryDirectory(prefix="convlog-export-", dir=spool_root) as spool,
            ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_start_worker,
                initargs=(self._app, pages, sink, Path(spool)),
            ) as pool,
        ):

            def submit() -> None:
                found = next(bounds, None)
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


def earlier_events(app: ConvlogApplication, stream: UUID, before_version: int) -> list[Any]:
    """A stream's events before a version, decoded (those an export that starts later than
    the stream did needs)."""
    return [app.decode(s)[0] for s in app.recorder.select_events(stream, lte=before_version - 1)]


def first_event(app: ConvlogApplication, stream: UUID) -> Any:
    found = earlier_events(app, stream, 2)
    return found[0] if found else None


# -- a page's rows -------------------------------------------------------------------------------


def page_rows(
    decoder: EventDecoder, rows: list[LogRow], owners: dict[str, Owner]
) -> tuple[Columns, list[tuple[Any, ...]]]:
    """A page's ``events`` (as columns) and ``messages`` rows; ``owners`` has each message's
    conversation. The export's hot loop: ``EventDecoder.read``'s quick way, inline, and rows
    of plain messages made from the fields without a typed event (``plain_message_row``)."""
    if not rows:
        return columns_of("events", []), []
    positions, streams, versions, topics, states, hashes, log_hashes = zip(*rows, strict=True)
    stamps: list[str] = []
    actors: list[dict[str, Any] | None] = []
    payloads: list[str] = []
    messages: list[tuple[Any, ...]] = []
    loads, dumps, quick = orjson.loads, orjson.dumps, decoder.quick_topics
    digits, marker, long_number = _DIGITS, _TRANSCODED, _LONG_NUMBER
    for position, stream, version, topic, state in zip(
        positions, streams, versions, topics, states, strict=True
    ):
        fields = None
        zeroed = state.translate(digits)  # quick_json, inline
        if (
            zeroed.count(marker) == 1
            and long_number not in zeroed
            and (quick.get(topic) or decoder.quick_topic(topic))
        ):
            try:
                fields = loads(state)
                stamp = fields.pop("timestamp")
                at = stamp["_data_"] if stamp["_type_"] == "datetime_iso" else None
            except (orjson.JSONDecodeError, KeyError, TypeError):  # the mapper's way, below
                fields = None
        if fields is not None and at is not None:
            by = fields.pop("by", None)
            payload = dumps(fields).decode()
            if topic == MESSAGE_APPENDED:
                if needs_context_row(fields["message_type"], fields["extra"]):
                    event = decoder.typed(topic, fields, stream, version, at)
                    messages.append(message_row(event, position, owners[stream], at))
                else:
                    messages.append(plain_message_row(fields, position, owners[stream], at))
            elif topic == COMPACTED:
                event = decoder.typed(topic, fields, stream, version, at)
                messages.append(summary_row(event, position, owners[stream], at))
        else:
            wanted = topic in MESSAGE_TOPICS
            at, by, payload, event = decoder.read(stream, version, topic, state, wanted)
            if topic == MESSAGE_APPENDED:
                messages.append(message_row(event, position, owners[stream], at))
            elif topic == COMPACTED:
                messages.append(summary_row(event, position, owners[stream], at))
        stamps.append(at)
        actors.append(by)
        payloads.append(payload)
    events = [
        list(positions),
        list(streams),
        list(versions),
        list(topics),
        stamps,
        actors,
        payloads,
        [None if h is None else h.hex() for h in hashes],
        [None if h is None else h.hex() for h in log_hashes],
    ]
    return dict(zip([c.name for c in EVENTS], events, strict=True)), messages


@dataclass(frozen=True)
class Made:
    """A page's rows: columns, or a file of the sink's bytes a worker wrote; and, from a
    worker, the page's rows that the export's own process folds (the runs')."""

    data: dict[str, Columns | Path]
    counts: dict[str, int]
    last_position: int
    folded: list[LogRow] = field(default_factory=list)


def make(decoder: EventDecoder, rows: list[LogRow], owners: dict[str, Owner]) -> Made:
    events, messages = page_rows(decoder, rows, owners)
    data: dict[str, Columns | Path] = {}
    if rows:
        data["events"] = events
    if messages:
        data["messages"] = columns_of("messages", messages)
    return Made(data, {"events": len(rows), "messages": len(messages)}, rows[-1][0] if rows else 0)


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
                    self.owners[row[1]] = _owner_of(row[1], created)
            for stream in missing - self.owners.keys():
                self.owners[stream] = Owner(_conversation_id(stream), None, None)
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


def _owner_of(stream: str, created: Conversation.Created) -> Owner:
    return Owner(_conversation_id(stream), created.agent_id, created.organization_id)


class _Walk:
    """What needs the history, in order: which rows a conversation's export keeps, whose
    each conversation is, and the runs."""

    def __init__(self, app: ConvlogApplication, plan: Plan) -> None:
        self._app = app
        self._decoder = EventDecoder(app)
        self._only = None if plan.conversation is None else str(ids.to_uuid(plan.conversation))
        self._kept: dict[str, bool] = {}  # run stream -> whether it is the conversation's
        self._owners: dict[str, Owner] = {}
        self._runs: dict[str, RunState] = {}

    def prepare(self, rows: list[LogRow]) -> tuple[list[LogRow], dict[str, Owner]]:
        """The rows to export of a page, and the owners of their messages' conversations;
        folds the page's conversations and runs in."""
        if self._only is not None:
            rows = [r for r in rows if self._keeps(r)]
        owners: dict[str, Owner] = {}
        for position, stream, version, topic, state, _, _ in rows:
            if topic in MESSAGE_TOPICS:
                if stream not in owners:
                    owners[stream] = self._owner(stream)
            elif topic in FOLDED:
                event = self._decoder.read(stream, version, topic, state, True)[3]
                if topic == CONVERSATION_CREATED:
                    self._owners[stream] = _owner_of(stream, event)
                else:
                    self._run_event(position, stream, event)
        return rows, owners

    def fold(self, rows: list[LogRow]) -> None:
        """The runs among rows a worker made (in log order)."""
        for position, stream, version, topic, state, _, _ in rows:
            if topic in RUN_TOPICS:
                event = self._decoder.read(stream, version, topic, state, True)[3]
                self._run_event(position, stream, event)

    def finished_runs(self, above: int) -> list[tuple[Any, ...]]:
        """The rows of finished runs, once more than ``above`` runs are held (a run met again
        later is folded from all its events again)."""
        if len(self._runs) <= above:
            return []
        done = [k for k, s in self._runs.items() if s.finished]
        return [self._runs.pop(k).row() for k in done]

    def all_runs(self) -> list[tuple[Any, ...]]:
        rows = [s.row() for s in self._runs.values()]
        self._runs.clear()
        return rows

    def _keeps(self, row: LogRow) -> bool:
        """Whether a conversation's export keeps this row: the conversation's own events and
        its runs'."""
        stream, version, topic, state = row[1], row[2], row[3], row[4]
        if stream == self._only:
            return True
        mine = self._kept.get(stream)
        if mine is None:
            if topic not in RUN_TOPICS:
                return False
            if topic == RUN_STARTED:
                started = self._decoder.read(stream, version, topic, state, True)[3]
            else:  # a run that started before the export's start
                started = first_event(self._app, self._decoder.uuid(stream))
            mine = isinstance(started, Run.Created) and started.stream_id == self._only
            self._kept[stream] = mine
        return mine

    def _owner(self, stream: str) -> Owner:
        owner = self._owners.get(stream)
        if owner is None:  # created before the export's start
            created = first_event(self._app, self._decoder.uuid(stream))
            owner = (
                Owner(_conversation_id(stream), created.agent_id, created.organization_id)
                if isinstance(created, Conversation.Created)
                else Owner(_conversation_id(stream), None, None)
            )
            self._owners[stream] = owner
        return owner

    def _run_event(self, position: int, stream: str, e: Any) -> None:
        state = self._runs.get(stream)
        if state is None:
            state = self._runs[stream] = RunState(f"{ids.RUN}-{stream}")
            if not isinstance(e, Run.Created):  # started before the export's start
                for earlier in earlier_events(self._app, e.originator_id, e.originator_version):
                    state.apply(earlier)
        state.apply(e)
        state.position = position
