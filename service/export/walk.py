"""What the export needs the history for, folded in log order in the export's own process:
which rows a conversation's export keeps, whose each conversation is, and the runs. What came
before the export's start is read from the streams themselves (``earlier_events``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain import ids
from domain.conversation import Conversation
from domain.run import Run
from service.application import ConvlogApplication
from service.export.decoding import EventDecoder
from service.export.messages import (
    CONVERSATION_CREATED,
    MESSAGE_TOPICS,
    Owner,
    conversation_id_of,
    owner_of,
)
from service.export.ports import LogRow
from service.export.runs import RUN_TOPICS, RunState

RUN_STARTED = Run.Created.TOPIC
# What the export's own process folds as it goes: whose each conversation is, and the runs.
FOLDED = frozenset({CONVERSATION_CREATED, *RUN_TOPICS})


def earlier_events(app: ConvlogApplication, stream: UUID, before_version: int) -> list[Any]:
    """A stream's events before a version, decoded (those an export that starts later than
    the stream did needs)."""
    return [app.decode(s)[0] for s in app.recorder.select_events(stream, lte=before_version - 1)]


def first_event(app: ConvlogApplication, stream: UUID) -> Any:
    found = earlier_events(app, stream, 2)
    return found[0] if found else None


class Walk:
    """What needs the history, in order: which rows a conversation's export keeps (all, when
    ``conversation`` is None), whose each conversation is, and the runs."""

    def __init__(self, app: ConvlogApplication, conversation: str | None) -> None:
        self._app = app
        self._decoder = EventDecoder(app)
        self._only = None if conversation is None else str(ids.to_uuid(conversation))
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
                    self._owners[stream] = owner_of(stream, event)
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
                owner_of(stream, created)
                if isinstance(created, Conversation.Created)
                else Owner(conversation_id_of(stream), None, None)
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
