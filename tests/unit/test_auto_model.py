"""Letta's model router handles (letta/auto, letta/auto-fast, letta/auto-chat) stand for the
handle CONVLOG_AUTO_MODEL names, and the settings behind them and the web tools are checked at
startup. No HTTP here: the target is the built-in model, or a provider that is never called.
"""

from __future__ import annotations

import asyncio

import pytest

from adapters.models import AUTO_HANDLES, BUILTIN_HANDLE, ModelRouter, ProviderConfig, UnknownHandle
from runtime.settings import Settings, SettingsError
from service.model import ChatMessage, ModelInfo, ModelRequest, TextDelta

OPENAI = {"openai": ProviderConfig("http://127.0.0.1:9/v1", "sk-test")}


def test_the_three_handles() -> None:
    assert AUTO_HANDLES == ("letta/auto", "letta/auto-fast", "letta/auto-chat")


@pytest.mark.parametrize("handle", AUTO_HANDLES)
def test_unset_the_handles_are_refused_naming_the_setting(handle: str) -> None:
    router = ModelRouter(OPENAI)
    for refuse in (router.resolve, router.check, router.adapter_for):
        with pytest.raises(UnknownHandle) as caught:
            refuse(handle)
        assert caught.value.handle == handle
        message = str(caught.value)
        assert message.startswith(f"Handle {handle} not found, must be one of")
        assert "set CONVLOG_AUTO_MODEL on the server" in message
    assert router.endpoint(handle) is None


@pytest.mark.parametrize("handle", AUTO_HANDLES)
def test_set_they_go_to_the_target(handle: str) -> None:
    router = ModelRouter(OPENAI, auto_model="openai/gpt-fake")
    assert router.resolve(handle) == "openai/gpt-fake"
    router.check(handle)
    assert router.endpoint(handle) == "http://127.0.0.1:9/v1"
    assert router.adapter_for(handle) is router.adapter_for("openai/gpt-fake")


def test_other_handles_are_not_rerouted() -> None:
    router = ModelRouter(OPENAI, auto_model="openai/gpt-fake")
    assert router.resolve("openai/gpt-other") == "openai/gpt-other"
    with pytest.raises(UnknownHandle) as caught:
        router.check("letta/other")
    assert "PROVIDER_LETTA_BASE_URL" in str(caught.value)
    assert "CONVLOG_AUTO_MODEL" not in str(caught.value)


def test_a_target_no_provider_serves_is_refused_by_the_router() -> None:
    router = ModelRouter({}, auto_model="together/llama")
    assert router.resolve("letta/auto") == "together/llama"
    with pytest.raises(UnknownHandle) as caught:
        router.check("letta/auto")
    assert caught.value.handle == "together/llama"
    assert "PROVIDER_TOGETHER_BASE_URL" in str(caught.value)


def test_a_turn_on_letta_auto_is_answered_by_the_target() -> None:
    router = ModelRouter({}, auto_model=BUILTIN_HANDLE)
    request = ModelRequest("letta/auto-chat", [ChatMessage("user", "hello router")], {}, ())

    async def answer() -> str:
        try:
            items = [item async for item in router.stream(request)]
        finally:
            await router.aclose()
        return "".join(i.text for i in items if isinstance(i, TextDelta))

    assert router.payload(request)["model"] == BUILTIN_HANDLE
    assert "hello router" in asyncio.run(answer())


def test_list_models_names_the_handles_only_when_set() -> None:
    unset = asyncio.run(ModelRouter({}).list_models())
    assert [m.handle for m in unset] == [BUILTIN_HANDLE]
    found = asyncio.run(ModelRouter({}, auto_model=BUILTIN_HANDLE).list_models())
    assert found == [
        ModelInfo(BUILTIN_HANDLE, "convlog", "convlog", None),
        *(ModelInfo(h, "letta", "convlog", None) for h in AUTO_HANDLES),
    ]


# -- settings ---------------------------------------------------------------------------------


def test_the_auto_model_setting_is_read() -> None:
    assert Settings.from_env({}).auto_model is None
    assert Settings.from_env({"CONVLOG_AUTO_MODEL": BUILTIN_HANDLE}).auto_model == BUILTIN_HANDLE
    env = {"CONVLOG_AUTO_MODEL": "openai/gpt-4o", "OPENAI_API_KEY": "sk-test"}
    assert Settings.from_env(env).auto_model == "openai/gpt-4o"


def test_an_auto_model_no_provider_serves_is_refused_at_startup() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"CONVLOG_AUTO_MODEL": "openai/gpt-4o"})
    message = str(caught.value)
    assert message.startswith("CONVLOG_AUTO_MODEL='openai/gpt-4o': Handle openai/gpt-4o not found")
    assert "OPENAI_API_KEY" in message


@pytest.mark.parametrize("handle", ["letta/auto", "openai/", "gpt-4o"])
def test_an_unservable_auto_model_is_refused_at_startup(handle: str) -> None:
    env = {"CONVLOG_AUTO_MODEL": handle, "OPENAI_API_KEY": "sk-test"}
    with pytest.raises(SettingsError, match="CONVLOG_AUTO_MODEL="):
        Settings.from_env(env)


@pytest.mark.parametrize(("text", "allowed"), [(None, False), ("deny", False), ("allow", True)])
def test_private_fetches_are_allow_or_deny(text: str | None, allowed: bool) -> None:
    env = {} if text is None else {"CONVLOG_FETCH_PRIVATE_ADDRESSES": text}
    assert Settings.from_env(env).fetch_private_addresses is allowed


@pytest.mark.parametrize("text", ["yes", "true", "ALLOW", "1"])
def test_other_private_fetch_values_are_refused(text: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"CONVLOG_FETCH_PRIVATE_ADDRESSES": text})
    assert str(caught.value) == (
        f"CONVLOG_FETCH_PRIVATE_ADDRESSES must be allow or deny, not {text!r}"
    )


def test_the_exa_settings_are_read() -> None:
    env = {"EXA_API_KEY": "exa-key", "EXA_BASE_URL": "http://127.0.0.1:9"}
    settings = Settings.from_env(env)
    assert (settings.exa_api_key, settings.exa_base_url) == ("exa-key", "http://127.0.0.1:9")
    defaults = Settings.from_env({})
    assert (defaults.exa_api_key, defaults.exa_base_url) == (None, "https://api.exa.ai")
