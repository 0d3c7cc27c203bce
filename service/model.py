"""The model port: what a turn needs from an LLM, whatever serves it.

Adapters live in ``adapters/`` (an OpenAI-compatible HTTP client, and a built-in offline model).
A model streams ``TextDelta``s and ends with one ``Usage``; failures are ``ModelError``s whose
``kind`` maps to Letta's stop reasons and error types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ErrorKind = Literal[
    "timeout", "rate_limit", "authentication", "empty_response", "context_window", "other"
]


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class ModelRequest:
    handle: str  # provider/model-name, e.g. openai/gpt-4o-mini
    messages: list[ChatMessage]
    settings: Mapping[str, Any] = field(default_factory=dict)  # temperature, max_tokens, …

    @property
    def provider(self) -> str:
        return self.handle.partition("/")[0]

    @property
    def model(self) -> str:
        return self.handle.partition("/")[2]


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ModelError(Exception):
    """The provider failed; ``kind`` says how (timeout, rate limit, auth, empty answer, …)."""

    def __init__(self, kind: ErrorKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class UnknownModel(Exception):
    """No configured provider serves this handle."""

    def __init__(self, handle: str, known: list[str]) -> None:
        super().__init__(f"Handle {handle} not found, must be one of {known}")
        self.handle = handle
        self.known = known


class ChatModel(Protocol):
    def check(self, handle: str) -> None:
        """Raise UnknownModel unless some provider serves ``handle``."""
        ...

    def stream(self, request: ModelRequest) -> AsyncIterator[TextDelta | Usage]:
        """Yield text deltas as the model produces them, then exactly one Usage."""
        ...

    async def aclose(self) -> None: ...
