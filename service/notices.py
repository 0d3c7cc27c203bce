"""What a turn reports when it compacted the context before a step (Letta's messages)."""

from __future__ import annotations

from typing import Any

from domain import ids
from service.compaction import Compaction
from service.wire import now_date


def _common(run_id: str) -> dict[str, Any]:
    return {
        "date": now_date(),
        "name": None,
        "otid": None,
        "sender_id": None,
        "step_id": None,
        "is_err": None,
        "seq_id": None,
        "run_id": run_id,
    }


def summary_as_user_message(run_id: str, done: Compaction) -> dict[str, Any]:
    return {
        "id": done.summary_message_id,
        **_common(run_id),
        "message_type": "user_message",
        "content": done.content,
    }


def compaction_notices(run_id: str, done: Compaction, window: int) -> list[dict[str, Any]]:
    """The summary_message and event_message a JSON send asked for."""
    return [
        {
            "id": done.summary_message_id,
            **_common(run_id),
            "message_type": "summary_message",
            "summary": done.summary,
            "compaction_stats": {
                "trigger": "context_window_exceeded",
                "context_tokens_before": done.context_tokens_before,
                "context_tokens_after": None,
                "context_window": window,
                "messages_count_before": done.num_messages_before,
                "messages_count_after": done.num_messages_after,
            },
        },
        {
            "id": ids.new(ids.MESSAGE),
            **_common(run_id),
            "message_type": "event_message",
            "event_type": "compaction",
            "event_data": {
                "trigger": "context_window_exceeded",
                "context_token_estimate": done.context_tokens_before,
                "context_window": window,
            },
        },
    ]
