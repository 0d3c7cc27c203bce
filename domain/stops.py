"""Why a turn stopped, in Letta's words: stop reasons, the run status each implies, and how
each kind of model failure is reported (stop reason, error type, message, and the HTTP status
a JSON send answers with). One table, read by the turn and by the API.
"""

from __future__ import annotations

from typing import NamedTuple

END_TURN = "end_turn"
MAX_STEPS = "max_steps"
TOOL_RULE = "tool_rule"
REQUIRES_APPROVAL = "requires_approval"
CANCELLED = "cancelled"
MAX_TOKENS_EXCEEDED = "max_tokens_exceeded"

# Letta's stop reasons and the run status each one implies (spec §2.5); others are failures.
STATUS_OF_STOP_REASON = {
    END_TURN: "completed",
    MAX_STEPS: "completed",
    TOOL_RULE: "completed",
    REQUIRES_APPROVAL: "completed",
    CANCELLED: "cancelled",
}


def status_of(stop_reason: str) -> str:
    return STATUS_OF_STOP_REASON.get(stop_reason, "failed")


class Failure(NamedTuple):
    stop_reason: str
    error_type: str
    message: str
    http_status: int  # what a non-streaming send answers with


# ModelError.kind -> how the failure is reported.
MODEL_FAILURES: dict[str, Failure] = {
    "timeout": Failure(
        "llm_api_error", "llm_timeout", "The LLM request timed out. Please try again.", 504
    ),
    "rate_limit": Failure(
        "llm_api_error",
        "llm_rate_limit",
        "Rate limited by the LLM provider. Please try again later.",
        429,
    ),
    "authentication": Failure(
        "llm_api_error", "llm_authentication", "Authentication failed with the LLM provider.", 401
    ),
    "empty_response": Failure(
        "invalid_llm_response", "llm_empty_response", "LLM response was empty.", 502
    ),
    "context_window": Failure(
        "error",
        "internal_error",
        "An unknown error occurred with the LLM streaming request.",
        400,
    ),
    "other": Failure("llm_api_error", "llm_error", "An error occurred with the LLM request.", 502),
}
INTERNAL = Failure(
    "error", "internal_error", "An unknown error occurred with the LLM streaming request.", 500
)


def http_status_of(error_type: str) -> int:
    """The status a JSON send answered a failure of this error type with."""
    found = (f.http_status for f in MODEL_FAILURES.values() if f.error_type == error_type)
    return next(found, INTERNAL.http_status)
