"""convlog's built-in offline model: deterministic, no network, the default when nothing is set up.

Its answer is a function of the messages it is given and nothing else, so a new user sees a real
conversation (it quotes the last thing they said, remembers how the conversation began and counts
their turns), and tests can see exactly which context a turn was given.

It calls tools by a fixed rule, so the embedded default shows a tool turn with no keys: when
the user's latest message starts with "remember …" it calls ``memory_insert`` on the first
memory block it sees in the system message; "search …" calls ``conversation_search``; and
"call <tool> <JSON arguments>" calls any tool it was offered. After a tool's result it answers
by saying what the tool returned.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator
from typing import Any

from adapters.openai_wire import completion_options, tool_options, wire_message
from service.model import (
    ChatMessage,
    ModelRequest,
    StreamItem,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)

QUOTE_LIMIT = 200
_WORD = re.compile(r"\s*\S+")
_SPACES = re.compile(r"\s+")


def _quote(text: str) -> str:
    flat = _SPACES.sub(" ", text).strip()
    if len(flat) > QUOTE_LIMIT:
        flat = flat[: QUOTE_LIMIT - 1].rstrip() + "…"
    return f'"{flat}"'


TRANSCRIPT_START = "<start_transcript>"
SYSTEM_ALERT = '{"type": "system_alert"'


def summarize(transcript: str) -> str:
    """A deterministic summary of a compaction transcript (one JSON message per line)."""
    lines = [line for line in transcript.splitlines()[1:] if line.startswith("{")]
    turns: list[tuple[str, str]] = []
    for line in lines:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        turns.append((str(message.get("role")), str(message.get("content", ""))))
    user = [text for role, text in turns if role == "user" and text.strip()]
    said = "; ".join(_quote(text) for text in user[-5:]) or "nothing yet"
    return (
        f"{len(turns)} earlier messages ({len(user)} from the user). "
        f"The user most recently said: {said}."
    )


def reply_to(messages: list[ChatMessage]) -> str:
    """The built-in model's whole answer to a context."""
    if messages and messages[-1].content.startswith(TRANSCRIPT_START):
        return summarize(messages[-1].content)
    # A compaction summary reaches models as a user message; it is not something the user said.
    said = [
        m.content
        for m in messages
        if m.role == "user" and m.content.strip() and not m.content.startswith(SYSTEM_ALERT)
    ]
    if not said:
        return (
            "Hello! I'm convlog's built-in offline model. "
            "Send me a message and I'll answer from this conversation."
        )
    last = f"You said: {_quote(said[-1])}."
    if len(said) == 1:
        return (
            f"{last} (This is convlog's built-in offline model; "
            "this is your first message in this conversation.)"
        )
    return (
        f"{last} You began this conversation with {_quote(said[0])}. "
        f"(This is convlog's built-in offline model; {len(said)} messages from you "
        "in this conversation so far.)"
    )


_BLOCK_LABEL = re.compile(r"^<(\w+)>\n<description>", re.MULTILINE)
_CALL = re.compile(r"^call\s+(\S+)\s*(.*)$", re.DOTALL | re.IGNORECASE)


def tool_call_for(messages: list[ChatMessage], tools: tuple[ToolSpec, ...]) -> ToolCall | None:
    """The tool call the rule makes for the user's latest message, if any."""
    if not tools or not messages or messages[-1].role != "user":
        return None
    offered = {tool.name for tool in tools}
    text = messages[-1].content.strip()
    lowered = text.lower()
    call_id = f"call_builtin_{len(messages)}"
    if lowered.startswith("remember") and "memory_insert" in offered:
        system = messages[0].content if messages[0].role == "system" else ""
        labels = _BLOCK_LABEL.findall(system)
        fact = text[len("remember") :].lstrip(" :,").removeprefix("that ").strip() or text
        label = "human" if "human" in labels else (labels[0] if labels else "human")
        arguments = json.dumps({"label": label, "new_string": fact})
        return ToolCall(call_id, "memory_insert", arguments)
    if lowered.startswith("search") and "conversation_search" in offered:
        query = text[len("search") :].lstrip(" :").removeprefix("for ").strip()
        return ToolCall(call_id, "conversation_search", json.dumps({"query": query}))
    match = _CALL.match(text)
    if match and match.group(1) in offered:
        return ToolCall(call_id, match.group(1), match.group(2).strip() or "{}")
    return None


def _tool_message(content: str) -> str:
    """A tool result's message, out of the packed JSON the model is given."""
    try:
        packed = json.loads(content)
    except ValueError:
        return content
    message = packed.get("message", content) if isinstance(packed, dict) else content
    return message if isinstance(message, str) else json.dumps(message)


def after_tool(messages: list[ChatMessage]) -> str:
    """The answer once the tool calls of the last step have their results."""
    results = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        results.append(_tool_message(message.content))
    calls = next((m.tool_calls for m in reversed(messages) if m.tool_calls), ())
    names = ", ".join(call.name for call in calls) or "the tool"
    said = "; ".join(_quote(result) for result in reversed(results))
    return f"I called {names}. It returned: {said}."


def split_words(text: str) -> list[str]:
    """Word-sized pieces whose concatenation is ``text`` (each keeps its leading whitespace)."""
    pieces = _WORD.findall(text)
    tail = text[sum(len(piece) for piece in pieces) :]
    if tail:
        pieces.append(tail)
    return pieces


def estimate_tokens(text: str) -> int:
    """Roughly 4 tokens per 3 words."""
    return math.ceil(len(text.split()) * 4 / 3)


class BuiltinModel:
    """Serves every handle, offline; streams its answer word by word, then a Usage."""

    def check(self, handle: str) -> None:
        """The built-in model answers under any name."""

    def payload(self, request: ModelRequest) -> dict[str, Any]:
        """No provider is called: the request in OpenAI's shape, which is what this model
        reads (its rule looks at the last messages and the tool names).
        """
        return {
            "model": request.handle,
            "messages": [wire_message(m) for m in request.messages],
            **completion_options(request.settings, bool(request.tools)),
            **tool_options(request),  # after: a tool rule's one call at a time wins
        }

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        prompt_tokens = sum(estimate_tokens(m.content) for m in request.messages)
        call = tool_call_for(request.messages, request.tools)
        if call is not None:
            yield ToolCallDelta(0, call.id, call.name, "")
            for piece in split_words(call.arguments):
                yield ToolCallDelta(0, arguments=piece)
            yield Usage(prompt_tokens, estimate_tokens(call.arguments), "tool_calls")
            return
        last = request.messages[-1] if request.messages else None
        reply = after_tool(request.messages) if last and last.role == "tool" else None
        reply = reply or reply_to(request.messages)
        for piece in split_words(reply):
            yield TextDelta(piece)
        yield Usage(prompt_tokens, estimate_tokens(reply), "stop")

    async def aclose(self) -> None:
        pass
