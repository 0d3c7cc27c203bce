"""``/v1/messages…``: one message by its id, wherever the caller's organization holds it
(Letta Code reads the last in-context message this way to find a pending approval)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from api import responses, schemas
from api.endpoint import Call, Endpoint
from domain import ids
from domain.errors import BadRequest
from service.message_search import MessageSearch


class SearchMessages(schemas.Wire):
    query: str = Field(min_length=1, description="Words to find (all of them, any case).")
    search_mode: Literal["vector", "fts", "hybrid"] = Field(
        "hybrid",
        description="fts and hybrid are both answered by the full-text index (convlog keeps "
        "no embeddings); vector is refused.",
    )
    agent_id: str | None = Field(None, pattern=ids.pattern(ids.AGENT))
    conversation_id: str | None = Field(None, pattern=ids.pattern(ids.CONVERSATION))
    limit: int = Field(50, ge=1, le=100)
    start_date: datetime | None = Field(None, description="Messages created at or after this.")
    end_date: datetime | None = Field(None, description="Messages created at or before this.")


class SearchResult(schemas.Wire):
    message_type: Literal["user_message", "assistant_message"]
    message_id: str
    content: str
    agent_id: str | None
    conversation_id: str | None = Field(description="null for an agent's own context")
    created_at: str


NO_VECTORS = (
    "search_mode 'vector' needs message embeddings, which convlog does not keep: use 'fts' "
    "(or 'hybrid', answered by the full-text index)."
)


async def search_messages(call: Call) -> Response:
    body: SearchMessages = call.body
    if body.search_mode == "vector":
        raise BadRequest(NO_VECTORS)
    wanted = MessageSearch(
        body.query, body.agent_id, body.conversation_id, body.limit, body.start_date, body.end_date
    )
    found = await run_in_threadpool(call.services.message_search.search, call.actor, wanted)
    return JSONResponse(found)


async def retrieve_message(call: Call) -> Response:
    items = await run_in_threadpool(
        call.services.conversations.message, call.actor, call.path["message_id"]
    )
    # Items are stored rendered: the answer is a join, not a re-serialization.
    return Response("[" + ",".join(items) + "]", media_type="application/json")


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/messages/search",
        "search_all_messages",
        "Search the messages of every conversation and agent, newest first",
        search_messages,
        list[SearchResult],
        body=SearchMessages,
        body_required=True,
        tag="messages",
        errors=(400,),
    ),
    Endpoint(
        "GET",
        "/v1/messages/{message_id}",
        "retrieve_message",
        "Retrieve a message by its id (a list, as Letta answers)",
        retrieve_message,
        list[responses.MessageOut],
        path_ids={"message_id": (ids.MESSAGE,)},
        tag="messages",
        errors=(404,),
    ),
]
