"""Compaction: summarize the start of a conversation's context, recorded as a checkpoint.

History is never rewritten. ``Compacted`` carries the summary and says where the kept suffix
starts; the in-context window becomes system message + summary + suffix, and every earlier
message stays in the log and in the listing (spec §7, decisions §12).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any
from uuid import UUID

from anyio import to_thread

from domain import ids
from domain.agent import Agent
from domain.conversation import Conversation
from domain.errors import NOTHING_TO_COMPACT, BadRequest, Conflict, InvalidArgument, NotFound
from projections.message_reads import context_rows
from service.actor import Actor
from service.context import Context
from service.model import ChatMessage, ChatModel, ModelError, ModelRequest, TextDelta

MODES = ("all", "sliding_window", "self_compact_all", "self_compact_sliding_window")
DEFAULT_CONTEXT_WINDOW = 128_000
DEFAULT_CLIP_CHARS = 50_000

PROMPT_ALL = (
    "You are summarizing a conversation between a user and an AI assistant so that the "
    "assistant can continue it without the original messages. Write a concise summary that "
    "keeps every fact, name, number, decision, open question and commitment, the user's goals "
    "and preferences, and where the conversation stands now. Write it in the third person, "
    "without preamble."
)
PROMPT_SLIDING = (
    "You are summarizing the beginning of a conversation between a user and an AI assistant; "
    "the most recent messages stay in context and are not part of this transcript. Write a "
    "concise summary of the transcript that keeps every fact, name, number, decision, open "
    "question and commitment, and the user's goals and preferences, so the assistant can "
    "continue seamlessly. Write it in the third person, without preamble."
)
DEFAULT_PROMPTS = {
    "all": PROMPT_ALL,
    "self_compact_all": PROMPT_ALL,
    "sliding_window": PROMPT_SLIDING,
    "self_compact_sliding_window": PROMPT_SLIDING,
}
# The provider's cheap summarizer, as Letta picks it (spec §2.8); else the agent's own model.
DEFAULT_SUMMARIZERS = {
    "openai": "openai/gpt-5-mini",
    "anthropic": "anthropic/claude-haiku-4-5",
    "google_ai": "google_ai/gemini-2.5-flash",
}
NO_CONTEXT = "No in-context messages found for this conversation."


def default_settings(agent_model: str | None, given: dict[str, Any] | None) -> dict[str, Any]:
    """An agent's compaction settings: Letta's defaults under what the client gave."""
    given = dict(given or {})
    provider = (agent_model or "").partition("/")[0]
    mode = given.get("mode") or "sliding_window"
    settings = {
        "model": DEFAULT_SUMMARIZERS.get(provider, agent_model),
        "model_settings": None,
        "prompt": DEFAULT_PROMPTS.get(mode, PROMPT_SLIDING),
        "prompt_acknowledgement": False,
        "clip_chars": DEFAULT_CLIP_CHARS,
        "mode": mode,
        "sliding_window_percentage": 0.3,
    }
    settings.update({k: v for k, v in given.items() if v is not None or k == "model_settings"})
    return settings


def effective_settings(agent: dict[str, Any], request: dict[str, Any] | None) -> dict[str, Any]:
    """The request's fields over the agent's, one by one; a new mode without a prompt takes
    that mode's default prompt (spec §7.3). ``request`` holds only the fields the client sent.
    """
    merged = {**agent, **(request or {})}
    request = request or {}
    if "mode" in request and request["mode"] != agent.get("mode") and "prompt" not in request:
        merged["prompt"] = DEFAULT_PROMPTS.get(merged["mode"], PROMPT_SLIDING)
    if merged.get("mode") not in MODES:
        raise InvalidArgument(f"Unknown compaction mode {merged.get('mode')!r}")
    return merged


def estimate_tokens(text: str) -> int:
    """A conservative estimate (about three characters a token): no tokenizer is bundled for
    every model, and over-counting only compacts a little early.
    """
    return math.ceil(len(text) / 3) + 4


@dataclass(frozen=True)
class Plan:
    mode: str
    summarize: list[tuple[int, str, str]]  # (position, role, text) to summarize
    keep_from: int  # the first kept position (the summary's own position when none is kept)
    num_before: int
    num_after: int


def plan(
    messages: list[tuple[int, str, str]], mode: str, percentage: float, context_window: int
) -> Plan | None:
    """Which messages to summarize. ``messages`` is the context, system message first.
    None when nothing would be reduced.
    """
    n = len(messages)
    if n <= 1:
        return None
    if mode.endswith("sliding_window"):
        fraction = percentage + 0.1
        while fraction <= 1.0 + 1e-9:
            cutoff = round(fraction * n)
            last = min(cutoff, n - 1)
            candidates = [i for i in range(1, last + 1) if messages[i][1] == "assistant"]
            if candidates:
                index = candidates[-1]
                kept = [messages[0], *messages[index:]]
                tokens = sum(estimate_tokens(text) for _, _, text in kept)
                if tokens < (1 - percentage) * context_window and index < n - 1:
                    return Plan(mode, messages[1:index], messages[index][0], n, 2 + n - index)
            fraction += 0.1
        mode = "all"  # no usable cut: summarize everything (spec §7.5)
    return Plan(mode, messages[1:], 0, n, 2)


def plan_around_approval(
    messages: list[tuple[int, str, str]],
    pending_at: int | None,
    mode: str,
    percentage: float,
    context_window: int,
) -> Plan | None:
    """``plan``, keeping a pending approval request (and what follows it) in context: its
    answer must find the tool calls it answers.
    """
    if pending_at is None:
        return plan(messages, mode, percentage, context_window)
    before = [m for m in messages if m[0] < pending_at]
    tail = len(messages) - len(before)
    chosen = plan(before, mode, percentage, context_window)
    if chosen is None:
        return None
    return Plan(
        chosen.mode,
        chosen.summarize,
        chosen.keep_from or pending_at,
        len(messages),
        chosen.num_after + tail,
    )


def transcript(messages: list[tuple[int, str, str]]) -> str:
    # Each line is exactly json.dumps({"role": role, "content": text}) (both are strings),
    # with the two strings escaped by json's own encoder function: a third of the cost of
    # one json.dumps call per message, which dominated compacting a long conversation.
    lines = [
        f'{{"role": {_json_string("user" if role == "summary" else role)}, '
        f'"content": {_json_string(text)}}}'
        for _, role, text in messages
    ]
    return "<start_transcript>\n" + "\n".join(lines) + "\n<end_transcript>\n. Generate the summary."


def packed_summary(summary: str, mode: str, now: datetime) -> str:
    """The summary message's content, as Letta packs it (spec §7.6)."""
    hidden = (
        "Note: prior messages from the beginning of the conversation have been hidden from view"
        if mode.endswith("sliding_window")
        else "Note: prior messages have been hidden from view"
    )
    message = (
        f"{hidden} due to conversation memory constraints.\n"
        f"The following is a summary of the previous messages:\n {summary}"
    )
    time = now.strftime("%Y-%m-%d %I:%M:%S %p %Z%z")
    return json.dumps({"type": "system_alert", "message": message, "time": time})


@dataclass(frozen=True)
class Compaction:
    summary: str
    summary_message_id: str
    num_messages_before: int
    num_messages_after: int
    mode: str
    context_tokens_before: int
    content: str  # the summary message as listed (Letta's packed JSON)


class CompactionService:
    def __init__(self, ctx: Context, model: ChatModel, context_windows: dict[str, int]) -> None:
        self.ctx = ctx
        self.model = model
        self.context_windows = context_windows

    def context_window(self, handle: str, agent: Agent) -> int:
        limit = agent.settings.get("context_window_limit")
        return int(limit or self.context_windows.get(handle) or DEFAULT_CONTEXT_WINDOW)

    async def compact(
        self,
        actor: Actor,
        path_id: str,
        request: dict[str, Any] | None,
        *,
        run_id: str | None = None,
        trigger: str = "manual",
    ) -> Compaction:
        stream_id, agent = await to_thread.run_sync(self._resolve, actor, path_id)
        return await self.compact_stream(
            actor, stream_id, agent, request, run_id=run_id, trigger=trigger
        )

    async def compact_stream(
        self,
        actor: Actor,
        stream_id: UUID,
        agent: Agent,
        request: dict[str, Any] | None,
        *,
        run_id: str | None = None,
        trigger: str = "manual",
        model_handle: str | None = None,
    ) -> Compaction:
        conversation, messages = await to_thread.run_sync(self._load, stream_id, run_id)
        if not messages:
            raise BadRequest(NO_CONTEXT)
        agent_settings = agent.settings.get("compaction_settings") or default_settings(
            agent.model, None
        )
        settings = effective_settings(agent_settings, request)
        handle = settings.get("model") or agent.model or "convlog/builtin"
        if settings["mode"].startswith("self_compact"):
            handle = agent.model or handle
        window = self.context_window(model_handle or agent.model or handle, agent)
        chosen = plan_around_approval(
            messages,
            self._pending_position(conversation),
            settings["mode"],
            settings["sliding_window_percentage"],
            window,
        )
        if chosen is None or chosen.num_after >= chosen.num_before:
            raise BadRequest(NOTHING_TO_COMPACT)
        summarizer = settings.get("model") or agent.model or "convlog/builtin"
        summary = await self._summarize(
            handle, settings, chosen, fallback=summarizer if summarizer != handle else None
        )
        message_id = ids.new(ids.MESSAGE)
        now = datetime.now(UTC)
        content = packed_summary(summary, chosen.mode, now)

        def record() -> None:
            def command() -> list[Any]:
                fresh = self.ctx.app.get(Conversation, stream_id)
                if fresh is None or fresh.deleted:
                    raise NotFound("Conversation not found")
                if fresh.version != conversation.version:
                    raise Conflict(
                        "The conversation changed while it was being compacted; try again"
                    )
                fresh.compact(
                    summary_message_id=message_id,
                    summary=summary,
                    content=content,
                    # Nothing kept: the window starts after the summary itself.
                    keep_from=chosen.keep_from or fresh.next_key(),
                    num_messages_before=chosen.num_before,
                    num_messages_after=chosen.num_after,
                    settings={**settings, "model": handle},
                    model=handle,
                    trigger=trigger,
                    run_id=run_id,
                )
                return [fresh]

            self.ctx.settle(self.ctx.app.save_retrying(actor, command))

        await to_thread.run_sync(record)
        tokens = sum(estimate_tokens(text) for _, _, text in messages)
        return Compaction(
            summary, message_id, chosen.num_before, chosen.num_after, chosen.mode, tokens, content
        )

    async def _summarize(
        self, handle: str, settings: dict[str, Any], chosen: Plan, fallback: str | None = None
    ) -> str:
        request = ModelRequest(
            handle,
            [
                ChatMessage("system", settings.get("prompt") or DEFAULT_PROMPTS[chosen.mode]),
                ChatMessage("user", transcript(chosen.summarize)),
            ],
            dict(settings.get("model_settings") or {}),
        )
        self.model.check(handle)
        parts = []
        try:
            async for item in self.model.stream(request):
                if isinstance(item, TextDelta):
                    parts.append(item.text)
        except ModelError:
            if not settings["mode"].startswith("self_compact") or fallback is None:
                raise
            # Letta's fallback: the agent's own model failed; the summarizer takes over.
            return await self._summarize(fallback, {**settings, "mode": "sliding_window"}, chosen)
        summary = "".join(parts).strip()
        if not summary:
            raise ModelError("empty_response", "The summarizer returned no content.")
        clip = settings.get("clip_chars") or DEFAULT_CLIP_CHARS
        if len(summary) > clip:
            summary = summary[:clip] + "... [summary truncated to fit]"
        return summary

    def _pending_position(self, conversation: Conversation) -> int | None:
        pending = conversation.pending_approval
        if pending is None:
            return None
        return self.ctx.messages.position_of(str(conversation.id), pending["message_id"])

    def _resolve(self, actor: Actor, path_id: str) -> tuple[UUID, Agent]:
        conversation, agent = self.ctx.load_stream(actor, path_id)
        return conversation.id, agent

    def _load(
        self, stream_id: UUID, run_id: str | None
    ) -> tuple[Conversation, list[tuple[int, str, str]]]:
        conversation = self.ctx.app.get(Conversation, stream_id)
        if conversation is None or conversation.deleted:
            raise NotFound("Conversation not found")
        if conversation.active_run_id is not None and conversation.active_run_id != run_id:
            raise Conflict(
                "Cannot compact the conversation while a run is active; cancel it or wait"
            )
        self.ctx.projector.catch_up()  # the window as of now, whoever wrote last
        row = self.ctx.conversations.get_any(str(stream_id))
        if row is None:
            return conversation, []
        rows = context_rows(self.ctx.store, row.window)
        return conversation, rows
