"""``/ui/``: the timeline page for auditors (docs/ui.md), served by the API server itself.

The page is static: an HTML shell, plain JavaScript modules and a stylesheet shipped inside
this package (``api/ui_static/``, package data). None of them holds data, so they are served
without a key even when authentication is required; the page's scripts read everything from
the JSON API, with the key the user gives them (kept in ``sessionStorage``).

Every answer carries a strict Content-Security-Policy: scripts, styles and requests only from
this origin, no inline script or style, no frames, and Trusted Types required, so the page
cannot turn a string into markup (it renders data with ``textContent`` only).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

PREFIX = "/ui"
ASSETS = f"{PREFIX}/assets"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    )
)
HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    # Revalidated on every load: an upgraded server's page is never mixed with an old one's.
    "cache-control": "no-cache",
}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@cache
def _files() -> dict[str, bytes]:
    """The shipped files by name, read once (they change only with the package)."""
    folder = resources.files("api") / "ui_static"
    found = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if entry.is_file() and suffix in TYPES:
            found[entry.name] = entry.read_bytes()
    return found


def _file(name: str) -> Response:
    body = _files().get(name)
    if body is None:
        return _not_found()
    media_type = TYPES["." + name.rsplit(".", 1)[-1]]
    return Response(body, headers={**HEADERS, "content-type": media_type})


def _not_found() -> Response:
    return Response(
        "Not found", status_code=404, media_type="text/plain; charset=utf-8", headers=HEADERS
    )


async def page(request: Request) -> Response:
    """The HTML shell for every page (``/ui/``, ``/ui/conversations/{id}``): the scripts
    read ``location`` and draw the right one."""
    return _file("index.html")


async def asset(request: Request) -> Response:
    return _file(str(request.path_params["name"]))


async def to_slash(request: Request) -> Response:
    query = request.url.query
    target = f"{PREFIX}/" + (f"?{query}" if query else "")
    return RedirectResponse(target, status_code=308, headers=HEADERS)


def routes() -> list[Route]:
    """Plain routes, not in the OpenAPI document: they are not part of the API."""
    return [
        Route(PREFIX, to_slash, methods=["GET"]),
        Route(f"{PREFIX}/", page, methods=["GET"]),
        Route(f"{PREFIX}/conversations/{{conversation_id}}", page, methods=["GET"]),
        Route(f"{ASSETS}/{{name}}", asset, methods=["GET"]),
    ]
