"""Server-Sent Event frames of Letta's stream (spec §3.3): ``data: <json>`` and the end marker."""

from __future__ import annotations

import json
from typing import Any

import orjson

DONE = "data: [DONE]\n\n"


def data(payload: dict[str, Any]) -> str:
    # orjson: compact and UTF-8 like json.dumps(separators=(",", ":"), ensure_ascii=False),
    # several times faster, on the path every streamed token takes.
    return f"data: {orjson.dumps(payload).decode()}\n\n"


def error(payload: dict[str, Any]) -> str:
    return f"event: error\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n"


def error_message(run_id: str, error_type: str, message: str, detail: str) -> dict[str, Any]:
    """The error frame a failed run ends with (and a JSON send's error comes from)."""
    return {
        "message_type": "error_message",
        "run_id": run_id,
        "error_type": error_type,
        "message": message,
        "detail": detail,
        "seq_id": None,
    }


def stop_reason(reason: str) -> dict[str, Any]:
    return {"message_type": "stop_reason", "stop_reason": reason}


def usage_statistics(
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    step_count: int = 0,
    reasoning_tokens: int | None = None,
) -> dict[str, Any]:
    total = prompt_tokens + completion_tokens
    return {
        "message_type": "usage_statistics",
        "completion_tokens": completion_tokens,
        "prompt_tokens": prompt_tokens,
        "total_tokens": total,
        "step_count": step_count,
        "run_ids": None,
        "cached_input_tokens": None,
        "cache_write_tokens": None,
        "reasoning_tokens": reasoning_tokens,
        "context_tokens": total or None,
    }
