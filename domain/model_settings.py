"""``model_settings``: Letta's per-provider request settings, checked once where they are set
(agent or conversation) so that none is quietly dropped when a request is built.

The OpenAI-compatible adapter sends each as the chat-completions field of the same meaning
(``adapters/openai_wire.py``); ``provider_type`` only says which set the client meant.
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
KNOWN = (*OPENAI_SETTINGS, *OTHER_SETTINGS)


def check_model_settings(settings: Mapping[str, Any] | None) -> None:
    """Refuse settings this server would not send (400 naming them)."""
    unknown = sorted(key for key in settings or {} if key not in KNOWN)
    if unknown:
        raise InvalidArgument(
            f"model_settings {', '.join(unknown)} not supported by this server "
            f"(supported: {', '.join(KNOWN)})"
        )
    reasoning = (settings or {}).get("reasoning")
    if reasoning is not None and (
        not isinstance(reasoning, dict) or set(reasoning) - {"reasoning_effort"}
    ):
        raise InvalidArgument("model_settings.reasoning takes only reasoning_effort")
