"""web_search and fetch_webpage: Letta's built-in web tools (tool type ``letta_builtin``), which
Letta Code gives every agent it creates.

They reach the web through the ``Web`` port (``adapters/web.py``): a search through Exa's API
(``EXA_API_KEY``), a page fetched by the server and turned into Markdown. Results are what Letta's
tools return: the search as JSON text (``{"query", "results": [...]}``, or ``{"query",
"error"}`` when the search service fails), the page as Markdown. A search with no key set, a
scheme other than http(s), an address the server may not fetch, or a page that cannot be read
is an error result the model sees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlparse

from service.tools.env import ToolEnv, ToolError


class WebError(Exception):
    """The web could not answer: the text says why, for the model."""


class WebNotConfigured(WebError):
    """The server has no setting for this (a search service's key)."""


@dataclass(frozen=True)
class SearchQuery:
    query: str
    num_results: int = 10
    category: str | None = None
    include_text: bool = False
    include_domains: tuple[str, ...] = ()
    exclude_domains: tuple[str, ...] = ()
    start_published_date: str | None = None
    end_published_date: str | None = None
    user_location: str | None = None


class Web(Protocol):
    def search(self, query: SearchQuery) -> list[dict[str, Any]]:
        """Results with title, url, published_date, author (and text, highlights, summary
        where the service gives them)."""
        ...

    def fetch(self, url: str) -> str:
        """The page at ``url`` as Markdown (or its text, when it is not HTML)."""
        ...


def web_search(env: ToolEnv, args: dict[str, Any], call_id: str) -> str:
    query = str(args.get("query") or "")
    if not query.strip():
        return json.dumps({"error": "Query cannot be empty", "query": query})
    wanted = SearchQuery(
        query=query,
        num_results=min(max(int(args.get("num_results") or 10), 1), 100),
        category=args.get("category"),
        include_text=bool(args.get("include_text")),
        include_domains=tuple(args.get("include_domains") or ()),
        exclude_domains=tuple(args.get("exclude_domains") or ()),
        start_published_date=args.get("start_published_date"),
        end_published_date=args.get("end_published_date"),
        user_location=args.get("user_location"),
    )
    try:
        results = env.web.search(wanted)
    except WebNotConfigured as exc:
        raise ToolError(str(exc)) from None
    except WebError as exc:
        return json.dumps({"query": query, "error": f"Search failed: {exc}"})
    return json.dumps({"query": query, "results": results}, indent=2, ensure_ascii=False)


def fetch_webpage(env: ToolEnv, args: dict[str, Any], call_id: str) -> str:
    url = str(args["url"])
    scheme = urlparse(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ToolError(
            f"Invalid URL scheme '{scheme}'. Only 'http' and 'https' URLs are supported. "
            "Local file paths (file://) and other protocols cannot be fetched."
        )
    try:
        return env.web.fetch(url)
    except WebError as exc:
        raise ToolError(f"Error fetching webpage: {exc}") from None
