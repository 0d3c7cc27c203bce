"""What every request leaves behind: an id, and its time in the metrics.

The id is the client's ``X-Request-Id`` when it is a sane one, else a new one. It is sent back
in the response's ``x-request-id`` header and is on every log line of the request
(``service/log_context.py``), so a client's report finds the server's lines. The time to the
response's start goes into ``convlog_http_request_duration_seconds`` by route template and
status (``service/metrics.py``), and the request is a span (``service/tracing.py``)."""

from __future__ import annotations

import re
import time
import uuid

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import log_context, metrics, tracing

HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(HEADER, "")
        request_id = given if _SANE.fullmatch(given) else uuid.uuid4().hex
        log_context.bind(request_id=request_id)

        started = time.perf_counter()
        span = tracing.request_span(scope["method"])

        async def observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
                # set by the router once it matched one
                route = getattr(scope.get("route"), "path", "unmatched")
                method, status = scope["method"], message["status"]
                metrics.REQUESTS.labels(route, method, str(status)).observe(
                    time.perf_counter() - started
                )
                tracing.name_request(span, method, route, status, request_id)
            await send(message)

        with tracing.use_span(span, end_on_exit=True):
            await self.app(scope, receive, observed)
