"""The LettaMessage items a turn produces, as the wire and the message list show them.

Every item has its own ``message-…`` id (decisions §5): a step's reasoning, text and tool
calls are separate items that share the step id. What an item stores in the log is the same
dict minus the common fields (``Conversation.MessageAppended``'s ``extra``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from uuid import UUID, uuid4

from domain import ids
from service.model import ToolCall
from service.tools.box import ToolResult

COMMON = ("id", "date", "name", "message_type", "otid", "sender_id", "step_id", "is_err")


def now_date() -> str:
    """Now, to the second, as Letta dates items (every streamed fragment carries one)."""
    return _date_of(int(time.time()))


@lru_cache(maxsize=2)  # formatted once a second
def _date_of(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).isoformat()


@lru_cache(maxsize=4096)  # every fragment of an item asks again
def otid(message_id: str, index: int = 0) -> str:
    """Letta's otid: the message uuid with its lowest 7 bits replaced by the part index."""
    value = ids.to_uuid(message_id).int
    return str(UUID(int=(value & ~0x7F) | index))


@dataclass(frozen=True)
class Item:
    """One message a step records: how it is stored, and how it is sent."""

    message_id: str
    role: str
    message_type: str
    content: Any  # stored content (what the model reads); None for structured items
    extra: dict[str, Any]
    step_id: str
    run_id: str

    def wire(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": self.message_id,
            "date": now_date(),
            "name": None,
            "message_type": self.message_type,
            "otid": otid(self.message_id),
            "sender_id": None,
            "step_id": self.step_id,
            "is_err": None,
            "seq_id": None,
            "run_id": self.run_id,
        }
        if self.message_type in ("assistant_message", "user_message", "system_message"):
            item["content"] = self.content
        item.update(self.extra)
        return item


def call_json(call: ToolCall) -> dict[str, Any]:
    return {"name": call.name, "arguments": call.arguments, "tool_call_id": call.id}


@dataclass(frozen=True)
class StepIds:
    """A step's ids, chosen before the model answers so streamed fragments carry them."""

    run_id: str
    step_id: str
    reasoning_id: str
    text_id: str
    calls_id: str
    approval_id: str
    started: float  # perf_counter() when the step began

    @classmethod
    def new(cls, run_id: str) -> StepIds:
        return cls(
            run_id=run_id,
            step_id=ids.new(ids.STEP),
            reasoning_id=ids.new(ids.MESSAGE),
            text_id=ids.new(ids.MESSAGE),
            calls_id=ids.new(ids.MESSAGE),
            approval_id=ids.new(ids.MESSAGE),
            started=time.perf_counter(),
        )


def assistant(text: str, step: StepIds) -> Item:
    return Item(step.text_id, "assistant", "assistant_message", text, {}, step.step_id, step.run_id)


def reasoning(text: str, step: StepIds) -> Item:
    extra = {"source": "reasoner_model", "reasoning": text, "signature": None}
    return Item(
        step.reasoning_id, "assistant", "reasoning_message", None, extra, step.step_id, step.run_id
    )


def hidden_reasoning(step: StepIds) -> Item:
    extra = {"state": "omitted", "hidden_reasoning": None}
    return Item(
        step.reasoning_id,
        "assistant",
        "hidden_reasoning_message",
        None,
        extra,
        step.step_id,
        step.run_id,
    )


def tool_calls(calls: list[ToolCall], step: StepIds, approval: bool) -> Item:
    listed = [call_json(c) for c in calls]
    extra = {"tool_call": listed[0], "tool_calls": listed}
    if approval:
        return Item(
            step.approval_id,
            "approval",
            "approval_request_message",
            None,
            extra,
            step.step_id,
            step.run_id,
        )
    return Item(
        step.calls_id, "assistant", "tool_call_message", None, extra, step.step_id, step.run_id
    )


def tool_return(result: ToolResult, step: StepIds) -> Item:
    one = {
        "type": "tool",
        "tool_return": result.value,
        "status": result.status,
        "tool_call_id": result.tool_call_id,
        "stdout": result.stdout,
        "stderr": result.stderr,
    }
    extra = {
        "name": result.name,
        "tool_return": result.value,
        "status": result.status,
        "tool_call_id": result.tool_call_id,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "tool_returns": [one],
    }
    return Item(
        ids.new(ids.MESSAGE),
        "tool",
        "tool_return_message",
        result.model_text,
        extra,
        step.step_id,
        step.run_id,
    )


def approval_response(approvals: list[dict[str, Any]], decided_by: str, step: StepIds) -> Item:
    first = approvals[0]
    extra = {
        "approvals": approvals,
        "approve": first.get("approve"),
        "approval_request_id": None,
        "reason": first.get("reason"),
        "decided_by": decided_by,  # who answered, for auditors (not a Letta field)
    }
    return Item(
        ids.new(ids.MESSAGE),
        "approval",
        "approval_response_message",
        None,
        extra,
        step.step_id,
        step.run_id,
    )


def delta(
    message_id: str, message_type: str, step_id: str, run_id: str, **fields: Any
) -> dict[str, Any]:
    """A token-streaming fragment of an item (same id and otid as the stored item)."""
    return {
        "id": message_id,
        "date": now_date(),
        "name": None,
        "message_type": message_type,
        "otid": otid(message_id),
        "sender_id": None,
        "step_id": step_id,
        "is_err": None,
        "seq_id": None,
        "run_id": run_id,
        **fields,
    }


def ping(run_id: str, seq_id: int | None) -> dict[str, Any]:
    return {
        "id": f"ping-{uuid4()}",
        "date": now_date(),
        "name": None,
        "message_type": "ping",
        "otid": None,
        "sender_id": None,
        "step_id": None,
        "is_err": None,
        "seq_id": seq_id,
        "run_id": run_id,
    }
