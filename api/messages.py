"""``/v1/messages…``: one message by its id, wherever the caller's organization holds it
(Letta Code reads the last in-context message this way to find a pending approval)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api import schemas
from api.endpoint import Call, Endpoint
from domain import ids


async def retrieve_message(call: Call) -> Response:
    items = await run_in_threadpool(
        call.services.conversations.message, call.actor, call.path["message_id"]
    )
    # Items are stored rendered: the answer is a join, not a re-serialization.
    return Response("[" + ",".join(items) + "]", media_type="application/json")


ENDPOINTS = [
    Endpoint(
        "GET",
        "/v1/messages/{message_id}",
        "retrieve_message",
        "Retrieve a message by its id (a list, as Letta answers)",
        retrieve_message,
        list[schemas.MessageOut],
        path_ids={"message_id": (ids.MESSAGE,)},
        tag="messages",
        errors=(404,),
    ),
]
