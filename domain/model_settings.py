"""``model_settings``: Letta's per-provider request settings, checked once where they are set
(agent or conversation) so that none is quietly dropped when a request is built.

Each wire has its own set: the OpenAI-compatible adapter sends each OpenAI setting as the
chat-completions field of the same meaning (``adapters/openai_wire.py``), the Anthropic adapter
sends its set as Messages API fields (``adapters/anthropic_wire.py``). Given the model handle,
a setting its provider would not send is refused; without one, any setting of either set is
accepted. ``provider_type`` only says which set the client meant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.errors import InvalidArgument

# setting -> what the OpenAI-compatible request carries
OPENAI_SETTINGS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "max_output_tokens": "max_tokens",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "seed": "seed",
    "stop": "stop",
    "response_format": "response_format",
    "reasoning_effort": "reasoning_effort",
    "verbosity": "verbosity",
    "parallel_tool_calls": "parallel_tool_calls",
}
# Settings with no request field of their own: the tool schemas' strictness, the set's name,
# and Letta's nested reasoning form ({"reasoning_effort": …}).
OTHER_SETTINGS = ("strict", "provider_type", "reasoning")

# setting -> the Messages API field it becomes (parallel_tool_calls goes into tool_choice)
ANTHROPIC_SETTINGS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "max_tokens": "max_tokens",
    "max_output_tokens": "max_tokens",
    "stop": "stop_sequences",
    "thinking": "thinking",
}
ANTHROPIC_OTHER = ("parallel_tool_calls", "provider_type")

OPENAI_KNOWN = (*OPENAI_SETTINGS, *OTHER_SETTINGS)
ANTHROPIC_KNOWN = (*ANTHROPIC_SETTINGS, *ANTHROPIC_OTHER)
KNOWN = tuple(dict.fromkeys((*OPENAI_KNOWN, *ANTHROPIC_KNOWN)))

ANTHROPIC_PROVIDER = "anthropic"
BUILTIN = "convlog/builtin"  # the handle of an agent that names no model


def known_for(handle: str) -> tuple[str, ...]:
    """The settings the adapter serving ``handle`` sends (by the handle's provider)."""
    provider = handle.partition("/")[0].strip().lower()
    return ANTHROPIC_KNOWN if provider == ANTHROPIC_PROVIDER else OPENAI_KNOWN


def check_model_settings(settings: Mapping[str, Any] | None, handle: str | None = None) -> None:
    """Refuse settings this server would not send (400 naming them): unknown ones, and, when
    ``handle`` is given, those its provider's adapter would not send. A None value is unset.
    """
    settings = settings or {}
    unknown = sorted(key for key in settings if key not in KNOWN)
    if unknown:
        raise InvalidArgument(
            f"model_settings {', '.join(unknown)} not supported by this server "
            f"(supported: {', '.join(KNOWN)})"
        )
    if handle is not None:
        known = known_for(handle)
        unsent = sorted(k for k, v in settings.items() if k not in known and v is not None)
        if unsent:
            raise InvalidArgument(
                f"model_settings {', '.join(unsent)} not supported for {handle} "
                f"(supported: {', '.join(known)})"
            )
    _check_reasoning(settings.get("reasoning"))
    _check_thinking(settings.get("thinking"))


def _check_reasoning(reasoning: Any) -> None:
    if reasoning is not None and (
        not isinstance(reasoning, dict) or set(reasoning) - {"reasoning_effort"}
    ):
        raise InvalidArgument("model_settings.reasoning takes only reasoning_effort")


def _check_thinking(thinking: Any) -> None:
    """Anthropic's form: {"type": "enabled", "budget_tokens": N} or {"type": "disabled"}."""
    if thinking is None:
        return
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    valid_budget = isinstance(budget, int) and not isinstance(budget, bool) and budget > 0
    if (
        kind not in ("enabled", "disabled")
        or set(thinking) - {"type", "budget_tokens"}
        or (kind == "enabled" and not valid_budget)
        or (budget is not None and not valid_budget)
    ):
        raise InvalidArgument(
            'model_settings.thinking must be {"type": "enabled", "budget_tokens": <tokens>} '
            'or {"type": "disabled"}'
        )


THINKING_WITH_TOOLS = (
    "Extended thinking with tools is not supported by convlog's Anthropic adapter: Anthropic "
    "requires each signed thinking block to be sent back with the tool results, and convlog "
    "does not keep them. Disable model_settings.thinking for this agent, or give it no tools."
)


def thinking_enabled(settings: Mapping[str, Any] | None) -> bool:
    thinking = (settings or {}).get("thinking")
    return isinstance(thinking, Mapping) and thinking.get("type") == "enabled"


def check_with_tools(settings: Mapping[str, Any] | None, has_tools: bool) -> None:
    """Refuse, where the settings are set or before a turn starts, thinking with tools."""
    if has_tools and thinking_enabled(settings):
        raise InvalidArgument(THINKING_WITH_TOOLS)
