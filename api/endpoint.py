"""Declared endpoints: one table drives both the routing (with parsing) and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import body as bodies
from api import limits
from api.auth import actor_of
from api.config import EdgeConfig
from api.errors import EXPECTED, RequestInvalid, unavailable, unexpected, validation_errors
from domain import ids
from service import log_context
from service.actor import Actor
from service.services import Services


@dataclass(frozen=True)
class Call:
    """A parsed request: who it acts as, path ids, query model and body model, all validated."""

    request: Request
    actor: Actor
    path: dict[str, str]
    query: Any
    body: Any
    sent_body: bool = False  # the request had a non-empty body

    @property
    def services(self) -> Services:
        services: Services = self.request.app.state.services
        return services

    @property
    def edge(self) -> EdgeConfig:
        edge: EdgeConfig = self.request.app.state.edge
        return edge


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
    # The error statuses it answers with besides 422 (and 401 etc.), for the document.
    errors: tuple[int, ...] = ()
    public: bool = False  # served without a key when authentication is required
    media_type: str = "application/json"  # of the 200 answer, for the document

    def route(self) -> Route:
        async def endpoint(request: Request) -> Response:
            edge: EdgeConfig = request.app.state.edge
            services: Services = request.app.state.services
            if edge.outages and not self.public and not services.database_up():
                return unavailable(request, "no heartbeat", edge.retry_after_seconds)
            try:
                call = await self.parse(request)
                log_context.bind(
                    organization_id=call.actor.organization_id,
                    conversation_id=call.path.get("conversation_id"),
                )
                return await self.handler(call)
            except EXPECTED:
                raise
            except Exception as exc:
                if isinstance(exc, edge.outages):
                    services.database_failed()  # the next requests need not wait to learn it
                    return unavailable(request, exc, edge.retry_after_seconds)
                # Answered here rather than by the app's last-resort handler, which closes
                # the client's keep-alive connection after every 500.
                return unexpected(request, exc)

        return Route(self.path, endpoint, methods=[self.method], name=self.operation_id)

    async def parse(self, request: Request) -> Call:
        services: Services = request.app.state.services
        edge: EdgeConfig = request.app.state.edge
        actor = await actor_of(request, services.keys, edge.auth_required and not self.public)
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
            errors += bodies.check_tree(params, ("query",), edge.limits)
            try:
                query = self.query.model_validate(params)
            except ValidationError as exc:
                errors += validation_errors(exc, "query")
            errors += _over_list_limit(query, edge.limits.list_limit)
        body, sent_body = None, False
        if self.body is not None:
            body, sent_body, body_errors = await self._parse_body(request, edge)
            errors += body_errors or limits.check(body, edge.limits)
        if not errors and path.get("conversation_id") == "default":
            errors += _default_conversation(path, query, body)
        if errors:
            raise RequestInvalid(errors)
        return Call(request, actor, path, query, body, sent_body)

    async def _parse_body(
        self, request: Request, edge: EdgeConfig
    ) -> tuple[Any, bool, list[dict[str, Any]]]:
        """(the body model, whether a body was sent, the errors that refuse it)."""
        assert self.body is not None
        raw = await bodies.read(request, edge.limits)
        if not raw.strip():
            if self.body_required:
                missing = {"type": "missing", "loc": ("body",), "msg": "Field required"}
                return None, False, [{**missing, "input": None}]
            return self._absent(), False, []
        data, refused = bodies.decode(raw, edge.limits)
        if refused:
            return None, True, refused
        if data is None and not self.body_required:
            return self._absent(), True, []
        try:
            return self.body.model_validate(data), True, []
        except ValidationError as exc:
            return None, True, validation_errors(exc, "body")

    def _absent(self) -> Any:
        """The body of a request that sent none (or ``null``): the model's defaults, or None
        when the model has required fields (the handler then reads the query instead).
        """
        assert self.body is not None
        if any(f.is_required() for f in self.body.model_fields.values()):
            return None
        return self.body()


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


def _over_list_limit(query: Any, most: int) -> list[dict[str, Any]]:
    """A ``limit`` past the configured largest page (the schemas refuse past 1000 already)."""
    limit = getattr(query, "limit", None)
    if isinstance(limit, int) and limit > most:
        message = f"Input should be less than or equal to {most} (CONVLOG_MAX_LIST_LIMIT)"
        return [
            {"type": "less_than_equal", "loc": ("query", "limit"), "msg": message, "input": limit}
        ]
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
