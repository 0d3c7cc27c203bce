"""The model port: what a turn needs from an LLM, whatever serves it.

Adapters live in ``adapters/`` (an OpenAI-compatible HTTP client, and a built-in offline model).
A model streams text, reasoning and tool-call deltas as they arrive, and ends with one
``Usage`` (token counts and why it stopped). Failures are ``ModelError``s whose ``kind`` maps to
Letta's stop reasons and error types. ``Answer.collect`` folds a stream into one answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ErrorKind = Literal[
    "timeout", "rate_limit", "authentication", "empty_response", "context_window", "other"
]
Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, exactly as the model wrote it (it may not parse)


@dataclass(frozen=True)
class ChatMessage:
    """One message in OpenAI's shape: an assistant message may carry tool calls, and each
    call is answered by one ``tool`` message naming its id.
    """

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    images: tuple[str, ...] = ()  # image URLs (or data: URLs) a user message shows


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: an OpenAI function tool."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class ModelRequest:
    handle: str  # provider/model-name, e.g. openai/gpt-4o-mini
    messages: list[ChatMessage]
    settings: Mapping[str, Any] = field(default_factory=dict)  # temperature, max_tokens, …
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | None = None  # "auto", "required", "none"; None = the provider's default
    parallel_tool_calls: bool | None = None

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
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of the ``index``-th tool call: its id and name come first, then argument text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class Usage:
    """The last item of a stream: token counts, and the provider's ``finish_reason``."""

    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None
    reasoning_tokens: int | None = None  # thinking the provider counted but did not show

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


StreamItem = TextDelta | ReasoningDelta | ToolCallDelta | Usage


@dataclass
class Answer:
    """A whole model answer, folded from its stream."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=lambda: Usage(0, 0))

    @property
    def finish_reason(self) -> str | None:
        return self.usage.finish_reason


class AnswerBuilder:
    """Folds stream items into an ``Answer`` as they arrive."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, list[Any]] = {}  # index -> [id, name, argument parts]
        self.usage = Usage(0, 0)

    def add(self, item: StreamItem) -> None:
        if isinstance(item, TextDelta):
            self._text.append(item.text)
        elif isinstance(item, ReasoningDelta):
            self._reasoning.append(item.text)
        elif isinstance(item, ToolCallDelta):
            call = self._calls.setdefault(item.index, [None, None, []])
            call[0] = call[0] or item.id
            call[1] = call[1] or item.name
            call[2].append(item.arguments)
        else:
            self.usage = item

    def answer(self) -> Answer:
        calls = [
            ToolCall(id=call[0] or f"call_{index}", name=call[1] or "", arguments="".join(call[2]))
            for index, call in sorted(self._calls.items())
        ]
        return Answer("".join(self._text), "".join(self._reasoning), calls, self.usage)


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


@dataclass(frozen=True)
class ModelInfo:
    """A model a client may name: its handle and who serves it."""

    handle: str  # provider/model-name
    provider: str  # the handle's provider (convlog, openai, together, …)
    endpoint_type: str  # the wire it speaks: openai, anthropic, or convlog (built-in)
    endpoint: str | None  # base URL, when served over HTTP


class ModelCatalog(Protocol):
    async def list_models(self) -> list[ModelInfo]:
        """Every handle the configured providers serve (the built-in model included)."""
        ...

    def endpoint(self, handle: str) -> str | None:
        """The base URL requests for ``handle`` go to; None for the built-in model or a
        provider that is not configured.
        """
        ...

    async def aclose(self) -> None: ...


class ChatModel(Protocol):
    def check(self, handle: str) -> None:
        """Raise UnknownModel unless some provider serves ``handle``."""
        ...

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        """Yield deltas as the model produces them, then exactly one Usage."""
        ...

    def payload(self, request: ModelRequest) -> dict[str, Any]:
        """The body ``stream`` would send the provider for ``request`` (nothing is sent)."""
        ...

    async def aclose(self) -> None: ...
