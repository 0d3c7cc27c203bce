"""A ChatModel over any OpenAI-compatible ``/chat/completions`` endpoint (official ``openai`` SDK).

Streams content, reasoning (``reasoning_content`` or ``reasoning``, as providers that think send
it) and tool-call deltas as they arrive, and ends with one ``Usage`` carrying the
``finish_reason`` (the server's token counts when it sends them, else an estimate of ~4
characters per token). Provider failures become ``ModelError``s;
the client never retries on its own (``max_retries=0``): retry policy belongs to the server.
``timeout_seconds`` bounds connecting and every wait for data (time to the first byte and the
silence between chunks), not the length of a whole answer that keeps streaming.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import openai

from adapters.openai_wire import (
    RequestEncoder,
    chunk_usage,
    completion_options,
    deltas,
    tool_options,
)
from service.model import ChatMessage, ModelError, ModelRequest, StreamItem, TextDelta, Usage

CONNECT_TIMEOUT_SECONDS = 10.0
CHARS_PER_TOKEN = 4

_CONTEXT_CODES = frozenset({"context_length_exceeded", "context_window_exceeded"})
_CONTEXT_PHRASES = (
    "context length",
    "context_length",
    "context window",
    "maximum context",
    "prompt is too long",
    "too many tokens",
)


def estimate_tokens(text: str) -> int:
    """About four characters per token; at least one token for any non-empty text."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _prompt_tokens(messages: list[ChatMessage]) -> int:
    return sum(estimate_tokens(message.content) for message in messages)


def is_context_window_error(error: openai.APIError) -> bool:
    code = getattr(error, "code", None)
    if code is not None and str(code).lower() in _CONTEXT_CODES:
        return True
    status = getattr(error, "status_code", None)
    if status not in (None, 400, 413):
        return False
    text = error.message.lower()
    return any(phrase in text for phrase in _CONTEXT_PHRASES)


def map_error(error: openai.OpenAIError) -> ModelError:
    """The ModelError kind for an SDK exception (order matters: timeouts are connection errors)."""
    if isinstance(error, openai.APITimeoutError):
        return ModelError("timeout", f"The model request timed out: {error}")
    if isinstance(error, openai.RateLimitError):
        return ModelError("rate_limit", f"Rate limited by the provider: {error.message}")
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return ModelError(
            "authentication", f"The provider refused the credentials: {error.message}"
        )
    if isinstance(error, openai.APIError) and is_context_window_error(error):
        return ModelError("context_window", f"The context window was exceeded: {error.message}")
    if isinstance(error, openai.APIStatusError):
        return ModelError(
            "other", f"The provider answered HTTP {error.status_code}: {error.message}"
        )
    if isinstance(error, openai.APIConnectionError):
        return ModelError("other", f"Could not reach the provider: {error}")
    return ModelError("other", f"The model request failed: {error}")


class OpenAICompatibleModel:
    """One provider's endpoint. The HTTP client is created on first use and closed by aclose()."""

    def __init__(self, base_url: str, api_key: str | None, timeout_seconds: float = 120.0) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self.timeout_seconds = timeout_seconds
        self._client: openai.AsyncOpenAI | None = None
        self._encoder = RequestEncoder()

    def check(self, handle: str) -> None:
        """Any model name is passed through; the provider itself decides whether it exists."""

    def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url,
                # local OpenAI-compatible servers often need no key, the SDK insists on one
                api_key=self._api_key or "not-needed",
                max_retries=0,
                timeout=openai.Timeout(
                    self.timeout_seconds,
                    connect=min(CONNECT_TIMEOUT_SECONDS, self.timeout_seconds),
                ),
            )
        return self._client

    def _fields(self, request: ModelRequest) -> dict[str, Any]:
        return {
            "stream": True,
            "stream_options": {"include_usage": True},
            **completion_options(request.settings, bool(request.tools)),
            **tool_options(request),  # after: a tool rule's one call at a time wins
        }

    def payload(self, request: ModelRequest) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self._encoder.body(request, self._fields(request)))
        return parsed

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        client = self._get_client()
        body = self._encoder.body(request, self._fields(request))
        text: list[str] = []
        usage: Usage | None = None
        finish_reason: str | None = None
        produced = False
        try:
            # The SDK's documented low-level call for requests it need not model: it keeps
            # the auth, the timeouts, the status errors and its SSE parser, and hands over each
            # chunk as parsed JSON. Its typed path builds a pydantic model per streamed chunk
            # and walks every message and tool schema through a TypedDict transform: most of a
            # step's CPU on this path, to change nothing in what goes over the wire. The body
            # goes as bytes, its messages encoded once (``RequestEncoder``).
            chunks = await client.post(
                "/chat/completions",
                content=body,
                options={"headers": {"Content-Type": "application/json"}},
                cast_to=object,
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
            try:
                async for chunk in chunks:
                    if not isinstance(chunk, dict):
                        continue
                    usage = chunk_usage(chunk.get("usage")) or usage
                    for choice in chunk.get("choices") or ():
                        finish_reason = choice.get("finish_reason") or finish_reason
                        for item in deltas(choice.get("delta") or {}):
                            if isinstance(item, TextDelta):
                                text.append(item.text)
                            else:
                                produced = True
                            yield item
            finally:
                await chunks.close()
        except openai.OpenAIError as error:
            raise map_error(error) from error
        if not text and not produced:
            raise ModelError("empty_response", "The model returned an empty response.")
        if usage is None:
            usage = Usage(
                prompt_tokens=_prompt_tokens(request.messages),
                completion_tokens=estimate_tokens("".join(text)),
            )
        yield Usage(
            usage.prompt_tokens, usage.completion_tokens, finish_reason, usage.reasoning_tokens
        )

    async def list_model_names(self) -> list[str]:
        """The provider's model ids (``GET …/models``)."""
        names = []
        try:
            async for model in self._get_client().models.list():
                names.append(model.id)
        except openai.OpenAIError as error:
            raise map_error(error) from error
        return names

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
