"""What the Anthropic adapter tests share: a context, a tool, and how a request is run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.anthropic_model import AnthropicModel
from service.model import (
    Answer,
    AnswerBuilder,
    ChatMessage,
    ModelError,
    ModelRequest,
    StreamItem,
    ToolSpec,
)
from tests.fake_anthropic import FakeAnthropic

HANDLE = "anthropic/claude-fake"
CONTEXT = [
    ChatMessage("system", "You are terse."),
    ChatMessage("user", "hello there"),
    ChatMessage("assistant", "hi"),
    ChatMessage("user", "tell me about event logs"),
]
ANSWER = "echo: tell me about event logs [context=3]"
TOOL = ToolSpec(
    "memory_insert",
    "Insert text into a memory block.",
    {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]},
)
THINKING = {"type": "enabled", "budget_tokens": 2048}
PNG = "data:image/png;base64,iVBORw0KGgo="


def adapter(fake: FakeAnthropic, timeout: float = 5.0, key: str = "sk-ant-test") -> AnthropicModel:
    return AnthropicModel(fake.base_url, key, timeout_seconds=timeout)


def ask(messages: list[ChatMessage] = CONTEXT, **fields: Any) -> ModelRequest:
    settings = fields.pop("settings", {})
    return ModelRequest(HANDLE, messages, settings, **fields)


def run(model: AnthropicModel, request: ModelRequest) -> list[StreamItem]:
    async def collect() -> list[StreamItem]:
        try:
            return [item async for item in model.stream(request)]
        finally:
            await model.aclose()

    return asyncio.run(collect())


def fold(items: list[StreamItem]) -> Answer:
    builder = AnswerBuilder()
    for item in items:
        builder.add(item)
    return builder.answer()


def failure_of(model: AnthropicModel, request: ModelRequest) -> ModelError:
    with pytest.raises(ModelError) as caught:
        run(model, request)
    return caught.value


def sent(fake: FakeAnthropic) -> dict[str, Any]:
    return fake.requests[-1].body
