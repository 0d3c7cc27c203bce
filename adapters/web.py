"""The web for the built-in web tools: Exa's search API, and pages fetched and turned into
Markdown (``markdownify``).

A fetch is a request the model chose, and a prompt can steer the model: by default the server
fetches only public addresses. Every host (the first and each redirect's) is resolved and each
of its addresses checked; loopback, private, link-local (cloud metadata services) and reserved
addresses are refused unless ``CONVLOG_FETCH_PRIVATE_ADDRESSES=allow``. (A name that resolves
differently a moment later could still slip through: DNS rebinding is not prevented.)
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urljoin, urlparse

import httpx
from markdownify import markdownify

from service.tools.web import SearchQuery, WebError, WebNotConfigured

EXA_BASE_URL = "https://api.exa.ai"
MAX_REDIRECTS = 5
MAX_PAGE_BYTES = 5 * 1024 * 1024
USER_AGENT = "Mozilla/5.0 (compatible; convlog/1.0; +fetch_webpage)"


class HttpWeb:
    def __init__(
        self,
        exa_api_key: str | None = None,
        exa_base_url: str = EXA_BASE_URL,
        allow_private: bool = False,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.exa_api_key = exa_api_key
        self.exa_base_url = exa_base_url.rstrip("/")
        self.allow_private = allow_private
        self.timeout = httpx.Timeout(timeout_seconds)

    # -- search ------------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> list[dict[str, Any]]:
        if not self.exa_api_key:
            raise WebNotConfigured(
                "web_search needs a search service: set EXA_API_KEY on the server (Exa's API)."
            )
        try:
            answer = httpx.post(
                f"{self.exa_base_url}/search",
                json=_exa_body(query),
                headers={"x-api-key": self.exa_api_key},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise WebError(f"the search service could not be reached ({exc})") from None
        if answer.status_code != 200:
            raise WebError(f"the search service answered {answer.status_code}: {answer.text[:300]}")
        try:
            results = answer.json()["results"]
        except (ValueError, KeyError, TypeError):
            raise WebError("the search service's answer could not be read") from None
        return [_result(r, query.include_text) for r in results]

    # -- fetch -------------------------------------------------------------------------------

    def fetch(self, url: str) -> str:
        with httpx.Client(timeout=self.timeout, headers={"user-agent": USER_AGENT}) as http:
            for _ in range(MAX_REDIRECTS + 1):
                self._check_address(url)
                try:
                    with http.stream("GET", url) as answer:
                        if answer.is_redirect and "location" in answer.headers:
                            url = urljoin(url, answer.headers["location"])
                            continue
                        if answer.status_code != 200:
                            raise WebError(f"{url} answered {answer.status_code}")
                        body = _read_capped(answer)
                        kind = answer.headers.get("content-type", "")
                        text = body.decode(answer.encoding or "utf-8", errors="replace")
                except httpx.HTTPError as exc:
                    raise WebError(f"{url} could not be fetched ({exc})") from None
                if "html" in kind or text.lstrip()[:15].lower().startswith(("<!doctype", "<html")):
                    # markdownify drops <script> and <style> with their content; its strip=
                    # option would keep their text (the page's JavaScript and CSS).
                    return markdownify(text, heading_style="ATX").strip()
                return text
        raise WebError(f"more than {MAX_REDIRECTS} redirects")

    def _check_address(self, url: str) -> None:
        parts = urlparse(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise WebError(f"{url} is not an http(s) URL")
        if self.allow_private:
            return
        try:
            infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise WebError(f"{parts.hostname} could not be resolved ({exc})") from None
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global:
                raise WebError(
                    f"{parts.hostname} is a private address ({address}); this server fetches "
                    "public addresses only (CONVLOG_FETCH_PRIVATE_ADDRESSES=allow lifts that)"
                )


def _read_capped(answer: httpx.Response) -> bytes:
    body = bytearray()
    for piece in answer.iter_bytes():
        body += piece
        if len(body) > MAX_PAGE_BYTES:
            raise WebError(f"the page is larger than {MAX_PAGE_BYTES // (1024 * 1024)} MiB")
    return bytes(body)


def _exa_body(query: SearchQuery) -> dict[str, Any]:
    """Exa's /search request, as Letta's tool sends it: highlights and a summary per result,
    the full text only when asked."""
    body: dict[str, Any] = {
        "query": query.query,
        "numResults": query.num_results,
        "type": "auto",
        "contents": {
            "text": query.include_text,
            "highlights": {"numSentences": 2, "highlightsPerUrl": 3, "query": query.query},
            "summary": {
                "query": f"Summarize the key information from this content related to: "
                f"{query.query}"
            },
        },
    }
    optional = {
        "category": query.category,
        "includeDomains": list(query.include_domains) or None,
        "excludeDomains": list(query.exclude_domains) or None,
        "startPublishedDate": query.start_published_date,
        "endPublishedDate": query.end_published_date,
        "userLocation": query.user_location,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def _result(found: dict[str, Any], include_text: bool) -> dict[str, Any]:
    result = {
        "title": found.get("title"),
        "url": found.get("url"),
        "published_date": found.get("publishedDate"),
        "author": found.get("author"),
    }
    if include_text and found.get("text"):
        result["text"] = found["text"]
    for key in ("highlights", "summary"):
        if found.get(key):
            result[key] = found[key]
    return result
