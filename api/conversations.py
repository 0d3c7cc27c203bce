"""``/v1/conversations…``: create, list, retrieve, update, delete, messages, events."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from api import render, responses, schemas
from api.endpoint import Call, Endpoint
from domain import ids

CONVERSATION = (ids.CONVERSATION,)
CONVERSATION_OR_AGENT = (ids.CONVERSATION, ids.AGENT)
# The response header naming the version a time-travel read answered (docs/time-travel.md).
AS_OF_VERSION = "x-as-of-version"


def _render_many(call: Call, rows: list) -> list:  # type: ignore[type-arg]
    in_context = call.services.conversations.in_context_ids(rows)
    return [render.conversation(row, in_context[row.id]) for row in rows]


async def create(call: Call) -> Response:
    service = call.services.conversations
    body: schemas.CreateConversation = call.body

    def run() -> list:  # type: ignore[type-arg]
        row = service.create(
            call.actor,
            call.query.agent_id,
            summary=body.summary,
            model=body.model,
            model_settings=body.model_settings,
            isolated_block_labels=body.isolated_block_labels,
        )
        return _render_many(call, [row])

    return JSONResponse((await run_in_threadpool(run))[0])


async def list_(call: Call) -> Response:
    q: schemas.ListConversationsQuery = call.query

    def run() -> Response:
        rows = call.services.conversations.list(
            call.actor,
            agent_id=q.agent_id,
            summary_search=q.summary_search,
            order_by=q.order_by,
            ascending=q.order == "asc",
            after=q.after,
            limit=q.limit,
        )
        in_context = call.services.conversations.in_context_ids(rows)
        return render.listing(
            rows,
            lambda row: render.conversation(row, in_context[row.id]),
            lambda row: row.conversation_id,
        )

    return await run_in_threadpool(run)


async def retrieve(call: Call) -> Response:
    q: schemas.RetrieveConversationQuery = call.query
    point = q.point()
    if point is not None:
        past = await run_in_threadpool(
            call.services.time_travel.conversation,
            call.actor,
            call.path["conversation_id"],
            point,
        )
        return JSONResponse(
            render.conversation(past.row, past.in_context_ids), headers=as_of_header(past.version)
        )

    def run() -> list:  # type: ignore[type-arg]
        row = call.services.conversations.get(call.actor, call.path["conversation_id"])
        return _render_many(call, [row])

    return JSONResponse((await run_in_threadpool(run))[0])


def as_of_header(version: int) -> dict[str, str]:
    """Time travel names the version it answered (useful when asked for a time)."""
    return {AS_OF_VERSION: str(version)}


async def update(call: Call) -> Response:
    body: schemas.UpdateConversation = call.body

    def run() -> list:  # type: ignore[type-arg]
        changes = body.model_dump(exclude_unset=True)
        row = call.services.conversations.update(call.actor, call.path["conversation_id"], changes)
        return _render_many(call, [row])

    return JSONResponse((await run_in_threadpool(run))[0])


async def delete(call: Call) -> Response:
    await run_in_threadpool(
        call.services.conversations.delete, call.actor, call.path["conversation_id"]
    )
    return JSONResponse(None)


async def list_messages(call: Call) -> Response:
    q: schemas.ConversationMessagesQuery = call.query
    point = q.point()
    if point is None:
        return await messages_page(call, call.path["conversation_id"])
    past = await run_in_threadpool(
        lambda: call.services.time_travel.messages(
            call.actor,
            call.path["conversation_id"],
            point,
            before=q.before,
            after=q.after,
            limit=q.limit,
            ascending=q.order == "asc",
            types=q.include_return_message_types,
        )
    )
    return Response(
        "[" + ",".join(past.items) + "]",
        media_type="application/json",
        headers=as_of_header(past.version),
    )


async def messages_page(call: Call, path_id: str) -> Response:
    """A page of the messages behind a path id (a conversation, or an agent's own context)."""
    q: schemas.ListMessagesQuery = call.query
    items = await run_in_threadpool(
        lambda: call.services.conversations.messages(
            call.actor,
            path_id,
            before=q.before,
            after=q.after,
            limit=q.limit,
            ascending=q.order == "asc",
            types=q.include_return_message_types,
        )
    )
    # Items are stored rendered: the page is a join, not a re-serialization.
    return Response("[" + ",".join(items) + "]", media_type="application/json")


async def recompile(call: Call) -> Response:
    q: schemas.RecompileQuery = call.query
    content = await run_in_threadpool(
        lambda: call.services.conversations.recompile(
            call.actor, call.path["conversation_id"], dry_run=q.dry_run
        )
    )
    return JSONResponse(content)


async def fork(call: Call) -> Response:
    def run() -> list:  # type: ignore[type-arg]
        row = call.services.conversations.fork(call.actor, call.path["conversation_id"])
        return _render_many(call, [row])

    return JSONResponse((await run_in_threadpool(run))[0])


async def list_events(call: Call) -> Response:
    q: schemas.ListEventsQuery = call.query
    records = await run_in_threadpool(
        lambda: call.services.conversations.events(
            call.actor, call.path["conversation_id"], after=q.after, limit=q.limit
        )
    )
    return JSONResponse([render.event(r) for r in records])


async def audit(call: Call) -> Response:
    report = await run_in_threadpool(
        lambda: call.services.conversations.audit(call.actor, call.path["conversation_id"])
    )
    return JSONResponse(render.audit(report))


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/conversations/",
        "create_conversation",
        "Create a conversation for an agent",
        create,
        responses.ConversationOut,
        query=schemas.CreateConversationQuery,
        body=schemas.CreateConversation,
        errors=(400, 404, 409),
    ),
    Endpoint(
        "GET",
        "/v1/conversations/",
        "list_conversations",
        "List conversations",
        list_,
        list[responses.ConversationOut],
        query=schemas.ListConversationsQuery,
        errors=(400,),
    ),
    Endpoint(
        "GET",
        "/v1/conversations/{conversation_id}",
        "retrieve_conversation",
        "Retrieve a conversation (as_of_version / as_of: as it was then)",
        retrieve,
        responses.ConversationOut,
        query=schemas.RetrieveConversationQuery,
        path_ids={"conversation_id": CONVERSATION_OR_AGENT},
        errors=(400, 404),
    ),
    Endpoint(
        "PATCH",
        "/v1/conversations/{conversation_id}",
        "update_conversation",
        "Update a conversation (only the fields present)",
        update,
        responses.ConversationOut,
        body=schemas.UpdateConversation,
        body_required=True,
        path_ids={"conversation_id": CONVERSATION_OR_AGENT},
        errors=(400, 404),
    ),
    Endpoint(
        "DELETE",
        "/v1/conversations/{conversation_id}",
        "delete_conversation",
        "Delete a conversation (soft: its history stays in the log)",
        delete,
        None,
        path_ids={"conversation_id": CONVERSATION_OR_AGENT},
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/v1/conversations/{conversation_id}/messages",
        "list_conversation_messages",
        "List a conversation's messages (an agent id lists the agent's own context; "
        "as_of_version / as_of: as they were then)",
        list_messages,
        list[responses.MessageOut],
        query=schemas.ConversationMessagesQuery,
        path_ids={"conversation_id": CONVERSATION_OR_AGENT},
        errors=(400, 404),
    ),
    Endpoint(
        "POST",
        "/v1/conversations/{conversation_id}/recompile",
        "recompile_conversation",
        "Rebuild the system message from the current blocks (dry_run: only return it)",
        recompile,
        str,
        query=schemas.RecompileQuery,
        body=schemas.DefaultConversation,
        path_ids={"conversation_id": CONVERSATION_OR_AGENT},
        errors=(404,),
    ),
    Endpoint(
        "POST",
        "/v1/conversations/{conversation_id}/fork",
        "fork_conversation",
        "A new conversation that shares this one's messages so far (nothing is copied)",
        fork,
        responses.ConversationOut,
        query=schemas.DefaultConversation,
        path_ids={"conversation_id": CONVERSATION_OR_AGENT},
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/v1/conversations/{conversation_id}/events",
        "list_conversation_events",
        "The conversation's raw events in order, for audit",
        list_events,
        list[responses.EventOut],
        query=schemas.ListEventsQuery,
        path_ids={"conversation_id": CONVERSATION_OR_AGENT},
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/v1/conversations/{conversation_id}/audit",
        "audit_conversation",
        "The conversation's events checked against the log's hash chain (convlog's own)",
        audit,
        responses.AuditOut,
        path_ids={"conversation_id": CONVERSATION_OR_AGENT},
        errors=(404,),
    ),
]
