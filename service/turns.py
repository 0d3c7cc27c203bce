"""A turn: one request's input, the steps it takes, recorded as one run.

The order of a turn (decisions §1-3, §9, §13):
1. Before any byte is sent: resolve the conversation, agent and model (404), check the input
   against a pending approval (409, 400), take the fast lock (409), then *claim* the
   conversation in the log together with RunStarted.
2. The step loop runs (``loop.py``), each step saved before the next.
3. The last step's save releases the claim and records RunCompleted; a failure records
   RunFailed (the input stays on the run for audit, not in the context) and the release.
   Only then is the lock freed and ``[DONE]`` written.

The turn runs in its own task: a client that disconnects does not stop it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any
from uuid import uuid4

from anyio import to_thread

from domain import ids, stops
from domain.conversation import Conversation
from domain.errors import BUSY, PENDING_APPROVAL, BadRequest, Busy, Conflict
from domain.memory import with_isolated
from domain.model_settings import check_model_settings, check_with_tools
from domain.skills import available_skills, skills_of
from projections.message_reads import tool_results
from projections.processes import ProcessRegistry
from service import frames, log_context, metrics
from service.actor import Actor
from service.claims import Claims
from service.compaction import CompactionService
from service.context import Context
from service.loop import StepLoop
from service.model import ChatModel, ModelError
from service.ports import ChunkLog, Lock, Signals
from service.retries import Retries
from service.steps import StepStore
from service.streams import TurnStream, with_pings
from service.tools.box import ToolBox
from service.tools.web import Web
from service.tracing import tracer
from service.turn_state import Turn, TurnRequest, TurnResult

log = logging.getLogger("convlog.turns")

DEFAULT_HANDLE = "convlog/builtin"
NO_APPROVALS = (
    "Invalid approval response. Approval response message does not contain any approvals."
)
NOTHING_PENDING = (
    "Cannot process approval response: No tool call is currently awaiting approval. Please "
    "send a regular message to interact with the agent."
)

NO_PREVIEW_OF_APPROVALS = (
    "preview-raw-payload previews a message: an approval answer runs tools before the model "
    "is called, so there is no single request to show."
)

__all__ = ["Turn", "TurnRequest", "TurnResult", "TurnService", "TurnSettings"]


# How long a failed run keeps trying to record its failure (and free its conversation) while
# the database is unreachable.
RECORD_FAILURE_SECONDS = 300.0


@dataclass(frozen=True)
class TurnSettings:
    lease_seconds: float = 60.0
    ping_seconds: float = 20.0
    holder: str = "local"  # this process, as its claims name it


def _expand_legacy(
    approvals: list[dict[str, Any]], pending: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Letta's deprecated single decision names the approval request, not a call: it
    applies to every pending call.
    """
    if pending is None or [a["tool_call_id"] for a in approvals] != [pending["message_id"]]:
        return approvals
    decision = approvals[0]
    return [{**decision, "tool_call_id": c["tool_call_id"]} for c in pending["tool_calls"]]


class TurnService:
    def __init__(
        self,
        ctx: Context,
        model: ChatModel,
        lock: Lock,
        signals: Signals,
        chunks: ChunkLog,
        settings: TurnSettings,
        compaction: CompactionService,
        processes: ProcessRegistry,
        web: Web,
    ) -> None:
        self.ctx = ctx
        self.model = model
        self.lock = lock
        self.signals = signals
        self.chunks = chunks
        self.settings = settings
        self.retries = Retries(ctx, chunks)
        self.claims = Claims(
            ctx, lock, settings.lease_seconds, self.retries, processes, settings.holder
        )
        self.loop = StepLoop(ctx, model, signals, StepStore(ctx, self.claims, web), compaction)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- starting ----------------------------------------------------------------------------

    async def begin(self, actor: Actor, path_id: str, request: TurnRequest) -> Turn:
        """Everything that can fail before the stream starts (404, 400, 409), then the task;
        a retry (``service/retries.py``) or a repeated approval answer runs nothing.
        """
        turn = await to_thread.run_sync(self._prepare, actor, path_id, request)
        if turn.retry_of is None and turn.replay is None:
            await self._start(actor, turn)
        if turn.retry_of is not None:
            await self.retries.answer(turn, turn.retry_of)
        if turn.replay is not None:
            await self._answer_again(turn)
        return turn

    async def _start(self, actor: Actor, turn: Turn) -> None:
        """Lock, claim and run; or find, on the way, that the request is a retry."""
        if not await self.lock.acquire(turn.lock_key, turn.lock_token, self.claims.lock_seconds):
            active, retry_of = await to_thread.run_sync(self._holder, turn)
            if active is None or retry_of != active:
                metrics.BUSY.inc()
                raise Busy(BUSY, active)
            turn.retry_of = active
            return
        try:
            await to_thread.run_sync(self.claims.claim, actor, turn)
        except BaseException:
            await self.lock.release(turn.lock_key, turn.lock_token)
            raise
        if turn.retry_of is not None:  # the claim found the run that took the otids
            await self.lock.release(turn.lock_key, turn.lock_token)
            return
        if turn.request.background:
            await self.chunks.open(turn.run_id)
        task = asyncio.create_task(self._execute(turn), name=f"turn {turn.run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _prepare(
        self, actor: Actor, path_id: str, request: TurnRequest, *, find_retry: bool = True
    ) -> Turn:
        conversation, agent = self.ctx.load_stream(actor, path_id)
        handle = request.override_model or conversation.model or agent.model or DEFAULT_HANDLE
        turn = Turn(
            run_id="",
            stream_id=conversation.id,
            lock_key=f"conversation:lock:{path_id}",
            lock_token=uuid4().hex,
            agent_id=ids.format_id(ids.AGENT, agent.id),
            agent_direct=path_id.startswith(f"{ids.AGENT}-"),
            agent=agent,
            handle=handle,
            # The agent's settings, then the conversation's own on top (spec §2.2).
            model_settings={
                **(agent.settings.get("model_settings") or {}),
                **(conversation.model_settings or {}),
            },
            request=request,
            tools=ToolBox(agent, request.client_tools),
            stream=TurnStream(
                self.chunks, request.background, request.include_return_message_types
            ),
            actor=actor,
            pending=conversation.pending_approval,
            retry_of=self.retries.earlier_run(conversation.id, request.otids)
            if find_retry
            else None,
            skills=available_skills(
                skills_of(
                    with_isolated(agent.blocks, conversation.isolated_blocks),
                    request.client_skills,
                )
            ),
        )
        if turn.retry_of is not None:
            return turn  # answered as the earlier run was, whatever changed since
        self.model.check(handle)
        # The settings this turn sends, checked against the model it sends them to.
        check_model_settings(turn.model_settings, handle)
        check_with_tools(turn.model_settings, bool(turn.tools.names()))
        if request.approvals is None:
            if conversation.pending_approval is not None:
                raise Conflict(PENDING_APPROVAL)
        else:
            approvals = _expand_legacy(request.approvals, conversation.pending_approval)
            turn.request = replace(request, approvals=approvals)
            turn.replay = self._check_approvals(conversation, approvals)
        return turn

    def preview(self, actor: Actor, path_id: str, request: TurnRequest) -> dict[str, Any]:
        """The provider request body the first step of this send would make as the context
        stands (a context too long for the model is compacted first by a real send, which
        then sends a shorter one); nothing is sent or written, and otids are not looked up.
        """
        if request.approvals is not None:
            raise BadRequest(NO_PREVIEW_OF_APPROVALS)
        turn = self._prepare(actor, path_id, request, find_retry=False)
        return self.model.payload(self.loop.first_request(turn))

    def _holder(self, turn: Turn) -> tuple[str | None, str | None]:
        """The run holding the conversation, from the log (another process's claim may not
        be in this process's views yet; None in the instant between its lock and its claim),
        and the run this request is a retry of, if any.
        """
        conversation = self.ctx.app.get(Conversation, turn.stream_id)
        if conversation is None:
            return None, None
        retry_of = self.retries.run_holding(conversation, turn.request.otids)
        return conversation.active_run_id, retry_of

    def _check_approvals(
        self, conversation: Conversation, approvals: list[dict[str, Any]]
    ) -> list[dict[str, Any]] | None:
        """A valid answer to the pending calls; an answer given before is answered again
        with its first results (nothing runs twice).
        """
        if not approvals:
            raise BadRequest(NO_APPROVALS)
        given = [a["tool_call_id"] for a in approvals]
        pending = conversation.pending_approval
        if pending is None:
            earlier = tool_results(self.ctx.store, str(conversation.id), given)
            if given and len(earlier) >= len(set(given)):
                return [json.loads(item) for item in earlier]
            raise BadRequest(NOTHING_PENDING)
        expected = [c["tool_call_id"] for c in pending["tool_calls"]]
        if len(set(given)) != len(given) or set(given) != set(expected):
            raise BadRequest(f"Invalid tool call IDs. Expected {expected}, but received {given}.")
        return None

    async def _answer_again(self, turn: Turn) -> None:
        assert turn.replay is not None
        turn.stream.background = False  # nothing runs: no run to resume
        turn.result.messages = turn.replay
        if turn.request.streaming:
            for item in turn.replay:
                await turn.stream.message(item)
        await self._finish(turn)

    # -- running -----------------------------------------------------------------------------

    async def _execute(self, turn: Turn) -> None:
        conversation_id = ids.format_id(ids.CONVERSATION, turn.stream_id)
        log_context.bind(
            run_id=turn.run_id,
            conversation_id=conversation_id,
            organization_id=turn.actor.organization_id,
        )
        attributes = {"convlog.run_id": turn.run_id, "convlog.conversation_id": conversation_id}
        with tracer.start_as_current_span("turn", attributes=attributes):
            await self._execute_traced(turn)

    async def _execute_traced(self, turn: Turn) -> None:
        renewal = asyncio.create_task(self.claims.keep(turn))
        try:
            await self.loop.run(turn)
        except ModelError as exc:
            turn.result.kind = exc.kind
            await self._fail(turn, stops.MODEL_FAILURES[exc.kind], exc.detail)
        except Exception:
            # The client gets an error id; what went wrong (it may name internals) is logged.
            error_id = uuid4().hex[:12]
            log.exception("turn %s failed (error id %s)", turn.run_id, error_id)
            detail = f"Internal error {error_id}; the server log has the details."
            await self._fail(turn, stops.INTERNAL, detail)
        finally:
            renewal.cancel()
            try:  # best effort: the claim in the log is the real guard, and it is released
                await self.lock.release(turn.lock_key, turn.lock_token)
            except Exception:
                log.exception("could not free the lock of run %s", turn.run_id)
            await self._finish(turn)

    async def _fail(self, turn: Turn, failure: stops.Failure, detail: str) -> None:
        error = frames.error_message(turn.run_id, failure.error_type, failure.message, detail)
        turn.result.stop_reason = failure.stop_reason
        turn.result.error = error
        turn.result.status = failure.http_status
        turn.result.usage = turn.usage()
        try:
            await to_thread.run_sync(self.claims.record_failure, turn, failure.stop_reason, error)
        except Exception:
            # The database is likely down: answer the client now, and keep trying to record
            # the failure (which frees the conversation) until it is back.
            log.warning("could not record the failure of run %s yet; retrying", turn.run_id)
            task = asyncio.create_task(
                self._record_failure_later(turn, failure.stop_reason, error),
                name=f"record failure of {turn.run_id}",
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _record_failure_later(
        self, turn: Turn, stop_reason: str, error: dict[str, Any]
    ) -> None:
        delay = 0.2
        deadline = time.monotonic() + RECORD_FAILURE_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            try:
                await to_thread.run_sync(self.claims.record_failure, turn, stop_reason, error)
                log.info("recorded the failure of run %s", turn.run_id)
                return
            except Exception:
                delay = min(delay * 2, 2.0)
        log.error(
            "gave up recording the failure of run %s; its claim lapses with its lease",
            turn.run_id,
        )

    async def _finish(self, turn: Turn) -> None:
        """The terminal frames; by now the run is terminal and the conversation free."""
        result = turn.result
        if result.error is None and turn.retry_of is None:  # a retry keeps the run's usage
            result.usage = turn.usage()
        if turn.retry_of is None and turn.replay is None:
            first = turn.stream.first_at
            metrics.turn_ended(
                result.stop_reason, turn.steps, None if first is None else first - turn.started
            )
        try:
            await turn.stream.emit(frames.stop_reason(result.stop_reason))
            if result.error is not None:
                await turn.stream.emit(result.error, error=True)
            elif result.stop_reason != stops.CANCELLED:
                await turn.stream.emit(result.usage)
            await turn.stream.emit(None)
        finally:
            turn.finished.set()

    # -- reading -----------------------------------------------------------------------------

    async def frames_of(self, turn: Turn) -> AsyncIterator[str]:
        """The response body of the send request, with keepalive pings while idle."""
        every = self.settings.ping_seconds if turn.request.include_pings else None
        try:
            async for frame in with_pings(turn.stream.source(), turn.run_id, every):
                yield frame
        finally:  # read to the end, or the client went away: nothing waits for it any more
            turn.stream.detach()

    async def result_of(self, turn: Turn) -> TurnResult:
        await turn.finished.wait()
        return turn.result

    async def aclose(self) -> None:
        """Let running turns finish (so nothing is left claimed) before shutting down."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=30)
