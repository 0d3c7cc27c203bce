"""Letta's error bodies, and the mapping from domain errors to them (spec §0.1)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.auth import Unauthorized
from api.body import BodyRefused
from domain.errors import (
    Busy,
    Conflict,
    DomainError,
    Expired,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from service.model import UnknownModel

log = logging.getLogger("convlog.api")


class RequestInvalid(Exception):
    """A request failed validation: Letta answers 422 with the error list as a string."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(repr(errors))
        self.errors = errors


def validation_errors(exc: ValidationError, location: str) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors(include_url=False, include_context=False):
        errors.append({**error, "loc": (location, *error["loc"])})
    return errors


def detail(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    """Routing errors (unknown path, wrong method) in Letta's JSON shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def on_request_invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestInvalid)
    return JSONResponse({"trace_id": "", "detail": repr(exc.errors)}, status_code=422)


async def on_domain_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, NotFound):
        return detail(404, str(exc))
    if isinstance(exc, InvalidArgument):
        return detail(400, f"INVALID_ARGUMENT: {exc}")
    if isinstance(exc, Conflict):
        # decisions §2: a busy conversation stays busy; the SDK must not silently retry.
        body: dict[str, Any] = {"detail": f"CONFLICT: {exc}"}
        if isinstance(exc, Busy) and exc.run_id is not None:
            body["run_id"] = exc.run_id  # decisions §14: the run to attach to
        return JSONResponse(body, status_code=409, headers={"x-should-retry": "false"})
    if isinstance(exc, Expired):
        return detail(410, f"EXPIRED: {exc}")
    if isinstance(exc, Unavailable):
        return detail(503, f"INTERNAL_SERVER_ERROR: {exc}")
    assert isinstance(exc, DomainError)
    return detail(400, str(exc))


async def on_unauthorized(request: Request, exc: Exception) -> Response:
    """Letta's 401 body; why is told in the standard header (RFC 6750), not the body."""
    assert isinstance(exc, Unauthorized)
    challenge = f'Bearer error="invalid_token", error_description="{exc.reason}"'
    return detail(401, "Unauthorized", headers={"www-authenticate": challenge})


async def on_body_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyRefused)
    return detail(exc.status, exc.message)


async def on_unknown_model(request: Request, exc: Exception) -> Response:
    return detail(404, f"NOT_FOUND: {exc}")


def unexpected(request: Request, exc: BaseException) -> Response:
    """500 with an error id; the cause goes to the server log under that id, not to the
    client (it may name internals).
    """
    error_id = new_error_id()
    log.error(
        "unhandled error on %s %s (error id %s)",
        request.method,
        request.url.path,
        error_id,
        exc_info=exc,
    )
    return detail(500, f"An unknown error occurred (error id {error_id}; see the server log)")


async def on_unexpected(request: Request, exc: Exception) -> Response:
    return unexpected(request, exc)


def unavailable(request: Request, exc: BaseException | str, retry_after: int) -> Response:
    """The database cannot be reached: a fast 503 that says when to try again."""
    log.warning("%s %s: the database is unavailable (%s)", request.method, request.url.path, exc)
    return detail(
        503,
        "The database is unavailable; nothing was changed. Try again shortly.",
        headers={"retry-after": str(retry_after)},
    )


def new_error_id() -> str:
    return uuid.uuid4().hex[:12]


# The errors with an answer of their own, each by its handler; anything else is unexpected.
Handler = Callable[[Request, Exception], Awaitable[Response]]
HANDLERS: dict[type[Exception], Handler] = {
    Unauthorized: on_unauthorized,
    BodyRefused: on_body_refused,
    RequestInvalid: on_request_invalid,
    HTTPException: on_http_exception,
    DomainError: on_domain_error,
    UnknownModel: on_unknown_model,
}
EXPECTED: tuple[type[Exception], ...] = tuple(HANDLERS)
