"""conversation_search: the agent looks up what was said earlier, in any of its conversations.

Answered from the full-text index (``projections/search.py``). Results are newest first, as
Letta lists them; unlike Letta's SQL path, ``start_date`` and ``end_date`` are applied.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from projections.timefmt import from_micros, to_micros
from service.tools.env import ToolEnv, ToolError

DEFAULT_LIMIT = 5


def _bound(name: str, value: Any, tz: ZoneInfo, end: bool) -> int | None:
    if value is None:
        return None
    text = str(value)
    try:
        if len(text) == 10:  # a date alone: the whole day
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time(), tz)
            return to_micros(moment) - (1 if end else 0)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ToolError(
            f"Invalid {name} format: {text}. Use ISO 8601 format (YYYY-MM-DD or YYYY-MM-DDTHH:MM)"
        ) from None
    return to_micros(parsed if parsed.tzinfo else parsed.replace(tzinfo=tz))


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def conversation_search(env: ToolEnv, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    try:
        tz = ZoneInfo(env.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    limit = args.get("limit") or DEFAULT_LIMIT
    roles = [r for r in (args.get("roles") or []) if r != "tool"] or None
    found = env.search(
        env.agent_id,
        args.get("query"),
        roles,
        max(1, min(int(limit), 100)),
        _bound("start_date", args.get("start_date"), tz, end=False),
        _bound("end_date", args.get("end_date"), tz, end=True),
    )
    if not found:
        return {"message": "No results found.", "results": []}
    now = datetime.now(UTC)
    results = []
    for hit in found:
        at = from_micros(hit.created_at)
        results.append(
            {
                "timestamp": at.astimezone(tz).isoformat(),
                "time_ago": _ago((now - at).total_seconds()),
                "role": hit.role,
                "content": hit.text,
            }
        )
    return {"message": f"Showing {len(results)} results:", "results": results}
