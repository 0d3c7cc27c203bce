"""A ChatModel for service-level tests: answers from a script, can wait, fail or hang.

It stands in for the model port only; the HTTP adapters are tested against a real fake server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from service.model import ModelError, ModelRequest, TextDelta, Usage


@dataclass
class ScriptedModel:
    delay: float = 0.0  # before the first token
    fail: str | None = None  # a ModelError kind to raise instead of answering
    requests: list[ModelRequest] = field(default_factory=list)
    release: asyncio.Event | None = None  # when set, wait for it before answering

    def check(self, handle: str) -> None:
        pass

    async def stream(self, request: ModelRequest) -> AsyncIterator[TextDelta | Usage]:
        self.requests.append(request)
        if self.release is not None:
            await self.release.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise ModelError(self.fail, f"scripted {self.fail}")  # type: ignore[arg-type]
        last = request.messages[-1].content
        words = f"echo: {last} [context={len(request.messages)}]".split(" ")
        for index, word in enumerate(words):
            yield TextDelta(word if index == 0 else " " + word)
        yield Usage(prompt_tokens=len(request.messages), completion_tokens=len(words))

    async def aclose(self) -> None:
        pass
