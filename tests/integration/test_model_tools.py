"""The OpenAI-compatible adapter speaking tool calls over real HTTP to the fake server:
tools in the request, streamed argument deltas, parallel calls, reasoning, finish_reason, and
tool messages sent back in OpenAI's shape.
"""

from __future__ import annotations

import asyncio
import json

from adapters.openai_model import OpenAICompatibleModel
from service.model import (
    AnswerBuilder,
    ChatMessage,
    ModelRequest,
    ReasoningDelta,
    StreamItem,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
)
from tests.fake_openai import FakeOpenAI, Reply

TOOL = ToolSpec(
    "memory_insert",
    "Insert text into a memory block.",
    {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]},
)


def stream(fake: FakeOpenAI, request: ModelRequest) -> list[StreamItem]:
    async def collect() -> list[StreamItem]:
        model = OpenAICompatibleModel(fake.base_url, "sk-test", timeout_seconds=5)
        try:
            return [item async for item in model.stream(request)]
        finally:
            await model.aclose()

    return asyncio.run(collect())


def ask(messages: list[ChatMessage], **fields: object) -> ModelRequest:
    return ModelRequest("openai/gpt-fake", messages, {}, **fields)  # type: ignore[arg-type]


def test_tools_go_out_as_function_tools(fake_openai: FakeOpenAI) -> None:
    stream(fake_openai, ask([ChatMessage("user", "hi")], tools=(TOOL,), parallel_tool_calls=False))
    body = fake_openai.requests[-1].body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "memory_insert",
                "description": TOOL.description,
                "parameters": dict(TOOL.parameters),
            },
        }
    ]
    assert body["parallel_tool_calls"] is False
    plain = stream(fake_openai, ask([ChatMessage("user", "hi")]))
    assert "tools" not in fake_openai.requests[-1].body and plain


def test_streamed_parallel_calls_fold_into_calls(fake_openai: FakeOpenAI) -> None:
    first = json.dumps({"label": "human", "new_string": "likes tea and long walks"})
    fake_openai.script = [Reply(tool_calls=[("memory_insert", first), ("lookup", "{}")])]
    items = stream(fake_openai, ask([ChatMessage("user", "go")], tools=(TOOL,)))
    deltas = [i for i in items if isinstance(i, ToolCallDelta)]
    assert len([d for d in deltas if d.index == 0]) > 2  # id+name, then argument fragments
    assert deltas[0].id and deltas[0].name == "memory_insert" and deltas[0].arguments == ""
    builder = AnswerBuilder()
    for item in items:
        builder.add(item)
    answer = builder.answer()
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [
        ("memory_insert", first),
        ("lookup", "{}"),
    ]
    assert answer.finish_reason == "tool_calls" and answer.text == ""


def test_reasoning_content_streams_as_reasoning(fake_openai: FakeOpenAI) -> None:
    fake_openai.script = [Reply(content="42", reasoning="Let me think about it")]
    items = stream(fake_openai, ask([ChatMessage("user", "why?")]))
    reasoning = "".join(i.text for i in items if isinstance(i, ReasoningDelta))
    assert reasoning == "Let me think about it"
    builder = AnswerBuilder()
    for item in items:
        builder.add(item)
    assert builder.answer().text == "42"


def test_a_cut_off_answer_reports_length(fake_openai: FakeOpenAI) -> None:
    fake_openai.script = [Reply(content="partial", finish_reason="length")]
    items = stream(fake_openai, ask([ChatMessage("user", "long")]))
    builder = AnswerBuilder()
    for item in items:
        builder.add(item)
    assert builder.answer().finish_reason == "length"


def test_tool_messages_go_back_in_openai_shape(fake_openai: FakeOpenAI) -> None:
    call = ToolCall("call_1", "memory_insert", '{"label": "human"}')
    context = [
        ChatMessage("system", "s"),
        ChatMessage("user", "go"),
        ChatMessage("assistant", "on it", (call,)),
        ChatMessage("tool", '{"status": "OK"}', tool_call_id="call_1"),
    ]
    stream(fake_openai, ask(context, tools=(TOOL,)))
    sent = fake_openai.requests[-1].body["messages"]
    assert sent[2] == {
        "role": "assistant",
        "content": "on it",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "memory_insert", "arguments": '{"label": "human"}'},
            }
        ],
    }
    assert sent[3] == {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "OK"}'}


def test_hidden_reasoning_is_counted_in_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.script = [Reply(content="4", reasoning_tokens=64)]
    items = stream(fake_openai, ask([ChatMessage("user", "2+2?")]))
    builder = AnswerBuilder()
    for item in items:
        builder.add(item)
    assert builder.answer().usage.reasoning_tokens == 64
