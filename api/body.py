"""Reading a request body within the limits, and decoding its JSON into something every
later layer can store and render: bounded size, depth, numbers and strings.

Python's ``json`` accepts documents that break later (a 600-deep object cannot be deep-copied,
a 5,000-digit integer cannot be printed, ``NaN`` is not JSON to PostgreSQL), so each is
refused here, before anything is written.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from starlette.requests import Request

from api.config import Limits


class BodyRefused(Exception):
    """A body refused before it was decoded: too large (413), too slow (408), not JSON (415)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read(request: Request, limits: Limits) -> bytes:
    too_large = BodyRefused(
        413,
        f"The request body is larger than {limits.body_bytes} bytes (CONVLOG_MAX_BODY_BYTES).",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.body_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(limits.body_seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.body_bytes:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise BodyRefused(
            408, f"The request body did not arrive within {limits.body_seconds:g} seconds."
        ) from None
    raw = b"".join(chunks)
    if raw.strip():
        _check_media_type(request)
    return raw


def _check_media_type(request: Request) -> None:
    # Browsers send text/plain and form bodies cross-site without asking (no CORS preflight):
    # insisting on JSON makes every such request fail before it can change anything.
    given = request.headers.get("content-type", "")
    media = given.split(";", 1)[0].strip().lower()
    if media != "application/json":
        shown = given or "no Content-Type"
        raise BodyRefused(415, f"Request bodies must be application/json, not {shown!r}.")


class _Unusable(ValueError):
    """A JSON value the server will not keep; ``kind`` and ``msg`` go into the 422."""

    def __init__(self, kind: str, msg: str) -> None:
        super().__init__(msg)
        self.kind = kind
        self.msg = msg


def decode(raw: bytes, limits: Limits) -> tuple[Any, list[dict[str, Any]]]:
    """The JSON value and no errors, or None and the 422 errors that refuse it."""

    def number(text: str) -> str:
        if len(text) > limits.number_chars:
            raise _Unusable(
                "number_too_long", f"Numbers may have at most {limits.number_chars} characters"
            )
        return text

    def parse_float(text: str) -> float:
        value = float(number(text))
        if not math.isfinite(value):
            raise _Unusable("number_not_finite", "Numbers must be finite")
        return value

    def constant(text: str) -> Any:
        raise _Unusable("number_not_finite", f"{text} is not JSON")

    try:
        data = json.loads(
            raw,
            parse_int=lambda text: int(number(text)),
            parse_float=parse_float,
            parse_constant=constant,
        )
    except _Unusable as exc:
        return None, [_error(exc.kind, ("body",), exc.msg)]
    except RecursionError:
        return None, [_error("json_too_deep", ("body",), _too_deep(limits))]
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, [
            {
                "type": "json_invalid",
                "loc": ("body", getattr(exc, "pos", 0)),
                "msg": "JSON decode error",
                "input": {},
            }
        ]
    return data, check_tree(data, ("body",), limits)


def check_tree(value: Any, loc: tuple[Any, ...], limits: Limits) -> list[dict[str, Any]]:
    """Depth and strings of a decoded value: each string storable and within the text limit.

    Walks with an explicit stack, so no input can make the check itself recurse too deep.
    """
    errors: list[dict[str, Any]] = []
    stack: list[tuple[Any, tuple[Any, ...], int]] = [(value, loc, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            problem = _string_problem(item, limits)
            if problem is not None:
                errors.append({**_error("string_unstorable", where, problem), "input": item[:100]})
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= limits.json_depth:
            return [_error("json_too_deep", loc, _too_deep(limits))]
        if isinstance(item, dict):
            for key, child in item.items():
                stack.append((key, (*where, key), depth + 1))
                stack.append((child, (*where, key), depth + 1))
        else:
            stack.extend((child, (*where, i), depth + 1) for i, child in enumerate(item))
    return errors


def _string_problem(text: str, limits: Limits) -> str | None:
    if len(text) > limits.text_chars:
        return f"Strings may have at most {limits.text_chars} characters (CONVLOG_MAX_TEXT_CHARS)"
    # NUL characters (PostgreSQL text rejects them) and lone surrogates (not UTF-8): no store
    # keeps them faithfully, so no write may half-succeed with them.
    if "\x00" in text:
        return "String should not contain NUL characters or lone surrogates"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "String should not contain NUL characters or lone surrogates"
    return None


def _too_deep(limits: Limits) -> str:
    return f"JSON may nest at most {limits.json_depth} levels (CONVLOG_MAX_JSON_DEPTH)"


def _error(kind: str, loc: tuple[Any, ...], msg: str) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": msg, "input": None}
