"""The Anthropic adapter over real HTTP against the fake Messages API, when things go wrong:
thinking with tools, every provider failure, and the listing, router and settings checks.
"""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from adapters.anthropic_model import AnthropicModel
from adapters.models import ModelRouter, ProviderConfig, UnknownHandle, providers_from_env
from domain.errors import InvalidArgument
from domain.model_settings import check_model_settings
from service.model import (
    ChatMessage,
    ModelError,
    StreamItem,
    TextDelta,
    ToolCall,
)
from tests.fake_anthropic import FakeAnthropic, Reply
from tests.integration.anthropic_support import (
    ANSWER,
    CONTEXT,
    HANDLE,
    THINKING,
    TOOL,
    adapter,
    ask,
    failure_of,
    fold,
    run,
    sent,
)


def test_thinking_with_tools_is_refused_before_anything_is_sent(
    fake_anthropic: FakeAnthropic,
) -> None:
    model = adapter(fake_anthropic)
    thinking = {"thinking": THINKING}
    call = ToolCall("toolu_1", "memory_insert", "{}")
    continued = [
        *CONTEXT,
        ChatMessage("assistant", "", (call,)),
        ChatMessage("tool", "ok", tool_call_id="toolu_1"),
    ]
    for request in (ask(tools=(TOOL,), settings=thinking), ask(continued, settings=thinking)):
        error = failure_of(model, request)
        assert error.kind == "other" and "thinking" in error.detail
        with pytest.raises(ModelError):
            model.payload(request)
    assert fake_anthropic.requests == []
    # no tool can be called: thinking is fine; so are tools without thinking
    run(model, ask(tools=(TOOL,), tool_choice="none", settings=thinking))
    run(model, ask(continued, settings={"thinking": {"type": "disabled"}}))
    assert len(fake_anthropic.requests) == 2


def test_why_anthropic_refuses_a_continued_tool_use_without_its_thinking(
    fake_anthropic: FakeAnthropic,
) -> None:
    """The fake checks what Anthropic checks: the signed thinking block must come back."""
    body = {
        "model": "claude-fake",
        "max_tokens": 4096,
        "stream": True,
        "thinking": THINKING,
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "x", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}],
            },
        ],
    }
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    response = httpx.post(f"{fake_anthropic.base_url}/v1/messages", json=body, headers=headers)
    assert response.status_code == 400
    assert "must start with a thinking block" in response.json()["error"]["message"]


# failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        ("rate_limit", "rate_limit"),
        ("auth", "authentication"),
        ("permission", "authentication"),
        ("context_length", "context_window"),
        ("too_large", "context_window"),
        ("bad_request", "other"),
        ("server_error", "other"),
        ("overloaded", "other"),
        ("overloaded_midstream", "other"),
        ("gateway_timeout", "timeout"),
        ("empty", "empty_response"),
    ],
)
def test_provider_failures_map_to_model_error_kinds(
    fake_anthropic: FakeAnthropic, failure: str, kind: str
) -> None:
    fake_anthropic.failure = failure  # type: ignore[assignment]
    error = failure_of(adapter(fake_anthropic), ask())
    assert error.kind == kind and error.detail
    assert len(fake_anthropic.requests) == 1  # no retries behind the server's back


def test_thinking_without_text_or_call_is_an_empty_response(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script = [Reply(text="", thinking="hmm", stop_reason="max_tokens")]
    error = failure_of(adapter(fake_anthropic), ask(settings={"thinking": THINKING}))
    assert error.kind == "empty_response" and "max_tokens" in error.detail


def test_a_wrong_api_key_is_an_authentication_error(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.api_key = "sk-right"
    assert failure_of(adapter(fake_anthropic, key="sk-wrong"), ask()).kind == "authentication"
    assert fold(run(adapter(fake_anthropic, key="sk-right"), ask())).text == ANSWER


def test_a_provider_that_never_answers_times_out(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.failure = "hang"
    started = time.monotonic()
    assert failure_of(adapter(fake_anthropic, timeout=0.3), ask()).kind == "timeout"
    assert time.monotonic() - started < fake_anthropic.hang_seconds


def test_a_provider_that_stalls_mid_answer_times_out(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.failure = "stall"
    received: list[StreamItem] = []

    async def consume() -> None:
        # Long enough for the first token on a loaded machine; the stall lasts hang_seconds.
        model = adapter(fake_anthropic, timeout=1.0)
        try:
            async for item in model.stream(ask()):
                received.append(item)
        finally:
            await model.aclose()

    with pytest.raises(ModelError) as caught:
        asyncio.run(consume())
    assert caught.value.kind == "timeout"
    assert received == [TextDelta("echo:")]


def test_an_unreachable_provider_is_another_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = AnthropicModel(f"http://127.0.0.1:{port}", "k", timeout_seconds=2)
    assert failure_of(model, ask()).kind == "other"


def test_a_wrong_endpoint_path_is_another_error(fake_anthropic: FakeAnthropic) -> None:
    model = AnthropicModel(f"{fake_anthropic.base_url}/nowhere", "k", 5)
    error = failure_of(model, ask())
    assert error.kind == "other" and "404" in error.detail


# models, router, settings ---------------------------------------------------------------------


def test_model_names_are_listed_across_pages(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.models = ["claude-a", "claude-b", "claude-c"]
    fake_anthropic.page_size = 2

    async def names() -> list[str]:
        model = adapter(fake_anthropic)
        try:
            return await model.list_model_names()
        finally:
            await model.aclose()

    assert asyncio.run(names()) == ["claude-a", "claude-b", "claude-c"]
    assert [q.get("after_id") for q in fake_anthropic.model_queries] == [None, "claude-b"]


def test_anthropic_is_configured_from_its_own_variables() -> None:
    assert providers_from_env({"ANTHROPIC_API_KEY": "sk-ant"}) == {
        "anthropic": ProviderConfig("https://api.anthropic.com", "sk-ant", "anthropic")
    }
    env = {"ANTHROPIC_BASE_URL": "http://localhost:9", "OPENAI_BASE_URL": "http://localhost:1/v1"}
    assert providers_from_env(env) == {
        "anthropic": ProviderConfig("http://localhost:9", None, "anthropic"),
        "openai": ProviderConfig("http://localhost:1/v1"),
    }
    # Anthropic's OpenAI-compatible endpoint still works the old way, but not both at once
    compatible = {"PROVIDER_ANTHROPIC_BASE_URL": "http://localhost:2/v1"}
    assert providers_from_env(compatible)["anthropic"].wire == "openai"
    with pytest.raises(ValueError, match="configured twice"):
        providers_from_env({**compatible, "ANTHROPIC_API_KEY": "sk-ant"})
    assert "sk-ant" not in repr(providers_from_env({"ANTHROPIC_API_KEY": "sk-ant"}))
    with pytest.raises(UnknownHandle, match="ANTHROPIC_API_KEY"):
        ModelRouter({}).check("anthropic/claude-x")


def test_the_router_serves_and_lists_anthropic(fake_anthropic: FakeAnthropic) -> None:
    router = ModelRouter(providers_from_env({"ANTHROPIC_BASE_URL": fake_anthropic.base_url}))
    assert isinstance(router.adapter_for("anthropic/claude-x"), AnthropicModel)

    async def scenario() -> tuple[str, list[tuple[str, str, str]]]:
        try:
            items = [item async for item in router.stream(ask())]
            models = await router.list_models()
        finally:
            await router.aclose()
        return fold(items).text, [(m.handle, m.provider, m.endpoint_type) for m in models]

    text, models = asyncio.run(scenario())
    assert text == ANSWER and sent(fake_anthropic)["model"] == "claude-fake"
    assert models == [
        ("convlog/builtin", "convlog", "convlog"),
        ("anthropic/claude-fake", "anthropic", "anthropic"),
        ("anthropic/claude-fake-mini", "anthropic", "anthropic"),
    ]
    assert router.endpoint(HANDLE) == fake_anthropic.base_url


def test_model_settings_are_checked_against_the_handles_provider() -> None:
    anthropic_only = {"thinking": THINKING, "top_k": 5}
    openai_only = {"frequency_penalty": 0.5, "reasoning": {"reasoning_effort": "low"}}
    check_model_settings({**anthropic_only, **openai_only})  # no handle: either set
    check_model_settings(anthropic_only, HANDLE)
    check_model_settings(openai_only, "openai/gpt-4o")
    with pytest.raises(InvalidArgument, match=r"thinking, top_k not supported for openai/gpt-4o"):
        check_model_settings(anthropic_only, "openai/gpt-4o")
    with pytest.raises(InvalidArgument, match=r"frequency_penalty, reasoning not supported for"):
        check_model_settings(openai_only, HANDLE)
    check_model_settings({"frequency_penalty": None, "temperature": 1}, HANDLE)  # None is unset
    with pytest.raises(InvalidArgument, match="not supported by this server"):
        check_model_settings({"bogus": 1}, HANDLE)
    for thinking in (
        {"type": "enabled"},
        {"type": "on"},
        {"type": "enabled", "budget_tokens": "x"},
    ):
        with pytest.raises(InvalidArgument, match="thinking"):
            check_model_settings({"thinking": thinking})
    check_model_settings({"thinking": {"type": "disabled"}}, HANDLE)
