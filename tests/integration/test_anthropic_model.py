"""The Anthropic adapter over real HTTP against the fake Messages API: streaming text, thinking
and tool calls, usage and stop reasons, how a context is converted, settings, every failure,
``payload()``, the model listing, and the router and settings checks that lead to it.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from adapters.anthropic_wire import DEFAULT_MAX_TOKENS, UNPARSED_ARGUMENTS
from domain.model_settings import check_model_settings
from service.model import (
    ChatMessage,
    ReasoningDelta,
    StreamItem,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.integration.anthropic_support import (
    ANSWER,
    CONTEXT,
    HANDLE,
    PNG,
    THINKING,
    TOOL,
    adapter,
    ask,
    failure_of,
    fold,
    run,
    sent,
)

# streaming ------------------------------------------------------------------------------------


def test_text_streams_word_by_word_and_ends_with_anthropics_usage(
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.script = [Reply(text=ANSWER, cache_read_tokens=100)]
    items = run(adapter(fake_anthropic), ask())
    assert [type(i) for i in items] == [TextDelta] * len(ANSWER.split(" ")) + [Usage]
    assert fold(items).text == ANSWER
    # the fake counts words: 3 of system, 8 of messages, plus the cached prompt tokens
    assert items[-1] == Usage(prompt_tokens=111, completion_tokens=7, finish_reason="stop")
    (received,) = fake_anthropic.requests
    assert received.path == "/v1/messages"
    assert received.api_key == "sk-ant-test" and received.version
    body = received.body
    assert body["model"] == "claude-fake" and body["stream"] is True
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS
    assert body["system"] == "You are terse."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hello there"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "hi"}]},
        {"role": "user", "content": [{"type": "text", "text": "tell me about event logs"}]},
    ]


def test_deltas_arrive_while_the_model_is_still_producing(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.token_delay = 0.03
    arrivals: list[float] = []

    async def consume() -> None:
        model = adapter(fake_anthropic)
        try:
            async for item in model.stream(ask()):
                if isinstance(item, TextDelta):
                    arrivals.append(time.monotonic())
        finally:
            await model.aclose()

    asyncio.run(consume())
    sent_at = fake_anthropic.requests[0].token_sent_at
    assert len(arrivals) == len(sent_at) > 2 and arrivals[0] < sent_at[1]


def test_tool_calls_stream_id_and_name_then_argument_fragments(
    fake_anthropic: FakeAnthropic,
) -> None:
    first = json.dumps({"label": "human", "new_string": "likes tea and long walks"})
    fake_anthropic.script = [
        Reply(text="On it.", tool_calls=[("memory_insert", first), ("lookup", '{"q": 1}')])
    ]
    items = run(adapter(fake_anthropic), ask(tools=(TOOL,)))
    deltas = [i for i in items if isinstance(i, ToolCallDelta)]
    assert deltas[0].id and deltas[0].id.startswith("toolu_")
    assert (deltas[0].index, deltas[0].name, deltas[0].arguments) == (0, "memory_insert", "")
    assert len([d for d in deltas if d.index == 0 and d.arguments]) > 1  # in fragments
    assert all(d.id is None and d.name is None for d in deltas if d.arguments)
    answer = fold(items)
    # tool calls are numbered 0, 1 although the text block before them is content block 0
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [
        ("memory_insert", first),
        ("lookup", '{"q": 1}'),
    ]
    assert answer.text == "On it." and answer.finish_reason == "tool_calls"


def test_a_consumer_that_stops_early_leaves_the_adapter_usable(
    fake_anthropic: FakeAnthropic,
) -> None:
    fake_anthropic.token_delay = 0.01

    async def scenario() -> tuple[StreamItem, str]:
        model = adapter(fake_anthropic)
        try:
            stream = model.stream(ask())
            first = await anext(stream)
            await stream.aclose()  # type: ignore[attr-defined]
            return first, fold([item async for item in model.stream(ask())]).text
        finally:
            await model.aclose()

    assert asyncio.run(scenario()) == (TextDelta("echo:"), ANSWER)


def test_a_call_without_input_gets_empty_object_arguments(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script = [Reply(tool_calls=[("list_blocks", "")])]
    answer = fold(run(adapter(fake_anthropic), ask(tools=(TOOL,))))
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [("list_blocks", "{}")]


def test_thinking_streams_as_reasoning_before_the_text(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script = [Reply(text="42", thinking="Let me think about it")]
    items = run(adapter(fake_anthropic), ask(settings={"thinking": THINKING}))
    answer = fold(items)
    assert (answer.reasoning, answer.text) == ("Let me think about it", "42")
    assert isinstance(items[0], ReasoningDelta) and items[-1] == Usage(11, 6, "stop")
    body = sent(fake_anthropic)
    assert body["thinking"] == THINKING
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS + 2048  # the budget is part of max_tokens


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length")],
)
def test_stop_reasons_become_finish_reasons(
    fake_anthropic: FakeAnthropic, stop_reason: str, finish_reason: str
) -> None:
    fake_anthropic.script = [Reply(text="partial", stop_reason=stop_reason)]
    assert fold(run(adapter(fake_anthropic), ask())).finish_reason == finish_reason


# what is sent ---------------------------------------------------------------------------------


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def use(call_id: str, name: str, given: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": given}


def result(call_id: str, content: str | None = None) -> dict[str, Any]:
    block = {"type": "tool_result", "tool_use_id": call_id}
    return block if content is None else {**block, "content": content}


def test_a_tool_loop_goes_back_as_tool_use_and_tool_result_blocks(
    fake_anthropic: FakeAnthropic,
) -> None:
    calls = (
        ToolCall("toolu_1", "memory_insert", '{"label": "human"}'),
        ToolCall("toolu_2", "noop", ""),
        ToolCall("toolu_3", "broken", '{"label": '),
    )
    context = [
        ChatMessage("system", "s1"),
        ChatMessage("user", "go"),
        ChatMessage("user", "now"),
        ChatMessage("assistant", "on it", calls),
        ChatMessage("tool", '{"status": "OK"}', tool_call_id="toolu_1"),
        ChatMessage("tool", "done", tool_call_id="toolu_2"),
        ChatMessage("tool", "", tool_call_id="toolu_3"),
        ChatMessage("system", "s2"),
        ChatMessage("user", "and?"),
    ]
    items = run(adapter(fake_anthropic), ask(context, tools=(TOOL,)))
    assert fold(items).text == "echo: and? [context=3]"  # the fake accepted the shape
    body = sent(fake_anthropic)
    assert body["system"] == "s1\n\ns2"
    assert body["messages"] == [
        {"role": "user", "content": [text("go"), text("now")]},
        {
            "role": "assistant",
            "content": [
                text("on it"),
                use("toolu_1", "memory_insert", {"label": "human"}),
                use("toolu_2", "noop", {}),
                use("toolu_3", "broken", {UNPARSED_ARGUMENTS: '{"label": '}),
            ],
        },
        {
            "role": "user",
            "content": [
                result("toolu_1", '{"status": "OK"}'),
                result("toolu_2", "done"),
                result("toolu_3"),
                text("and?"),
            ],
        },
    ]


def test_tool_results_open_their_user_message(fake_anthropic: FakeAnthropic) -> None:
    call = ToolCall("toolu_1", "memory_insert", "{}")
    context = [
        ChatMessage("user", "go"),
        ChatMessage("assistant", "", (call,)),
        ChatMessage("user", "also this"),
        ChatMessage("tool", "ok", tool_call_id="toolu_1"),
    ]
    run(adapter(fake_anthropic), ask(context, tools=(TOOL,)))
    last = sent(fake_anthropic)["messages"][-1]
    assert last == {"role": "user", "content": [result("toolu_1", "ok"), text("also this")]}


def test_images_go_as_url_or_base64_blocks(fake_anthropic: FakeAnthropic) -> None:
    url = "https://example.com/cat.jpg"
    context = [
        ChatMessage("user", "what is this?", images=(url, PNG)),
        ChatMessage("user", "", images=(url,)),
    ]
    run(adapter(fake_anthropic), ask(context))
    (message,) = sent(fake_anthropic)["messages"]
    url_block = {"type": "image", "source": {"type": "url", "url": url}}
    assert message["content"] == [
        {"type": "text", "text": "what is this?"},
        url_block,
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        url_block,
    ]
    assert "system" not in sent(fake_anthropic)


def test_an_image_data_url_that_is_not_base64_is_refused(fake_anthropic: FakeAnthropic) -> None:
    context = [ChatMessage("user", "see", images=("data:image/png,%89PNG",))]
    error = failure_of(adapter(fake_anthropic), ask(context))
    assert error.kind == "other" and "base64" in error.detail
    assert fake_anthropic.requests == []


def test_tools_and_tool_choice(fake_anthropic: FakeAnthropic) -> None:
    model = adapter(fake_anthropic)
    expected_tool = {
        "name": "memory_insert",
        "input_schema": dict(TOOL.parameters),
        "description": TOOL.description,
    }
    cases: list[tuple[dict[str, Any], object]] = [
        ({}, None),
        ({"tool_choice": "auto"}, {"type": "auto"}),
        ({"tool_choice": "required"}, {"type": "any"}),
        ({"tool_choice": "none"}, {"type": "none"}),
        ({"tool_choice": "memory_insert"}, {"type": "tool", "name": "memory_insert"}),
        ({"parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        (
            {"tool_choice": "required", "parallel_tool_calls": False},
            {"type": "any", "disable_parallel_tool_use": True},
        ),
        ({"tool_choice": "none", "parallel_tool_calls": False}, {"type": "none"}),
        (
            {"settings": {"parallel_tool_calls": False}},
            {"type": "auto", "disable_parallel_tool_use": True},
        ),
        ({"parallel_tool_calls": True}, None),
    ]
    for fields, choice in cases:
        run(model, ask(tools=(TOOL,), **fields))
        body = sent(fake_anthropic)
        assert body["tools"] == [expected_tool], fields
        assert body.get("tool_choice") == choice, fields
    run(model, ask(parallel_tool_calls=False))
    assert "tools" not in sent(fake_anthropic) and "tool_choice" not in sent(fake_anthropic)


def test_settings_become_messages_api_fields(fake_anthropic: FakeAnthropic) -> None:
    settings = {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "max_output_tokens": 64,
        "stop": "END",
        "provider_type": "anthropic",
        "parallel_tool_calls": None,
    }
    check_model_settings(settings, HANDLE)
    run(adapter(fake_anthropic), ask(settings=settings))
    run(
        adapter(fake_anthropic),
        ask(settings={"max_tokens": 32, "stop": ["A", "B"], "temperature": None}),
    )
    first, second = (r.body for r in fake_anthropic.requests)
    assert {k: first[k] for k in ("temperature", "top_p", "top_k", "max_tokens")} == {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "max_tokens": 64,
    }
    assert first["stop_sequences"] == ["END"]
    assert not {"stop", "max_output_tokens", "provider_type", "parallel_tool_calls"} & set(first)
    assert (second["max_tokens"], second["stop_sequences"]) == (32, ["A", "B"])
    assert "temperature" not in second


def test_payload_is_exactly_what_the_provider_receives(fake_anthropic: FakeAnthropic) -> None:
    context = [*CONTEXT, ChatMessage("user", "look", images=(PNG,))]
    request = ask(context, tools=(TOOL,), parallel_tool_calls=False, settings={"temperature": 0.5})
    model = adapter(fake_anthropic)
    payload = model.payload(request)
    assert fake_anthropic.requests == []  # payload sends nothing
    run(model, request)
    assert sent(fake_anthropic) == payload


# thinking with tools --------------------------------------------------------------------------
