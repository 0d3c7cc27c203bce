"""Idempotent sends: a request whose messages carry an ``otid`` an earlier run took is that
run's retry (a client that lost its connection), and never runs again.

The log knows which run took which otid (RunStarted holds the input), so this lasts as long
as the log does. A retry is found three ways, cheapest first: in the runs view (the common
case: the first attempt is over, or its claim is projected); when the fast lock is held, from
the active run in the log; and inside the claim itself, which every send passes through one
at a time, so two attempts racing each other still make one run.

A retry gets the earlier run's answer: a background run's stream from its first frame (live
while it runs); otherwise, once the run is over, its messages, stop reason and usage — as a
stream or as JSON, as the retry asked.
"""

from __future__ import annotations

import asyncio
import json
import time
from uuid import UUID

from anyio import to_thread

from domain import ids, stops
from domain.conversation import Conversation
from domain.errors import Busy, Conflict
from domain.run import Run
from domain.stops import INTERNAL
from projections.message_reads import run_items
from projections.runs import RunQueries, RunRow
from service import frames
from service.context import Context
from service.ports import ChunkLog
from service.turn_state import Turn

POLL_SECONDS = 0.05
# How long a retry waits for the run it repeats to end before it is told that run is still
# going (409 with its run_id, to follow with POST …/stream or GET /v1/runs/{id}).
WAIT_SECONDS = 20.0
STILL_RUNNING = (
    "The run that took these messages is still running; follow it with POST …/stream "
    "(background runs) or GET /v1/runs/{run_id}."
)


def retried(otids: list[str], taken: dict[str, str]) -> str | None:
    """The run a request is the retry of: the one run that took every one of its otids.
    None when no otid was taken; a request that repeats some otids but not all (or those
    of several runs) is neither a retry nor new, and is refused.
    """
    if not taken:
        return None
    runs = set(taken.values())
    if len(runs) == 1 and set(taken) == set(otids):
        return runs.pop()
    raise Conflict(
        f"Messages with otids {sorted(taken)} were already sent (runs {sorted(runs)}): a retry "
        "sends exactly the messages of one earlier request; new messages need new otids"
    )


class Retries:
    def __init__(self, ctx: Context, chunks: ChunkLog) -> None:
        self.ctx = ctx
        self.chunks = chunks
        self.queries = RunQueries(ctx.store)

    def earlier_run(self, stream_id: UUID, otids: list[str]) -> str | None:
        """The run that took these otids in this conversation (views); see ``retried``."""
        return retried(otids, self.queries.runs_of_otids(str(stream_id), otids))

    def run_holding(self, conversation: Conversation, otids: list[str]) -> str | None:
        """The active run, if it took these otids (from the log: its claim may not be
        projected yet), else an earlier run that did (views).
        """
        if not otids:
            return None
        active = conversation.active_run_id
        if active is not None:
            run = self.ctx.app.get(Run, ids.to_uuid(active))
            if run is not None:
                found = retried(otids, {o: active for o in run.otids if o in otids})
                if found is not None:
                    return found
        return self.earlier_run(conversation.id, otids)

    async def answer(self, turn: Turn, run_id: str) -> None:
        """Make ``turn`` the retry of ``run_id``: its stream follows the run's frames, or
        its result is the run's, once the run is over.
        """
        turn.run_id = turn.stream.run_id = run_id
        row, listed = await to_thread.run_sync(self._look, run_id)
        if turn.request.streaming and row.background and self.chunks.available_here(run_id):
            turn.stream.background = True  # its source is now the run's chunk log
            turn.finished.set()
            return
        waited_until = time.monotonic() + WAIT_SECONDS
        while listed is None:  # still running: its answer is not all there yet
            if time.monotonic() > waited_until:
                # An answer within bounded time: the run is still going; here is its id.
                raise Busy(STILL_RUNNING, run_id)
            await asyncio.sleep(POLL_SECONDS)
            row, listed = await to_thread.run_sync(self._look, run_id)
        items = [json.loads(item) for item in listed]
        # What the run answered, as its own response had it: not the input sent again.
        inputs = set(turn.request.otids)
        messages = [
            {k: v for k, v in m.items() if k != "role"}  # the listing's own key (decisions §12)
            for m in items
            if not (m["role"] == "user" and m["otid"] in inputs)
        ]
        turn.replay = messages
        result = turn.result
        result.messages = messages
        result.stop_reason = row.stop_reason or "error"
        result.usage = row.state.get("usage") or result.usage
        error = row.state.get("metadata", {}).get("error")
        if row.status == "failed" and error:
            kind = error.get("error_type") or INTERNAL.error_type
            result.error = frames.error_message(
                run_id, kind, error.get("message") or "", error.get("detail") or ""
            )
            result.status = stops.http_status_of(kind)

    def _look(self, run_id: str) -> tuple[RunRow, list[str] | None]:
        """The run and, once it is over, the items it listed (one trip to the views)."""
        row = self.queries.get_any(run_id)
        if row is None or row.status == "running":
            self.ctx.projector.catch_up()  # it may have started or ended in another process
            row = self.queries.get_any(run_id)
        assert row is not None, run_id
        if row.status == "running":
            return row, None
        return row, run_items(self.ctx.store, run_id, True, None)
