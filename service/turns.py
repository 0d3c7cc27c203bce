"""A turn: one user input, one model answer, recorded as one run.

The order of a turn (decisions §1-3, §9):
1. Before any byte is sent: resolve the conversation, agent and model (404), take the fast
   lock (409), then *claim* the conversation in the log together with RunStarted (409 if another
   run holds a live claim; a lapsed claim is recorded failed and taken over).
2. The model streams; cancels are watched while it does.
3. On success the input, the answer, the release of the claim and RunCompleted are saved in one
   transaction; on failure RunFailed (with the error; the input stays on the run for audit, not
   in the context) and the release. Only then is the lock freed and ``[DONE]`` emitted.

The turn runs in its own task: a client that disconnects does not stop it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from anyio import to_thread

from domain import ids
from domain.agent import Agent
from domain.conversation import BUSY, Conversation
from domain.errors import BadRequest, Conflict, NotFound
from domain.run import Run
from projections.messages import plain_text
from projections.runs import RunQueries
from service import frames
from service.compaction import Compaction, CompactionService, estimate_tokens
from service.context import Actor, Context
from service.context_window import ContextCache
from service.model import ChatMessage, ChatModel, ModelError, ModelRequest, TextDelta, Usage
from service.ports import Chunk, ChunkLog, Lock, Signals

log = logging.getLogger("convlog.turns")

DEFAULT_HANDLE = "convlog/builtin"
CANCEL_POLL_SECONDS = 0.25
# Compactions after a provider's context-window error before the turn gives up (Letta: 3).
CONTEXT_RETRIES = 3

# ModelError.kind -> (stop_reason, error_type, message, HTTP status when not streaming)
MODEL_ERRORS: dict[str, tuple[str, str, str, int]] = {
    "timeout": (
        "llm_api_error",
        "llm_timeout",
        "The LLM request timed out. Please try again.",
        504,
    ),
    "rate_limit": (
        "llm_api_error",
        "llm_rate_limit",
        "Rate limited by the LLM provider. Please try again later.",
        429,
    ),
    "authentication": (
        "llm_api_error",
        "llm_authentication",
        "Authentication failed with the LLM provider.",
        401,
    ),
    "empty_response": (
        "invalid_llm_response",
        "llm_empty_response",
        "LLM response was empty.",
        502,
    ),
    "context_window": (
        "error",
        "internal_error",
        "An unknown error occurred with the LLM streaming request.",
        400,
    ),
    "other": ("llm_api_error", "llm_error", "An error occurred with the LLM request.", 502),
}
INTERNAL = ("error", "internal_error", "An unknown error occurred with the LLM streaming request.")


@dataclass(frozen=True)
class TurnRequest:
    messages: list[dict[str, Any]]  # each {role, content, otid?, name?, sender_id?}
    max_steps: int = 50
    stream_tokens: bool = False
    include_return_message_types: list[str] | None = None
    override_model: str | None = None
    background: bool = False
    include_pings: bool = True
    streaming: bool = True
    include_compaction_messages: bool = False


@dataclass
class TurnResult:
    stop_reason: str = "end_turn"
    messages: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=lambda: frames.usage_statistics())
    error: dict[str, Any] | None = None
    status: int = 200  # the HTTP status a non-streaming send answers with on error
    kind: str | None = None  # the ModelError kind, when the model failed


@dataclass
class Turn:
    run_id: str
    stream_id: UUID
    lock_key: str
    lock_token: str
    agent_id: str
    agent_direct: bool
    agent: Agent
    handle: str
    model_settings: dict[str, Any]
    request: TurnRequest
    frames: asyncio.Queue[Chunk | None] = field(default_factory=asyncio.Queue)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    result: TurnResult = field(default_factory=TurnResult)
    seq: int = 0
    step_id: str = field(default_factory=lambda: ids.new(ids.STEP))
    message_id: str = field(default_factory=lambda: ids.new(ids.MESSAGE))
    started: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    notices: list[dict[str, Any]] = field(default_factory=list)  # compaction messages


@dataclass(frozen=True)
class TurnSettings:
    lease_seconds: float = 60.0
    ping_seconds: float = 20.0


class TurnService:
    def __init__(
        self,
        ctx: Context,
        model: ChatModel,
        lock: Lock,
        signals: Signals,
        chunks: ChunkLog,
        settings: TurnSettings,
    ) -> None:
        self.ctx = ctx
        self.model = model
        self.lock = lock
        self.signals = signals
        self.chunks = chunks
        self.settings = settings
        self.runs = RunQueries(ctx.store)
        self.context = ContextCache(ctx.store)
        self.compaction: CompactionService | None = None  # wired after construction
        self._tasks: set[asyncio.Task[None]] = set()

    # -- starting ----------------------------------------------------------------------------

    async def begin(self, actor: Actor, path_id: str, request: TurnRequest) -> Turn:
        """Everything that can fail before the stream starts (404, 400, 409), then the task."""
        turn = await to_thread.run_sync(self._prepare, actor, path_id, request)
        if not await self.lock.acquire(turn.lock_key, turn.lock_token, self.settings.lease_seconds):
            raise Conflict(BUSY)
        try:
            await to_thread.run_sync(self._claim, actor, turn)
        except BaseException:
            await self.lock.release(turn.lock_key, turn.lock_token)
            raise
        if request.background:
            await self.chunks.open(turn.run_id)
        task = asyncio.create_task(self._execute(turn), name=f"turn {turn.run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return turn

    def _prepare(self, actor: Actor, path_id: str, request: TurnRequest) -> Turn:
        conversation, agent = self.ctx.load_stream(actor, path_id)
        stream_id = conversation.id
        lock_key = f"conversation:lock:{path_id}"
        handle = request.override_model or conversation.model or agent.model or DEFAULT_HANDLE
        self.model.check(handle)
        return Turn(
            run_id="",
            stream_id=stream_id,
            lock_key=lock_key,
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
        )

    def _claim(self, actor: Actor, turn: Turn) -> None:
        agent_direct = turn.agent_direct

        def command() -> list[Any]:
            conversation = self.ctx.app.get(Conversation, turn.stream_id)
            if conversation is None or conversation.deleted:
                raise NotFound("Conversation not found")
            run = Run(
                organization_id=actor.organization_id,
                agent_id=turn.agent_id,
                conversation_id=None
                if agent_direct
                else ids.format_id(ids.CONVERSATION, conversation.id),
                stream_id=str(conversation.id),
                run_type="send_message" if agent_direct else "send_conversation_message",
                background=turn.request.background,
                request_config={
                    "use_assistant_message": True,
                    "assistant_message_tool_name": "send_message",
                    "assistant_message_tool_kwarg": "message",
                    "include_return_message_types": turn.request.include_return_message_types,
                },
                input_messages=turn.request.messages,
                model=turn.handle,
            )
            now = datetime.now(UTC)
            lease = now + timedelta(seconds=self.settings.lease_seconds)
            run_id = ids.format_id(ids.RUN, run.id)
            lapsed = conversation.claim_run(run_id, now, lease)
            changed: list[Any] = [run, conversation]
            if lapsed is not None:
                changed += self._lapse(lapsed)
            turn.run_id = run_id
            return changed

        self.ctx.settle(self.ctx.app.save_retrying(command))

    def _lapse(self, run_id: str) -> list[Any]:
        """A claim whose lease ran out: its process died. Record the run failed."""
        run = self.ctx.app.get(Run, ids.to_uuid(run_id))
        if run is None or not run.is_active:
            return []
        run.fail(
            "error",
            {
                "error_type": "internal_error",
                "message": "The run stopped without finishing: its server process went away.",
                "detail": "lease expired",
            },
            {},
        )
        return [run]

    # -- running -----------------------------------------------------------------------------

    async def _execute(self, turn: Turn) -> None:
        result = turn.result
        renewal = asyncio.create_task(self._renew_lease(turn))
        try:
            history = await to_thread.run_sync(self._context, turn)
            inputs = [
                ChatMessage(m["role"], plain_text(m["content"])) for m in turn.request.messages
            ]
            settings = {**turn.model_settings}
            history = await self._fit(turn, history, inputs, provider_refused=False)
            for attempt in range(1 + CONTEXT_RETRIES):
                try:
                    answer, usage, cancelled = await self._call_model(
                        turn, ModelRequest(turn.handle, history + inputs, settings)
                    )
                    break
                except ModelError as exc:
                    last = attempt == CONTEXT_RETRIES
                    if exc.kind != "context_window" or turn.first_token is not None or last:
                        raise
                    # The provider counts differently: compact, then try again (spec §3.2).
                    history = await self._fit(turn, history, inputs, provider_refused=True)
            if cancelled:
                result.stop_reason = "cancelled"
            else:
                if not answer:
                    raise ModelError("empty_response", "The model returned no content.")
                result.usage = frames.usage_statistics(
                    usage.prompt_tokens, usage.completion_tokens, step_count=1
                )
                message = self._assistant_message(turn, answer)
                saved = await to_thread.run_sync(self._record_success, turn, message)
                if saved:
                    result.messages = [message]
                else:
                    result.stop_reason = "cancelled"
        except ModelError as exc:
            stop_reason, error_type, text, status = MODEL_ERRORS[exc.kind]
            turn.result.kind = exc.kind
            await self._fail(turn, stop_reason, error_type, text, exc.detail, status)
        except Exception as exc:
            log.exception("turn %s failed", turn.run_id)
            await self._fail(turn, *INTERNAL, str(exc), 500)
        finally:
            renewal.cancel()
            await self.lock.release(turn.lock_key, turn.lock_token)
            await self._finish(turn)

    async def _fit(
        self,
        turn: Turn,
        history: list[ChatMessage],
        inputs: list[ChatMessage],
        *,
        provider_refused: bool,
    ) -> list[ChatMessage]:
        """Compact first when the context would not fit the model's window (spec §3.2)."""
        if self.compaction is None:
            return history
        window = self.compaction.context_window(turn.handle, turn.agent)
        tokens = sum(estimate_tokens(m.content) for m in history + inputs)
        if tokens <= window and not provider_refused:
            return history
        if provider_refused and len(history) <= 2:
            raise ModelError("context_window", "The input alone exceeds the context window.")
        try:
            done = await self.compaction.compact_stream(
                turn.stream_id,
                turn.agent,
                None,
                run_id=turn.run_id,
                trigger="context_window_exceeded",
                model_handle=turn.handle,
            )
        except BadRequest:
            if provider_refused:
                raise ModelError(
                    "context_window", "The context cannot be compacted further."
                ) from None
            return history  # nothing to reduce: let the provider decide
        # Letta reports a compaction as summary + event messages only to JSON requests that
        # ask for them; otherwise the summary comes back as the user_message it is listed as.
        if turn.request.include_compaction_messages and not turn.request.streaming:
            notices = compaction_notices(turn, done, window)
        else:
            notices = [summary_as_user_message(turn, done)]
        turn.notices += notices
        if turn.request.streaming:
            for notice in notices:
                await self._emit_message(turn, notice)
        return await to_thread.run_sync(self._context, turn)

    async def _call_model(self, turn: Turn, request: ModelRequest) -> tuple[str, Usage, bool]:
        """Stream the model, emitting token deltas if asked; stop early on cancel."""
        parts: list[str] = []
        usage = Usage(0, 0)

        async def consume() -> None:
            nonlocal usage
            async for item in self.model.stream(request):
                if isinstance(item, TextDelta):
                    if turn.first_token is None:
                        turn.first_token = time.perf_counter()
                    parts.append(item.text)
                    if turn.request.stream_tokens and item.text:
                        await self._emit_message(turn, self._assistant_message(turn, item.text))
                else:
                    usage = item

        task = asyncio.create_task(consume())
        next_db_check = time.monotonic() + CANCEL_POLL_SECONDS
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.05)
            if done:
                task.result()  # re-raises the model's error
                return "".join(parts), usage, False
            if self.signals.is_cancelled(turn.run_id) or (
                time.monotonic() >= next_db_check and await self._cancelled_in_log(turn)
            ):
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return "".join(parts), usage, True
            if time.monotonic() >= next_db_check:
                next_db_check = time.monotonic() + CANCEL_POLL_SECONDS

    async def _cancelled_in_log(self, turn: Turn) -> bool:
        """Across processes without Redis, a cancel reaches a turn through the run's status."""
        row = await to_thread.run_sync(self.runs.get_any, turn.run_id)
        return row is not None and row.status == "cancelled"

    async def _renew_lease(self, turn: Turn) -> None:
        every = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(every)
            await self.lock.extend(turn.lock_key, turn.lock_token, self.settings.lease_seconds)
            await to_thread.run_sync(self._renew_claim, turn)

    def _renew_claim(self, turn: Turn) -> None:
        def command() -> list[Any]:
            conversation = self.ctx.app.get(Conversation, turn.stream_id)
            if conversation is None or conversation.active_run_id != turn.run_id:
                return []
            until = datetime.now(UTC) + timedelta(seconds=self.settings.lease_seconds)
            conversation.renew_lease(turn.run_id, until)
            return [conversation]

        self.ctx.settle(self.ctx.app.save_retrying(command))

    def _context(self, turn: Turn) -> list[ChatMessage]:
        row = self.ctx.conversations.get_any(str(turn.stream_id))
        if row is None:
            return []
        return self.context.messages(row.window, row.context_epoch)

    def _assistant_message(self, turn: Turn, content: str) -> dict[str, Any]:
        return {
            "id": turn.message_id,
            "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "name": None,
            "message_type": "assistant_message",
            "otid": _otid(turn.message_id, 0),
            "sender_id": None,
            "step_id": turn.step_id,
            "is_err": None,
            "seq_id": None,
            "run_id": turn.run_id,
            "content": content,
        }

    def _record_success(self, turn: Turn, message: dict[str, Any]) -> bool:
        """Input, answer, release and RunCompleted in one save. False if cancelled first."""
        saved = True
        timings = {
            "ttft_ns": int(((turn.first_token or time.perf_counter()) - turn.started) * 1e9),
            "total_duration_ns": int((time.perf_counter() - turn.started) * 1e9),
        }

        def command() -> list[Any]:
            nonlocal saved
            conversation, run = self._load_turn(turn)
            if not run.is_active:
                saved = False
                return []
            for m in turn.request.messages:
                conversation.append_message(
                    message_id=ids.new(ids.MESSAGE),
                    role=m["role"],
                    message_type=f"{m['role']}_message",
                    content=m["content"],
                    run_id=turn.run_id,
                    step_id=turn.step_id,
                    otid=m.get("otid") or None,
                    extra={k: m[k] for k in ("name", "sender_id") if m.get(k)},
                )
            conversation.append_message(
                message_id=message["id"],
                role="assistant",
                message_type="assistant_message",
                content=message["content"],
                run_id=turn.run_id,
                step_id=turn.step_id,
                otid=message["otid"],
            )
            conversation.release_run(turn.run_id, "completed")
            run.complete("end_turn", turn.result.usage, timings)
            return [conversation, run]

        self.ctx.settle(self.ctx.app.save_retrying(command))
        return saved

    async def _fail(
        self, turn: Turn, stop_reason: str, error_type: str, text: str, detail: str, status: int
    ) -> None:
        error = {
            "message_type": "error_message",
            "run_id": turn.run_id,
            "error_type": error_type,
            "message": text,
            "detail": detail,
            "seq_id": None,
        }
        turn.result.stop_reason = stop_reason
        turn.result.error = error
        turn.result.status = status

        def record() -> None:
            def command() -> list[Any]:
                conversation, run = self._load_turn(turn)
                if not run.is_active:
                    return []
                conversation.release_run(turn.run_id, "failed")
                run.fail(stop_reason, error, turn.result.usage)
                return [conversation, run]

            self.ctx.settle(self.ctx.app.save_retrying(command))

        try:
            await to_thread.run_sync(record)
        except Exception:
            # The claim lapses with its lease; the reaper records the run failed then.
            log.exception("could not record the failure of run %s", turn.run_id)

    def _load_turn(self, turn: Turn) -> tuple[Conversation, Run]:
        conversation = self.ctx.app.get(Conversation, turn.stream_id)
        run = self.ctx.app.get(Run, ids.to_uuid(turn.run_id))
        assert conversation is not None and run is not None
        return conversation, run

    # -- emitting ----------------------------------------------------------------------------

    def _wanted(self, turn: Turn, message_type: str) -> bool:
        types = turn.request.include_return_message_types
        return types is None or message_type in types

    async def _emit_message(self, turn: Turn, message: dict[str, Any]) -> None:
        if self._wanted(turn, message["message_type"]):
            await self._emit(turn, message)

    async def _emit(self, turn: Turn, payload: dict[str, Any] | None, error: bool = False) -> None:
        """Queue one frame (``None`` payload = ``[DONE]``); background runs number them."""
        turn.seq += 1
        if payload is None:
            frame, final = frames.DONE, True
        else:
            if turn.request.background and "seq_id" in payload:
                payload = {**payload, "seq_id": turn.seq}
            frame = frames.error(payload) if error else frames.data(payload)
            final = False
        chunk = Chunk(turn.seq, frame, final)
        if turn.request.background:
            await self.chunks.append(turn.run_id, [chunk])
        else:
            turn.frames.put_nowait(chunk)

    async def _finish(self, turn: Turn) -> None:
        """The terminal frames; by now the run is terminal and the conversation free."""
        result = turn.result
        try:
            if result.stop_reason != "cancelled" and not turn.request.stream_tokens:
                for message in result.messages:
                    await self._emit_message(turn, message)
            await self._emit(turn, frames.stop_reason(result.stop_reason))
            if result.error is not None:
                await self._emit(turn, result.error, error=True)
            elif result.stop_reason != "cancelled":
                await self._emit(turn, result.usage)
            await self._emit(turn, None)
        finally:
            turn.finished.set()

    # -- reading -----------------------------------------------------------------------------

    async def frames_of(self, turn: Turn) -> AsyncIterator[str]:
        """The response body of the send request, with keepalive pings while idle."""
        source: AsyncIterator[Chunk]
        if turn.request.background:
            source = self.chunks.follow(turn.run_id, 0, 0.1, 100)
        else:
            source = _drain(turn.frames)
        async for frame in with_pings(
            source, turn.run_id, self.settings.ping_seconds if turn.request.include_pings else None
        ):
            yield frame

    async def result_of(self, turn: Turn) -> TurnResult:
        await turn.finished.wait()
        return turn.result

    async def aclose(self) -> None:
        """Let running turns finish (so nothing is left claimed) before shutting down."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=30)


async def _drain(queue: asyncio.Queue[Chunk | None]) -> AsyncIterator[Chunk]:
    while True:
        chunk = await queue.get()
        if chunk is None:
            return
        yield chunk
        if chunk.final:
            return


async def with_pings(
    source: AsyncIterator[Chunk], run_id: str, every: float | None
) -> AsyncIterator[str]:
    """Frames of ``source``; a ping after each ``every`` seconds without one."""
    iterator = source.__aiter__()
    last_seq: int | None = None
    while True:
        step = asyncio.ensure_future(iterator.__anext__())
        while True:
            done, _ = await asyncio.wait({step}, timeout=every)
            if done:
                break
            yield frames.data(ping(run_id, last_seq))
        try:
            chunk = step.result()
        except StopAsyncIteration:
            return
        last_seq = chunk.seq
        yield chunk.frame
        if chunk.final:
            return


def summary_as_user_message(turn: Turn, done: Compaction) -> dict[str, Any]:
    return {
        "id": done.summary_message_id,
        "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "name": None,
        "message_type": "user_message",
        "otid": None,
        "sender_id": None,
        "step_id": turn.step_id,
        "is_err": None,
        "seq_id": None,
        "run_id": turn.run_id,
        "content": done.content,
    }


def compaction_notices(turn: Turn, done: Compaction, window: int) -> list[dict[str, Any]]:
    """The summary_message and event_message a turn reports when it compacted (Letta's)."""
    common = {
        "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "name": None,
        "otid": None,
        "sender_id": None,
        "step_id": turn.step_id,
        "is_err": None,
        "seq_id": None,
        "run_id": turn.run_id,
    }
    return [
        {
            "id": done.summary_message_id,
            **common,
            "message_type": "summary_message",
            "summary": done.summary,
            "compaction_stats": {
                "trigger": "context_window_exceeded",
                "context_tokens_before": done.context_tokens_before,
                "context_tokens_after": None,
                "context_window": window,
                "messages_count_before": done.num_messages_before,
                "messages_count_after": done.num_messages_after,
            },
        },
        {
            "id": ids.new(ids.MESSAGE),
            **common,
            "message_type": "event_message",
            "event_type": "compaction",
            "event_data": {
                "trigger": "context_window_exceeded",
                "context_token_estimate": done.context_tokens_before,
                "context_window": window,
            },
        },
    ]


def ping(run_id: str, seq_id: int | None) -> dict[str, Any]:
    return {
        "id": f"ping-{uuid4()}",
        "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "name": None,
        "message_type": "ping",
        "otid": None,
        "sender_id": None,
        "step_id": None,
        "is_err": None,
        "seq_id": seq_id,
        "run_id": run_id,
    }


def _otid(message_id: str, index: int) -> str:
    """Letta's otid: the message uuid with its lowest 7 bits replaced by the part index."""
    value = ids.to_uuid(message_id).int
    return str(UUID(int=(value & ~0x7F) | index))
