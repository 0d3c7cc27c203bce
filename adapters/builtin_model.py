"""convlog's built-in offline model: deterministic, no network, the default when nothing is set up.

Its answer is a function of the messages it is given and nothing else, so a new user sees a real
conversation (it quotes the last thing they said, remembers how the conversation began and counts
their turns), and tests can see exactly which context a turn was given.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator

from service.model import ChatMessage, ModelRequest, TextDelta, Usage

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

    async def stream(self, request: ModelRequest) -> AsyncIterator[TextDelta | Usage]:
        reply = reply_to(request.messages)
        for piece in split_words(reply):
            yield TextDelta(piece)
        yield Usage(
            prompt_tokens=sum(estimate_tokens(m.content) for m in request.messages),
            completion_tokens=estimate_tokens(reply),
        )

    async def aclose(self) -> None:
        pass
