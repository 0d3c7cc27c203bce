"""Which adapter serves a model handle (``provider/model-name``).

* ``convlog/…`` → the built-in offline model, always (and only: decisions §15);
* ``anthropic/…`` configured by ``ANTHROPIC_API_KEY`` / ``ANTHROPIC_BASE_URL`` → Anthropic's
  Messages API (``AnthropicModel``);
* any other configured provider → its OpenAI-compatible endpoint;
* any other provider → ``UnknownHandle`` (Letta's 404 ``Handle … not found, must be one of […]``),
  naming the setting that would serve it. No model is ever answered by another silently;
* ``letta/auto``, ``letta/auto-fast``, ``letta/auto-chat`` (Letta's model router, the default
  of Letta Code) → the handle ``CONVLOG_AUTO_MODEL`` names, chosen by the operator; unset, they
  are refused naming that setting.

Providers come from the environment: ``openai`` from ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``,
any other NAME from ``PROVIDER_<NAME>_BASE_URL`` / ``PROVIDER_<NAME>_API_KEY`` (the handle's
provider is NAME in lower case; ``-`` in a handle matches ``_`` in the variable name).
``PROVIDER_ANTHROPIC_…`` still serves ``anthropic/…`` over an OpenAI-compatible endpoint; setting
it and ``ANTHROPIC_…`` together is refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from adapters.anthropic_wire import ANTHROPIC_DEFAULT_BASE_URL
from adapters.builtin_model import BuiltinModel
from adapters.openai_model import OpenAICompatibleModel
from service.model import (
    ChatModel,
    ModelError,
    ModelInfo,
    ModelRequest,
    StreamItem,
    UnknownModel,
)

if TYPE_CHECKING:
    from adapters.anthropic_model import AnthropicModel

log = logging.getLogger("convlog.models")

BUILTIN_PROVIDER = "convlog"
BUILTIN_HANDLE = "convlog/builtin"
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"

_PREFIX = "PROVIDER_"
_BASE_URL = "_BASE_URL"
_API_KEY = "_API_KEY"
ANTHROPIC = "anthropic"

Wire = Literal["openai", "anthropic"]  # the API a provider speaks


@dataclass(frozen=True)
class ProviderConfig:
    base_url: str
    api_key: str | None = None
    wire: Wire = "openai"

    def __repr__(self) -> str:  # never print a key
        key = "set" if self.api_key else "none"
        return f"ProviderConfig(base_url={self.base_url!r}, api_key=<{key}>, wire={self.wire!r})"


# How long a provider's list of models is reused before it is asked again.
MODEL_LIST_SECONDS = 60.0
AUTO_HANDLES = ("letta/auto", "letta/auto-fast", "letta/auto-chat")


class UnknownHandle(UnknownModel):
    """No configured provider serves this handle; ``known`` lists what would be served."""

    def __init__(self, handle: str, known: list[str], unconfigured: bool = False) -> None:
        super().__init__(handle, known)
        if not unconfigured:
            return
        provider = normalize_provider(handle.partition("/")[0]) or "<provider>"
        if handle in AUTO_HANDLES:
            self.args = (
                f"{self.args[0]}. {handle} is Letta's model router: set CONVLOG_AUTO_MODEL on "
                "the server to the handle it should use here, or choose a model.",
            )
            return
        hint = {
            "openai": "set OPENAI_API_KEY (or OPENAI_BASE_URL)",
            ANTHROPIC: "set ANTHROPIC_API_KEY (Anthropic's Messages API), or set "
            "PROVIDER_ANTHROPIC_BASE_URL (an OpenAI-compatible endpoint),",
        }.get(provider, f"set {_PREFIX}{provider.upper()}{_BASE_URL}")
        self.args = (f"{self.args[0]}. To serve {handle}, {hint} on the server.",)


def normalize_provider(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def providers_from_env(environ: Mapping[str, str]) -> dict[str, ProviderConfig]:
    """The configured providers; raises ValueError for a key without an endpoint."""
    base_urls: dict[str, str] = {}
    api_keys: dict[str, str] = {}
    for key, value in environ.items():
        if not value or not key.startswith(_PREFIX):
            continue
        name = key[len(_PREFIX) :]
        if name.endswith(_BASE_URL):
            target, name = base_urls, name[: -len(_BASE_URL)]
        elif name.endswith(_API_KEY):
            target, name = api_keys, name[: -len(_API_KEY)]
        else:
            continue
        if name:
            target[normalize_provider(name)] = value
    if environ.get("OPENAI_BASE_URL"):
        base_urls["openai"] = environ["OPENAI_BASE_URL"]
    if environ.get("OPENAI_API_KEY"):
        api_keys["openai"] = environ["OPENAI_API_KEY"]
    if "openai" in api_keys:
        base_urls.setdefault("openai", OPENAI_DEFAULT_BASE_URL)
    missing = sorted(set(api_keys) - set(base_urls))
    if missing:
        names = ", ".join(f"{_PREFIX}{name.upper()}{_BASE_URL}" for name in missing)
        raise ValueError(f"an API key is set for a provider without an endpoint: set {names}")
    found = {
        name: ProviderConfig(base_url=url, api_key=api_keys.get(name))
        for name, url in sorted(base_urls.items())
    }
    anthropic = anthropic_from_env(environ)
    if anthropic is not None:
        if ANTHROPIC in found:
            raise ValueError(
                "anthropic/… is configured twice: set ANTHROPIC_API_KEY/ANTHROPIC_BASE_URL "
                "(Messages API) or PROVIDER_ANTHROPIC_BASE_URL (OpenAI-compatible), not both"
            )
        found[ANTHROPIC] = anthropic
    return dict(sorted(found.items()))


def anthropic_from_env(environ: Mapping[str, str]) -> ProviderConfig | None:
    """Anthropic's Messages API, from ``ANTHROPIC_API_KEY`` and/or ``ANTHROPIC_BASE_URL``."""
    key, url = environ.get("ANTHROPIC_API_KEY"), environ.get("ANTHROPIC_BASE_URL")
    if not key and not url:
        return None
    return ProviderConfig(url or ANTHROPIC_DEFAULT_BASE_URL, key or None, wire="anthropic")


class ModelRouter:
    """A ChatModel that hands each request to the adapter of its handle's provider."""

    def __init__(
        self,
        providers: Mapping[str, ProviderConfig],
        timeout_seconds: float = 120.0,
        auto_model: str | None = None,
    ) -> None:
        self.providers = {normalize_provider(name): config for name, config in providers.items()}
        self.timeout_seconds = timeout_seconds
        self.auto_model = auto_model
        self._names: dict[str, tuple[float, list[str]]] = {}  # provider -> (when, its models)
        self._builtin = BuiltinModel()
        self._adapters: dict[str, OpenAICompatibleModel | AnthropicModel] = {}

    def known(self) -> list[str]:
        """What ``UnknownHandle`` lists: one pattern per configured provider, and the built-in."""
        return [f"{name}/<model>" for name in sorted(self.providers)] + [BUILTIN_HANDLE]

    def resolve(self, handle: str) -> str:
        """The handle that serves ``handle``: itself, or CONVLOG_AUTO_MODEL for Letta's router."""
        if handle not in AUTO_HANDLES:
            return handle
        if self.auto_model is None:
            raise UnknownHandle(handle, self.known(), unconfigured=True)
        return self.auto_model

    def _route(self, handle: str) -> str | None:
        """The configured provider serving ``handle``, None for the built-in model."""
        handle = self.resolve(handle)
        provider, _, model = handle.partition("/")
        provider = normalize_provider(provider)
        if provider == BUILTIN_PROVIDER:
            return None
        if provider not in self.providers or not model:
            raise UnknownHandle(handle, self.known(), unconfigured=provider not in self.providers)
        return provider

    def endpoint(self, handle: str) -> str | None:
        if handle in AUTO_HANDLES and self.auto_model is not None:
            handle = self.auto_model
        provider, _, _ = handle.partition("/")
        config = self.providers.get(normalize_provider(provider))
        return None if config is None else config.base_url

    def check(self, handle: str) -> None:
        self._route(handle)

    def adapter_for(self, handle: str) -> ChatModel:
        """The adapter serving ``handle`` (created on first use); raises UnknownHandle."""
        provider = self._route(handle)
        if provider is None:
            return self._builtin
        return self._http_adapter(provider)

    def _http_adapter(self, provider: str) -> OpenAICompatibleModel | AnthropicModel:
        adapter = self._adapters.get(provider)
        if adapter is None:
            config = self.providers[provider]
            if config.wire == "anthropic":
                # Imported on first use: the Anthropic SDK costs ~40 MB of memory to load.
                from adapters.anthropic_model import AnthropicModel

                kind: type[OpenAICompatibleModel | AnthropicModel] = AnthropicModel
            else:
                kind = OpenAICompatibleModel
            adapter = kind(config.base_url, config.api_key, self.timeout_seconds)
            self._adapters[provider] = adapter
        return adapter

    async def list_models(self) -> list[ModelInfo]:
        """The built-in model, then each configured provider's models (asked of it, at most
        once a minute). A provider that cannot be reached is left out of the list, with a
        warning in the log (and asked again next time).
        """
        found = [ModelInfo(BUILTIN_HANDLE, BUILTIN_PROVIDER, BUILTIN_PROVIDER, None)]
        if self.auto_model is not None:
            config = self.providers.get(normalize_provider(self.auto_model.partition("/")[0]))
            wire = BUILTIN_PROVIDER if config is None else config.wire
            endpoint = None if config is None else config.base_url
            found += [ModelInfo(h, "letta", wire, endpoint) for h in AUTO_HANDLES]
        for provider, config in sorted(self.providers.items()):
            try:
                names = await self._model_names(provider)
            except ModelError as exc:
                log.warning("could not list the models of provider %s: %s", provider, exc.detail)
                continue
            found += [
                ModelInfo(f"{provider}/{name}", provider, config.wire, config.base_url)
                for name in sorted(names)
            ]
        return found

    async def _model_names(self, provider: str) -> list[str]:
        """A provider's models, asked at most once a minute: every Letta Code start (and
        subagent) lists the models, and a provider's list changes far more slowly."""
        now = time.monotonic()
        cached = self._names.get(provider)
        if cached is not None and now - cached[0] < MODEL_LIST_SECONDS:
            return cached[1]
        names = await self._http_adapter(provider).list_model_names()
        self._names[provider] = (now, names)
        return names

    def payload(self, request: ModelRequest) -> dict[str, Any]:
        request = replace(request, handle=self.resolve(request.handle))
        return self.adapter_for(request.handle).payload(request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        request = replace(request, handle=self.resolve(request.handle))
        items = self.adapter_for(request.handle).stream(request)
        try:
            async for item in items:
                yield item
        finally:  # a consumer that stops early closes the provider's response now, not at GC
            close = getattr(items, "aclose", None)
            if close is not None:
                await close()

    async def aclose(self) -> None:
        adapters = list(self._adapters.values())
        self._adapters.clear()
        for adapter in adapters:
            await adapter.aclose()
        await self._builtin.aclose()
