"""The step loop: call the model, run its tools, repeat until the turn is done.

Each step calls the model with the context, the tools and the system message; its answer is
saved (``steps.py``) before the next step starts. The loop stops when the model answers
without a tool call (``end_turn``, or ``max_tokens_exceeded`` when it was cut off), a called
tool ends the turn by rule (``tool_rule``), a call waits for the client (``requires_approval``),
the last allowed step is done (``max_steps``), or the run was cancelled (``cancelled``).

The loop keeps the context it has seen in memory: it reads the store once at the start and
after a compaction, never between steps.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from anyio import to_thread

from domain import stops
from domain.errors import BadRequest
from domain.skills import request_system_prompt
from projections.messages import image_urls, plain_text
from projections.runs import RunQueries
from service import metrics, wire
from service.compaction import Compaction, CompactionService, estimate_tokens
from service.context import Context
from service.context_window import ContextCache
from service.model import (
    Answer,
    AnswerBuilder,
    ChatMessage,
    ChatModel,
    ModelError,
    ModelRequest,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
)
from service.notices import compaction_notices, summary_as_user_message
from service.ports import Signals
from service.steps import StepPlan, StepSaved, StepStore
from service.tools.box import ToolBox
from service.tracing import tracer
from service.turn_state import Turn

CANCEL_POLL_SECONDS = 0.25
# Compactions after a provider's context-window error before the turn gives up (Letta: 3).
CONTEXT_RETRIES = 3


class StepLoop:
    def __init__(
        self,
        ctx: Context,
        model: ChatModel,
        signals: Signals,
        steps: StepStore,
        compaction: CompactionService,
    ) -> None:
        self.ctx = ctx
        self.model = model
        self.signals = signals
        self.steps = steps
        self.compaction = compaction
        self.runs = RunQueries(ctx.store)
        self.context = ContextCache(ctx.store)

    async def run(self, turn: Turn) -> None:
        """Run the turn's steps; ``turn.result`` says how it ended."""
        history = await to_thread.run_sync(self._read_context, turn)
        if turn.request.approvals:
            assert turn.pending is not None
            saved = await to_thread.run_sync(self.steps.save_answers, turn, turn.pending)
            if saved is None:
                turn.result.stop_reason = stops.CANCELLED
                return
            history = await self._take(turn, history, saved)
        inputs = _inputs(turn)
        for number in range(1, turn.request.max_steps + 1):
            if await self._cancelled(turn):
                turn.result.stop_reason = stops.CANCELLED
                return
            with tracer.start_as_current_span("step", attributes={"convlog.step": number}):
                history, stop = await self._step(turn, history, inputs, number)
            if stop is not None:
                turn.result.stop_reason = stop
                return

    async def _step(
        self, turn: Turn, history: list[ChatMessage], inputs: list[ChatMessage], number: int
    ) -> tuple[list[ChatMessage], str | None]:
        """One model step, saved: the context after it, and the stop reason if it ends the turn."""
        pending_inputs = [] if turn.inputs_saved else inputs
        history = await self._fit(turn, history, pending_inputs, provider_refused=False)
        step = wire.StepIds.new(turn.run_id)
        answer = await self._answer(turn, history, pending_inputs, step)
        if answer is None:
            return history, stops.CANCELLED
        plan = plan_step(turn.tools, step, answer, last=number == turn.request.max_steps)
        saved = await to_thread.run_sync(self.steps.save_step, turn, plan)
        if saved is None:
            return history, stops.CANCELLED
        turn.count_step(answer.usage)
        history = await self._take(turn, history, saved)
        return history, plan.stop

    async def _take(
        self, turn: Turn, history: list[ChatMessage], saved: StepSaved
    ) -> list[ChatMessage]:
        """Send a saved step's items, and add its messages to the context in memory."""
        for item in saved.items:
            turn.result.messages.append(item)
            streamed = turn.request.stream_tokens and item["message_type"] in STREAMED_TYPES
            if turn.request.streaming and not streamed:
                await turn.stream.message(item)
        if saved.system is not None and history and history[0].role == "system":
            history = [ChatMessage("system", saved.system), *history[1:]]
        return history + saved.chat

    # -- the model call --------------------------------------------------------------------

    async def _answer(
        self,
        turn: Turn,
        history: list[ChatMessage],
        inputs: list[ChatMessage],
        step: wire.StepIds,
    ) -> Answer | None:
        """The model's answer; a context-window refusal compacts and tries again. None when
        the run was cancelled meanwhile.
        """
        for attempt in range(1 + CONTEXT_RETRIES):
            request = self._request(turn, history, inputs)
            try:
                return await self._call_model(turn, request, step)
            except ModelError as exc:
                last = attempt == CONTEXT_RETRIES
                if exc.kind != "context_window" or turn.first_token is not None or last:
                    raise
                # The provider counts differently: compact, then try again (spec §3.2).
                history = await self._fit(turn, history, inputs, provider_refused=True)
        raise AssertionError("unreachable")

    def _request(
        self, turn: Turn, history: list[ChatMessage], inputs: list[ChatMessage]
    ) -> ModelRequest:
        return ModelRequest(
            turn.handle,
            _with_system(history + inputs, turn.request.override_system, turn.skills),
            dict(turn.model_settings),
            tools=turn.tools.specs(),
            parallel_tool_calls=False if turn.tools.has_rules else None,
        )

    def first_request(self, turn: Turn) -> ModelRequest:
        """The request the turn's first step would send (no compaction, nothing saved)."""
        return self._request(turn, self._read_context(turn), _inputs(turn))

    async def _call_model(
        self, turn: Turn, request: ModelRequest, step: wire.StepIds
    ) -> Answer | None:
        """Stream the model, sending fragments if asked; stop early on cancel."""
        builder = AnswerBuilder()
        calls = _StreamedCalls()

        async def consume() -> None:
            async for item in self.model.stream(request):
                builder.add(item)
                if isinstance(item, TextDelta | ReasoningDelta | ToolCallDelta):
                    if turn.first_token is None:
                        turn.first_token = time.perf_counter()
                    if turn.request.stream_tokens and turn.request.streaming:
                        await self._stream_fragment(turn, step, item, calls)

        with tracer.start_as_current_span(
            "model call", attributes={"convlog.model": request.handle}
        ):
            task = asyncio.create_task(consume())
            called = time.perf_counter()
            next_db_check = time.monotonic() + CANCEL_POLL_SECONDS
            while True:
                done, _ = await asyncio.wait({task}, timeout=0.05)
                if done:
                    task.result()  # re-raises the model's error
                    answer = builder.answer()
                    metrics.model_call(request.handle, time.perf_counter() - called, answer.usage)
                    return answer
                if self.signals.is_cancelled(turn.run_id) or (
                    time.monotonic() >= next_db_check and await self._cancelled_in_log(turn)
                ):
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    return None
                if time.monotonic() >= next_db_check:
                    next_db_check = time.monotonic() + CANCEL_POLL_SECONDS

    async def _stream_fragment(
        self,
        turn: Turn,
        step: wire.StepIds,
        item: TextDelta | ReasoningDelta | ToolCallDelta,
        calls: _StreamedCalls,
    ) -> None:
        run_id = turn.run_id
        fragment: dict[str, Any]
        if isinstance(item, TextDelta):
            if not item.text:
                return
            fragment = wire.delta(
                step.text_id, "assistant_message", step.step_id, run_id, content=item.text
            )
        elif isinstance(item, ReasoningDelta):
            fragment = wire.delta(
                step.reasoning_id,
                "reasoning_message",
                step.step_id,
                run_id,
                source="reasoner_model",
                reasoning=item.text,
                signature=None,
            )
        else:
            if item.name:
                calls.names[item.index] = item.name
            if item.id:
                calls.ids[item.index] = item.id
            approval = turn.tools.pauses(calls.names.get(item.index, ""))
            # Every fragment names its call, as Letta's do: clients (Letta Code) merge the
            # fragments by tool_call_id and drop those without one.
            call = {
                "name": item.name,
                "arguments": item.arguments or None,
                "tool_call_id": calls.ids.get(item.index),
            }
            fragment = wire.delta(
                step.approval_id if approval else step.calls_id,
                "approval_request_message" if approval else "tool_call_message",
                step.step_id,
                run_id,
                tool_call=call,
                tool_calls=[call],
            )
        await turn.stream.message(fragment)

    async def _cancelled(self, turn: Turn) -> bool:
        """Checked before each step without I/O; a cancel that came through the log alone is
        seen while the model streams, and by the step's save (the run is no longer active).
        """
        return self.signals.is_cancelled(turn.run_id)

    async def _cancelled_in_log(self, turn: Turn) -> bool:
        """Across processes without Redis, a cancel reaches a turn through the run's status."""
        row = await to_thread.run_sync(self.runs.get_any, turn.run_id)
        return row is not None and row.status == "cancelled"

    # -- context ---------------------------------------------------------------------------

    def _read_context(self, turn: Turn) -> list[ChatMessage]:
        row = self.ctx.conversations.get_any(str(turn.stream_id))
        if row is None:
            return []
        return self.context.messages(row.window, row.context_version)

    async def _fit(
        self,
        turn: Turn,
        history: list[ChatMessage],
        inputs: list[ChatMessage],
        *,
        provider_refused: bool,
    ) -> list[ChatMessage]:
        """Compact first when the context would not fit the model's window (spec §3.2)."""
        window = self.compaction.context_window(turn.handle, turn.agent)
        tokens = sum(estimate_tokens(_model_text(m)) for m in history + inputs)
        if tokens <= window and not provider_refused:
            return history
        if provider_refused and len(history) <= 2:
            raise ModelError("context_window", "The input alone exceeds the context window.")
        try:
            done = await self.compaction.compact_stream(
                turn.actor,
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
        await self._notify(turn, done, window)
        return await to_thread.run_sync(self._read_context, turn)

    async def _notify(self, turn: Turn, done: Compaction, window: int) -> None:
        # Letta reports a compaction as summary + event messages only to JSON requests that
        # ask for them; otherwise the summary comes back as the user_message it is listed as.
        if turn.request.include_compaction_messages and not turn.request.streaming:
            notices = compaction_notices(turn.run_id, done, window)
        else:
            notices = [summary_as_user_message(turn.run_id, done)]
        turn.notices += notices
        if turn.request.streaming:
            for notice in notices:
                await turn.stream.message(notice)


# With stream_tokens these went out as fragments while the model answered.
STREAMED_TYPES = (
    "assistant_message",
    "reasoning_message",
    "tool_call_message",
    "approval_request_message",
)


def plan_step(tools: ToolBox, step: wire.StepIds, answer: Answer, last: bool) -> StepPlan:
    """What a model answer makes of the step: the calls to run now, the calls that wait for
    the client, and the stop reason when the turn ends here.
    """
    calls = answer.tool_calls[:1] if tools.has_rules else answer.tool_calls  # Letta: parallel
    # calls only for agents without tool rules. send_message's text is the answer (memgpt).
    spoken = [text for text in map(tools.spoken, calls) if text is not None]
    calls = [c for c in calls if tools.spoken(c) is None]
    text = "\n".join(t for t in (answer.text, *spoken) if t)
    ask = [c for c in calls if tools.pauses(c.name)]
    run_now = [c for c in calls if not tools.pauses(c.name)]
    stop: str | None
    if not calls and not spoken:
        if not answer.text and not answer.reasoning and not answer.usage.reasoning_tokens:
            raise ModelError("empty_response", "The model returned no content.")
        cut_off = answer.finish_reason == "length"
        stop = stops.MAX_TOKENS_EXCEEDED if cut_off else stops.END_TURN
    elif ask:
        stop = stops.REQUIRES_APPROVAL
    elif spoken:
        stop = stops.END_TURN
    elif any(tools.ends_turn(c.name) for c in run_now):
        stop = stops.TOOL_RULE
    else:
        stop = stops.MAX_STEPS if last else None
    planned = Answer(text, answer.reasoning, run_now + ask, answer.usage)
    return StepPlan(step, planned, run_now, ask, stop)


def _inputs(turn: Turn) -> list[ChatMessage]:
    return [
        ChatMessage(m["role"], plain_text(m["content"]), images=image_urls(m["content"]))
        for m in turn.request.messages
    ]


def _with_system(
    messages: list[ChatMessage], override: str | None, skills: str
) -> list[ChatMessage]:
    """The context with this request's system prompt: its override, or the stored one with
    the request's skills (``domain/skills.py``).
    """
    if override is None and not skills:
        return messages
    has_system = bool(messages) and messages[0].role == "system"
    stored = messages[0].content if has_system else ""
    system = request_system_prompt(stored, override, skills)
    return [ChatMessage("system", system), *(messages[1:] if has_system else messages)]


def _model_text(message: ChatMessage) -> str:
    calls = "".join(c.name + c.arguments for c in message.tool_calls)
    return message.content + calls


@dataclass
class _StreamedCalls:
    """What the fragments of one step's tool calls said so far, by the call's index."""

    names: dict[int, str] = field(default_factory=dict)
    ids: dict[int, str] = field(default_factory=dict)
