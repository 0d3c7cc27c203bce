"""Runs: every run with its status, for ``/v1/runs``, cancel and stream resumption."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from domain import ids
from domain.run import Run, otids_of
from domain.stops import status_of
from projections.projection import Handler, Projection, Writer
from projections.store import ViewStore, page_by_created
from projections.timefmt import to_micros

COLUMNS = (
    "id, organization_id, agent_id, conversation_id, stream_id, status, background,"
    " created_at, completed_at, stop_reason, state"
)


@dataclass(frozen=True)
class RunRow:
    id: str  # run-<uuid>
    organization_id: str
    agent_id: str
    conversation_id: str | None
    stream_id: str
    status: str
    background: bool
    created_at: int
    completed_at: int | None
    stop_reason: str | None
    state: dict[str, Any]  # request_config, metadata, usage, timings

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> RunRow:
        values = list(row)
        values[6] = bool(values[6])
        values[10] = json.loads(values[10])
        return cls(*values)


@dataclass(frozen=True)
class StepRow:
    run_id: str
    number: int
    step_id: str
    created_at: int
    usage: dict[str, Any]
    tool_call_ids: list[str]
    duration_ns: int


class RunIndex(Projection):
    name = "runs"
    version = 4  # 3: steps, deleted runs; 4: run_otids
    tables: ClassVar[dict[str, list[str]]] = {
        "runs": [
            "CREATE TABLE IF NOT EXISTS {runs} ("
            " id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, agent_id TEXT NOT NULL,"
            " conversation_id TEXT, stream_id TEXT NOT NULL, status TEXT NOT NULL,"
            " background INTEGER NOT NULL, created_at BIGINT NOT NULL, completed_at BIGINT,"
            " stop_reason TEXT, state TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0)",
            "CREATE INDEX IF NOT EXISTS {runs_by_stream} ON {runs} (stream_id, status, created_at)",
            "CREATE INDEX IF NOT EXISTS {runs_by_agent} ON {runs} (agent_id, status, created_at)",
            "CREATE INDEX IF NOT EXISTS {runs_by_org} ON {runs} (organization_id, created_at)",
        ],
        "run_steps": [
            "CREATE TABLE IF NOT EXISTS {run_steps} ("
            " run_id TEXT NOT NULL, number INTEGER NOT NULL, step_id TEXT NOT NULL,"
            " created_at BIGINT NOT NULL, usage TEXT NOT NULL, tool_call_ids TEXT NOT NULL,"
            " duration_ns BIGINT NOT NULL, PRIMARY KEY (run_id, number))",
        ],
        # Which run took each client message id (otid) in a conversation: a retry's answer.
        "run_otids": [
            "CREATE TABLE IF NOT EXISTS {run_otids} ("
            " stream_id TEXT NOT NULL, otid TEXT NOT NULL, run_id TEXT NOT NULL,"
            " PRIMARY KEY (stream_id, otid))",
        ],
    }

    def handlers(self) -> Mapping[type[Any], Handler]:
        return {
            Run.Created: self._started,
            Run.Completed: self._completed,
            Run.Failed: self._failed,
            Run.Cancelled: self._cancelled,
            Run.StepFinished: self._step,
            Run.Deleted: self._deleted,
        }

    def _started(self, e: Run.Created, w: Writer) -> None:
        state = {
            "request_config": e.request_config,
            # The input, for audit: a failed attempt's input never enters the conversation.
            "metadata": {"run_type": e.run_type, "input_messages": e.input_messages},
            "model": e.model,
        }
        w.execute(
            "INSERT INTO {runs} (id, organization_id, agent_id, conversation_id, stream_id,"
            " status, background, created_at, state)"
            " VALUES (%s, %s, %s, %s, %s, 'running', %s, %s, %s)",
            (
                ids.format_id(ids.RUN, e.originator_id),
                e.organization_id,
                e.agent_id,
                e.conversation_id,
                e.stream_id,
                int(e.background),
                to_micros(e.timestamp),
                json.dumps(state),
            ),
        )
        for otid in dict.fromkeys(otids_of(e.input_messages)):
            w.execute(
                "INSERT INTO {run_otids} (stream_id, otid, run_id) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING",  # the first run of an otid keeps it
                (e.stream_id, otid, ids.format_id(ids.RUN, e.originator_id)),
            )

    def _finish(self, e: Run.Event, w: Writer, status: str, stop_reason: str, **extra: Any) -> None:
        run_id = ids.format_id(ids.RUN, e.originator_id)
        state = json.loads(w.fetchone("SELECT state FROM {runs} WHERE id = %s", (run_id,))[0])
        for key, value in extra.items():
            if key == "error":
                state["metadata"]["error"] = value
            else:
                state[key] = value
        w.execute(
            "UPDATE {runs} SET status = %s, stop_reason = %s, completed_at = %s, state = %s"
            " WHERE id = %s",
            (status, stop_reason, to_micros(e.timestamp), json.dumps(state), run_id),
        )

    def _completed(self, e: Run.Completed, w: Writer) -> None:
        self._finish(
            e, w, status_of(e.stop_reason), e.stop_reason, usage=e.usage, timings=e.timings
        )

    def _failed(self, e: Run.Failed, w: Writer) -> None:
        self._finish(e, w, "failed", e.stop_reason, usage=e.usage, error=e.error)

    def _step(self, e: Run.StepFinished, w: Writer) -> None:
        w.insert(
            "run_steps",
            "run_id, number, step_id, created_at, usage, tool_call_ids, duration_ns",
            (
                ids.format_id(ids.RUN, e.originator_id),
                e.number,
                e.step_id,
                to_micros(e.timestamp),
                json.dumps(e.usage),
                json.dumps(e.tool_call_ids),
                e.duration_ns,
            ),
        )

    def _deleted(self, e: Run.Deleted, w: Writer) -> None:
        w.execute(
            "UPDATE {runs} SET deleted = 1 WHERE id = %s",
            (ids.format_id(ids.RUN, e.originator_id),),
        )

    def _cancelled(self, e: Run.Cancelled, w: Writer) -> None:
        self._finish(e, w, "cancelled", "cancelled")


class RunQueries:
    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def get(self, organization_id: str, run_id: str) -> RunRow | None:
        rows = self.store.query(
            f"SELECT {COLUMNS} FROM runs WHERE id = %s AND organization_id = %s AND deleted = 0",
            (run_id, organization_id),
        )
        return RunRow.from_row(rows[0]) if rows else None

    def get_any(self, run_id: str) -> RunRow | None:
        rows = self.store.query(f"SELECT {COLUMNS} FROM runs WHERE id = %s", (run_id,))
        return RunRow.from_row(rows[0]) if rows else None

    def runs_of_otids(self, stream_id: str, otids: list[str]) -> dict[str, str]:
        """otid -> the run that took it in this stream, for those of ``otids`` taken."""
        if not otids:
            return {}
        marks = ", ".join(["%s"] * len(otids))
        rows = self.store.query(
            f"SELECT otid, run_id FROM run_otids WHERE stream_id = %s AND otid IN ({marks})",
            (stream_id, *otids),
        )
        return {str(otid): str(run_id) for otid, run_id in rows}

    def active(self, *, stream_id: str | None = None, agent_id: str | None = None) -> list[RunRow]:
        """Running runs of a stream (or of all an agent's conversations), newest first."""
        column, value = (
            ("stream_id", stream_id) if stream_id is not None else ("agent_id", agent_id)
        )
        rows = self.store.query(
            f"SELECT {COLUMNS} FROM runs WHERE {column} = %s AND status = 'running'"
            " ORDER BY created_at DESC LIMIT 100",
            (value,),
        )
        return [RunRow.from_row(row) for row in rows]

    def page(
        self,
        organization_id: str,
        *,
        agent_id: str | None,
        conversation_id: str | None,
        statuses: list[str] | None,
        background: bool | None,
        ascending: bool,
        after: RunRow | None,
        before: RunRow | None,
        limit: int,
        agent_ids: list[str] | None = None,
        stop_reason: str | None = None,
    ) -> list[RunRow]:
        clauses = ["organization_id = %s", "deleted = 0"]
        params: list[Any] = [organization_id]
        if agent_ids:
            clauses.append(f"agent_id IN ({', '.join(['%s'] * len(agent_ids))})")
            params += agent_ids
        if stop_reason is not None:
            clauses.append("stop_reason = %s")
            params.append(stop_reason)
        for column, value in (("agent_id", agent_id), ("conversation_id", conversation_id)):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if statuses:
            clauses.append(f"status IN ({', '.join(['%s'] * len(statuses))})")
            params += statuses
        if background is not None:
            clauses.append("background = %s")
            params.append(int(background))
        rows = page_by_created(
            self.store,
            f"SELECT {COLUMNS} FROM runs",
            clauses,
            params,
            ascending=ascending,
            after=after,
            before=before,
            limit=limit,
        )
        return [RunRow.from_row(row) for row in rows]

    def steps(self, run_id: str) -> list[StepRow]:
        rows = self.store.query(
            "SELECT run_id, number, step_id, created_at, usage, tool_call_ids, duration_ns"
            " FROM run_steps WHERE run_id = %s ORDER BY number",
            (run_id,),
        )
        return [
            StepRow(r[0], int(r[1]), r[2], int(r[3]), json.loads(r[4]), json.loads(r[5]), int(r[6]))
            for r in rows
        ]
