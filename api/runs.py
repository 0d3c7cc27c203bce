"""``/v1/runs…``: runs, their steps, messages, usage and metrics, resuming a background run's
stream by its id, and deleting finished runs (their events stay in the log).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from api import render, responses, schemas, turn_schemas
from api.endpoint import Call, Endpoint
from api.paging import page
from api.turns import replay
from domain import ids
from projections.runs import RunRow, StepRow

RUN: dict[str, tuple[str, ...]] = {"run_id": (ids.RUN,)}


async def retrieve_run(call: Call) -> Response:
    row = await run_in_threadpool(call.services.runs.get, call.actor, call.path["run_id"])
    return JSONResponse(render.run(row))


async def list_runs(call: Call) -> Response:
    q: schemas.ListRunsQuery = call.query
    statuses = list(q.statuses) if q.statuses else None
    if q.active:
        statuses = ["created", "running"]
    ascending = q.order == "asc" if q.ascending is None else q.ascending
    rows = await run_in_threadpool(
        lambda: call.services.runs.list_runs(
            call.actor,
            agent_id=q.agent_id,
            agent_ids=q.agent_ids,
            conversation_id=q.conversation_id,
            statuses=statuses,
            stop_reason=q.stop_reason,
            background=q.background,
            ascending=ascending,
            after=q.after,
            before=q.before,
            limit=q.limit,
        )
    )
    return render.listing(rows, render.run, lambda row: row.id)


async def active_runs(call: Call) -> Response:
    q: schemas.ActiveRunsQuery = call.query
    rows = await run_in_threadpool(
        lambda: call.services.runs.list_runs(
            call.actor,
            agent_id=q.agent_id,
            conversation_id=None,
            statuses=["created", "running"],
            background=q.background,
            ascending=False,
            after=None,
            before=None,
            limit=1000,
        )
    )
    return render.listing(rows, render.run, lambda row: row.id)


async def run_messages(call: Call) -> Response:
    q: schemas.PageQuery = call.query
    items = await run_in_threadpool(
        lambda: call.services.runs.messages(call.actor, call.path["run_id"], ascending=True)
    )
    chosen = page(items, lambda item: str(json.loads(item)["id"]), q)
    return Response("[" + ",".join(chosen) + "]", media_type="application/json")


async def run_steps(call: Call) -> Response:
    q: schemas.PageQuery = call.query
    run_id = call.path["run_id"]
    run, steps = await run_in_threadpool(_run_and_steps, call, run_id)
    chosen = page(steps, lambda step: step.step_id, q)
    return JSONResponse([render.step(run, step) for step in chosen])


def _run_and_steps(call: Call, run_id: str) -> tuple[RunRow, list[StepRow]]:
    runs = call.services.runs
    return runs.get(call.actor, run_id), runs.steps(call.actor, run_id)


async def run_usage(call: Call) -> Response:
    run, steps = await run_in_threadpool(_run_and_steps, call, call.path["run_id"])
    return JSONResponse(render.usage(run, steps))


async def run_metrics(call: Call) -> Response:
    run_id = call.path["run_id"]
    run, steps = await run_in_threadpool(_run_and_steps, call, run_id)
    items = await run_in_threadpool(
        lambda: call.services.runs.messages(call.actor, run_id, ascending=True)
    )
    tools = sorted(
        {
            item["name"]
            for item in map(json.loads, items)
            if item["message_type"] == "tool_return_message" and item.get("name")
        }
    )
    return JSONResponse(render.metrics(run, steps, tools))


async def delete_run(call: Call) -> Response:
    await run_in_threadpool(call.services.runs.delete, call.actor, call.path["run_id"])
    return JSONResponse(None)


async def stream_run(call: Call) -> Response:
    runs = call.services.runs
    run = await run_in_threadpool(runs.resumable, call.actor, call.path["run_id"])
    return await replay(call, run)


def _endpoint(method: str, path: str, op: str, summary: str, **kw: Any) -> Endpoint:
    return Endpoint(method, path, op, summary, tag="runs", **kw)


ENDPOINTS = [
    # Before /v1/runs/{run_id}, which would take "active" for an id.
    _endpoint(
        "GET",
        "/v1/runs/active",
        "list_active_runs",
        "List the runs still running",
        handler=active_runs,
        response=list[responses.RunOut],
        query=schemas.ActiveRunsQuery,
    ),
    _endpoint(
        "GET",
        "/v1/runs/",
        "list_runs",
        "List runs",
        handler=list_runs,
        response=list[responses.RunOut],
        query=schemas.ListRunsQuery,
        errors=(400,),
    ),
    _endpoint(
        "GET",
        "/v1/runs/{run_id}",
        "retrieve_run",
        "Retrieve a run",
        handler=retrieve_run,
        response=responses.RunOut,
        path_ids=RUN,
        errors=(404,),
    ),
    _endpoint(
        "DELETE",
        "/v1/runs/{run_id}",
        "delete_run",
        "Hide a finished run (409 while it runs); its events stay in the log",
        handler=delete_run,
        response=None,
        path_ids=RUN,
        errors=(404, 409),
    ),
    _endpoint(
        "GET",
        "/v1/runs/{run_id}/messages",
        "list_messages_for_run",
        "The messages a run added, in order",
        handler=run_messages,
        response=list[responses.MessageOut],
        query=schemas.PageQuery,
        path_ids=RUN,
        errors=(400, 404),
    ),
    _endpoint(
        "GET",
        "/v1/runs/{run_id}/steps",
        "list_steps_for_run",
        "A run's steps: one per model call, with its tokens and duration",
        handler=run_steps,
        response=list[dict[str, Any]],
        query=schemas.PageQuery,
        path_ids=RUN,
        errors=(400, 404),
    ),
    _endpoint(
        "GET",
        "/v1/runs/{run_id}/usage",
        "retrieve_usage_for_run",
        "A run's token usage, summed over its steps",
        handler=run_usage,
        response=dict[str, Any],
        path_ids=RUN,
        errors=(404,),
    ),
    _endpoint(
        "GET",
        "/v1/runs/{run_id}/metrics",
        "retrieve_metrics_for_run",
        "A run's timing, step count and tools used",
        handler=run_metrics,
        response=dict[str, Any],
        path_ids=RUN,
        errors=(404,),
    ),
    _endpoint(
        "POST",
        "/v1/runs/{run_id}/stream",
        "retrieve_stream_for_run",
        "Resume a background run's stream by its id, after a seq_id",
        handler=stream_run,
        response=None,
        body=turn_schemas.ResumeStream,
        path_ids=RUN,
        errors=(400, 404, 410, 503),
    ),
]
