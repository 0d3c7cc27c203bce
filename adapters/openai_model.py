"""A ChatModel over any OpenAI-compatible ``/chat/completions`` endpoint.

Streams content, reasoning (``reasoning_content`` or ``reasoning``, as providers that think send
it) and tool-call deltas as they arrive, and ends with one ``Usage`` carrying the
``finish_reason`` (the server's token counts when it sends them, else an estimate of ~4
characters per token). Provider failures become ``ModelError``s;
the client never retries on its own: retry policy belongs to the server.
``timeout_seconds`` bounds connecting and every wait for data (time to the first byte and the
silence between chunks), not the length of a whole answer that keeps streaming.

The streamed completion goes over a plain ``httpx`` client with its own server-sent-events
parser (``SSEDecoder``) and ``orjson``: the ``openai`` SDK's stream (its SSE decoder, a stdlib
``json`` parse and its response processing per chunk, over its own HTTP stack) cost most of
the server's CPU per streamed chunk. Its failures are worded as the SDK's were, so a turn
fails the same way. Listing models, off the hot path, still uses the SDK.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import orjson

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
# After ``[DONE]``, how long the rest of the body may take to arrive (read to its end, the
# connection goes back to the pool).
DRAIN_SECONDS = 0.1
# The openai SDK's connection pool (a server streams many answers at once).
CONNECTION_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)

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


def _is_context_window(status: int | None, code: object, message: str) -> bool:
    if code is not None and str(code).lower() in _CONTEXT_CODES:
        return True
    if status not in (None, 400, 413):
        return False
    text = message.lower()
    return any(phrase in text for phrase in _CONTEXT_PHRASES)


def is_context_window_error(error: openai.APIError) -> bool:
    status = getattr(error, "status_code", None)
    return _is_context_window(status, getattr(error, "code", None), error.message)


def _status_error(status: int, message: str, code: object = None) -> ModelError:
    """The ModelError for a non-2xx answer (``message`` worded as the SDK does)."""
    if status == 429:
        return ModelError("rate_limit", f"Rate limited by the provider: {message}")
    if status in (401, 403):
        return ModelError("authentication", f"The provider refused the credentials: {message}")
    if _is_context_window(status, code, message):
        return ModelError("context_window", f"The context window was exceeded: {message}")
    return ModelError("other", f"The provider answered HTTP {status}: {message}")


def map_error(error: openai.OpenAIError) -> ModelError:
    """The ModelError kind for an SDK exception (order matters: timeouts are connection errors)."""
    if isinstance(error, openai.APITimeoutError):
        return ModelError("timeout", f"The model request timed out: {error}")
    if isinstance(error, openai.APIStatusError):
        return _status_error(error.status_code, error.message, error.code)
    if isinstance(error, openai.APIError) and is_context_window_error(error):
        return ModelError("context_window", f"The context window was exceeded: {error.message}")
    if isinstance(error, openai.APIConnectionError):
        return ModelError("other", f"Could not reach the provider: {error}")
    return ModelError("other", f"The model request failed: {error}")


def _answer_error(status: int, text: str) -> ModelError:
    """A non-2xx answer as the SDK read it: ``Error code: <status>``, `` - <error.message>``
    when the body is JSON with one, and the ``code`` of its ``error`` object.
    """
    message, code = f"Error code: {status}", None
    try:
        body = json.loads(text.strip())
    except (ValueError, RecursionError):
        body = None
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        detail = error.get("message")
        if isinstance(detail, str) and detail:
            message += f" - {detail}"
    return _status_error(status, message, code)


def _stream_error(error: object) -> ModelError:
    """An ``{"error": …}`` event in the middle of a stream (the SDK raised an APIError)."""
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message:
        message = "An error occurred during streaming"
    code = error.get("code") if isinstance(error, dict) else None
    if _is_context_window(None, code, message):
        return ModelError("context_window", f"The context window was exceeded: {message}")
    return ModelError("other", f"The model request failed: {message}")


def _transport_error(error: httpx.RequestError) -> ModelError:
    """A failure to connect, send or receive (the SDK's words: it gives no more detail)."""
    if isinstance(error, httpx.TimeoutException):
        return ModelError("timeout", "The model request timed out: Request timed out.")
    return ModelError("other", "Could not reach the provider: Connection error.")


class SSEDecoder:
    """The data of each event of a ``text/event-stream`` body, fed as it arrives.

    As the WHATWG rules have it: lines end with LF, CRLF or CR; ``data`` lines (one optional
    space after the colon stripped) are joined with LF and dispatched at a blank line, an event
    without data is not; comments (``:``), ``event``, ``id``, ``retry`` and unknown fields are
    ignored (a chat-completions stream needs none of them); an unfinished last event is dropped.
    """

    def __init__(self) -> None:
        self._partial: list[bytes] = []  # the start of a line not yet ended
        self._data: list[bytes] = []  # the data lines of the event being read
        self._after_cr = False  # the last chunk ended with CR: an LF opening the next ends no line
        self._started = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """The data of every event this chunk completes."""
        if not chunk:
            return []
        if not self._started:
            self._started = True
            chunk = chunk.removeprefix(codecs.BOM_UTF8)
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        if b"\r" in chunk:
            self._after_cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        else:
            self._after_cr = False
        if b"\n" not in chunk:
            self._partial.append(chunk)
            return []
        lines = chunk.split(b"\n")
        if self._partial:
            lines[0] = b"".join(self._partial) + lines[0]
        last = lines.pop()
        self._partial = [last] if last else []
        events: list[bytes] = []
        for line in lines:
            if not line:
                if self._data:
                    data = b"\n".join(self._data)
                    self._data = []
                    if data:
                        events.append(data)
            elif line.startswith(b"data:"):
                self._data.append(line[6:] if line.startswith(b"data: ") else line[5:])
            elif line == b"data":
                self._data.append(b"")
        return events


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read what follows ``[DONE]`` (for HTTP/1.1 to reuse the connection), briefly."""
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in chunks:
                pass
    except (TimeoutError, httpx.HTTPError):
        pass  # the connection is closed instead: the answer is complete


class OpenAICompatibleModel:
    """One provider's endpoint. Its HTTP clients are created on first use and closed by aclose()."""

    def __init__(self, base_url: str, api_key: str | None, timeout_seconds: float = 120.0) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self.timeout_seconds = timeout_seconds
        self._client: httpx.AsyncClient | None = None  # streams completions
        self._sdk: openai.AsyncOpenAI | None = None  # everything else
        self._encoder = RequestEncoder()

    def check(self, handle: str) -> None:
        """Any model name is passed through; the provider itself decides whether it exists."""

    def _timeout(self) -> httpx.Timeout:
        connect = min(CONNECT_TIMEOUT_SECONDS, self.timeout_seconds)
        return httpx.Timeout(self.timeout_seconds, connect=connect)

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout(), limits=CONNECTION_LIMITS, follow_redirects=True
            )
        return self._client

    def _get_sdk(self) -> openai.AsyncOpenAI:
        if self._sdk is None:
            self._sdk = openai.AsyncOpenAI(
                base_url=self.base_url,
                # local OpenAI-compatible servers often need no key, the SDK insists on one
                api_key=self._api_key or "not-needed",
                max_retries=0,
                timeout=openai.Timeout(
                    self.timeout_seconds,
                    connect=min(CONNECT_TIMEOUT_SECONDS, self.timeout_seconds),
                ),
            )
        return self._sdk

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

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
        url = f"{self.base_url.rstrip('/')}/chat/completions"
        # The body goes as bytes, its messages encoded once (``RequestEncoder``).
        body = self._encoder.body(request, self._fields(request))
        text: list[str] = []
        usage: Usage | None = None
        finish_reason: str | None = None
        produced = False
        try:
            # Plain httpx and our own SSE parsing, not the SDK's stream: see the module docstring.
            async with client.stream("POST", url, content=body, headers=self._headers()) as answer:
                if not answer.is_success:
                    await answer.aread()
                    raise _answer_error(answer.status_code, answer.text)
                decoder = SSEDecoder()
                chunks = answer.aiter_bytes()
                done = False
                async for received in chunks:
                    for data in decoder.feed(received):
                        if data.startswith(b"[DONE]"):
                            done = True
                            break
                        chunk = orjson.loads(data)
                        if not isinstance(chunk, dict):
                            continue
                        if chunk.get("error"):
                            raise _stream_error(chunk["error"])
                        usage = chunk_usage(chunk.get("usage")) or usage
                        for choice in chunk.get("choices") or ():
                            finish_reason = choice.get("finish_reason") or finish_reason
                            for item in deltas(choice.get("delta") or {}):
                                if isinstance(item, TextDelta):
                                    text.append(item.text)
                                else:
                                    produced = True
                                yield item
                    if done:
                        await _drain(chunks)
                        break
        except httpx.RequestError as error:
            raise _transport_error(error) from error
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
            async for model in self._get_sdk().models.list():
                names.append(model.id)
        except openai.OpenAIError as error:
            raise map_error(error) from error
        return names

    async def aclose(self) -> None:
        client, self._client = self._client, None
        sdk, self._sdk = self._sdk, None
        if client is not None:
            await client.aclose()
        if sdk is not None:
            await sdk.close()
