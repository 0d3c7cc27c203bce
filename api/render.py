"""Read-side rows to Letta's response shapes."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.responses import Response

from api.responses import (
    AgentStateOut,
    AuditOut,
    AuditProblem,
    BlockOut,
    ConversationOut,
    EventOut,
    MemoryOut,
    RunOut,
    ToolOut,
)
from domain import tools
from domain.tools import ToolDef
from projections.agents import AgentRow
from projections.conversations import ConversationRow
from projections.runs import RunRow, StepRow
from projections.timefmt import from_micros
from service.audit import Report
from service.event_log import EventRecord

CONTEXT_WINDOW = 128_000

log = logging.getLogger("convlog.api")
T = TypeVar("T")


def listing(rows: Sequence[T], one: Callable[[T], Any], id_of: Callable[[T], str]) -> Response:
    """A JSON array of rendered rows. A row that cannot be rendered (a record stored before
    the input limits, say) becomes a stub with its id and an error id, logged with the cause:
    one bad record never takes a whole list down for every caller.
    """
    parts = []
    for row in rows:
        try:
            parts.append(_dumps(one(row)))
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("could not render %s (error id %s)", id_of(row), error_id)
            stub = {
                "id": id_of(row),
                "error": f"This item could not be shown (error id {error_id}).",
            }
            parts.append(_dumps(stub))
    return Response("[" + ",".join(parts) + "]", media_type="application/json")


def _dumps(content: Any) -> str:
    # As starlette's JSONResponse renders.
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def conversation(row: ConversationRow, in_context: list[str]) -> dict[str, Any]:
    return ConversationOut(
        id=row.conversation_id,
        agent_id=row.agent_id,
        summary=row.summary,
        in_context_message_ids=in_context,
        isolated_block_ids=row.isolated_block_ids,
        model=row.model,
        model_settings=row.model_settings,
        created_by_id=row.created_by_id,
        last_updated_by_id=row.last_updated_by_id,
        created_at=from_micros(row.created_at),
        updated_at=from_micros(row.updated_at),
        last_message_at=None if row.last_message_at is None else from_micros(row.last_message_at),
    ).model_dump(mode="json")


def block(data: dict[str, Any]) -> BlockOut:
    return BlockOut.model_validate(data)


def max_tokens(model_settings: dict[str, Any]) -> int | None:
    found = model_settings.get("max_tokens", model_settings.get("max_output_tokens"))
    return None if found is None else int(found)


def llm_config(handle: str | None, settings: dict[str, Any]) -> dict[str, Any]:
    provider, _, name = (handle or "letta/letta-free").partition("/")
    return {
        "handle": handle,
        "model": name,
        "model_endpoint_type": provider,
        "model_endpoint": None,
        "context_window": settings.get("context_window_limit") or CONTEXT_WINDOW,
        "temperature": (settings.get("model_settings") or {}).get("temperature", 0.7),
        "max_tokens": max_tokens(settings.get("model_settings") or {}),
    }


def embedding_config(handle: str | None) -> dict[str, Any] | None:
    if handle is None:
        return None
    provider, _, name = handle.partition("/")
    return {
        "handle": handle,
        "embedding_model": name,
        "embedding_endpoint_type": provider,
        "embedding_dim": 1536,
    }


def agent(row: AgentRow, message_ids: list[str]) -> dict[str, Any]:
    state = row.state
    settings = state["settings"]
    blocks = [block(b) for b in state["blocks"]]
    return AgentStateOut(
        id=row.id,
        name=state["name"],
        system=state["system"],
        agent_type=state["agent_type"],
        description=settings.get("description"),
        metadata=settings.get("metadata"),
        tags=settings.get("tags") or [],
        model=state["model"],
        embedding=state["embedding"],
        llm_config=llm_config(state["model"], settings),
        embedding_config=embedding_config(state["embedding"]),
        model_settings=settings.get("model_settings"),
        memory=MemoryOut(blocks=blocks, agent_type=state["agent_type"]),
        blocks=blocks,
        tools=[tool(tools.BY_ID[t]) for t in state.get("tool_ids", []) if t in tools.BY_ID],
        sources=[],
        tool_rules=state.get("tool_rules", []),
        message_ids=message_ids,
        timezone=settings.get("timezone"),
        hidden=settings.get("hidden"),
        compaction_settings=settings.get("compaction_settings"),
        created_by_id=state["created_by_id"],
        last_updated_by_id=state["last_updated_by_id"],
        created_at=from_micros(row.created_at),
        updated_at=from_micros(row.updated_at),
    ).model_dump(mode="json")


def tool(definition: ToolDef) -> ToolOut:
    return ToolOut(
        id=definition.id,
        tool_type=definition.tool_type,
        description=definition.description,
        source_type="python",
        name=definition.name,
        tags=[definition.tool_type],
        source_code=None,
        json_schema={
            "name": definition.name,
            "description": definition.description,
            "parameters": dict(definition.parameters),
        },
        args_json_schema=None,
        return_char_limit=definition.return_char_limit,
        pip_requirements=None,
        npm_requirements=None,
        default_requires_approval=None,
        enable_parallel_execution=definition.name == "conversation_search",
        created_by_id=None,
        last_updated_by_id=None,
        metadata_={},
        project_id=None,
    )


def event(record: EventRecord) -> dict[str, Any]:
    return EventOut(
        position=record.position,
        version=record.version,
        type=record.type,
        timestamp=record.timestamp,
        payload=record.payload,
        by=record.by,
        stream_id=str(record.stream_id),
        stored_state=record.stored_state,
        hash=record.hash,
        previous_hash=record.previous_hash,
        error=record.error,
    ).model_dump(mode="json")


def audit(report: Report) -> dict[str, Any]:
    problem = report.problem
    return AuditOut(
        verified=report.intact,
        checked=report.checked,
        position=report.last_position,
        head=report.head,
        problem=None
        if problem is None
        else AuditProblem(position=problem.position, what=problem.what),
    ).model_dump(mode="json")


def run(row: RunRow) -> dict[str, Any]:
    state = row.state
    timings = state.get("timings") or {}
    return RunOut(
        id=row.id,
        status=row.status,
        created_at=from_micros(row.created_at),
        completed_at=None if row.completed_at is None else from_micros(row.completed_at),
        agent_id=row.agent_id,
        conversation_id=row.conversation_id,
        background=row.background,
        metadata=state["metadata"],
        request_config=state["request_config"],
        stop_reason=row.stop_reason,
        ttft_ns=timings.get("ttft_ns"),
        total_duration_ns=timings.get("total_duration_ns"),
    ).model_dump(mode="json")


def step(run_row: RunRow, row: StepRow) -> dict[str, Any]:
    """Letta's Step for one model call of the step loop (and convlog's own timing fields)."""
    usage = row.usage
    prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    model = run_row.state.get("model") or ""
    return {
        "id": row.step_id,
        "origin": None,
        "organization_id": run_row.organization_id,
        "provider_id": None,
        "run_id": row.run_id,
        "agent_id": run_row.agent_id,
        "provider_name": model.partition("/")[0] or None,
        "provider_category": "base",
        "model": model.partition("/")[2] or None,
        "model_endpoint": None,
        "context_window_limit": None,
        "completion_tokens": completion,
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens_details": None,
        "stop_reason": usage.get("finish_reason"),
        "tags": [],
        "tid": None,
        "trace_id": None,
        "messages": [],
        "feedback": None,
        "project_id": None,
        "error_type": None,
        "error_data": None,
        "status": "success",
        "number": row.number,
        "tool_call_ids": row.tool_call_ids,
        "duration_ns": row.duration_ns,
        "created_at": from_micros(row.created_at).isoformat(),
    }


def usage(run_row: RunRow, steps: list[StepRow]) -> dict[str, Any]:
    """The run's usage_statistics: as recorded at its end, else summed over its steps."""
    details = {"completion_tokens_details": None, "prompt_tokens_details": None}
    recorded = run_row.state.get("usage")
    if recorded:
        return {**{k: v for k, v in recorded.items() if k != "message_type"}, **details}
    prompt = sum(int(s.usage.get("prompt_tokens", 0)) for s in steps)
    completion = sum(int(s.usage.get("completion_tokens", 0)) for s in steps)
    return {
        "completion_tokens": completion,
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "step_count": len(steps),
        "run_ids": None,
        "cached_input_tokens": None,
        "cache_write_tokens": None,
        "reasoning_tokens": None,
        "context_tokens": (prompt + completion) or None,
        **details,
    }


def metrics(run_row: RunRow, steps: list[StepRow], tools_used: list[str]) -> dict[str, Any]:
    timings = run_row.state.get("timings") or {}
    return {
        "id": run_row.id,
        "organization_id": run_row.organization_id,
        "agent_id": run_row.agent_id,
        "project_id": None,
        "run_start_ns": run_row.created_at * 1000,
        "run_ns": timings.get("total_duration_ns"),
        "num_steps": len(steps),
        "tools_used": tools_used,
        "template_id": None,
        "base_template_id": None,
    }
