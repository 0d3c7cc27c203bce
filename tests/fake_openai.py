"""A fake OpenAI-compatible server over real HTTP (uvicorn + starlette in a background thread).

Its answer is a function of the request, ``echo: <last user message> [context=<n messages>]``,
so a test can prove what context a turn sent. A test can also script the next answers
(``fake.script``): tool calls (streamed as OpenAI does: id and name first, then argument
fragments; several calls in parallel), reasoning (``reasoning_content`` deltas), a text, a
``finish_reason``. Per test it can wait before the first token and
between tokens, stream word by word or in one piece, fail the way real providers do (429, 401,
403, 500, 400 context_length_exceeded, a plain 400, a hang before or during the answer, an empty
answer), require an API key, and it records every request it received (thread-safe).

Without a script, a prompt that names tool calls (``[[call Bash {"command": "ls"}]]``) gets
those calls when the tools are offered, and the results are answered ``tool said: <result>``:
how the Letta Code tests make it run a client tool.

Use it as a context manager (``with FakeOpenAI() as fake: fake.base_url``) or through the
``fake_openai`` fixture (one server per session, reset before each test).
"""

from __future__ import annotations

import asyncio
import json
import re
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
    "rate_limit",  # HTTP 429
    "auth",  # HTTP 401
    "permission",  # HTTP 403
    "server_error",  # HTTP 500
    "context_length",  # HTTP 400 code context_length_exceeded
    "bad_request",  # HTTP 400, some other problem
    "hang",  # no response at all until ``hang_seconds`` pass (or the test ends)
    "stall",  # the first token, then silence until ``hang_seconds`` pass (or the test ends)
    "empty",  # a well-formed answer with no content
]

ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "rate_limit": (
        429,
        {
            "message": "Rate limit reached for requests on tokens per min (TPM): Limit 1000.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        },
    ),
    "auth": (
        401,
        {
            "message": "Incorrect API key provided. You can find your API key on the dashboard.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        },
    ),
    "permission": (
        403,
        {
            "message": "You are not allowed to use this model.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_allowed",
        },
    ),
    "server_error": (
        500,
        {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        },
    ),
    "context_length": (
        400,
        {
            "message": "This model's maximum context length is 8192 tokens. However, your "
            "messages resulted in 9001 tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        },
    ),
    "bad_request": (
        400,
        {
            "message": "Invalid value for 'temperature': must be between 0 and 2.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "invalid_value",
        },
    ),
}


@dataclass
class Reply:
    """One scripted answer. Unset fields fall back to the echo answer and ``stop``."""

    content: str | None = None
    tool_calls: list[tuple[str, str]] = field(default_factory=list)  # (name, JSON arguments)
    reasoning: str | None = None
    finish_reason: str | None = None
    reasoning_tokens: int | None = None  # reported in usage, like OpenAI's reasoning models


@dataclass
class Received:
    """One request as the fake saw it, and when it sent each token of its answer."""

    path: str
    body: dict[str, Any]
    authorization: str | None
    received_at: float
    token_sent_at: list[float] = field(default_factory=list)


def answer_for(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    users = [m for m in messages if m.get("role") == "user"]
    last = users[-1].get("content", "") if users else ""
    return f"echo: {last} [context={len(messages)}]"


# A prompt names the tool calls it wants: ``[[call Bash {"command": "ls"}]]`` (one or more).
CALL = re.compile(r"\[\[call (\w+) (\{.*?\})\]\]", re.DOTALL)


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def called_tools(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The calls the last user message names (the deterministic rule for tool turns: a
    prompt that names offered tools gets calls to them, and their results are answered with
    ``tool said: <the last result>``)."""
    users = [m for m in messages if m.get("role") == "user"]
    return CALL.findall(text_of(users[-1])) if users else []


def words_of(text: str) -> list[str]:
    parts = text.split(" ")
    return [part if index == 0 else " " + part for index, part in enumerate(parts)]


def count_words(body: dict[str, Any]) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])


class FakeOpenAI(ServedApp):
    name = "fake-openai"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._generation = 0  # bumped by reset(): hanging handlers give up
        self.reset()

    # per-test behaviour ------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._received.clear()
            self._generation += 1
        self.first_token_delay = 0.0  # seconds before the first token
        self.token_delay = 0.0  # seconds between tokens
        self.word_by_word = True  # else the whole answer in one chunk
        self.failure: Failure | None = None
        self.hang_seconds = 5.0
        self.send_usage = True  # honour stream_options.include_usage
        self.api_key: str | None = None  # when set, other keys get a 401
        self.models = ["gpt-fake", "gpt-fake-mini"]
        self.script: list[Reply] = []  # answers for the next requests, in order
        # Answer "remember …" with a memory_insert call when that tool is offered (for the
        # benchmarks, which cannot script a fake in another process).
        self.remember_tool = False

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # the app -----------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    def _rule(self, body: dict[str, Any]) -> Reply:
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        offered = {t["function"]["name"] for t in body.get("tools") or []}
        content = text_of(last)
        called = called_tools(messages)
        if last.get("role") == "user" and any(name in offered for name, _ in called):
            return Reply(tool_calls=[(n, a) for n, a in called if n in offered])
        if last.get("role") == "tool" and called:
            return Reply(content=f"tool said: {content[:500]}")
        if (
            self.remember_tool
            and "memory_insert" in offered
            and last.get("role") == "user"
            and content.startswith("remember ")
        ):
            fact = content.removeprefix("remember ")
            arguments = json.dumps({"label": "human", "new_string": fact})
            return Reply(tool_calls=[("memory_insert", arguments)])
        return Reply()

    def _authorized(self, request: Request) -> bool:
        return self.api_key is None or request.headers.get("authorization") == (
            f"Bearer {self.api_key}"
        )

    async def _models(self, request: Request) -> Response:
        if not self._authorized(request):
            return _error(*ERRORS["auth"])
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def _hang(self, generation: int) -> None:
        deadline = time.monotonic() + self.hang_seconds
        while time.monotonic() < deadline and generation == self._generation and not self._stopping:
            await asyncio.sleep(0.01)

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        record = Received(
            path=request.url.path,
            body=body,
            authorization=request.headers.get("authorization"),
            received_at=time.monotonic(),
        )
        with self._lock:
            self._received.append(record)
            generation = self._generation
        if not self._authorized(request):
            return _error(*ERRORS["auth"])
        failure = self.failure
        if failure in ERRORS:
            return _error(*ERRORS[failure])
        if failure == "hang":
            await self._hang(generation)
            return _error(*ERRORS["server_error"])
        with self._lock:
            reply = self.script.pop(0) if self.script else self._rule(body)
        text = "" if failure == "empty" else answer_for(body)
        if reply.content is not None or reply.tool_calls:
            text = reply.content or ""
        pieces = (words_of(text) if self.word_by_word else [text]) if text else []
        calls = [
            (f"call_{uuid.uuid4().hex[:12]}", name, arguments)
            for name, arguments in reply.tool_calls
        ]
        finish_reason = reply.finish_reason or ("tool_calls" if calls else "stop")
        model = body.get("model", "gpt-fake")
        usage: dict[str, Any] = {
            "prompt_tokens": count_words(body),
            "completion_tokens": len(text.split()),
            "total_tokens": count_words(body) + len(text.split()),
        }
        if reply.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens}
        if not body.get("stream"):
            if self.first_token_delay:
                await asyncio.sleep(self.first_token_delay)
            record.token_sent_at.append(time.monotonic())
            return JSONResponse(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": finish_reason,
                        }
                    ],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        include_usage = include_usage and self.send_usage
        first_delay, token_delay = self.first_token_delay, self.token_delay

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            payload: dict[str, Any] = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if include_usage:
                payload["usage"] = None
            return _sse(payload)

        async def events() -> AsyncIterator[bytes]:
            yield chunk({"role": "assistant", "content": ""})
            if first_delay:
                await asyncio.sleep(first_delay)
            if reply.reasoning:
                for piece in words_of(reply.reasoning):
                    yield chunk({"reasoning_content": piece})
            for index, piece in enumerate(pieces):
                if index and token_delay:
                    await asyncio.sleep(token_delay)
                record.token_sent_at.append(time.monotonic())
                yield chunk({"content": piece})
                if failure == "stall":
                    await self._hang(generation)
                    return
            for index, (call_id, name, arguments) in enumerate(calls):
                yield chunk(_call_delta(index, call_id, name, ""))
                third = max(1, len(arguments) // 3)
                for start in range(0, len(arguments), third):
                    yield chunk(_call_delta(index, None, None, arguments[start : start + third]))
            yield chunk({}, finish_reason)
            if include_usage:
                yield _sse(
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")


def _call_delta(
    index: int, call_id: str | None, name: str | None, arguments: str
) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id is not None:
        call.update(id=call_id, type="function")
        call["function"]["name"] = name
    return {"tool_calls": [call]}


def _sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _error(status: int, error: dict[str, Any]) -> Response:
    return JSONResponse({"error": error}, status_code=status)


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The session's fake OpenAI server, with default behaviour and no recorded requests."""
    fake_openai_server.reset()
    yield fake_openai_server
    fake_openai_server.reset()  # also releases any handler still hanging
