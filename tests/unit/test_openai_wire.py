"""The OpenAI request body and chunk parsing, without a network."""

from __future__ import annotations

import json

import pytest

from adapters.openai_wire import (
    RequestEncoder,
    chunk_usage,
    completion_options,
    deltas,
    tool_options,
    wire_message,
)
from domain.errors import InvalidArgument
from domain.model_settings import check_model_settings
from service.model import (
    ChatMessage,
    ModelRequest,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)

CALL = ToolCall("call_1", "memory_insert", '{"label": "human"}')
CONTEXT = [
    ChatMessage("system", "sys"),
    ChatMessage("user", 'héllo "there"'),
    ChatMessage("assistant", "", (CALL,)),
    ChatMessage("tool", "ok", tool_call_id="call_1"),
]


def test_the_body_is_the_json_of_the_request() -> None:
    request = ModelRequest("openai/gpt-x", CONTEXT)
    body = json.loads(RequestEncoder().body(request, {"stream": True, "temperature": 0.5}))
    assert body == {
        "messages": [wire_message(m) for m in CONTEXT],
        "model": "gpt-x",
        "stream": True,
        "temperature": 0.5,
    }
    assert body["messages"][2]["tool_calls"][0]["function"]["name"] == "memory_insert"


def test_each_message_is_encoded_once_and_the_cache_is_bounded() -> None:
    encoder = RequestEncoder(capacity=3)
    first = encoder.message(CONTEXT[1])
    assert encoder.message(ChatMessage("user", 'héllo "there"')) is first
    for message in CONTEXT:
        encoder.message(message)
    assert len(encoder._encoded) == 3


def test_deltas_and_usage_of_a_chunk() -> None:
    delta = {
        "reasoning_content": "hmm",
        "content": "Hi",
        "tool_calls": [{"index": 1, "id": "c", "function": {"name": "f", "arguments": "{"}}],
    }
    assert deltas(delta) == [
        ReasoningDelta("hmm"),
        TextDelta("Hi"),
        ToolCallDelta(1, "c", "f", "{"),
    ]
    assert deltas({"reasoning": "or this"}) == [ReasoningDelta("or this")]
    raw = {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    assert chunk_usage(raw) == Usage(3, 4, reasoning_tokens=2)
    assert chunk_usage(None) is None


def test_every_model_setting_reaches_the_request_and_unknown_ones_are_refused() -> None:
    settings = {
        "temperature": 0.1,
        "top_p": 0.9,
        "max_output_tokens": 77,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.25,
        "seed": 7,
        "stop": ["END"],
        "response_format": {"type": "json_object"},
        "reasoning": {"reasoning_effort": "low"},
        "verbosity": "low",
        "parallel_tool_calls": True,
        "strict": True,
        "provider_type": "openai",
    }
    check_model_settings(settings)
    tool = ToolSpec("t", "d", {"type": "object", "properties": {}})
    with_tools = ModelRequest("openai/x", CONTEXT, settings, tools=(tool,))
    options = {**completion_options(settings, True), **tool_options(with_tools)}
    assert {k: v for k, v in options.items() if k != "tools"} == {
        "temperature": 0.1,
        "top_p": 0.9,
        "max_tokens": 77,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.25,
        "seed": 7,
        "stop": ["END"],
        "response_format": {"type": "json_object"},
        "reasoning_effort": "low",
        "verbosity": "low",
        "parallel_tool_calls": True,
    }
    assert options["tools"][0]["function"]["strict"] is True
    # No tools: no parallel_tool_calls (OpenAI refuses it); tool rules force one at a time.
    assert "parallel_tool_calls" not in completion_options(settings, False)
    ruled = ModelRequest("openai/x", CONTEXT, settings, tools=(tool,), parallel_tool_calls=False)
    assert {**completion_options(settings, True), **tool_options(ruled)}[
        "parallel_tool_calls"
    ] is False
    with pytest.raises(InvalidArgument, match="thinking"):
        check_model_settings({"temperature": 1, "thinking": {"type": "enabled"}})
    with pytest.raises(InvalidArgument, match="reasoning"):
        check_model_settings({"reasoning": {"summary": "auto"}})
