"""One simulated client: an ``httpx.AsyncClient`` with a single keep-alive HTTP/1.1 connection,
sending ``POST /v1/conversations/{id}/messages`` and reading each SSE stream to ``[DONE]``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.seed import message_text

DONE = "data: [DONE]"


@dataclass(frozen=True)
class TurnTiming:
    seconds: float  # request sent → ``[DONE]`` read
    first_event: float  # request sent → the first ``data:`` line read


def client(base_url: str) -> httpx.AsyncClient:
    """One connection, kept alive; generous timeouts (a stuck turn should fail, not hang)."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(60.0),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


async def create_conversation(
    http: httpx.AsyncClient, agent_id: str, model: str | None = None
) -> str:
    body: dict[str, Any] = {} if model is None else {"model": model}
    response = await http.post("/v1/conversations/", params={"agent_id": agent_id}, json=body)
    if response.status_code != 200:
        raise RuntimeError(
            f"POST /v1/conversations/ answered {response.status_code}: {response.text}"
        )
    conversation_id: str = response.json()["id"]
    return conversation_id


async def send_turn(
    http: httpx.AsyncClient,
    conversation_id: str,
    n: int,
    stream_tokens: bool = False,
    text: str | None = None,
) -> TurnTiming:
    """One turn; raises unless the stream ends with ``[DONE]`` after an ``end_turn``. The fake
    model echoes ``text`` (default: a short message) word by word: its length sets the answer's
    number of chunks."""
    content = message_text(n) if text is None else f"#{n} {text}"
    body: dict[str, Any] = {"messages": [{"role": "user", "content": content}]}
    if stream_tokens:
        body["stream_tokens"] = True
    clock = time.perf_counter
    started = clock()
    first: float | None = None
    ended = False
    finished = False
    async with http.stream(
        "POST", f"/v1/conversations/{conversation_id}/messages", json=body
    ) as response:
        if response.status_code != 200:
            await response.aread()
            raise RuntimeError(
                f"POST …/messages answered {response.status_code}: {response.text[:500]}"
            )
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                if line.startswith("event: error"):
                    raise RuntimeError(f"turn on {conversation_id} streamed an error")
                continue
            if first is None:
                first = clock()
            if line.startswith(DONE):
                finished = True
                break
            if '"stop_reason":"end_turn"' in line:
                ended = True
    done = clock()
    if not (finished and ended):
        raise RuntimeError(
            f"turn on {conversation_id} ended without end_turn/[DONE] "
            f"(end_turn: {ended}, [DONE]: {finished})"
        )
    assert first is not None
    return TurnTiming(done - started, first - started)


async def compact(
    http: httpx.AsyncClient, conversation_id: str, settings: dict[str, Any]
) -> tuple[float, dict[str, Any]]:
    """``POST …/compact``: (seconds, the response body)."""
    clock = time.perf_counter
    started = clock()
    response = await http.post(
        f"/v1/conversations/{conversation_id}/compact", json={"compaction_settings": settings}
    )
    elapsed = clock() - started
    if response.status_code != 200:
        raise RuntimeError(f"POST …/compact answered {response.status_code}: {response.text}")
    result: dict[str, Any] = response.json()
    return elapsed, result
