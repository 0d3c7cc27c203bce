"""Run use cases: read runs, cancel the active ones, resume a background run's stream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from anyio import to_thread

from domain import ids
from domain.conversation import Conversation
from domain.errors import Conflict, Expired, InvalidArgument, NotFound, Unavailable
from domain.run import ACTIVE, Run
from projections.message_reads import run_items
from projections.runs import RunQueries, RunRow, StepRow
from projections.timefmt import to_micros
from service.actor import Actor
from service.context import Context
from service.conversations import ConversationService
from service.ports import ChunkLog, Lock, Signals
from service.streams import until_ended, with_pings

log = logging.getLogger("convlog.runs")

RESUME_WINDOW_SECONDS = 3 * 3600
# A resumed stream silent this long asks whether its run has ended without it.
SILENT_STREAM_SECONDS = 5.0


class RunService:
    def __init__(
        self,
        ctx: Context,
        conversations: ConversationService,
        lock: Lock,
        signals: Signals,
        chunks: ChunkLog,
    ) -> None:
        self.ctx = ctx
        self.conversations = conversations
        self.lock = lock
        self.signals = signals
        self.chunks = chunks
        self.queries = RunQueries(ctx.store)

    def get(self, actor: Actor, run_id: str) -> RunRow:
        row = self.queries.get(actor.organization_id, run_id)
        if row is None:
            raise NotFound(f"Run with id '{run_id}' not found")
        return row

    def active_runs(self, actor: Actor, path_id: str, *, check_exists: bool) -> list[RunRow]:
        """Running runs behind a path id: a conversation's, or all of an agent's."""
        if path_id.startswith(f"{ids.AGENT}-"):
            agent = self.conversations.agents.get(actor, path_id)
            return self.queries.active(agent_id=agent.id)
        if check_exists:
            self.conversations.get(actor, path_id)
        if not ids.is_valid(ids.CONVERSATION, path_id):
            return []
        runs = self.queries.active(stream_id=str(ids.to_uuid(path_id)))
        return [r for r in runs if r.organization_id == actor.organization_id]

    # -- cancel ------------------------------------------------------------------------------

    async def cancel(
        self,
        actor: Actor,
        path_id: str,
        run_ids: list[str] | None = None,
        noun: str = "conversation",
    ) -> dict[str, str]:
        """Cancel the active runs behind a path id (only ``run_ids``, when given)."""
        runs = await to_thread.run_sync(lambda: self.active_runs(actor, path_id, check_exists=True))
        if run_ids is not None:
            runs = [r for r in runs if r.id in run_ids]
        if not runs:
            raise Conflict(f"No active runs to cancel for {noun} {path_id}")
        outcome: dict[str, str] = {}
        for row in runs:
            try:
                await to_thread.run_sync(self._cancel_one, actor, row)
                outcome[row.id] = "cancelled"
            except Exception:
                log.exception("could not cancel run %s", row.id)
                outcome[row.id] = "failed"
                continue
            await self.signals.cancel(row.id)
            await self.lock.release(lock_key(row))
        return outcome

    def _cancel_one(self, actor: Actor, row: RunRow) -> None:
        def command() -> list[Any]:
            run = self.ctx.app.get(Run, ids.to_uuid(row.id))
            if run is None or not run.is_active:
                return []  # already over: cancelling it again is a no-op
            run.cancel("requested")
            changed: list[Any] = [run]
            conversation = self.ctx.app.get(Conversation, UUID(row.stream_id))
            if conversation is not None and conversation.active_run_id == row.id:
                conversation.release_run(row.id, "cancelled")
                changed.append(conversation)
            return changed

        self.ctx.settle(self.ctx.app.save_retrying(actor, command))

    # -- resume ------------------------------------------------------------------------------

    def find_resumable(
        self, actor: Actor, path_id: str, *, run_id: str | None = None, otid: str | None = None
    ) -> RunRow:
        """The run a resume request names: by ``run_id``, by the ``otid`` of a message it
        took, or else the conversation's active run.
        """
        if run_id is not None and otid is not None:
            raise InvalidArgument("Give run_id or otid, not both")
        if run_id is not None or otid is not None:
            stream = str(self.conversations.resolve(actor, path_id))
            if otid is not None:
                run_id = self.queries.runs_of_otids(stream, [otid]).get(otid)
                if run_id is None:
                    raise NotFound(f"No run found for otid={otid}.")
            assert run_id is not None
            row = self.queries.get(actor.organization_id, run_id)
            if row is None or row.stream_id != stream:  # another conversation's run
                raise NotFound(f"Run {run_id} not found.")
            return self._check_resumable(row)
        runs = self.active_runs(actor, path_id, check_exists=False)
        if not runs:
            raise InvalidArgument("No active runs found for this conversation.")
        return self._check_resumable(runs[0])

    def _check_resumable(self, run: RunRow) -> RunRow:
        if not run.background:
            raise InvalidArgument(
                "Run was not created in background mode, so it cannot be retrieved."
            )
        if run.created_at < to_micros(datetime.now(UTC)) - RESUME_WINDOW_SECONDS * 1_000_000:
            raise Expired("Run was created more than 3 hours ago, and is now expired.")
        if not self.chunks.available_here(run.id) and run.status != "running":
            raise Expired(
                "This run's stream is no longer kept in memory (the oldest finished runs' "
                f"streams make room for new ones); its messages are at /v1/runs/{run.id}/messages."
            )
        if not self.chunks.available_here(run.id):
            raise Unavailable(
                "This run streams from another server process; resuming it there requires "
                "Redis (set REDIS_URL on every process)."
            )
        return run

    async def resume(
        self,
        run: RunRow,
        *,
        starting_after: int,
        poll_interval: float,
        batch_size: int,
        ping_seconds: float | None,
    ) -> AsyncIterator[str]:
        async def ended() -> bool:
            row = await to_thread.run_sync(self.queries.get, run.organization_id, run.id)
            return row is None or row.status != ACTIVE

        source = until_ended(
            self.chunks.follow(run.id, starting_after, poll_interval, batch_size),
            run.id,
            ended,
            SILENT_STREAM_SECONDS,
        )
        async for frame in with_pings(source, run.id, ping_seconds):
            yield frame

    # -- one run's details -------------------------------------------------------------------

    def steps(self, actor: Actor, run_id: str) -> list[StepRow]:
        self.get(actor, run_id)
        return self.queries.steps(run_id)

    def messages(self, actor: Actor, run_id: str, *, ascending: bool) -> list[str]:
        """The listed items the run added (its input, its steps' messages), in order."""
        self.get(actor, run_id)
        return run_items(self.ctx.store, run_id, ascending, None)

    def delete(self, actor: Actor, run_id: str) -> None:
        self.get(actor, run_id)

        def command() -> list[Any]:
            run = self.ctx.app.get(Run, ids.to_uuid(run_id))
            assert run is not None
            run.delete()
            return [run]

        self.ctx.settle(self.ctx.app.save_retrying(actor, command))

    def resumable(self, actor: Actor, run_id: str) -> RunRow:
        """A background run by its id, if its stream can still be resumed here."""
        return self._check_resumable(self.get(actor, run_id))

    def list_runs(self, actor: Actor, **filters: Any) -> list[RunRow]:
        cursors = {}
        for key in ("after", "before"):
            cursor_id = filters.pop(key, None)
            if cursor_id is not None:
                row = self.queries.get(actor.organization_id, cursor_id)
                if row is None:
                    raise InvalidArgument(f"Cursor {key}={cursor_id} is not a run")
                cursors[key] = row
        return self.queries.page(
            actor.organization_id,
            after=cursors.get("after"),
            before=cursors.get("before"),
            **filters,
        )


def lock_key(row: RunRow) -> str:
    return f"conversation:lock:{row.conversation_id or row.agent_id}"
