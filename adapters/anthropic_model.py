"""A ChatModel over Anthropic's Messages API (official ``anthropic`` SDK), streaming.

Thinking, text and tool-call deltas stream as they arrive (``adapters/anthropic_wire.py``
translates), and the stream ends with one ``Usage`` from the counts Anthropic reports in
``message_start`` and ``message_delta``. Provider failures become ``ModelError``s; the client
never retries on its own (``max_retries=0``): retry policy belongs to the server.
``timeout_seconds`` bounds connecting and every wait for data, not a whole streaming answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic

from adapters.anthropic_wire import ANTHROPIC_DEFAULT_BASE_URL, StreamDecoder, request_body
from service.model import ModelError, ModelRequest, StreamItem

CONNECT_TIMEOUT_SECONDS = 10.0

_CONTEXT_PHRASES = (
    "prompt is too long",
    "exceed context limit",
    "context window",
    "context length",
    "too many tokens",
)


def _error_of(body: object) -> tuple[str | None, str | None]:
    """(type, message) of an Anthropic error body ``{"type": "error", "error": {…}}``."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    kind, message = error.get("type"), error.get("message")
    return (
        kind if isinstance(kind, str) else None,
        message if isinstance(message, str) else None,
    )


def _status_error(error: anthropic.APIStatusError) -> ModelError:
    # A failure mid-stream arrives as an ``error`` event on a 200 response: its type decides.
    kind, message = _error_of(error.body)
    status = error.status_code
    text = message or error.message
    if status == 429 or kind == "rate_limit_error":
        return ModelError("rate_limit", f"Rate limited by Anthropic: {text}")
    if status in (401, 403) or kind in ("authentication_error", "permission_error"):
        return ModelError("authentication", f"Anthropic refused the credentials: {text}")
    too_long = any(phrase in text.lower() for phrase in _CONTEXT_PHRASES)
    if kind == "request_too_large" or (status in (200, 400, 413) and too_long):
        return ModelError("context_window", f"The context window was exceeded: {text}")
    if kind == "timeout_error":
        return ModelError("timeout", f"Anthropic timed out: {text}")
    if status == 200:
        return ModelError("other", f"Anthropic failed mid-answer ({kind}): {text}")
    return ModelError("other", f"Anthropic answered HTTP {status} ({kind}): {text}")


def transport_error(error: Exception) -> ModelError | None:
    """A failure reading the stream, which the SDK passes on unwrapped: an exception of its
    HTTP library (httpx, or httpx2 in newer SDKs), known by module so that either works.
    """
    if type(error).__module__.partition(".")[0] not in ("httpx", "httpx2"):
        return None
    if any(cls.__name__ == "TimeoutException" for cls in type(error).__mro__):
        return ModelError("timeout", f"Anthropic went silent mid-answer: {error!r}")
    return ModelError("other", f"The connection to Anthropic failed mid-answer: {error!r}")


def map_error(error: anthropic.AnthropicError) -> ModelError:
    """The ModelError kind for an SDK exception (order matters: timeouts are connection errors)."""
    if isinstance(error, anthropic.APITimeoutError):
        return ModelError("timeout", f"The model request timed out: {error}")
    if isinstance(error, anthropic.APIStatusError):
        return _status_error(error)
    if isinstance(error, anthropic.APIConnectionError):
        return ModelError("other", f"Could not reach Anthropic: {error}")
    return ModelError("other", f"The Anthropic request failed: {error}")


class AnthropicModel:
    """Anthropic's endpoint. The HTTP client is created on first use and closed by aclose()."""

    def __init__(
        self,
        base_url: str = ANTHROPIC_DEFAULT_BASE_URL,
        api_key: str | None = None,
        timeout_seconds: float = 120.0,
    ) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self.timeout_seconds = timeout_seconds
        self._client: anthropic.AsyncAnthropic | None = None

    def check(self, handle: str) -> None:
        """Any model name is passed through; Anthropic itself decides whether it exists."""

    def _get_client(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            self._client = anthropic.AsyncAnthropic(
                base_url=self.base_url,
                # explicit, so that the SDK never looks for credentials elsewhere; a proxy
                # may need no key, the SDK insists on one
                api_key=self._api_key or "not-needed",
                max_retries=0,
                timeout=anthropic.Timeout(
                    self.timeout_seconds,
                    connect=min(CONNECT_TIMEOUT_SECONDS, self.timeout_seconds),
                ),
            )
        return self._client

    def payload(self, request: ModelRequest) -> dict[str, Any]:
        return request_body(request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        body = request_body(request)
        client = self._get_client()
        decoder = StreamDecoder()
        try:
            # The SDK's low-level call (as in openai_model.py): its auth, version header,
            # timeouts, status errors and SSE parser, each event handed over as parsed JSON
            # (no pydantic model per event), and the body sent exactly as ``payload`` shows it.
            events = await client.post(
                "/v1/messages",
                body=body,
                cast_to=object,
                stream=True,
                stream_cls=anthropic.AsyncStream[object],
            )
            try:
                async for event in events:
                    if isinstance(event, dict):
                        for item in decoder.feed(event):
                            yield item
            finally:
                await events.close()
        except anthropic.AnthropicError as error:
            raise map_error(error) from error
        except Exception as error:
            mapped = transport_error(error)
            if mapped is None:
                raise
            raise mapped from error
        if not decoder.text and not decoder.tool_calls:
            raise ModelError(
                "empty_response",
                f"The model returned no text and no tool call (stop_reason {decoder.stop_reason}).",
            )
        yield decoder.usage()

    async def list_model_names(self) -> list[str]:
        """Anthropic's model ids (``GET /v1/models``, every page)."""
        names = []
        try:
            async for model in self._get_client().models.list():
                names.append(model.id)
        except anthropic.AnthropicError as error:
            raise map_error(error) from error
        return names

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
