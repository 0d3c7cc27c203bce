"""The agent messaging API (``/v1/agents/{id}/messages…``): turns on the agent's own context.

The same turns as ``/v1/conversations/agent-…/messages``; ``POST …/messages`` answers with
JSON unless the request sets ``streaming``, ``…/stream`` always streams, and ``…/async``
starts a background run and answers with it at once.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from api import render, responses, schemas, turn_schemas
from api.agents import one_agent
from api.conversations import messages_page
from api.endpoint import Call, Endpoint
from api.errors import detail
from api.tools import sdk_v1
from api.turns import answer, turn_request
from domain import ids

AGENT: dict[str, tuple[str, ...]] = {"agent_id": (ids.AGENT,)}


def _body(call: Call) -> turn_schemas.AgentSendMessage | Response:
    body: turn_schemas.AgentSendMessage = call.body
    if body.messages is not None and not body.messages:
        return detail(422, "Messages must not be empty")
    return body


async def send(call: Call) -> Response:
    body = _body(call)
    if isinstance(body, Response):
        return body
    return await answer(call, call.path["agent_id"], turn_request(body, body.streaming))


async def stream(call: Call) -> Response:
    body = _body(call)
    if isinstance(body, Response):
        return body
    return await answer(call, call.path["agent_id"], turn_request(body, True))


async def send_async(call: Call) -> Response:
    body = _body(call)
    if isinstance(body, Response):
        return body
    request = turn_request(body.model_copy(update={"background": True}), True)
    turn = await call.services.turns.begin(call.actor, call.path["agent_id"], request)
    row = await run_in_threadpool(call.services.runs.get, call.actor, turn.run_id)
    return JSONResponse(render.run(row))


async def list_messages(call: Call) -> Response:
    return await messages_page(call, call.path["agent_id"])


async def cancel(call: Call) -> Response:
    body: turn_schemas.CancelAgentRuns = call.body
    outcome = await call.services.runs.cancel(
        call.actor, call.path["agent_id"], body.run_ids, noun="agent"
    )
    return JSONResponse(outcome)


async def reset(call: Call) -> Response:
    row = await run_in_threadpool(
        call.services.agents.reset_messages, call.actor, call.path["agent_id"]
    )
    if sdk_v1(call.request):
        return JSONResponse(None)
    return await one_agent(call, row)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/agents/{agent_id}/messages",
        "send_message",
        "Send messages to the agent's own context (JSON unless streaming is set)",
        send,
        responses.LettaResponse,
        body=turn_schemas.AgentSendMessage,
        body_required=True,
        path_ids=AGENT,
        tag="agents",
        errors=(400, 401, 404, 409, 429, 500, 502, 504),
    ),
    Endpoint(
        "POST",
        "/v1/agents/{agent_id}/messages/stream",
        "create_agent_message_stream",
        "Send messages; the answer streams as Server-Sent Events",
        stream,
        None,
        body=turn_schemas.AgentSendMessage,
        body_required=True,
        path_ids=AGENT,
        tag="agents",
        errors=(400, 404, 409),
    ),
    Endpoint(
        "POST",
        "/v1/agents/{agent_id}/messages/async",
        "create_agent_message_async",
        "Start a background run and answer with it at once (poll /v1/runs/{run_id})",
        send_async,
        responses.RunOut,
        body=turn_schemas.AgentSendMessage,
        body_required=True,
        path_ids=AGENT,
        tag="agents",
        errors=(400, 404, 409),
    ),
    Endpoint(
        "GET",
        "/v1/agents/{agent_id}/messages",
        "list_messages",
        "List the messages of the agent's own context, history included",
        list_messages,
        list[responses.MessageOut],
        query=schemas.ListMessagesQuery,
        path_ids=AGENT,
        tag="agents",
        errors=(400, 404),
    ),
    Endpoint(
        "POST",
        "/v1/agents/{agent_id}/messages/cancel",
        "cancel_message",
        "Cancel the agent's active runs (all, or those in run_ids)",
        cancel,
        dict[str, str],
        body=turn_schemas.CancelAgentRuns,
        path_ids=AGENT,
        tag="agents",
        errors=(404, 409),
    ),
    Endpoint(
        "PATCH",
        "/v1/agents/{agent_id}/reset-messages",
        "reset_messages",
        "Start the agent's own context over from its system message; history stays listed",
        reset,
        responses.AgentStateOut,
        body=turn_schemas.ResetMessages,
        body_required=True,
        path_ids=AGENT,
        tag="agents",
        errors=(404, 409),
    ),
]
