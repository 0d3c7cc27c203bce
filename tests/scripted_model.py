"""A ChatModel for service-level tests: answers from a script, can wait, fail or hang.

It stands in for the model port only; the HTTP adapters are tested against a real fake server.
With nothing scripted it echoes the last message; ``script`` holds the next answers (text,
tool calls, reasoning, finish reason), one per model call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from service.model import (
    ModelError,
    ModelRequest,
    ReasoningDelta,
    StreamItem,
    TextDelta,
    ToolCallDelta,
    Usage,
)


@dataclass
class Say:
    """One scripted answer."""

    text: str = ""
    calls: list[tuple[str, str]] = field(default_factory=list)  # (tool name, JSON arguments)
    reasoning: str = ""
    finish_reason: str | None = None
    reasoning_tokens: int | None = None


@dataclass
class ScriptedModel:
    delay: float = 0.0  # before the first token
    fail: str | None = None  # a ModelError kind to raise instead of answering
    crash: Exception | None = None  # an unexpected error to raise instead of answering
    requests: list[ModelRequest] = field(default_factory=list)
    release: asyncio.Event | None = None  # when set, wait for it before answering…
    hold_from: int = 0  # …from this call on (0: every call)
    script: list[Say] = field(default_factory=list)

    def check(self, handle: str) -> None:
        pass

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        self.requests.append(request)
        if self.release is not None and len(self.requests) > self.hold_from:
            await self.release.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise ModelError(self.fail, f"scripted {self.fail}")  # type: ignore[arg-type]
        if self.crash is not None:
            raise self.crash
        if self.script:
            say = self.script.pop(0)
            if say.reasoning:
                yield ReasoningDelta(say.reasoning)
            if say.text:
                yield TextDelta(say.text)
            for index, (name, arguments) in enumerate(say.calls):
                call_id = f"call-{len(self.requests)}-{index}"
                yield ToolCallDelta(index, call_id, name, "")
                yield ToolCallDelta(index, arguments=arguments)
            finish = say.finish_reason or ("tool_calls" if say.calls else "stop")
            yield Usage(len(request.messages), 1, finish, say.reasoning_tokens)
            return
        last = request.messages[-1].content
        words = f"echo: {last} [context={len(request.messages)}]".split(" ")
        for index, word in enumerate(words):
            yield TextDelta(word if index == 0 else " " + word)
        yield Usage(prompt_tokens=len(request.messages), completion_tokens=len(words))

    def payload(self, request: ModelRequest) -> dict[str, Any]:
        """What a test can compare: the request as plain data."""
        return {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "tools": [t.name for t in request.tools],
            "settings": dict(request.settings),
        }

    async def aclose(self) -> None:
        pass
