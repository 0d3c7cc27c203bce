"""The OpenAPI document, generated from the endpoint table and the wire schemas."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter

from api.endpoint import Endpoint
from domain import ids

REF = "#/components/schemas/{model}"
ERRORS = {
    400: "Bad request (`{detail}`, Letta's INVALID_ARGUMENT or plain message)",
    404: "Not found (`{detail}`)",
    409: "Conflict (`{detail}`): busy, or waiting for an approval",
    401: "The model provider refused the credentials (JSON sends: `{error: {type, message}}`)",
    410: "Expired (`{detail}`)",
    429: "The model provider rate-limited the request (JSON sends: `{error: …}`)",
    500: "An unknown error occurred (`{detail}`)",
    502: "The model provider failed or answered nothing (JSON sends: `{error: …}`)",
    503: "A service this request needs is not configured (`{detail}`)",
    504: "The model provider timed out (JSON sends: `{error: …}`)",
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
                    "content": {"application/json": {"schema": schema(e.response)}},
                },
                "422": {"description": "Validation Error (`{trace_id, detail}`)"},
            },
        }
        for status in e.errors:
            operation["responses"][str(status)] = {"description": ERRORS[status]}
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
