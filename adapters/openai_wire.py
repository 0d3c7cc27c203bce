"""OpenAI's chat-completions wire: requests as JSON bytes, streamed chunks into stream items.

``RequestEncoder`` serializes each message once and keeps it: a turn's steps, and the turns
after it, resend the same context, and encoding a long context again each time would cost
more than everything else a step does.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from domain.model_settings import OPENAI_SETTINGS
from service.model import (
    ChatMessage,
    ModelRequest,
    ReasoningDelta,
    StreamItem,
    TextDelta,
    ToolCallDelta,
    Usage,
)

# Encoded messages kept per process (a message of a long context is about 300 bytes).
ENCODED_MESSAGES = 50_000


def wire_message(message: ChatMessage) -> dict[str, Any]:
    """A message as OpenAI's chat API takes it."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ],
        }
    if message.images:  # text and images as content parts
        parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
        parts += [{"type": "image_url", "image_url": {"url": url}} for url in message.images]
        return {"role": message.role, "content": parts}
    return {"role": message.role, "content": message.content}


def tool_options(request: ModelRequest) -> dict[str, Any]:
    """Tools, and how the model may use them (only when there are tools to use)."""
    if not request.tools:
        return {}
    options: dict[str, Any] = {
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": dict(tool.parameters),
                    **({"strict": True} if request.settings.get("strict") else {}),
                },
            }
            for tool in request.tools
        ]
    }
    if request.tool_choice is not None:
        options["tool_choice"] = request.tool_choice
    if request.parallel_tool_calls is not None:  # tool rules: one call at a time
        options["parallel_tool_calls"] = request.parallel_tool_calls
    return options


def deltas(delta: dict[str, Any]) -> list[StreamItem]:
    """What one streamed ``choices[].delta`` carries: reasoning (``reasoning_content`` from
    DeepSeek and vLLM, ``reasoning`` from OpenRouter), text, and tool-call fragments.
    """
    items: list[StreamItem] = []
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        items.append(ReasoningDelta(reasoning))
    content = delta.get("content")
    if isinstance(content, str) and content:
        items.append(TextDelta(content))
    for call in delta.get("tool_calls") or ():
        function = call.get("function") or {}
        items.append(
            ToolCallDelta(
                index=int(call.get("index") or 0),
                id=call.get("id"),
                name=function.get("name"),
                arguments=function.get("arguments") or "",
            )
        )
    return items


def chunk_usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    details = raw.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        reasoning_tokens=details.get("reasoning_tokens"),
    )


def completion_options(settings: Mapping[str, Any], has_tools: bool = True) -> dict[str, Any]:
    """The agent's ``model_settings`` as chat-completions fields (``domain/model_settings``:
    each was checked when set). None means "the provider's default" and is left out.
    """
    options: dict[str, Any] = {}
    for key, field in OPENAI_SETTINGS.items():
        value = settings.get(key)
        if value is None or field in options:
            continue
        if field == "parallel_tool_calls" and not has_tools:
            continue  # OpenAI refuses it on a request without tools
        options[field] = value
    effort = (settings.get("reasoning") or {}).get("reasoning_effort")
    if effort is not None:
        options.setdefault("reasoning_effort", effort)
    return options


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class RequestEncoder:
    """A request's JSON body, with each message's JSON cached (an LRU of encoded messages)."""

    def __init__(self, capacity: int = ENCODED_MESSAGES) -> None:
        self.capacity = capacity
        self._encoded: OrderedDict[ChatMessage, str] = OrderedDict()

    def message(self, message: ChatMessage) -> str:
        found = self._encoded.get(message)
        if found is None:
            found = self._encoded[message] = _dumps(wire_message(message))
            if len(self._encoded) > self.capacity:
                self._encoded.popitem(last=False)
        else:
            self._encoded.move_to_end(message)
        return found

    def body(self, request: ModelRequest, fields: Mapping[str, Any]) -> bytes:
        """``{"model", "messages", **fields}`` as UTF-8 JSON."""
        messages = ",".join(self.message(m) for m in request.messages)
        rest = _dumps({"model": request.model, **fields})
        return f'{{"messages":[{messages}],{rest[1:]}'.encode()
