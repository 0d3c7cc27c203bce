"""``/v1/blocks``: memory blocks on their own, and attaching them to agents to share them."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from api import render, responses, schemas
from api.agents import as_json, one_agent
from api.endpoint import Call, Endpoint
from api.paging import page
from domain import ids
from domain.errors import BadRequest
from projections.agents import AgentRow
from projections.blocks import BlockRow
from service.blocks import NewBlock

BLOCK: dict[str, tuple[str, ...]] = {"block_id": (ids.BLOCK,)}
AGENT_AND_BLOCK: dict[str, tuple[str, ...]] = {"agent_id": (ids.AGENT,), **BLOCK}


def wire(row: BlockRow) -> dict[str, object]:
    return responses.BlockOut.model_validate(row.wire()).model_dump(mode="json")


async def create(call: Call) -> Response:
    body: schemas.CreateBlock = call.body
    spec = NewBlock(**body.model_dump(exclude={"project_id"}))
    row = await run_in_threadpool(call.services.blocks.create, call.actor, spec)
    return JSONResponse(wire(row))


async def list_(call: Call) -> Response:
    q: schemas.ListBlocksQuery = call.query
    rows = await run_in_threadpool(
        lambda: call.services.blocks.page(
            call.actor,
            label=q.label,
            ascending=q.order == "asc",
            after=q.after,
            before=q.before,
            limit=q.limit,
        )
    )
    return render.listing(rows, wire, lambda row: row.id)


async def retrieve(call: Call) -> Response:
    row = await run_in_threadpool(call.services.blocks.get, call.actor, call.path["block_id"])
    return JSONResponse(wire(row))


async def agents(call: Call) -> Response:
    def run() -> list[dict[str, object]]:
        found = call.services.blocks.agents_of(call.actor, call.path["block_id"])
        return as_json(call, page(found, lambda row: row.id, call.query))

    return JSONResponse(await run_in_threadpool(run))


async def modify(call: Call) -> Response:
    body: schemas.UpdateBlock = call.body
    given = body.model_dump(exclude_unset=True, exclude={"project_id"})
    changes = {k: v for k, v in given.items() if v is not None}
    row = await run_in_threadpool(
        call.services.blocks.modify, call.actor, call.path["block_id"], changes
    )
    return JSONResponse(wire(row))


async def delete(call: Call) -> Response:
    await run_in_threadpool(call.services.blocks.delete, call.actor, call.path["block_id"])
    return JSONResponse(None)


async def attach(call: Call) -> Response:
    def run() -> AgentRow:
        agent_id = call.path["agent_id"]
        most = call.edge.limits.blocks
        if len(call.services.agents.blocks(call.actor, agent_id)) >= most:
            raise BadRequest(f"An agent may have at most {most} memory blocks (CONVLOG_MAX_BLOCKS)")
        return call.services.blocks.attach(call.actor, agent_id, call.path["block_id"])

    return await one_agent(call, await run_in_threadpool(run))


async def detach(call: Call) -> Response:
    row = await run_in_threadpool(
        call.services.blocks.detach, call.actor, call.path["agent_id"], call.path["block_id"]
    )
    return await one_agent(call, row)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/blocks/",
        "create_block",
        "Create a memory block that agents can share",
        create,
        responses.BlockOut,
        body=schemas.CreateBlock,
        body_required=True,
        tag="blocks",
        errors=(400,),
    ),
    Endpoint(
        "GET",
        "/v1/blocks/",
        "list_blocks",
        "List memory blocks: shared ones and those agents were created with",
        list_,
        list[responses.BlockOut],
        query=schemas.ListBlocksQuery,
        tag="blocks",
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/v1/blocks/{block_id}",
        "retrieve_block",
        "Retrieve a memory block",
        retrieve,
        responses.BlockOut,
        path_ids=BLOCK,
        tag="blocks",
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/v1/blocks/{block_id}/agents",
        "list_agents_for_block",
        "The agents that have this block",
        agents,
        list[responses.AgentStateOut],
        query=schemas.BlockAgentsQuery,
        path_ids=BLOCK,
        tag="blocks",
        errors=(400, 404),
    ),
    Endpoint(
        "PATCH",
        "/v1/blocks/{block_id}",
        "modify_block",
        "Change a memory block: every agent that has it sees the change",
        modify,
        responses.BlockOut,
        body=schemas.UpdateBlock,
        body_required=True,
        path_ids=BLOCK,
        tag="blocks",
        errors=(400, 404),
    ),
    Endpoint(
        "DELETE",
        "/v1/blocks/{block_id}",
        "delete_block",
        "Delete a shared block (detached from its agents first; its history stays)",
        delete,
        None,
        path_ids=BLOCK,
        tag="blocks",
        errors=(400, 404),
    ),
    Endpoint(
        "PATCH",
        "/v1/agents/{agent_id}/core-memory/blocks/attach/{block_id}",
        "attach_core_memory_block",
        "Give the agent a shared block",
        attach,
        responses.AgentStateOut,
        path_ids=AGENT_AND_BLOCK,
        tag="agents",
        errors=(400, 404),
    ),
    Endpoint(
        "PATCH",
        "/v1/agents/{agent_id}/core-memory/blocks/detach/{block_id}",
        "detach_core_memory_block",
        "Take a shared block away from the agent",
        detach,
        responses.AgentStateOut,
        path_ids=AGENT_AND_BLOCK,
        tag="agents",
        errors=(400, 404),
    ),
]
