"""The part of ``/v1/agents…`` that conversations need."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from api import agent_schemas, render, responses, schemas
from api.conversations import as_of_header
from api.endpoint import Call, Endpoint
from api.errors import detail
from api.llm_config import apply_llm_config, embedding_handle
from api.paging import page
from domain import ids, tools
from projections.agents import AgentRow
from service.agents import AgentSpec, BlockSpec
from service.compaction import default_settings

AGENT: dict[str, tuple[str, ...]] = {"agent_id": (ids.AGENT,)}

SETTINGS_FIELDS = (
    "description",
    "tags",
    "metadata",
    "timezone",
    "context_window_limit",
    "model_settings",
    "include_base_tools",
    "hidden",
)
# Letta hides the agents Letta Code's subagents run as.
SUBAGENT_TAG = "role:subagent"


def _tool_rules(body: agent_schemas.CreateAgent) -> list[dict[str, str]]:
    """The rules given, and with ``include_base_tool_rules`` Letta's continue_loop for each
    base tool (it changes nothing a v1 agent does: every tool call continues the loop).
    """
    rules = [{"type": r.type, "tool_name": r.tool_name} for r in body.tool_rules or []]
    if body.include_base_tool_rules and body.include_base_tools:
        rules += [{"type": "continue_loop", "tool_name": name} for name in tools.BASE_TOOLS]
    return rules


def as_json(call: Call, rows: list[AgentRow]) -> list[dict[str, Any]]:
    """Agents as Letta shows them, each with its in-context message ids (one query)."""
    message_ids = call.services.agents.message_ids(rows)
    return [render.agent(row, message_ids[row.id]) for row in rows]


async def one_agent(call: Call, row: AgentRow) -> Response:
    return JSONResponse((await run_in_threadpool(as_json, call, [row]))[0])


async def create(call: Call) -> Response:
    body: agent_schemas.CreateAgent = call.body
    model, embedding = body.model, body.embedding
    settings = body.model_dump(include=set(SETTINGS_FIELDS))
    if SUBAGENT_TAG in (body.tags or []):
        settings["hidden"] = True
    if body.llm_config is not None:
        endpoint_of = call.services.catalog.endpoint
        model, settings = apply_llm_config(body.llm_config, model, settings, endpoint_of)
    if body.embedding_config is not None:
        embedding = embedding_handle(body.embedding_config, embedding)
    spec = AgentSpec(
        name=body.name,
        system=body.system,
        agent_type=body.agent_type,
        model=model,
        embedding=embedding,
        memory_blocks=[
            BlockSpec(**b.model_dump(exclude={"project_id"})) for b in body.memory_blocks or []
        ],
        include_base_tools=body.include_base_tools,
        tools=body.tools or [],
        tool_ids=body.tool_ids or [],
        tool_rules=_tool_rules(body),
        settings={
            **settings,
            # Letta's defaults under what the client set (spec §2.8).
            "compaction_settings": default_settings(
                model,
                body.compaction_settings.model_dump(exclude_unset=True)
                if body.compaction_settings
                else None,
            ),
        },
    )
    row = await run_in_threadpool(call.services.agents.create, call.actor, spec)
    return await one_agent(call, row)


async def update(call: Call) -> Response:
    body: agent_schemas.UpdateAgent = call.body
    given = body.model_dump(exclude_none=True, exclude={"message_buffer_autoclear", "project_id"})
    changes: dict[str, Any] = {
        key: given.pop(key)
        for key in ("name", "system", "model", "embedding", "tool_ids")
        if key in given
    }
    if body.tool_rules is not None:
        changes["tool_rules"] = [
            {"type": r.type, "tool_name": r.tool_name} for r in body.tool_rules
        ]
        given.pop("tool_rules")
    if body.compaction_settings is not None:  # only the fields sent, merged by the service
        given["compaction_settings"] = body.compaction_settings.model_dump(exclude_unset=True)
    if given:
        changes["settings"] = given
    row = await run_in_threadpool(
        call.services.agents.update, call.actor, call.path["agent_id"], changes
    )
    return await one_agent(call, row)


async def list_(call: Call) -> Response:
    q: schemas.ListAgentsQuery = call.query
    rows = await run_in_threadpool(
        lambda: call.services.agents.list(
            call.actor,
            name=q.name,
            ascending=q.order == "asc",
            after=q.after,
            before=q.before,
            limit=q.limit,
            tags=q.tags,
            match_all_tags=q.match_all_tags,
            query_text=q.query_text,
            show_hidden=q.show_hidden_agents,
        )
    )
    return await run_in_threadpool(listing, call, rows)


def listing(call: Call, rows: list[AgentRow]) -> Response:
    message_ids = call.services.agents.message_ids(rows)
    return render.listing(rows, lambda row: render.agent(row, message_ids[row.id]), _id)


def _id(row: AgentRow) -> str:
    return row.id


async def count(call: Call) -> Response:
    q: schemas.CountAgentsQuery = call.query
    found = await run_in_threadpool(call.services.agents.count, call.actor, q.show_hidden_agents)
    return JSONResponse(found)


async def list_blocks(call: Call) -> Response:
    found = await run_in_threadpool(call.services.agents.blocks, call.actor, call.path["agent_id"])
    chosen = page(found, lambda block: str(block["id"]), call.query)
    return JSONResponse([render.block(b).model_dump(mode="json") for b in chosen])


async def retrieve(call: Call) -> Response:
    q: schemas.RetrieveAgentQuery = call.query
    point = q.point()
    if point is not None:
        past = await run_in_threadpool(
            call.services.time_travel.agent, call.actor, call.path["agent_id"], point
        )
        return JSONResponse(
            render.agent(past.row, past.message_ids), headers=as_of_header(past.version)
        )
    row = await run_in_threadpool(call.services.agents.get, call.actor, call.path["agent_id"])
    return await one_agent(call, row)


async def delete(call: Call) -> Response:
    agent_id = call.path["agent_id"]
    await run_in_threadpool(call.services.agents.delete, call.actor, agent_id)
    return JSONResponse({"message": f"Agent id={agent_id} successfully deleted"})


async def retrieve_block(call: Call) -> Response:
    data = await run_in_threadpool(
        call.services.agents.get_block,
        call.actor,
        call.path["agent_id"],
        call.path["block_label"],
    )
    return JSONResponse(render.block(data).model_dump(mode="json"))


async def update_block(call: Call) -> Response:
    body: schemas.UpdateBlock = call.body
    given = body.model_dump(exclude_unset=True, exclude={"project_id"})
    changes = {k: v for k, v in given.items() if v is not None}
    data = await run_in_threadpool(
        call.services.agents.update_block,
        call.actor,
        call.path["agent_id"],
        call.path["block_label"],
        changes,
    )
    return JSONResponse(render.block(data).model_dump(mode="json"))


NO_OLD_TIMESTAMP = (
    "update_timestamp=false is not supported: a system message compiled by convlog always "
    "shows when it was compiled. Leave update_timestamp out (or true)."
)


async def recompile(call: Call) -> Response:
    q: schemas.RecompileAgentQuery = call.query
    if not q.update_timestamp:
        return detail(400, NO_OLD_TIMESTAMP)
    content = await run_in_threadpool(
        lambda: call.services.conversations.recompile(
            call.actor, call.path["agent_id"], dry_run=q.dry_run
        )
    )
    return JSONResponse(content)


ENDPOINTS = [
    *(
        Endpoint(
            "POST",
            path,
            operation_id,
            "Rebuild the agent's own system message from its blocks (dry_run: only return it)",
            recompile,
            str,
            query=schemas.RecompileAgentQuery,
            path_ids=AGENT,
            tag="agents",
            errors=(400, 404),
        )
        for path, operation_id in (
            ("/v1/agents/{agent_id}/recompile", "recompile_agent"),
            ("/v1/agents/{agent_id}/system-prompt/recompile", "recompile_agent_system_prompt"),
        )
    ),
    Endpoint(
        "POST",
        "/v1/agents/",
        "create_agent",
        "Create an agent with memory blocks",
        create,
        responses.AgentStateOut,
        body=agent_schemas.CreateAgent,
        body_required=True,
        tag="agents",
        errors=(400, 404),
    ),
    Endpoint(
        "GET",
        "/v1/agents/",
        "list_agents",
        "List agents",
        list_,
        list[responses.AgentStateOut],
        query=schemas.ListAgentsQuery,
        tag="agents",
        errors=(400,),
    ),
    Endpoint(
        "GET",
        "/v1/agents/count",
        "count_agents",
        "How many agents there are",
        count,
        int,
        query=schemas.CountAgentsQuery,
        tag="agents",
    ),
    Endpoint(
        "GET",
        "/v1/agents/{agent_id}/core-memory/blocks",
        "list_core_memory_blocks",
        "An agent's memory blocks",
        list_blocks,
        list[responses.BlockOut],
        query=schemas.PageQuery,
        path_ids=AGENT,
        tag="agents",
        errors=(400, 404),
    ),
    Endpoint(
        "GET",
        "/v1/agents/{agent_id}",
        "retrieve_agent",
        "Retrieve an agent (as_of_version / as_of: as it was then, its blocks too)",
        retrieve,
        responses.AgentStateOut,
        query=schemas.RetrieveAgentQuery,
        path_ids=AGENT,
        tag="agents",
        errors=(400, 404),
    ),
    Endpoint(
        "PATCH",
        "/v1/agents/{agent_id}",
        "modify_agent",
        "Change an agent's name, prompt, model, tags, tools, settings …",
        update,
        responses.AgentStateOut,
        body=agent_schemas.UpdateAgent,
        body_required=True,
        path_ids=AGENT,
        tag="agents",
        errors=(400, 404),
    ),
    Endpoint(
        "DELETE",
        "/v1/agents/{agent_id}",
        "delete_agent",
        "Delete an agent and its conversations",
        delete,
        responses.DeletedAgent,
        path_ids=AGENT,
        tag="agents",
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/v1/agents/{agent_id}/core-memory/blocks/{block_label}",
        "retrieve_core_memory_block",
        "Retrieve a memory block",
        retrieve_block,
        responses.BlockOut,
        path_ids=AGENT,
        tag="agents",
        errors=(404,),
    ),
    Endpoint(
        "PATCH",
        "/v1/agents/{agent_id}/core-memory/blocks/{block_label}",
        "modify_core_memory_block",
        "Update a memory block; new conversations see the new value",
        update_block,
        responses.BlockOut,
        body=schemas.UpdateBlock,
        body_required=True,
        path_ids=AGENT,
        tag="agents",
        errors=(400, 404),
    ),
]
