"""A fake of Exa's search API over real HTTP (uvicorn + starlette in a background thread).

``POST /search`` wants the ``x-api-key`` header (401 otherwise, as Exa answers) and answers
``{"requestId", "results": [...]}`` derived from the request: one result per requested
``numResults``, at most 3, each with title, url (on the first of ``includeDomains``, else
example.com), publishedDate, author, highlights, summary, and ``text`` only when
``contents.text`` is true. ``fake.fail_with = 500`` makes it answer that status instead. It
records every request (thread-safe).

Use it as a context manager (``with FakeExa() as fake: fake.base_url``) or through the
``fake_exa`` fixture (one server per session, reset before each test).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.served_app import ServedApp

API_KEY = "exa-test-key"
MAX_RESULTS = 3


@dataclass(frozen=True)
class ExaRequest:
    """One request as the fake saw it."""

    path: str
    body: dict[str, Any]
    api_key: str | None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "query"


def results_for(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Exa's results for a /search body: a function of the query, count, domains, contents."""
    query = str(body.get("query", ""))
    count = max(0, min(int(body.get("numResults", 10)), MAX_RESULTS))
    domains = body.get("includeDomains") or ["example.com"]
    contents = body.get("contents") or {}
    found = []
    for n in range(1, count + 1):
        url = f"https://{domains[0]}/{slug(query)}/{n}"
        result: dict[str, Any] = {
            "id": url,
            "title": f"{query} (result {n})",
            "url": url,
            "publishedDate": f"2024-05-0{n}T00:00:00.000Z",
            "author": f"Author {n}",
            "score": round(1 - n / 10, 2),
            "highlights": [f"Highlight {n} about {query}."],
            "highlightScores": [0.5],
            "summary": f"Summary {n} of {query}.",
        }
        if contents.get("text") is True:
            result["text"] = f"Full text {n} of the page about {query}."
        found.append(result)
    return found


class FakeExa(ServedApp):
    name = "fake-exa"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._received: list[ExaRequest] = []
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._received.clear()
        self.api_key = API_KEY  # the key it accepts
        self.fail_with: int | None = None  # a status to answer instead of results

    @property
    def requests(self) -> list[ExaRequest]:
        with self._lock:
            return list(self._received)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/search", self._search, methods=["POST"])])

    async def _search(self, request: Request) -> Response:
        body = await request.json()
        key = request.headers.get("x-api-key")
        with self._lock:
            self._received.append(ExaRequest(request.url.path, body, key))
        if key != self.api_key:
            return JSONResponse(
                {"requestId": "req-fake", "error": "Invalid API key"}, status_code=401
            )
        if self.fail_with is not None:
            return JSONResponse(
                {"requestId": "req-fake", "error": "Internal server error"},
                status_code=self.fail_with,
            )
        return JSONResponse(
            {"requestId": "req-fake", "resolvedSearchType": "neural", "results": results_for(body)}
        )


@pytest.fixture(scope="session")
def fake_exa_server() -> Iterator[FakeExa]:
    with FakeExa() as fake:
        yield fake


@pytest.fixture
def fake_exa(fake_exa_server: FakeExa) -> Iterator[FakeExa]:
    """The session's fake Exa server, with default behaviour and no recorded requests."""
    fake_exa_server.reset()
    yield fake_exa_server
    fake_exa_server.reset()
