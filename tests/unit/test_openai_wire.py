"""The OpenAI request body and chunk parsing, without a network."""

from __future__ import annotations

import json

from adapters.openai_wire import RequestEncoder, chunk_usage, deltas, wire_message
from service.model import (
    ChatMessage,
    ModelRequest,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
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
