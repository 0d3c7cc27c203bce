"""The claim a run holds on its conversation, and the one place a run is finished as failed.

A run is started and the conversation claimed in one save (decisions §3): the claim guards
"one active run per conversation" across processes, with or without Redis. It names the
process running it (``holder``) and has a lease. A claim whose process stopped beating
(projections/processes.py), or whose lease ran out, is recorded failed and taken over: by the
next request for that conversation at once, and by any process's reaper within seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from anyio import to_thread
from eventsourcing.domain import Aggregate

from domain import ids
from domain.conversation import Conversation
from domain.errors import NotFound
from domain.run import Run
from projections.processes import ProcessRegistry
from projections.timefmt import to_micros
from service.actor import Actor, system
from service.context import Context
from service.ports import Lock
from service.retries import Retries
from service.turn_state import Turn

log = logging.getLogger("convlog.turns")

LAPSED = {
    "error_type": "internal_error",
    "message": "The run stopped without finishing: its server process went away.",
    "detail": "process gone",
}


class Claims:
    def __init__(
        self,
        ctx: Context,
        lock: Lock,
        lease_seconds: float,
        retries: Retries,
        processes: ProcessRegistry,
        holder: str,
    ) -> None:
        self.ctx = ctx
        self.lock = lock
        self.lease_seconds = lease_seconds
        self.retries = retries
        self.processes = processes
        self.holder = holder  # this process, as claims name it

    def holder_gone(self, conversation: Conversation) -> bool:
        """Whether the process running the conversation's active run stopped beating."""
        holder = conversation.active_holder
        if conversation.active_run_id is None or holder is None or holder == self.holder:
            return False
        return self.processes.gone(holder)

    def claim(self, actor: Actor, turn: Turn) -> None:
        """Record RunStarted and claim the conversation for it (409 if a live run holds it),
        unless the request is a retry: then ``turn.retry_of`` names the run that took it.
        """

        def command() -> tuple[list[Aggregate], str | None]:
            conversation = self.ctx.app.get(Conversation, turn.stream_id)
            if conversation is None or conversation.deleted:
                raise NotFound("Conversation not found")
            earlier = self.retries.run_holding(conversation, turn.request.otids)
            if earlier is not None:
                turn.retry_of = earlier
                return [], None
            run = Run(
                organization_id=actor.organization_id,
                agent_id=turn.agent_id,
                conversation_id=None
                if turn.agent_direct
                else ids.format_id(ids.CONVERSATION, conversation.id),
                stream_id=str(conversation.id),
                run_type="send_message" if turn.agent_direct else "send_conversation_message",
                background=turn.request.background,
                request_config={
                    "use_assistant_message": True,
                    "assistant_message_tool_name": "send_message",
                    "assistant_message_tool_kwarg": "message",
                    "include_return_message_types": turn.request.include_return_message_types,
                },
                input_messages=turn.request.messages + (turn.request.approvals or []),
                model=turn.handle,
            )
            now = datetime.now(UTC)
            run_id = ids.format_id(ids.RUN, run.id)
            lapsed = conversation.claim_run(
                run_id,
                now,
                now + timedelta(seconds=self.lease_seconds),
                self.holder,
                holder_gone=self.holder_gone(conversation),
            )
            changed: list[Aggregate] = [run, conversation]
            if lapsed is not None:
                changed += self.lapse(lapsed)
            return changed, run_id

        run_id, position = self.ctx.app.save_with_result(actor, command)
        if run_id is not None:
            turn.retry_of = None
            turn.run_id = turn.stream.run_id = run_id
            self.ctx.settle(position)

    def lapse(self, run_id: str) -> list[Aggregate]:
        """A claim whose process died: record the run failed."""
        run = self.ctx.app.get(Run, ids.to_uuid(run_id))
        if run is None or not run.is_active:
            return []
        run.fail("error", dict(LAPSED), {})
        return [run]

    def reap(self) -> int:
        """Release the claims whose process died, recording their runs failed."""
        now = datetime.now(UTC)
        # Right after an outage of its own, heartbeats are not judged: only leases lapse.
        alive_since = self.processes.alive_since() if self.processes.trustworthy() else 0
        lapsed = self.ctx.conversations.lapsed_claims(to_micros(now), alive_since)
        for stream_id, run_id, organization_id in lapsed:

            def command(stream_id: str = stream_id, run_id: str = run_id) -> list[Aggregate]:
                conversation = self.ctx.app.get(Conversation, UUID(stream_id))
                if (
                    conversation is None
                    or conversation.active_run_id != run_id
                    or not conversation.claim_lapsed(
                        now, holder_gone=self.holder_gone(conversation)
                    )
                ):
                    return []  # finished or renewed meanwhile
                conversation.release_run(run_id, "failed")
                return [conversation, *self.lapse(run_id)]

            self.ctx.settle(self.ctx.app.save_retrying(system(organization_id), command))
        return len(lapsed)

    @property
    def lock_seconds(self) -> float:
        """The fast lock lapses as soon as a dead holder's heartbeat would: no later."""
        return min(self.lease_seconds, self.processes.dead_after_micros / 1_000_000)

    async def keep(self, turn: Turn) -> None:
        """While the turn runs: extend the fast lock every third of its life, and renew the
        claim's lease in the log every third of the lease.
        """
        renew_every = self.lease_seconds / 3
        renew_at = time.monotonic() + renew_every
        while True:
            await asyncio.sleep(self.lock_seconds / 3)
            await self.lock.extend(turn.lock_key, turn.lock_token, self.lock_seconds)
            if time.monotonic() >= renew_at:
                await to_thread.run_sync(self._renew, turn)
                renew_at = time.monotonic() + renew_every

    def _renew(self, turn: Turn) -> None:
        def command() -> list[Aggregate]:
            conversation = self.ctx.app.get(Conversation, turn.stream_id)
            if conversation is None or conversation.active_run_id != turn.run_id:
                return []
            until = datetime.now(UTC) + timedelta(seconds=self.lease_seconds)
            conversation.renew_lease(turn.run_id, until)
            return [conversation]

        self.ctx.settle(self.ctx.app.save_retrying(turn.actor, command))

    def load(self, turn: Turn) -> tuple[Conversation, Run]:
        conversation = self.ctx.app.get(Conversation, turn.stream_id)
        run = self.ctx.app.get(Run, ids.to_uuid(turn.run_id))
        assert conversation is not None and run is not None
        return conversation, run

    def record_failure(self, turn: Turn, stop_reason: str, error: dict[str, Any]) -> None:
        """RunFailed (the input stays on the run for audit) and the release, in one save."""

        def command() -> list[Aggregate]:
            conversation, run = self.load(turn)
            if not run.is_active:
                return []
            conversation.release_run(turn.run_id, "failed")
            run.fail(stop_reason, error, turn.usage())
            return [conversation, run]

        self.ctx.settle(self.ctx.app.save_retrying(turn.actor, command))
