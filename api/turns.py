"""Sending messages (SSE or JSON), resuming background streams, cancelling, and ``/v1/runs``."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from api import render, schemas
from api.conversations import CONVERSATION_OR_AGENT
from api.endpoint import Call, Endpoint
from api.errors import RequestInvalid, detail, validation_errors
from domain.errors import InvalidArgument
from service.context import DEFAULT_ACTOR
from service.model import ModelError
from service.turns import MODEL_ERRORS, TurnRequest

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
PATH: dict[str, tuple[str, ...]] = {"conversation_id": CONVERSATION_OR_AGENT}


def _input_messages(body: schemas.SendMessage) -> list[dict[str, Any]]:
    if body.input is not None:
        return [{"role": "user", "content": body.input}]
    assert body.messages is not None
    messages = []
    for index, raw in enumerate(body.messages):
        kind = raw.get("type") or (
            "approval" if "approval_request_id" in raw or "approve" in raw else "message"
        )
        if kind != "message":
            raise InvalidArgument(
                "No tool call is awaiting approval: this agent has no client or approval tools."
            )
        try:
            message = schemas.MessageCreate.model_validate(raw)
        except ValidationError as exc:
            raise RequestInvalid(validation_errors(exc, f"body.messages.{index}")) from None
        messages.append(message.model_dump(exclude_none=True, exclude={"type", "group_id"}))
    return messages


async def send(call: Call) -> Response:
    body: schemas.SendMessage = call.body
    if body.messages is not None and not body.messages:
        return detail(422, "Messages must not be empty")
    request = TurnRequest(
        messages=_input_messages(body),
        max_steps=body.max_steps,
        stream_tokens=body.stream_tokens,
        include_return_message_types=list(body.include_return_message_types)
        if body.include_return_message_types is not None
        else None,
        override_model=body.override_model,
        background=body.background,
        include_pings=body.include_pings,
        streaming=body.streaming,
        include_compaction_messages=body.include_compaction_messages,
    )
    turns = call.services.turns
    turn = await turns.begin(DEFAULT_ACTOR, call.path["conversation_id"], request)
    if body.streaming:
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
        schemas.LettaResponse(
            messages=turn.notices
            + [m for m in result.messages if wanted is None or m["message_type"] in wanted],
            stop_reason={"message_type": "stop_reason", "stop_reason": result.stop_reason},
            usage=result.usage,
        ).model_dump(mode="json")
    )


async def resume(call: Call) -> Response:
    body: schemas.ResumeStream = call.body
    runs = call.services.runs
    run = await run_in_threadpool(runs.find_resumable, DEFAULT_ACTOR, call.path["conversation_id"])
    # Letta sends pings on resume only when asked in a body (spec §2.7).
    asked = bool((await call.request.body()).strip()) and body.include_pings
    pings = call.services.turns.settings.ping_seconds if asked else None
    stream = runs.resume(
        run,
        starting_after=body.starting_after,
        poll_interval=body.poll_interval or 0.1,
        batch_size=body.batch_size or 100,
        ping_seconds=pings,
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


async def cancel(call: Call) -> Response:
    outcome = await call.services.runs.cancel(DEFAULT_ACTOR, call.path["conversation_id"])
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
            DEFAULT_ACTOR, call.path["conversation_id"], request
        )
    except ModelError as exc:
        return model_error_response(exc)
    return JSONResponse(
        schemas.CompactionResponse(
            summary=done.summary,
            num_messages_before=done.num_messages_before,
            num_messages_after=done.num_messages_after,
        ).model_dump(mode="json")
    )


def model_error_response(exc: ModelError) -> Response:
    _, error_type, message, status = MODEL_ERRORS[exc.kind]
    return JSONResponse(
        {"error": {"type": error_type, "message": message, "detail": exc.detail}},
        status_code=status,
    )


async def retrieve_run(call: Call) -> Response:
    row = await run_in_threadpool(call.services.runs.get, DEFAULT_ACTOR, call.path["run_id"])
    return JSONResponse(render.run(row))


async def list_runs(call: Call) -> Response:
    q: schemas.ListRunsQuery = call.query
    statuses = list(q.statuses) if q.statuses else None
    if q.active:
        statuses = ["created", "running"]
    rows = await run_in_threadpool(
        lambda: call.services.runs.list_runs(
            DEFAULT_ACTOR,
            agent_id=q.agent_id,
            conversation_id=q.conversation_id,
            statuses=statuses,
            background=q.background,
            ascending=q.order == "asc",
            after=q.after,
            before=q.before,
            limit=q.limit,
        )
    )
    return JSONResponse([render.run(row) for row in rows])


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/conversations/{conversation_id}/messages",
        "send_conversation_message",
        "Send messages; the answer streams as Server-Sent Events (or JSON with streaming=false)",
        send,
        schemas.LettaResponse,
        body=schemas.SendMessage,
        body_required=True,
        path_ids=PATH,
    ),
    Endpoint(
        "POST",
        "/v1/conversations/{conversation_id}/stream",
        "retrieve_conversation_stream",
        "Resume the active background run's stream after a seq_id",
        resume,
        None,
        body=schemas.ResumeStream,
        path_ids=PATH,
    ),
    Endpoint(
        "POST",
        "/v1/conversations/{conversation_id}/cancel",
        "cancel_conversation",
        "Cancel the conversation's active runs",
        cancel,
        dict[str, str],
        path_ids=PATH,
    ),
    Endpoint(
        "POST",
        "/v1/conversations/{conversation_id}/compact",
        "compact_conversation",
        "Summarize the start of the context into a checkpoint; history stays",
        compact,
        schemas.CompactionResponse,
        body=schemas.CompactionRequest,
        path_ids=PATH,
    ),
    Endpoint(
        "GET",
        "/v1/runs/{run_id}",
        "retrieve_run",
        "Retrieve a run",
        retrieve_run,
        schemas.RunOut,
        path_ids={"run_id": ("run",)},
        tag="runs",
    ),
    Endpoint(
        "GET",
        "/v1/runs/",
        "list_runs",
        "List runs",
        list_runs,
        list[schemas.RunOut],
        query=schemas.ListRunsQuery,
        tag="runs",
    ),
]
