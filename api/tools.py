"""``/v1/tools…`` and an agent's tools: the built-in server tools, attached and detached.

Custom server-side tools (``POST /v1/tools/`` with Python ``source_code``) are not run by
convlog: the request is refused with a 400 that points to ``client_tools``.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import render, responses, schemas
from api.agents import one_agent
from api.endpoint import Call, Endpoint
from api.errors import detail
from domain import ids, tools
from domain.tools import ToolDef
from service.agents import ToolChange

AGENT: dict[str, tuple[str, ...]] = {"agent_id": (ids.AGENT,)}
AGENT_AND_TOOL: dict[str, tuple[str, ...]] = {"agent_id": (ids.AGENT,), "tool_id": (ids.TOOL,)}
NO_CUSTOM_TOOLS = (
    "convlog does not run custom server-side tools from source_code. Declare the tool in the "
    "request's client_tools instead and run it in your client: the turn stops with "
    "requires_approval and your next request carries the tool's result."
)


def page(found: list[ToolDef], q: schemas.ListToolsQuery) -> Response:
    """One page of tools in id order, so SDK auto-pagination walks them once and stops."""
    descending = q.order == "desc"
    ordered = sorted(
        (t for t in found if q.name is None or t.name == q.name),
        key=lambda t: t.id,
        reverse=descending,
    )

    def later(a: str, b: str) -> bool:
        return a < b if descending else a > b

    chosen = [
        t
        for t in ordered
        if (q.after is None or later(t.id, q.after)) and (q.before is None or later(q.before, t.id))
    ]
    # With only 'before', the page nearest to it.
    chosen = chosen[-q.limit :] if q.before is not None and q.after is None else chosen
    return JSONResponse([render.tool(t).model_dump(mode="json") for t in chosen[: q.limit]])


async def list_tools(call: Call) -> Response:
    return page(list(tools.BUILTIN), call.query)


async def retrieve_tool(call: Call) -> Response:
    definition = tools.by_id(call.path["tool_id"])
    return JSONResponse(render.tool(definition).model_dump(mode="json"))


async def create_tool(call: Call) -> Response:
    return detail(400, NO_CUSTOM_TOOLS)


async def agent_tools(call: Call) -> Response:
    found = await run_in_threadpool(
        call.services.agents.tools_of, call.actor, call.path["agent_id"]
    )
    return page(found, call.query)


async def _changed(call: Call, change: ToolChange) -> Response:
    row = await run_in_threadpool(
        call.services.agents.change_tools, call.actor, call.path["agent_id"], change
    )
    # Letta answers SDK 1.x clients with null and older clients with the agent.
    if sdk_v1(call.request):
        return JSONResponse(None)
    return await one_agent(call, row)


def sdk_v1(request: Request) -> bool:
    agent = request.headers.get("user-agent", "")
    stainless = any(key.lower().startswith("x-stainless") for key in request.headers)
    return stainless or not agent or agent.startswith(("letta-client/", "@letta-ai/letta-client/"))


async def attach(call: Call) -> Response:
    return await _changed(call, ToolChange(attach=call.path["tool_id"]))


async def detach(call: Call) -> Response:
    return await _changed(call, ToolChange(detach=call.path["tool_id"]))


async def approval(call: Call) -> Response:
    body: schemas.ToolApproval | None = call.body
    q: schemas.ToolApprovalQuery = call.query
    required = body.requires_approval if body is not None else q.requires_approval
    if required is None:
        return detail(
            422, "requires_approval must be provided either in request body or as query parameter"
        )
    change = ToolChange(approval=(call.path["tool_name"], required))
    return await _changed(call, change)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/v1/tools/",
        "list_tools",
        "List the server's tools",
        list_tools,
        list[responses.ToolOut],
        query=schemas.ListToolsQuery,
        tag="tools",
    ),
    Endpoint(
        "POST",
        "/v1/tools/",
        "create_tool",
        "Refused: custom server-side tools run on the client (client_tools)",
        create_tool,
        None,
        tag="tools",
        errors=(400,),
    ),
    Endpoint(
        "GET",
        "/v1/tools/{tool_id}",
        "retrieve_tool",
        "Retrieve a tool",
        retrieve_tool,
        responses.ToolOut,
        path_ids={"tool_id": (ids.TOOL,)},
        tag="tools",
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/v1/agents/{agent_id}/tools",
        "list_agent_tools",
        "List an agent's tools",
        agent_tools,
        list[responses.ToolOut],
        query=schemas.ListToolsQuery,
        path_ids=AGENT,
        tag="agents",
        errors=(404,),
    ),
    Endpoint(
        "PATCH",
        "/v1/agents/{agent_id}/tools/attach/{tool_id}",
        "attach_tool_to_agent",
        "Give an agent a tool",
        attach,
        responses.AgentStateOut,
        path_ids=AGENT_AND_TOOL,
        tag="agents",
        errors=(404,),
    ),
    Endpoint(
        "PATCH",
        "/v1/agents/{agent_id}/tools/detach/{tool_id}",
        "detach_tool_from_agent",
        "Take a tool from an agent",
        detach,
        responses.AgentStateOut,
        path_ids=AGENT_AND_TOOL,
        tag="agents",
        errors=(404,),
    ),
    Endpoint(
        "PATCH",
        "/v1/agents/{agent_id}/tools/approval/{tool_name}",
        "modify_approval_for_tool",
        "Set whether calls to a tool wait for the client's approval",
        approval,
        responses.AgentStateOut,
        body=schemas.ToolApproval,
        query=schemas.ToolApprovalQuery,
        path_ids=AGENT,
        tag="agents",
        errors=(404,),
    ),
]
