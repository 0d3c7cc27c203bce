"""The OpenAI-compatible adapter and the router, over real HTTP against the fake server."""

from __future__ import annotations

import asyncio
import math
import socket
import time

import openai
import pytest
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from adapters.models import (
    OPENAI_DEFAULT_BASE_URL,
    ModelRouter,
    ProviderConfig,
    UnknownHandle,
    providers_from_env,
)
from adapters.openai_model import OpenAICompatibleModel, SSEDecoder
from service.model import (
    ChatMessage,
    ChatModel,
    ModelError,
    ModelRequest,
    StreamItem,
    TextDelta,
    UnknownModel,
    Usage,
)
from tests.fake_openai import FakeOpenAI
from tests.served_app import ServedApp

CONTEXT = [
    ChatMessage("system", "You are terse."),
    ChatMessage("user", "hello there"),
    ChatMessage("assistant", "hi"),
    ChatMessage("user", "tell me about event logs please"),
]
ANSWER = "echo: tell me about event logs please [context=4]"


async def collect(model: ChatModel, request: ModelRequest) -> list[StreamItem]:
    try:
        return [item async for item in model.stream(request)]
    finally:
        await model.aclose()


def run(model: ChatModel, request: ModelRequest) -> list[StreamItem]:
    return asyncio.run(collect(model, request))


def failure_of(model: ChatModel, request: ModelRequest) -> ModelError:
    with pytest.raises(ModelError) as caught:
        run(model, request)
    return caught.value


def text_of(items: list[StreamItem]) -> str:
    return "".join(item.text for item in items if isinstance(item, TextDelta))


def adapter(fake: FakeOpenAI, timeout: float = 5.0, key: str = "sk-test") -> OpenAICompatibleModel:
    return OpenAICompatibleModel(fake.base_url, key, timeout_seconds=timeout)


def request(handle: str = "openai/gpt-fake", **settings: object) -> ModelRequest:
    return ModelRequest(handle, CONTEXT, settings)


# streaming ------------------------------------------------------------------------------------


def test_streams_the_answer_word_by_word_and_ends_with_the_servers_usage(
    fake_openai: FakeOpenAI,
) -> None:
    items = run(adapter(fake_openai), request())
    assert text_of(items) == ANSWER
    assert [type(item) for item in items] == [TextDelta] * len(ANSWER.split(" ")) + [Usage]
    assert items[-1] == Usage(
        prompt_tokens=12, completion_tokens=8, finish_reason="stop"
    )  # the fake counts words
    (received,) = fake_openai.requests
    assert received.body["model"] == "gpt-fake"
    assert received.body["stream"] is True
    assert received.body["stream_options"] == {"include_usage": True}
    assert received.body["messages"] == [{"role": m.role, "content": m.content} for m in CONTEXT]
    assert received.authorization == "Bearer sk-test"


def test_deltas_arrive_while_the_model_is_still_producing(fake_openai: FakeOpenAI) -> None:
    fake_openai.token_delay = 0.03  # 9 words: the last one is sent ~0.24 s after the first
    arrivals: list[float] = []

    async def consume() -> None:
        model = adapter(fake_openai)
        try:
            async for item in model.stream(request()):
                if isinstance(item, TextDelta):
                    arrivals.append(time.monotonic())
        finally:
            await model.aclose()

    asyncio.run(consume())
    (received,) = fake_openai.requests
    sent = received.token_sent_at
    assert len(arrivals) == len(sent) == len(ANSWER.split(" "))
    assert arrivals[0] < sent[-1]  # the first word was delivered before the last was produced
    assert arrivals[0] < sent[1]  # indeed before the second one


def test_one_chunk_answers_work_too(fake_openai: FakeOpenAI) -> None:
    fake_openai.word_by_word = False
    items = run(adapter(fake_openai), request())
    assert items[0] == TextDelta(ANSWER)
    assert isinstance(items[1], Usage) and len(items) == 2


def test_usage_is_estimated_when_the_server_sends_none(fake_openai: FakeOpenAI) -> None:
    fake_openai.send_usage = False
    items = run(adapter(fake_openai), request())
    assert text_of(items) == ANSWER
    prompt = sum(math.ceil(len(m.content) / 4) for m in CONTEXT)
    assert items[-1] == Usage(
        prompt_tokens=prompt, completion_tokens=math.ceil(len(ANSWER) / 4), finish_reason="stop"
    )


def test_settings_are_passed_through(fake_openai: FakeOpenAI) -> None:
    run(adapter(fake_openai), request(temperature=0.2, top_p=0.9, max_output_tokens=64, x=1))
    run(adapter(fake_openai), request(max_tokens=32, temperature=None))
    first, second = (r.body for r in fake_openai.requests)
    assert (first["temperature"], first["top_p"], first["max_tokens"]) == (0.2, 0.9, 64)
    assert "x" not in first and "max_output_tokens" not in first
    assert second["max_tokens"] == 32
    assert "temperature" not in second and "top_p" not in second


def test_a_consumer_that_stops_early_leaves_the_adapter_usable(fake_openai: FakeOpenAI) -> None:
    fake_openai.token_delay = 0.01

    async def scenario() -> str:
        model = adapter(fake_openai)
        try:
            stream = model.stream(request())
            first = await anext(stream)
            await stream.aclose()  # type: ignore[attr-defined]
            assert first == TextDelta("echo:")
            return text_of([item async for item in model.stream(request())])
        finally:
            await model.aclose()

    assert asyncio.run(scenario()) == ANSWER


# failures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        ("rate_limit", "rate_limit"),
        ("auth", "authentication"),
        ("permission", "authentication"),
        ("context_length", "context_window"),
        ("bad_request", "other"),
        ("server_error", "other"),
        ("empty", "empty_response"),
    ],
)
def test_provider_failures_map_to_model_error_kinds(
    fake_openai: FakeOpenAI, failure: str, kind: str
) -> None:
    fake_openai.failure = failure  # type: ignore[assignment]
    error = failure_of(adapter(fake_openai), request())
    assert error.kind == kind
    assert error.detail
    assert len(fake_openai.requests) == 1  # no retries behind the server's back


def test_a_wrong_api_key_is_an_authentication_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.api_key = "sk-right"
    assert failure_of(adapter(fake_openai, key="sk-wrong"), request()).kind == "authentication"
    assert text_of(run(adapter(fake_openai, key="sk-right"), request())) == ANSWER


def test_a_provider_that_never_answers_times_out(fake_openai: FakeOpenAI) -> None:
    fake_openai.failure = "hang"
    started = time.monotonic()
    error = failure_of(adapter(fake_openai, timeout=0.3), request())
    assert error.kind == "timeout"
    assert time.monotonic() - started < fake_openai.hang_seconds


def test_a_provider_that_stalls_mid_answer_times_out(fake_openai: FakeOpenAI) -> None:
    fake_openai.failure = "stall"
    received: list[StreamItem] = []

    async def consume() -> None:
        model = adapter(fake_openai, timeout=0.3)
        try:
            async for item in model.stream(request()):
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
    model = OpenAICompatibleModel(f"http://127.0.0.1:{port}/v1", "k", timeout_seconds=2)
    assert failure_of(model, request()).kind == "other"


def test_a_wrong_endpoint_path_is_another_error(fake_openai: FakeOpenAI) -> None:
    model = OpenAICompatibleModel(fake_openai.base_url.removesuffix("/v1"), "k", 5)
    error = failure_of(model, request())
    assert error.kind == "other" and "404" in error.detail


# the event stream, read without the SDK -------------------------------------------------------

TRICKY_STREAM = (
    b"\xef\xbb\xbf: a comment\r\n\r\n"  # a BOM, a comment, an empty event: nothing
    b'event: message\r\nid: 1\r\nretry: 5\r\ndata: {"a":\r\ndata:1}\r\n\r\n'  # CRLF
    b"data:  two spaces\rbogus: x\r\r"  # CR alone; one space stripped; unknown field
    b"data\ndata: x\n\n"  # a bare "data" line is an empty data line
    b"event: ping\n\n"  # no data: not dispatched
    b"data: unfinished"  # never ended by a blank line: dropped
)
TRICKY_EVENTS = [b'{"a":\n1}', b" two spaces", b"\nx"]


def test_the_sse_decoder_follows_the_event_stream_rules_across_any_split() -> None:
    def decode(*chunks: bytes) -> list[bytes]:
        decoder = SSEDecoder()
        return [data for chunk in chunks for data in decoder.feed(chunk)]

    assert decode(TRICKY_STREAM) == TRICKY_EVENTS
    assert decode(*(TRICKY_STREAM[i : i + 1] for i in range(len(TRICKY_STREAM)))) == TRICKY_EVENTS
    for cut in range(len(TRICKY_STREAM) + 1):
        assert decode(TRICKY_STREAM[:cut], TRICKY_STREAM[cut:]) == TRICKY_EVENTS, cut


class RawEvents(ServedApp):
    """Answers every chat completion with ``body``, as an event stream."""

    name = "raw-events"
    body = b""

    def app(self) -> Starlette:
        async def chat(_: object) -> StreamingResponse:
            return StreamingResponse(iter([self.body]), media_type="text/event-stream")

        return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


TEXT_EVENT = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\r\n\r\n'


@pytest.mark.parametrize(
    ("error", "kind", "detail"),
    [
        (
            b'{"message":"overloaded","code":"busy"}',
            "other",
            "The model request failed: overloaded",
        ),
        (
            b'{"message":"too long","code":"context_length_exceeded"}',
            "context_window",
            "The context window was exceeded: too long",
        ),
        (b'"boom"', "other", "The model request failed: An error occurred during streaming"),
    ],
)
def test_an_error_event_in_the_stream_fails_the_turn(error: bytes, kind: str, detail: str) -> None:
    with RawEvents() as raw:
        raw.body = TEXT_EVENT + b'data: {"error":' + error + b"}\n\n"
        received: list[StreamItem] = []

        async def consume() -> None:
            model = OpenAICompatibleModel(f"http://127.0.0.1:{raw.port}/v1", None, 5)
            try:
                async for item in model.stream(request()):
                    received.append(item)
            finally:
                await model.aclose()

        with pytest.raises(ModelError) as caught:
            asyncio.run(consume())
    assert (caught.value.kind, caught.value.detail) == (kind, detail)
    assert received == [TextDelta("Hi")]


# the fake's other faces (kept honest so other tests can rely on them) --------------------------


def test_the_fake_answers_without_streaming_and_lists_models(fake_openai: FakeOpenAI) -> None:
    async def scenario() -> tuple[str | None, int, list[str]]:
        async with openai.AsyncOpenAI(base_url=fake_openai.base_url, api_key="k") as client:
            completion = await client.chat.completions.create(
                model="gpt-fake", messages=[{"role": "user", "content": "ping"}]
            )
            models = [model.id async for model in client.models.list()]
            assert completion.usage is not None
            return completion.choices[0].message.content, completion.usage.prompt_tokens, models

    assert asyncio.run(scenario()) == ("echo: ping [context=1]", 1, fake_openai.models)


# the router -----------------------------------------------------------------------------------


def test_providers_come_from_the_environment() -> None:
    assert providers_from_env({}) == {}
    assert providers_from_env({"OPENAI_API_KEY": "sk-1", "HOME": "/root"}) == {
        "openai": ProviderConfig(OPENAI_DEFAULT_BASE_URL, "sk-1")
    }
    env = {
        "OPENAI_BASE_URL": "http://localhost:1/v1",
        "PROVIDER_LOCAL_BASE_URL": "http://localhost:2/v1",
        "PROVIDER_TOGETHER_AI_BASE_URL": "http://localhost:3/v1",
        "PROVIDER_TOGETHER_AI_API_KEY": "tk",
        "PROVIDER_EMPTY_BASE_URL": "",
        "PROVIDER_UNRELATED": "x",
    }
    assert providers_from_env(env) == {
        "local": ProviderConfig("http://localhost:2/v1"),
        "openai": ProviderConfig("http://localhost:1/v1"),
        "together_ai": ProviderConfig("http://localhost:3/v1", "tk"),
    }
    with pytest.raises(ValueError, match="PROVIDER_GROQ_BASE_URL"):
        providers_from_env({"PROVIDER_GROQ_API_KEY": "g"})
    assert "tk" not in repr(providers_from_env(env))


def test_only_the_builtin_handle_gets_the_builtin_model() -> None:
    """No silent substitution (decisions §15): an unconfigured provider is an error that
    names the setting to set, never the offline model under another name.
    """
    router = ModelRouter({})
    router.check("convlog/builtin")
    text = text_of(run(router, ModelRequest("convlog/builtin", [ChatMessage("user", "hey")])))
    assert text.startswith('You said: "hey".')
    for handle, setting in (
        ("openai/gpt-4o", "OPENAI_API_KEY"),
        ("anthropic/claude", "PROVIDER_ANTHROPIC_BASE_URL"),
        ("my-llm/x", "PROVIDER_MY_LLM_BASE_URL"),
    ):
        with pytest.raises(UnknownHandle, match=setting):
            router.check(handle)


def test_a_configured_provider_is_served_by_its_endpoint(fake_openai: FakeOpenAI) -> None:
    router = ModelRouter({"openai": ProviderConfig(fake_openai.base_url, "sk-test")})
    assert text_of(run(router, request("openai/gpt-fake-mini"))) == ANSWER
    (received,) = fake_openai.requests
    assert received.body["model"] == "gpt-fake-mini"
    assert received.authorization == "Bearer sk-test"


def test_convlog_handles_always_get_the_builtin_model(fake_openai: FakeOpenAI) -> None:
    router = ModelRouter({"openai": ProviderConfig(fake_openai.base_url, "sk-test")})
    text = text_of(run(router, request("convlog/builtin")))
    assert text.startswith('You said: "tell me about event logs please".')
    assert fake_openai.requests == []


def test_any_provider_can_be_configured_from_the_environment(fake_openai: FakeOpenAI) -> None:
    env = {"PROVIDER_LOCAL_LLM_BASE_URL": fake_openai.base_url}
    router = ModelRouter(providers_from_env(env), timeout_seconds=5)
    assert text_of(run(router, request("local-llm/gpt-fake"))) == ANSWER
    assert fake_openai.requests[0].body["model"] == "gpt-fake"


def test_an_unknown_provider_is_an_unknown_handle(fake_openai: FakeOpenAI) -> None:
    router = ModelRouter({"openai": ProviderConfig(fake_openai.base_url, "sk-test")})
    for handle in ("anthropic/claude-3", "openai", "openai/"):
        with pytest.raises(UnknownHandle) as caught:
            router.check(handle)
        assert isinstance(caught.value, UnknownModel)
        assert caught.value.handle == handle
        assert caught.value.known == ["openai/<model>", "convlog/builtin"]
        assert str(caught.value).startswith(
            f"Handle {handle} not found, must be one of ['openai/<model>', 'convlog/builtin']"
        )
        hint = "set PROVIDER_ANTHROPIC_BASE_URL" in str(caught.value)
        assert hint == handle.startswith("anthropic/")  # a configured provider needs no hint
    with pytest.raises(UnknownHandle):
        run(router, request("anthropic/claude-3"))
    assert fake_openai.requests == []


def test_the_router_applies_its_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.failure = "hang"
    router = ModelRouter({"openai": ProviderConfig(fake_openai.base_url)}, timeout_seconds=0.3)
    assert failure_of(router, request()).kind == "timeout"


def test_adapters_are_created_lazily_reused_and_closed(fake_openai: FakeOpenAI) -> None:
    router = ModelRouter({"openai": ProviderConfig(fake_openai.base_url, "sk-test")})
    assert router._adapters == {}

    async def scenario() -> None:
        first = router.adapter_for("openai/gpt-fake")
        assert isinstance(first, OpenAICompatibleModel) and first._client is None
        assert text_of([item async for item in router.stream(request())]) == ANSWER
        assert router.adapter_for("openai/other-model") is first and first._client is not None
        await router.aclose()
        assert router._adapters == {} and first._client is None
        # usable again after aclose: a new adapter is made on demand
        assert text_of([item async for item in router.stream(request())]) == ANSWER
        await router.aclose()

    asyncio.run(scenario())
    assert len(fake_openai.requests) == 2
