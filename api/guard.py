"""Refuses requests from where they should not come: a Host not served (DNS rebinding) and a
browser Origin that is not allowed (cross-site requests). Runs before routing, on every path.

A request from the server's own origin (the Origin names the Host it was sent to) is always
allowed, so pages the server itself serves can call it.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.config import EdgeConfig


class Guard:
    def __init__(self, app: ASGIApp, edge: EdgeConfig) -> None:
        self.app = app
        self.any_host = "*" in edge.allowed_hosts
        self.hosts = {h.lower() for h in edge.allowed_hosts}
        self.origins = {o.rstrip("/").lower() for o in edge.cors_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        problem = self._host_problem(host) or self._origin_problem(headers.get("origin"), host)
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, message = problem
        body = json.dumps({"detail": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _host_problem(self, host: str) -> tuple[int, str] | None:
        if self.any_host or _hostname(host) in self.hosts:
            return None
        return 400, f"Host {host!r} is not served here (CONVLOG_ALLOWED_HOSTS)."

    def _origin_problem(self, origin: str | None, host: str) -> tuple[int, str] | None:
        if origin is None:
            return None  # not a browser's cross-origin request
        normalized = origin.rstrip("/").lower()
        if "*" in self.origins or normalized in self.origins:
            return None
        if urlsplit(normalized).netloc == host.lower():
            return None  # same origin
        return 403, f"Origin {origin!r} may not call this server (CONVLOG_CORS_ORIGINS)."


def _hostname(host: str) -> str:
    """The Host header without its port (``[::1]:8283`` → ``[::1]``)."""
    host = host.lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
