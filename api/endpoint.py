"""Declared endpoints: one table drives both the routing (with parsing) and the OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.errors import RequestInvalid, validation_errors
from domain import ids
from domain.errors import InvalidArgument


@dataclass(frozen=True)
class Call:
    """A parsed request: path ids, query model and body model, all validated."""

    request: Request
    path: dict[str, str]
    query: Any
    body: Any

    @property
    def services(self) -> Any:
        return self.request.app.state.services


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    operation_id: str
    summary: str
    handler: Handler
    response: Any = None  # a pydantic model (or list[...]) for the document
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_required: bool = False
    # path parameter -> the id prefixes it accepts (anything else is a 422)
    path_ids: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tag: str = "conversations"
    # The error statuses it answers with besides 422, for the document.
    errors: tuple[int, ...] = ()

    def route(self) -> Route:
        async def endpoint(request: Request) -> Response:
            return await self.handler(await self.parse(request))

        return Route(self.path, endpoint, methods=[self.method], name=self.operation_id)

    async def parse(self, request: Request) -> Call:
        user_id = request.headers.get("user_id")
        if user_id is not None and not ids.is_valid(ids.USER, user_id):
            raise InvalidArgument(f"Invalid user ID format: {user_id}")
        errors: list[dict[str, Any]] = []
        path = {name: str(value) for name, value in request.path_params.items()}
        for name, prefixes in self.path_ids.items():
            value = path[name]
            if value == "default" and ids.CONVERSATION in prefixes:
                continue  # accepted by Letta's pattern; behaves as an unknown conversation
            if not any(ids.is_valid(prefix, value) for prefix in prefixes):
                regex = "|".join(ids.pattern(p).strip("^$") for p in prefixes)
                errors.append(
                    {
                        "type": "string_pattern_mismatch",
                        "loc": ("path", name),
                        "msg": f"String should match pattern '^({regex})$'",
                        "input": value,
                    }
                )
        query = None
        if self.query is not None:
            params = _query_dict(request, self.query)
            errors += unstorable_strings(params, ("query",))
            try:
                query = self.query.model_validate(params)
            except ValidationError as exc:
                errors += validation_errors(exc, "query")
        body = None
        if self.body is not None:
            body, body_errors = await self._parse_body(request)
            errors += body_errors
        if not errors and path.get("conversation_id") == "default":
            errors += _default_conversation(path, query, body)
        if errors:
            raise RequestInvalid(errors)
        return Call(request, path, query, body)

    async def _parse_body(self, request: Request) -> tuple[Any, list[dict[str, Any]]]:
        assert self.body is not None
        raw = await request.body()
        if not raw.strip():
            if self.body_required:
                missing = {"type": "missing", "loc": ("body",), "msg": "Field required"}
                return None, [{**missing, "input": None}]
            return self.body(), []
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return None, [
                {
                    "type": "json_invalid",
                    "loc": ("body", getattr(exc, "pos", 0)),
                    "msg": "JSON decode error",
                    "input": {},
                }
            ]
        if data is None and not self.body_required:
            return self.body(), []
        unstorable = unstorable_strings(data, ("body",))
        if unstorable:
            return None, unstorable
        try:
            return self.body.model_validate(data), []
        except ValidationError as exc:
            return None, validation_errors(exc, "body")


def _default_conversation(path: dict[str, str], query: Any, body: Any) -> list[dict[str, Any]]:
    """``default`` + an ``agent_id`` (query or body) is the agent's own context: the path
    becomes that agent's id, as the routes already serve it. Without one, ``default`` is an
    unknown conversation (Letta's behaviour).
    """
    agent_id = getattr(query, "agent_id", None) or getattr(body, "agent_id", None)
    if agent_id is None:
        return []
    if not ids.is_valid(ids.AGENT, agent_id):
        return [
            {
                "type": "string_pattern_mismatch",
                "loc": ("body" if getattr(body, "agent_id", None) else "query", "agent_id"),
                "msg": f"String should match pattern '{ids.pattern(ids.AGENT)}'",
                "input": agent_id,
            }
        ]
    path["conversation_id"] = agent_id
    return []


def unstorable_strings(value: Any, loc: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Strings no store keeps faithfully: NUL characters (PostgreSQL text rejects them) and
    lone surrogates (not encodable as UTF-8). Refused up front, so no write can half-succeed.
    """
    if isinstance(value, str):
        bad = "\x00" in value
        if not bad:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                bad = True
        if bad:
            message = "String should not contain NUL characters or lone surrogates"
            return [{"type": "string_unstorable", "loc": loc, "msg": message, "input": value}]
        return []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            found += unstorable_strings(key, (*loc, key)) + unstorable_strings(item, (*loc, key))
        return found
    if isinstance(value, list):
        return [e for i, item in enumerate(value) for e in unstorable_strings(item, (*loc, i))]
    return []


def _query_dict(request: Request, model: type[BaseModel]) -> dict[str, Any]:
    """Query parameters; repeated ones (``a=1&a=2``, the SDK's style) for list fields."""
    params: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        field = model.model_fields.get(key)
        is_list = field is not None and "list[" in str(field.annotation)
        params[key] = values if is_list else values[-1]
    return params
