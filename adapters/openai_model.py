"""A ChatModel over any OpenAI-compatible ``/chat/completions`` endpoint (official ``openai`` SDK).

Streams content deltas as they arrive and ends with one ``Usage`` (the server's when it sends
one, else an estimate of ~4 characters per token). Provider failures become ``ModelError``s;
the client never retries on its own (``max_retries=0``): retry policy belongs to the server.
``timeout_seconds`` bounds connecting and every wait for data (time to the first byte and the
silence between chunks), not the length of a whole answer that keeps streaming.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from typing import Any

import openai

from service.model import ChatMessage, ModelError, ModelRequest, TextDelta, Usage

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


def completion_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The request settings an OpenAI-compatible endpoint understands (absent/None dropped)."""
    options: dict[str, Any] = {}
    for key in ("temperature", "top_p"):
        if settings.get(key) is not None:
            options[key] = settings[key]
    max_tokens = settings.get("max_tokens")
    if max_tokens is None:
        max_tokens = settings.get("max_output_tokens")
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    return options


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

    async def stream(self, request: ModelRequest) -> AsyncIterator[TextDelta | Usage]:
        client = self._get_client()
        messages: list[Any] = [{"role": m.role, "content": m.content} for m in request.messages]
        completion_text: list[str] = []
        usage: Usage | None = None
        try:
            chunks = await client.chat.completions.create(
                model=request.model,
                # The SDK walks ``messages`` through its TypedDict transform, about 0.1 ms a
                # message (100 ms of CPU at 1,000 messages), to change nothing in plain
                # {role, content} dicts. ``extra_body`` is merged into the JSON body as given,
                # in the same place: the request on the wire is the same.
                messages=[],
                extra_body={"messages": messages},
                stream=True,
                stream_options={"include_usage": True},
                **completion_options(request.settings),
            )
            try:
                async for chunk in chunks:
                    if chunk.usage is not None:
                        usage = Usage(
                            prompt_tokens=chunk.usage.prompt_tokens or 0,
                            completion_tokens=chunk.usage.completion_tokens or 0,
                        )
                    for choice in chunk.choices:
                        content = choice.delta.content if choice.delta is not None else None
                        if content:
                            completion_text.append(content)
                            yield TextDelta(content)
            finally:
                await chunks.close()
        except openai.OpenAIError as error:
            raise map_error(error) from error
        if not completion_text:
            raise ModelError("empty_response", "The model returned an empty response.")
        if usage is None:
            usage = Usage(
                prompt_tokens=_prompt_tokens(request.messages),
                completion_tokens=estimate_tokens("".join(completion_text)),
            )
        yield usage

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
