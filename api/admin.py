"""``/v1/admin/…``: operators' views of the server itself (no tenant's data)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from api import responses
from api.endpoint import Call, Endpoint


async def projection_status(call: Call) -> Response:
    found = await run_in_threadpool(call.services.projection_status.status)
    return JSONResponse(found.as_json())


ENDPOINTS = [
    Endpoint(
        "GET",
        "/v1/admin/projections",
        "projection_status",
        # convlog has no operator role: these are server-wide figures with no tenant's ids or
        # words (as /metrics), so any caller with a key may read them.
        "Projection status: each projection's generation, position, lag behind the log and "
        "rebuilds (as `convlog projections status`). Server-wide, no tenant's data: any "
        "authenticated caller may read it",
        projection_status,
        responses.ProjectionsStatusOut,
        tag="admin",
    ),
]
