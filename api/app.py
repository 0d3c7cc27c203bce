"""The Starlette application: routes, error handlers, health and the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api import (
    agent_messages,
    agents,
    blocks,
    conversations,
    models,
    openapi,
    runs,
    schemas,
    tools,
    turns,
)
from api.endpoint import Call, Endpoint
from api.errors import (
    RequestInvalid,
    on_domain_error,
    on_http_exception,
    on_request_invalid,
    on_unexpected,
    on_unknown_model,
)
from domain.errors import DomainError
from service.model import UnknownModel

try:
    VERSION = package_version("convlog")
except PackageNotFoundError:  # running from a checkout that was not installed
    VERSION = "0.0.0"


async def health(call: Call) -> Response:
    return JSONResponse({"version": VERSION, "status": "ok"})


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/v1/health/", "check_health", "Health", health, schemas.Health, tag="health"),
    *conversations.ENDPOINTS,
    *turns.ENDPOINTS,
    *agents.ENDPOINTS,
    *blocks.ENDPOINTS,
    *tools.ENDPOINTS,
    *agent_messages.ENDPOINTS,
    *models.ENDPOINTS,
    *runs.ENDPOINTS,
]


def create_app(
    services: Any,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
) -> Starlette:
    """``services`` is the wired use cases (runtime.bootstrap.Services)."""
    spec = openapi.document(ENDPOINTS, VERSION)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(spec)

    routes = [e.route() for e in ENDPOINTS]
    routes.append(Route("/openapi.json", openapi_json, methods=["GET"]))

    @asynccontextmanager
    async def no_lifespan(app: Starlette) -> AsyncIterator[None]:
        yield

    app = Starlette(
        routes=routes,
        exception_handlers={
            RequestInvalid: on_request_invalid,
            HTTPException: on_http_exception,
            DomainError: on_domain_error,
            UnknownModel: on_unknown_model,
            Exception: on_unexpected,
        },
        lifespan=lifespan or no_lifespan,
    )
    app.state.services = services
    return app
