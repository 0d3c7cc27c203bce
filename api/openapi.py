"""The OpenAPI document, generated from the endpoint table and the wire schemas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter

from api.endpoint import Endpoint
from domain import ids

REF = "#/components/schemas/{model}"

# The bodies errors come in: Letta's ``{detail}`` (api/errors.py), and a model provider's
# failure on a JSON send or a compaction (``{error: {type, message, detail}}``, api/turns.py).
DETAIL = "ErrorDetail"
MODEL_FAILURE = "ModelFailure"
ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    DETAIL: {
        "title": DETAIL,
        "type": "object",
        "properties": {
            "detail": {"type": "string"},
            "run_id": {"type": "string", "description": "409 only: the run holding it"},
            "trace_id": {"type": "string", "description": "422 only"},
        },
        "required": ["detail"],
    },
    MODEL_FAILURE: {
        "title": MODEL_FAILURE,
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "message": {"type": "string"},
                    "detail": {"type": "string"},
                },
                "required": ["type", "message"],
            }
        },
        "required": ["error"],
    },
}

# The statuses a handler declares (``Endpoint.errors``): what each means, in which bodies.
ERRORS: dict[int, tuple[str, tuple[str, ...]]] = {
    400: ("Bad request (`{detail}`, Letta's INVALID_ARGUMENT or plain message)", (DETAIL,)),
    401: (
        "The model provider refused the credentials (JSON sends: `{error: {type, message}}`)",
        (MODEL_FAILURE,),
    ),
    404: ("Not found (`{detail}`)", (DETAIL,)),
    409: ("Conflict (`{detail}`): busy, or waiting for an approval", (DETAIL,)),
    410: ("Expired (`{detail}`)", (DETAIL,)),
    429: (
        "The model provider rate-limited the request (JSON sends: `{error: …}`)",
        (MODEL_FAILURE,),
    ),
    500: ("An unknown error occurred (`{detail}`)", (DETAIL,)),
    502: (
        "The model provider failed or answered nothing (JSON sends: `{error: …}`)",
        (MODEL_FAILURE,),
    ),
    503: ("A service this request needs is not configured (`{detail}`)", (DETAIL,)),
    504: ("The model provider timed out (JSON sends: `{error: …}`)", (MODEL_FAILURE,)),
}
# A route that calls a model (it declares the provider's 502) also answers a context window
# the model refused with a 400 in the provider's body (compaction).
CONTEXT_WINDOW = "The model refused the context as too long (`{error: …}`)"

# What every route can answer whatever its handler does, all as `{detail}`: the edge
# (api/guard.py), authentication (api/auth.py), reading the body (api/body.py) and an error
# nothing else handled (api/errors.py ``on_unexpected``).
EVERY_ROUTE = {
    400: "The Host is not served here (CONVLOG_ALLOWED_HOSTS), or the user_id header is not "
    "a user id (`{detail}`)",
    403: "The browser Origin may not call this server (CONVLOG_CORS_ORIGINS) (`{detail}`)",
    500: "An unknown error occurred (`{detail}`)",
}
UNAUTHORIZED = (
    "Unauthorized: no API key, or an unknown or revoked one, when authentication is required "
    '(`{detail: "Unauthorized"}`; why, in WWW-Authenticate)'
)
WITH_BODY = {
    408: "The request body did not arrive in time (CONVLOG_BODY_TIMEOUT) (`{detail}`)",
    413: "The request body is too large (CONVLOG_MAX_BODY_BYTES) (`{detail}`)",
    415: "The request body is not application/json (`{detail}`)",
}
VALIDATION = "Validation Error (`{trace_id, detail}`)"


def error_statuses(e: Endpoint) -> dict[int, list[tuple[str, tuple[str, ...]]]]:
    """Each error status the route can answer with, and why (description, bodies): its own
    ``errors``, 422, and what every route (with a body, needing a key) answers.
    """
    found: dict[int, list[tuple[str, tuple[str, ...]]]] = {422: [(VALIDATION, (DETAIL,))]}

    def add(status: int, description: str, bodies: tuple[str, ...] = (DETAIL,)) -> None:
        reasons = found.setdefault(status, [])
        if (description, bodies) not in reasons:
            reasons.append((description, bodies))

    for status in e.errors:
        add(status, *ERRORS[status])
    if 502 in e.errors:
        add(400, CONTEXT_WINDOW, (MODEL_FAILURE,))
    for status, description in EVERY_ROUTE.items():
        add(status, description)
    if not e.public:
        add(401, UNAUTHORIZED)
    if e.body is not None:
        for status, description in WITH_BODY.items():
            add(status, description)
    return dict(sorted(found.items()))


def _error_response(reasons: list[tuple[str, tuple[str, ...]]]) -> dict[str, Any]:
    bodies = list(dict.fromkeys(body for _, found in reasons for body in found))
    refs = [{"$ref": REF.format(model=body)} for body in bodies]
    first, *others = [description for description, _ in reasons]
    return {
        "description": first + "".join(f"; or {d[0].lower()}{d[1:]}" for d in others),
        "content": {"application/json": {"schema": refs[0] if len(refs) == 1 else {"anyOf": refs}}},
    }


def document(endpoints: Sequence[Endpoint], version: str) -> dict[str, Any]:
    components: dict[str, Any] = {}

    def schema(tp: Any, mode: str = "serialization") -> dict[str, Any]:
        found = TypeAdapter(tp).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        components.update(found.pop("$defs", {}))
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            components[tp.__name__] = found
            return {"$ref": REF.format(model=tp.__name__)}
        return found

    components.update(ERROR_SCHEMAS)
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        parameters: list[dict[str, Any]] = []
        for name, prefixes in e.path_ids.items():
            pattern = "|".join(ids.pattern(p).strip("^$") for p in prefixes)
            parameters.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": f"^({pattern})$"},
                }
            )
        for name in _path_names(e.path):
            if name not in e.path_ids:
                parameters.append(
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                )
        if e.query is not None:
            query_schema = e.query.model_json_schema(ref_template=REF)
            required = set(query_schema.get("required", []))
            for name, prop in query_schema["properties"].items():
                parameters.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in required,
                        "description": prop.get("description", ""),
                        "schema": prop,
                    }
                )
        operation: dict[str, Any] = {
            "operationId": e.operation_id,
            "summary": e.summary,
            "tags": [e.tag],
            "parameters": parameters,
            "responses": {
                "200": {
                    "description": "Successful Response",
                    "content": {e.media_type: {"schema": schema(e.response)}},
                },
            },
        }
        for status, reasons in error_statuses(e).items():
            operation["responses"][str(status)] = _error_response(reasons)
        if e.body is not None:
            operation["requestBody"] = {
                "required": e.body_required,
                "content": {"application/json": {"schema": schema(e.body, "validation")}},
            }
        paths.setdefault(e.path, {})[e.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "convlog",
            "version": version,
            "description": "Letta's Conversations API, served from an append-only event log.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
