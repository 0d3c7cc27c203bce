"""Anthropic's Messages API wire: a ``ModelRequest`` as a request body, streamed events into
stream items. Pure: no I/O (``adapters/anthropic_model.py`` sends and receives).

The mapping (see docs/anthropic.md): system messages become the top-level ``system``;
assistant tool calls ``tool_use`` blocks; ``tool`` results ``tool_result`` blocks of a ``user``
message; consecutive messages of one role are merged, as the API requires the roles to
alternate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from domain.model_settings import ANTHROPIC_SETTINGS, THINKING_WITH_TOOLS, thinking_enabled
from service.model import (
    ChatMessage,
    ModelError,
    ModelRequest,
    ReasoningDelta,
    StreamItem,
    TextDelta,
    ToolCallDelta,
    Usage,
)

ANTHROPIC_DEFAULT_BASE_URL = "https://api.anthropic.com"

# max_tokens is required by Anthropic; Letta's default for model_settings.max_output_tokens.
DEFAULT_MAX_TOKENS = 4096
# Tool-call arguments that are not a JSON object go back to the model under this key.
UNPARSED_ARGUMENTS = "_unparsed_arguments"
TOOL_CHOICES = {"auto": "auto", "required": "any", "none": "none"}
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}


def tool_input(arguments: str) -> dict[str, Any]:
    """A call's JSON arguments as ``tool_use.input``; "" means no arguments. Anything that
    is not a JSON object is kept, as written, under ``_unparsed_arguments``.
    """
    if not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {UNPARSED_ARGUMENTS: arguments}


def image_block(url: str) -> dict[str, Any]:
    """An ``image`` block: base64 from a ``data:<media>;base64,<data>`` URL, else by URL."""
    if not url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, comma, data = url[5:].partition(",")
    media, _, encoding = header.partition(";")
    if not comma or encoding != "base64" or not media:
        raise ModelError("other", f"An image data: URL must be base64 encoded: {url[:40]}…")
    return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        if message.content:
            result["content"] = message.content
        return [result]
    blocks: list[dict[str, Any]] = []
    if message.content:  # the API refuses empty text blocks
        blocks.append({"type": "text", "text": message.content})
    blocks += [image_block(url) for url in message.images]
    blocks += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(c.arguments)}
        for c in message.tool_calls
    ]
    return blocks


def wire_messages(messages: list[ChatMessage]) -> tuple[str, list[dict[str, Any]]]:
    """The system prompt (every system message, in order) and the alternating messages."""
    system = [m.content for m in messages if m.role == "system" and m.content]
    wire: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue  # nothing to say (an empty message is refused by the API)
        if wire and wire[-1]["role"] == role:
            wire[-1]["content"] += blocks
        else:
            wire.append({"role": role, "content": blocks})
    for item in wire:  # tool results must open their user message
        item["content"].sort(key=lambda block: block["type"] != "tool_result")
    return "\n\n".join(system), wire


def _parallel(request: ModelRequest) -> bool | None:
    if request.parallel_tool_calls is not None:  # tool rules: one call at a time
        return request.parallel_tool_calls
    value = request.settings.get("parallel_tool_calls")
    return None if value is None else bool(value)


def tool_options(request: ModelRequest) -> dict[str, Any]:
    """Tools, and how the model may use them (only when there are tools to use)."""
    if not request.tools:
        return {}
    tools = []
    for tool in request.tools:
        spec: dict[str, Any] = {"name": tool.name, "input_schema": dict(tool.parameters)}
        if tool.description:
            spec["description"] = tool.description
        tools.append(spec)
    choice: dict[str, Any] | None = None
    if request.tool_choice is not None:
        kind = TOOL_CHOICES.get(request.tool_choice)
        choice = {"type": kind} if kind else {"type": "tool", "name": request.tool_choice}
    if _parallel(request) is False and (choice or {}).get("type") != "none":
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    return {"tools": tools, **({"tool_choice": choice} if choice else {})}


def setting_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The agent's ``model_settings`` as Messages API fields (``domain/model_settings``: each
    was checked when set). None means "the provider's default" and is left out.
    """
    options: dict[str, Any] = {}
    for key, field in ANTHROPIC_SETTINGS.items():
        value = settings.get(key)
        if value is not None and field not in options:
            options[field] = value
    if isinstance(options.get("stop_sequences"), str):
        options["stop_sequences"] = [options["stop_sequences"]]
    if "thinking" in options:
        options["thinking"] = dict(options["thinking"])
    if "max_tokens" not in options:  # thinking's budget is part of max_tokens
        budget = options["thinking"].get("budget_tokens", 0) if thinking_enabled(settings) else 0
        options["max_tokens"] = DEFAULT_MAX_TOKENS + budget
    return options


def _continues_tool_use(messages: list[ChatMessage]) -> bool:
    """Whether the context ends with tool results answering the last assistant message."""
    for message in reversed(messages):
        if message.role != "tool":
            return message.role == "assistant" and bool(message.tool_calls)
    return False


def check_request(request: ModelRequest) -> None:
    """Refuse, before anything is sent, what Anthropic would refuse mid-turn."""
    if not thinking_enabled(request.settings):
        return
    may_call = bool(request.tools) and request.tool_choice != "none"
    if may_call or _continues_tool_use(request.messages):
        raise ModelError("other", THINKING_WITH_TOOLS)


def request_body(request: ModelRequest) -> dict[str, Any]:
    """The whole streamed Messages API request body; raises ModelError for what cannot go."""
    check_request(request)
    system, messages = wire_messages(request.messages)
    return {
        "model": request.model,
        **({"system": system} if system else {}),
        "messages": messages,
        "stream": True,
        **setting_options(request.settings),
        **tool_options(request),
    }


class StreamDecoder:
    """Folds Anthropic's stream events into stream items; ``usage()`` once it has ended.

    Content blocks are numbered across kinds (thinking, text, tool_use); tool calls get their
    own 0, 1, … as ``ToolCallDelta.index``.
    """

    def __init__(self) -> None:
        self._calls: dict[int, int] = {}  # content block index -> tool call index
        self._with_arguments: set[int] = set()  # tool calls that got argument text
        self.input_tokens = 0
        self.output_tokens = 0
        self.stop_reason: str | None = None
        self.text = False
        self.tool_calls = False

    def feed(self, event: Mapping[str, Any]) -> list[StreamItem]:
        kind = event.get("type")
        if kind == "message_start":
            self._count((event.get("message") or {}).get("usage"))
        elif kind == "message_delta":
            self.stop_reason = (event.get("delta") or {}).get("stop_reason") or self.stop_reason
            self._count(event.get("usage"))
        elif kind == "content_block_start":
            return self._start(int(event.get("index") or 0), event.get("content_block") or {})
        elif kind == "content_block_delta":
            return self._delta(int(event.get("index") or 0), event.get("delta") or {})
        elif kind == "content_block_stop":
            return self._stop(int(event.get("index") or 0))
        return []  # ping, message_stop, and event kinds added later

    def _count(self, usage: Any) -> None:
        if not isinstance(usage, Mapping):
            return
        prompt = sum(
            int(usage.get(key) or 0)
            for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        self.input_tokens = max(self.input_tokens, prompt)  # message_delta's counts are totals
        self.output_tokens = max(self.output_tokens, int(usage.get("output_tokens") or 0))

    def _start(self, index: int, block: Mapping[str, Any]) -> list[StreamItem]:
        kind = block.get("type")
        if kind == "tool_use":
            call = self._calls[index] = len(self._calls)
            self.tool_calls = True
            first = ToolCallDelta(call, id=block.get("id"), name=block.get("name"))
            given = block.get("input")
            if not given:  # streamed: the arguments follow as input_json_delta
                return [first]
            self._with_arguments.add(call)
            return [first, ToolCallDelta(call, arguments=json.dumps(given, ensure_ascii=False))]
        if kind == "text" and block.get("text"):
            return self._text(str(block["text"]))
        if kind == "thinking" and block.get("thinking"):
            return [ReasoningDelta(str(block["thinking"]))]
        return []  # an empty start, or redacted_thinking (nothing readable)

    def _delta(self, index: int, delta: Mapping[str, Any]) -> list[StreamItem]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return self._text(str(delta["text"]))
        if kind == "thinking_delta" and delta.get("thinking"):
            return [ReasoningDelta(str(delta["thinking"]))]
        if kind == "input_json_delta" and delta.get("partial_json") and index in self._calls:
            self._with_arguments.add(self._calls[index])
            return [ToolCallDelta(self._calls[index], arguments=str(delta["partial_json"]))]
        return []  # signature_delta: convlog does not send thinking back (docs/anthropic.md)

    def _stop(self, index: int) -> list[StreamItem]:
        call = self._calls.get(index)
        if call is None or call in self._with_arguments:
            return []
        self._with_arguments.add(call)
        return [ToolCallDelta(call, arguments="{}")]  # a call without input: no arguments

    def _text(self, text: str) -> list[StreamItem]:
        self.text = True
        return [TextDelta(text)]

    @property
    def finish_reason(self) -> str | None:
        if self.stop_reason is None:
            return None
        return FINISH_REASONS.get(self.stop_reason, self.stop_reason)

    def usage(self) -> Usage:
        return Usage(self.input_tokens, self.output_tokens, self.finish_reason)
