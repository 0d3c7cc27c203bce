"""A local web for fetch_webpage's tests, over real HTTP: an HTML page, a plain-text page,
redirects (one, and a loop), a 404, a page just over and one exactly at ``MAX_PAGE_BYTES``.

It is also an HTTP proxy (``HTTP_PROXY=<its url>``): a request for any other host (an
absolute-form target, which no route matches) is recorded and redirected to its own ``/page``
on 127.0.0.1 — a public address redirecting to a private one. It records every path it is
asked for (thread-safe).
"""

from __future__ import annotations

import threading

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from adapters.web import MAX_PAGE_BYTES
from tests.served_app import ServedApp

HTML = """<!DOCTYPE html><html><head><title>Penguins</title>
<style>h1 { color: crimson }</style><script>trackVisitor("secret-js")</script></head>
<body><h1>Emperor penguins</h1>
<p>They breed in <a href="https://en.wikipedia.org/wiki/Antarctica">Antarctica</a>.</p>
<ul><li>tallest</li><li>heaviest</li></ul></body></html>"""


class Pages(ServedApp):
    name = "pages"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._hits: list[str] = []

    @property
    def hits(self) -> list[str]:
        with self._lock:
            return list(self._hits)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{rest:path}", self._page)])

    def _hit(self, target: str) -> None:
        with self._lock:
            self._hits.append(target)

    async def _page(self, request: Request) -> Response:
        if request.headers.get("host") != f"127.0.0.1:{self.port}":
            return self._proxied(request)  # asked for another host: we are its proxy
        path = request.url.path
        self._hit(path)
        match path:
            case "/page":
                return HTMLResponse(HTML)
            case "/notes.txt":
                return PlainTextResponse("plain notes\n<b>kept as is</b>\n")
            case "/moved":
                return RedirectResponse("/page", status_code=302)
            case "/loop":
                return RedirectResponse("/loop", status_code=302)
            case "/huge" | "/at-cap":
                size = MAX_PAGE_BYTES + (1 if path == "/huge" else 0)
                return Response(b"x" * size, media_type="text/plain")
        return PlainTextResponse("no such page", status_code=404)

    def _proxied(self, request: Request) -> Response:
        self._hit(f"http://{request.headers.get('host')}{request.url.path}")
        return RedirectResponse(self.url("/page"), status_code=302)
