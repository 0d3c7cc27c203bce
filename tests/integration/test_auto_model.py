"""letta/auto over real HTTP: the router lists Letta's router handles as served by the
CONVLOG_AUTO_MODEL target's provider, and a turn on one reaches that provider as its model."""

from __future__ import annotations

import asyncio

from adapters.models import AUTO_HANDLES, ModelRouter, ProviderConfig
from service.model import ChatMessage, ModelInfo, ModelRequest, TextDelta
from tests.fake_openai import FakeOpenAI


def router_for(fake: FakeOpenAI, auto_model: str | None) -> ModelRouter:
    return ModelRouter({"openai": ProviderConfig(fake.base_url, "sk-fake")}, auto_model=auto_model)


def models_of(router: ModelRouter) -> list[ModelInfo]:
    async def listed() -> list[ModelInfo]:
        try:
            return await router.list_models()
        finally:
            await router.aclose()

    return asyncio.run(listed())


def test_list_models_shows_the_auto_handles_on_the_target_provider(
    fake_openai: FakeOpenAI,
) -> None:
    found = models_of(router_for(fake_openai, "openai/gpt-fake"))
    auto = [m for m in found if m.provider == "letta"]
    assert auto == [ModelInfo(h, "letta", "openai", fake_openai.base_url) for h in AUTO_HANDLES]
    assert {m.handle for m in found} >= {"openai/gpt-fake", "openai/gpt-fake-mini"}


def test_list_models_without_the_setting_has_no_auto_handles(fake_openai: FakeOpenAI) -> None:
    found = models_of(router_for(fake_openai, None))
    assert [m.handle for m in found] == [
        "convlog/builtin",
        "openai/gpt-fake",
        "openai/gpt-fake-mini",
    ]


def test_a_turn_on_letta_auto_reaches_the_target_model(fake_openai: FakeOpenAI) -> None:
    router = router_for(fake_openai, "openai/gpt-fake-mini")
    request = ModelRequest("letta/auto", [ChatMessage("user", "hi auto")], {}, ())

    async def answer() -> str:
        try:
            items = [item async for item in router.stream(request)]
        finally:
            await router.aclose()
        return "".join(i.text for i in items if isinstance(i, TextDelta))

    assert asyncio.run(answer()) == "echo: hi auto [context=1]"
    [sent] = fake_openai.requests
    assert sent.body["model"] == "gpt-fake-mini"
    assert sent.authorization == "Bearer sk-fake"


def test_a_providers_model_list_is_asked_once_a_minute(fake_openai: FakeOpenAI) -> None:
    router = ModelRouter({"openai": ProviderConfig(fake_openai.base_url, "sk-test")})

    async def twice() -> tuple[list[str], list[str]]:
        first = [m.handle for m in await router.list_models()]
        fake_openai.models = ["gpt-new"]  # the provider changed its list meanwhile
        second = [m.handle for m in await router.list_models()]
        await router.aclose()
        return first, second

    first, second = asyncio.run(twice())
    assert first == second and "openai/gpt-fake" in first
