"""The Starlette application: routes, error handlers, health and the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response

from api import (
    admin,
    agent_messages,
    agents,
    blocks,
    conversations,
    messages,
    models,
    openapi,
    responses,
    runs,
    tools,
    turns,
    ui,
)
from api.config import EdgeConfig
from api.endpoint import Call, Endpoint
from api.errors import HANDLERS, on_unexpected
from api.guard import Guard
from api.observe import Observe
from service import metrics
from service.services import Services

try:
    VERSION = package_version("convlog")
except PackageNotFoundError:  # running from a checkout that was not installed
    VERSION = "0.0.0"


# The Letta server release whose API convlog serves. Health reports it as ``version``, as
# Letta's does: clients compare it with the release they need (Letta Code warns below 0.16.6).
LETTA_API_VERSION = "0.16.7"


def _versions() -> dict[str, str]:
    return {"version": LETTA_API_VERSION, "convlog_version": VERSION}


async def health(call: Call) -> Response:
    """Always 200 while the process serves; what it depends on is reported, not judged."""
    states = await call.services.health()
    status = "ok" if all(v == "ok" for v in states.values()) else "degraded"
    return JSONResponse({**_versions(), "status": status, **states})


async def prometheus(call: Call) -> Response:
    body = await run_in_threadpool(metrics.render, call.services.readings)
    return Response(body, media_type=metrics.CONTENT_TYPE)


async def ready(call: Call) -> Response:
    """For load balancers: 503 while the database cannot be reached (Redis is optional)."""
    states = await call.services.health()
    ok = states["database"] == "ok"
    body = {**_versions(), "status": "ok" if ok else "unavailable", **states}
    return JSONResponse(body, status_code=200 if ok else 503)


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET",
        "/v1/health/",
        "check_health",
        "Health",
        health,
        responses.Health,
        tag="health",
        public=True,
    ),
    Endpoint(
        "GET",
        "/v1/health/ready",
        "check_ready",
        "Ready to serve: 503 while the database is unavailable",
        ready,
        responses.Health,
        tag="health",
        public=True,
        errors=(503,),
    ),
    Endpoint(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics: server-wide figures, no tenant's ids or words",
        prometheus,
        str,
        tag="health",
        public=True,
        media_type="text/plain",
    ),
    *conversations.ENDPOINTS,
    *turns.ENDPOINTS,
    *agents.ENDPOINTS,
    *blocks.ENDPOINTS,
    *tools.ENDPOINTS,
    *agent_messages.ENDPOINTS,
    *models.ENDPOINTS,
    *messages.ENDPOINTS,
    *runs.ENDPOINTS,
    *admin.ENDPOINTS,
]


SLASHLESS = ("/v1/health/",)


def _middleware(edge: EdgeConfig) -> list[Middleware]:
    found = [Middleware(Observe), Middleware(Guard, edge=edge)]
    if edge.cors_origins:  # preflight answers and CORS headers, for the allowed origins only
        cors = Middleware(
            CORSMiddleware,
            allow_origins=list(edge.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
        )
        found.append(cors)
    return found


def create_app(
    services: Services,
    edge: EdgeConfig | None = None,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
) -> Starlette:
    edge = edge or EdgeConfig()
    spec = openapi.document(ENDPOINTS, VERSION)

    async def openapi_json(call: Call) -> Response:
        return JSONResponse(spec)

    document = Endpoint("GET", "/openapi.json", "openapi", "The OpenAPI document", openapi_json)
    routes = [e.route() for e in ENDPOINTS]
    routes.append(document.route())
    routes += ui.routes()  # the timeline page (docs/ui.md)
    # Clients call health without its trailing slash too: answered there, not redirected.
    routes += [
        replace(e, path=e.path.rstrip("/")).route() for e in ENDPOINTS if e.path in SLASHLESS
    ]

    @asynccontextmanager
    async def no_lifespan(app: Starlette) -> AsyncIterator[None]:
        yield

    app = Starlette(
        routes=routes,
        middleware=_middleware(edge),
        exception_handlers={**HANDLERS, Exception: on_unexpected},
        lifespan=lifespan or no_lifespan,
    )
    app.state.services = services
    app.state.edge = edge
    return app
