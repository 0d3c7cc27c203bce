"""A fake of Anthropic's Messages API over real HTTP (uvicorn + starlette in a background thread).

``POST /v1/messages`` streams Anthropic's SSE events (``message_start``, ``content_block_start``
/ ``_delta`` / ``_stop`` for thinking, text and tool_use blocks, ``message_delta`` with the stop
reason and usage, ``message_stop``). Its default answer is a function of the request, ``echo:
<last user text> [context=<n messages>]``; a test can script the next answers (``fake.script``):
thinking (``thinking_delta`` then ``signature_delta``), text, tool calls (``input_json_delta`` in
pieces), a stop reason. It checks what Anthropic checks (``x-api-key``, ``anthropic-version``,
``max_tokens``, alternating roles, tool results right after their calls, thinking before a
continued tool use) and answers errors in Anthropic's JSON shape and statuses; it can also fail
on request (``fake.failure``), hang, stall mid-answer, or fail mid-stream with an ``error``
event. ``GET /v1/models`` lists ``fake.models`` in pages. Every request is recorded.

Use it as a context manager or through the ``fake_anthropic`` fixture (one server per session,
reset before each test).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.served_app import ServedApp

Failure = Literal[
    "rate_limit",
    "auth",
    "permission",
    "server_error",
    "overloaded",
    "context_length",
    "too_large",
    "bad_request",
    "gateway_timeout",
    "overloaded_midstream",  # message_start, then an ``error`` event
    "hang",  # no response until ``hang_seconds`` pass (or the test ends)
    "stall",  # the first text delta, then silence
    "empty",  # a well-formed message with no content blocks
]

# failure -> (HTTP status, Anthropic error type, message)
ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (429, "rate_limit_error", "Number of request tokens exceeds your rate limit."),
    "auth": (401, "authentication_error", "invalid x-api-key"),
    "permission": (403, "permission_error", "Your API key does not have access to this model."),
    "server_error": (500, "api_error", "Internal server error"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "context_length": (400, "invalid_request_error", "prompt is too long: 210417 > 200000"),
    "too_large": (413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
    "bad_request": (400, "invalid_request_error", "temperature: range: 0..1"),
    "gateway_timeout": (504, "timeout_error", "Request timed out while processing."),
}


@dataclass
class Reply:
    """One scripted answer. Unset fields fall back to the echo answer and ``end_turn``."""

    text: str | None = None
    tool_calls: list[tuple[str, str]] = field(default_factory=list)  # (name, JSON input)
    thinking: str | None = None
    stop_reason: str | None = None
    cache_read_tokens: int = 0  # reported as cache_read_input_tokens


@dataclass
class Received:
    path: str
    body: dict[str, Any]
    api_key: str | None
    version: str | None
    received_at: float
    token_sent_at: list[float] = field(default_factory=list)


def texts_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") for b in content or [] if b.get("type") == "text")


def answer_for(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    users = [texts_of(m) for m in messages if m.get("role") == "user" and texts_of(m)]
    return f"echo: {users[-1] if users else ''} [context={len(messages)}]"


def words_of(text: str) -> list[str]:
    return [part if i == 0 else " " + part for i, part in enumerate(text.split(" "))]


def count_words(body: dict[str, Any]) -> int:
    system = str(body.get("system") or "")
    return len(system.split()) + sum(len(texts_of(m).split()) for m in body.get("messages") or [])


def problem(body: dict[str, Any]) -> str | None:
    """What Anthropic would refuse in this body (a 400 invalid_request_error), or None."""
    for required in ("model", "max_tokens", "messages"):
        if required not in body:
            return f"{required}: Field required"
    messages = body["messages"]
    if not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        if message.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if i and message["role"] == messages[i - 1]["role"]:
            return f'messages: roles must alternate, but found multiple "{message["role"]}" roles'
        blocks = message["content"] if isinstance(message["content"], list) else []
        if any(b.get("type") == "text" and not b.get("text") for b in blocks):
            return "messages: text content blocks must be non-empty"
        if not _results_follow(messages, i):
            return f"messages.{i}: `tool_use` ids were found without `tool_result` blocks after"
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "enabled":
        if thinking.get("budget_tokens", 0) >= body["max_tokens"]:
            return "max_tokens must be greater than thinking.budget_tokens"
        if _continued_without_thinking(messages):
            return (
                "messages: Expected `thinking` or `redacted_thinking`, but found `tool_use`. "
                "When `thinking` is enabled, a final `assistant` message must start with a "
                "thinking block."
            )
    return None


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return content if isinstance(content, list) else []


def _results_follow(messages: list[dict[str, Any]], i: int) -> bool:
    calls = [b["id"] for b in _blocks(messages[i]) if b.get("type") == "tool_use"]
    if not calls:
        return True
    after = _blocks(messages[i + 1]) if i + 1 < len(messages) else []
    results = [b for b in after if b.get("type") == "tool_result"]
    opening = after[: len(results)]
    return {b.get("tool_use_id") for b in opening if b.get("type") == "tool_result"} >= set(calls)


def _continued_without_thinking(messages: list[dict[str, Any]]) -> bool:
    last = messages[-1]
    if last["role"] != "user" or not any(b.get("type") == "tool_result" for b in _blocks(last)):
        return False
    previous = _blocks(messages[-2]) if len(messages) > 1 else []
    return bool(previous) and previous[0].get("type") not in ("thinking", "redacted_thinking")


def api_key_of(request: Request) -> str | None:
    """The key of ``x-api-key`` (Anthropic's header), or of a bearer token (newer SDKs)."""
    bearer = request.headers.get("authorization", "")
    found = request.headers.get("x-api-key") or bearer.removeprefix("Bearer ").strip()
    return found or None


def error_response(status: int, kind: str, message: str) -> Response:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_f"}
    return JSONResponse(body, status_code=status)


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps({'type': event, **data})}\n\n".encode()


class FakeAnthropic(ServedApp):
    name = "fake-anthropic"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._generation = 0  # bumped by reset(): hanging handlers give up
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._received.clear()
            self._generation += 1
        self.token_delay = 0.0  # seconds between text deltas
        self.word_by_word = True
        self.failure: Failure | None = None
        self.hang_seconds = 5.0
        self.api_key: str | None = None  # when set, other keys get a 401
        self.models = ["claude-fake", "claude-fake-mini"]
        self.page_size = 20  # models per page, as Anthropic's default limit
        self.script: list[Reply] = []
        self.model_queries: list[dict[str, str]] = []  # one per GET /v1/models

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    @property
    def base_url(self) -> str:
        """As ANTHROPIC_BASE_URL takes it: the SDK adds ``/v1/…``."""
        return f"http://127.0.0.1:{self.port}"

    # the app -----------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    def _refusal(self, request: Request) -> Response | None:
        key = api_key_of(request)
        if key is None:
            return error_response(401, "authentication_error", "x-api-key header is required")
        if self.api_key is not None and key != self.api_key:
            return error_response(*ERRORS["auth"])
        if not request.headers.get("anthropic-version"):
            message = "anthropic-version: header is required"
            return error_response(400, "invalid_request_error", message)
        return None

    async def _models(self, request: Request) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        self.model_queries.append(dict(request.query_params))
        after = request.query_params.get("after_id")
        start = self.models.index(after) + 1 if after in self.models else 0
        limit = int(request.query_params.get("limit") or self.page_size)
        page = self.models[start : start + min(limit, self.page_size)]
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
            for m in page
        ]
        return JSONResponse(
            {
                "data": data,
                "has_more": start + len(page) < len(self.models),
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            }
        )

    async def _hang(self, generation: int) -> None:
        deadline = time.monotonic() + self.hang_seconds
        while time.monotonic() < deadline and generation == self._generation and not self._stopping:
            await asyncio.sleep(0.01)

    async def _messages(self, request: Request) -> Response:
        body = await request.json()
        record = Received(
            request.url.path,
            body,
            api_key_of(request),
            request.headers.get("anthropic-version"),
            time.monotonic(),
        )
        with self._lock:
            self._received.append(record)
            generation = self._generation
        refused = self._refusal(request)
        if refused is not None:
            return refused
        failure = self.failure
        if failure in ERRORS:
            return error_response(*ERRORS[failure])
        if failure == "hang":
            await self._hang(generation)
            return error_response(*ERRORS["server_error"])
        found = problem(body)
        if found is not None:
            return error_response(400, "invalid_request_error", found)
        if not body.get("stream"):
            return error_response(400, "invalid_request_error", "this fake only streams")
        with self._lock:
            reply = self.script.pop(0) if self.script else Reply()
        events = self._events(body, reply, record, generation)
        return StreamingResponse(events, media_type="text/event-stream")

    async def _events(
        self, body: dict[str, Any], reply: Reply, record: Received, generation: int
    ) -> AsyncIterator[bytes]:
        failure = self.failure
        scripted = reply.text is not None or reply.tool_calls
        text = "" if failure == "empty" else (reply.text or "") if scripted else answer_for(body)
        calls = [] if failure == "empty" else reply.tool_calls
        usage = {"input_tokens": count_words(body), "output_tokens": 1}
        usage["cache_read_input_tokens"] = reply.cache_read_tokens
        message: dict[str, Any] = {"id": f"msg_{uuid.uuid4().hex[:8]}", "type": "message"}
        message.update(role="assistant", model=body["model"], content=[], usage=usage)
        message.update(stop_reason=None, stop_sequence=None)
        yield sse("message_start", {"message": message})
        yield sse("ping", {})
        if failure == "overloaded_midstream":
            _, kind, detail = ERRORS["overloaded"]
            yield sse("error", {"error": {"type": kind, "message": detail}})
            return
        index = 0
        if reply.thinking and failure != "empty":
            for frame in thinking_block(reply.thinking):
                yield frame
            index = 1
        if text:  # word by word, with the test's delays
            start = {"type": "text", "text": ""}
            yield sse("content_block_start", {"index": index, "content_block": start})
            for n, piece in enumerate(words_of(text) if self.word_by_word else [text]):
                if n and self.token_delay:
                    await asyncio.sleep(self.token_delay)
                record.token_sent_at.append(time.monotonic())
                delta = {"type": "text_delta", "text": piece}
                yield sse("content_block_delta", {"index": index, "delta": delta})
                if failure == "stall":
                    await self._hang(generation)
                    return
            yield sse("content_block_stop", {"index": index})
            index += 1
        for name, arguments in calls:
            for frame in tool_use_block(index, name, arguments):
                yield frame
            index += 1
        stop = reply.stop_reason or ("tool_use" if calls else "end_turn")
        output = {"output_tokens": len(text.split()) + len((reply.thinking or "").split())}
        end = {"stop_reason": stop, "stop_sequence": None}
        yield sse("message_delta", {"delta": end, "usage": output})
        yield sse("message_stop", {})


def block(index: int, start: dict[str, Any], deltas: list[dict[str, Any]]) -> list[bytes]:
    """One content block's frames: its start, its deltas, its stop."""
    return [
        sse("content_block_start", {"index": index, "content_block": start}),
        *(sse("content_block_delta", {"index": index, "delta": d}) for d in deltas),
        sse("content_block_stop", {"index": index}),
    ]


def thinking_block(thinking: str) -> list[bytes]:
    """Block 0: the thinking in pieces, then its signature (which convlog does not keep)."""
    deltas = [{"type": "thinking_delta", "thinking": p} for p in words_of(thinking)]
    deltas.append({"type": "signature_delta", "signature": "c2lnbmVk"})
    return block(0, {"type": "thinking", "thinking": "", "signature": ""}, deltas)


def tool_use_block(index: int, name: str, arguments: str) -> list[bytes]:
    """Like Anthropic: an empty ``input``, then the JSON in pieces (the first one empty)."""
    third = max(1, len(arguments) // 3)
    pieces = ["", *(arguments[i : i + third] for i in range(0, len(arguments), third))]
    start = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:12]}", "name": name, "input": {}}
    return block(index, start, [{"type": "input_json_delta", "partial_json": p} for p in pieces])


@pytest.fixture(scope="session")
def fake_anthropic_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def fake_anthropic(fake_anthropic_server: FakeAnthropic) -> Iterator[FakeAnthropic]:
    """The session's fake Anthropic server, with default behaviour and no recorded requests."""
    fake_anthropic_server.reset()
    yield fake_anthropic_server
    fake_anthropic_server.reset()  # also releases any handler still hanging
