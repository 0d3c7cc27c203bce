"""Letta's deprecated ``llm_config`` / ``embedding_config`` on agent create, honoured or
refused field by field — never quietly dropped.

``llm_config`` names the model (``handle``, or ``model_endpoint_type`` + ``model``), its
context window, temperature, max_tokens and reasoning settings: those become the agent's
model handle, ``context_window_limit`` and ``model_settings`` (fields given directly win).
``model_endpoint`` must be where this server already sends that provider's requests
(providers are configured per server, not per agent). Purely descriptive fields
(``display_name``, ``provider_category``, …) are accepted as Letta's GET shows them.
Anything else with a value of its own is refused with a 400 that names it.

``embedding_config`` names the embedding handle; convlog computes no embeddings (search is
full text), so the handle is recorded and shown, as the ``embedding`` field is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.errors import InvalidArgument

DESCRIPTIVE_LLM = {
    "display_name",
    "provider_name",
    "provider_category",
    "model_wrapper",
    "put_inner_thoughts_in_kwargs",
    "tier",
    "compatibility_type",
}
TO_SETTINGS = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "reasoning_effort": "reasoning_effort",
    "frequency_penalty": "frequency_penalty",
    "verbosity": "verbosity",
    "parallel_tool_calls": "parallel_tool_calls",
    "strict": "strict",
}
# Values a copied llm_config carries that mean "nothing special" (Letta's defaults).
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "enable_reasoner": (None, False, True),
    "max_reasoning_tokens": (None, 0),  # a thinking budget: Anthropic takes it (below)
}
DESCRIPTIVE_EMBEDDING = {
    "embedding_dim",
    "embedding_chunk_size",
    "azure_endpoint",
    "azure_version",
    "azure_deployment",
    "batch_size",
}


def _handle(config: dict[str, Any], kind: str, type_key: str, model_key: str) -> str:
    handle = config.get("handle")
    if handle:
        named = config.get(model_key)
        if named and str(handle).partition("/")[2] != named:
            raise InvalidArgument(f"{kind}: handle {handle} and {model_key} {named} disagree")
        return str(handle)
    if config.get(type_key) and config.get(model_key):
        return f"{config[type_key]}/{config[model_key]}"
    raise InvalidArgument(f"{kind} needs a handle, or {type_key} and {model_key}")


def _refuse_others(config: dict[str, Any], kind: str, known: set[str]) -> None:
    others = sorted(
        key
        for key, value in config.items()
        if key not in known and value is not None and value not in NEUTRAL.get(key, ())
    )
    if others:
        raise InvalidArgument(f"convlog does not support {kind} fields: {', '.join(others)}")


def apply_llm_config(
    config: dict[str, Any],
    model: str | None,
    settings: dict[str, Any],
    endpoint_of: Callable[[str], str | None],
) -> tuple[str, dict[str, Any]]:
    """The agent's model handle and settings with ``config`` applied."""
    known = DESCRIPTIVE_LLM | set(TO_SETTINGS)
    known |= {"handle", "model", "model_endpoint_type", "model_endpoint", "context_window"}
    known.add("max_reasoning_tokens")
    _refuse_others(config, "llm_config", known)
    handle = _handle(config, "llm_config", "model_endpoint_type", "model")
    if model is not None and model != handle:
        raise InvalidArgument(f"model {model} and llm_config ({handle}) name different models")
    endpoint = config.get("model_endpoint")
    served = endpoint_of(handle)
    if endpoint and served is None and not handle.startswith("convlog/"):
        raise InvalidArgument(
            f"llm_config.model_endpoint {endpoint}: no provider serves {handle} on this server "
            "yet; configure it (OPENAI_BASE_URL, ANTHROPIC_BASE_URL or PROVIDER_<NAME>_BASE_URL)"
        )
    if endpoint and served is not None and endpoint.rstrip("/") != served.rstrip("/"):
        raise InvalidArgument(
            f"llm_config.model_endpoint {endpoint}: this server sends {handle} to {served}; "
            "endpoints are set per provider on the server (PROVIDER_<NAME>_BASE_URL)"
        )
    merged = dict(settings)
    if config.get("context_window") and not merged.get("context_window_limit"):
        merged["context_window_limit"] = int(config["context_window"])
    model_settings = dict(merged.get("model_settings") or {})
    for key, setting in TO_SETTINGS.items():
        if config.get(key) is not None:
            model_settings.setdefault(setting, config[key])
    budget = config.get("max_reasoning_tokens")
    if budget and handle.startswith("anthropic/"):
        model_settings.setdefault("thinking", {"type": "enabled", "budget_tokens": int(budget)})
    elif budget:
        raise InvalidArgument(
            f"llm_config.max_reasoning_tokens is a thinking budget: only anthropic/… models "
            f"take one, not {handle}"
        )
    if model_settings:
        merged["model_settings"] = model_settings
    return handle, merged


def embedding_handle(config: dict[str, Any], embedding: str | None) -> str:
    known = DESCRIPTIVE_EMBEDDING | {
        "handle",
        "embedding_model",
        "embedding_endpoint_type",
        "embedding_endpoint",
    }
    _refuse_others(config, "embedding_config", known)
    handle = _handle(config, "embedding_config", "embedding_endpoint_type", "embedding_model")
    if embedding is not None and embedding != handle:
        raise InvalidArgument(
            f"embedding {embedding} and embedding_config ({handle}) name different models"
        )
    return handle
