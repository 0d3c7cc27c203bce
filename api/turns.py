"""Sending messages (SSE or JSON), resuming background streams, cancelling, and ``/v1/runs``."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from api import responses, schemas, turn_schemas
from api.conversations import CONVERSATION_OR_AGENT
from api.endpoint import Call, Endpoint
from api.errors import RequestInvalid, detail, validation_errors
from domain.stops import MODEL_FAILURES
from projections.messages import plain_text
from projections.runs import RunRow
from service.model import ModelError
from service.tools.box import ClientTool
from service.turns import TurnRequest

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
PATH: dict[str, tuple[str, ...]] = {"conversation_id": CONVERSATION_OR_AGENT}


def _inputs(
    body: turn_schemas.SendMessage,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """The request's user messages, and its answer to a pending approval (if any)."""
    if body.input is not None:
        content = (
            body.input
            if isinstance(body.input, str)
            else [part.model_dump(exclude_none=True) for part in body.input]
        )
        return [{"role": "user", "content": content}], None
    assert body.messages is not None
    messages: list[dict[str, Any]] = []
    approvals: list[dict[str, Any]] | None = None
    for index, raw in enumerate(body.messages):
        kind = raw.get("type") or (
            "approval" if "approval_request_id" in raw or "approve" in raw else "message"
        )
        where = f"body.messages.{index}"
        if kind == "message":
            message = _parse(turn_schemas.MessageCreate, raw, where)
            messages.append(message.model_dump(exclude_none=True, exclude={"type", "group_id"}))
            continue
        approvals = (approvals or []) + _approvals(kind, raw, where)
    return messages, approvals


def _approvals(kind: str, raw: dict[str, Any], where: str) -> list[dict[str, Any]]:
    if kind == "tool_return":
        returns = _parse(turn_schemas.ToolReturnCreate, raw, where)
        return [_return(item) for item in returns.tool_returns]
    if kind != "approval":
        error = {
            "type": "literal_error",
            "loc": (where, "type"),
            "msg": "Input should be 'message', 'approval' or 'tool_return'",
            "input": kind,
        }
        raise RequestInvalid([error])
    approval = _parse(turn_schemas.ApprovalCreate, raw, where)
    if approval.approvals is None and approval.approve is not None:
        # The deprecated single form: one decision on the request's only call.
        return [
            {
                "type": "approval",
                "tool_call_id": approval.approval_request_id or "",
                "approve": approval.approve,
                "reason": approval.reason,
            }
        ]
    found: list[dict[str, Any]] = []
    for item in approval.approvals or []:
        if isinstance(item, turn_schemas.ClientToolReturn):
            found.append(_return(item))
        else:
            found.append(item.model_dump())
    return found


def _return(item: turn_schemas.ClientToolReturn) -> dict[str, Any]:
    result = item.model_dump()
    if not isinstance(item.tool_return, str):
        result["tool_return"] = plain_text(item.tool_return)
    return result


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], raw: dict[str, Any], where: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise RequestInvalid(validation_errors(exc, where)) from None


def turn_request(body: turn_schemas.SendMessage, streaming: bool) -> TurnRequest:
    messages, approvals = _inputs(body)
    return TurnRequest(
        messages=messages,
        approvals=approvals,
        max_steps=body.max_steps,
        stream_tokens=body.stream_tokens,
        include_return_message_types=list(body.include_return_message_types)
        if body.include_return_message_types is not None
        else None,
        override_model=body.override_model,
        background=body.background,
        include_pings=body.include_pings,
        streaming=streaming,
        include_compaction_messages=body.include_compaction_messages,
        override_system=body.override_system,
        client_skills=tuple(skill.model_dump() for skill in body.client_skills or []),
        client_tools=tuple(
            ClientTool(
                t.name, t.description or "", t.parameters or {"type": "object", "properties": {}}
            )
            for t in body.client_tools or []
        ),
    )


async def send(call: Call) -> Response:
    body: turn_schemas.SendMessage = call.body
    if body.messages is not None and not body.messages:
        return detail(422, "Messages must not be empty")
    return await answer(call, call.path["conversation_id"], turn_request(body, body.streaming))


async def preview(call: Call) -> Response:
    """The provider request a send would make: nothing is sent or written."""
    body: turn_schemas.SendMessage = call.body
    if body.messages is not None and not body.messages:
        return detail(422, "Messages must not be empty")
    request = turn_request(body, streaming=False)
    payload = await run_in_threadpool(
        call.services.turns.preview, call.actor, call.path["conversation_id"], request
    )
    return JSONResponse(payload)


async def answer(call: Call, path_id: str, request: TurnRequest) -> Response:
    """Run a turn and answer with its stream, or with its JSON once it is done."""
    turns = call.services.turns
    turn = await turns.begin(call.actor, path_id, request)
    if request.streaming:
        return StreamingResponse(
            turns.frames_of(turn), media_type="text/event-stream", headers=SSE_HEADERS
        )
    result = await turns.result_of(turn)
    if result.error is not None:
        if result.status == 500:
            return detail(500, "An unknown error occurred")
        error = result.error
        if result.kind == "context_window":
            return detail(
                400,
                "CONTEXT_WINDOW_EXCEEDED: The conversation does not fit the model's context "
                f"window ({error['detail']})",
            )
        return JSONResponse(
            {
                "error": {
                    "type": error["error_type"],
                    "message": error["message"],
                    "detail": error["detail"],
                }
            },
            status_code=result.status,
        )
    wanted = request.include_return_message_types
    return JSONResponse(
        responses.LettaResponse(
            messages=turn.notices
            + [m for m in result.messages if wanted is None or m["message_type"] in wanted],
            stop_reason={"message_type": "stop_reason", "stop_reason": result.stop_reason},
            usage=result.usage,
        ).model_dump(mode="json")
    )


async def resume(call: Call) -> Response:
    body: turn_schemas.ResumeStream = call.body
    run = await run_in_threadpool(
        lambda: call.services.runs.find_resumable(
            call.actor, call.path["conversation_id"], run_id=body.run_id, otid=body.otid
        )
    )
    return await replay(call, run)


async def replay(call: Call, run: RunRow) -> Response:
    """A background run's stream after ``starting_after``, as the request's body asks."""
    body: turn_schemas.ResumeStream = call.body
    # Letta sends pings on resume only when asked in a body (spec §2.7).
    asked = call.sent_body and body.include_pings
    pings = call.services.turns.settings.ping_seconds if asked else None
    stream = call.services.runs.resume(
        run,
        starting_after=body.starting_after,
        poll_interval=body.poll_interval or 0.1,
        batch_size=body.batch_size or 100,
        ping_seconds=pings,
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


async def cancel(call: Call) -> Response:
    outcome = await call.services.runs.cancel(call.actor, call.path["conversation_id"])
    return JSONResponse(outcome)


async def compact(call: Call) -> Response:
    body: schemas.CompactionRequest = call.body
    request = (
        body.compaction_settings.model_dump(exclude_unset=True)
        if body.compaction_settings is not None
        else None
    )
    try:
        done = await call.services.compaction.compact(
            call.actor, call.path["conversation_id"], request
        )
    except ModelError as exc:
        return model_error_response(exc)
    return JSONResponse(
        responses.CompactionResponse(
            summary=done.summary,
            num_messages_before=done.num_messages_before,
            num_messages_after=done.num_messages_after,
        ).model_dump(mode="json")
    )


def model_error_response(exc: ModelError) -> Response:
    _, error_type, message, status = MODEL_FAILURES[exc.kind]
    return JSONResponse(
        {"error": {"type": error_type, "message": message, "detail": exc.detail}},
        status_code=status,
    )


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/conversations/{conversation_id}/messages",
        "send_conversation_message",
        "Send messages; the answer streams as Server-Sent Events (or JSON with streaming=false)",
        send,
        responses.LettaResponse,
        body=turn_schemas.ConversationSendMessage,
        body_required=True,
        path_ids=PATH,
        errors=(400, 401, 404, 409, 429, 500, 502, 503, 504),
    ),
    Endpoint(
        "POST",
        "/v1/conversations/{conversation_id}/messages/preview-raw-payload",
        "preview_conversation_model_request",
        "The request a send's first step would make to the model's provider, as the context "
        "stands; nothing is sent or written",
        preview,
        dict[str, Any],
        body=turn_schemas.ConversationSendMessage,
        body_required=True,
        path_ids=PATH,
        errors=(400, 404, 409),
    ),
    Endpoint(
        "POST",
        "/v1/conversations/{conversation_id}/stream",
        "retrieve_conversation_stream",
        "Resume the active background run's stream after a seq_id",
        resume,
        None,
        body=turn_schemas.ResumeStream,
        path_ids=PATH,
        errors=(400, 404, 410, 503),
    ),
    Endpoint(
        "POST",
        "/v1/conversations/{conversation_id}/cancel",
        "cancel_conversation",
        "Cancel the conversation's active runs",
        cancel,
        dict[str, str],
        query=schemas.CancelQuery,
        path_ids=PATH,
        errors=(404, 409),
    ),
    Endpoint(
        "POST",
        "/v1/conversations/{conversation_id}/compact",
        "compact_conversation",
        "Summarize the start of the context into a checkpoint; history stays",
        compact,
        responses.CompactionResponse,
        body=schemas.CompactionRequest,
        path_ids=PATH,
        errors=(400, 401, 404, 409, 429, 502, 504),
    ),
]
