"""Agents that act: two-step turns (a memory_insert call, then the answer) through the fake
OpenAI server in its own process, and conversation_search over a long history.

* ``tool_turns``: C clients, each with its own agent and conversation, sending "remember …";
  each turn is two model steps. turns/s, latency, and server CPU per turn and per step.
* ``tool_history``: the same two-step turn on conversations with 10 and with 1,000 messages of
  history, half of it tool calls and results; p50 of the long ÷ the short.
* ``search_latency``: ``conversation_search``'s query (in process) over an agent with 10,000
  messages: p50/p99.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import httpx

from bench.cpu import CpuMeter
from bench.seed import message_text
from bench.stats import latency_summary
from bench.turn_client import client
from domain import ids
from domain.conversation import Conversation
from projections.search import SearchQueries
from service.agents import AgentSpec, BlockSpec
from service.services import Services
from tests.actors import DEFAULT_ACTOR

log = logging.getLogger("bench")

STEPS_PER_TURN = 2


async def _agent_and_conversation(http: httpx.AsyncClient, model: str) -> str:
    agent = await http.post(
        "/v1/agents/",
        json={
            "name": "bench-tools",
            "model": model,
            "memory_blocks": [{"label": "human", "value": "x"}],
        },
    )
    agent.raise_for_status()
    conversation = await http.post(
        "/v1/conversations/", params={"agent_id": agent.json()["id"]}, json={}
    )
    conversation.raise_for_status()
    return str(conversation.json()["id"])


async def tool_turn(http: httpx.AsyncClient, conversation_id: str, n: int) -> float:
    """One two-step turn; raises unless it called the tool, answered and ended with end_turn."""
    body = {"messages": [{"role": "user", "content": f"remember fact {n}"}]}
    started = time.perf_counter()
    kinds: list[str] = []
    steps = 0
    async with http.stream(
        "POST", f"/v1/conversations/{conversation_id}/messages", json=body
    ) as response:
        if response.status_code != 200:
            await response.aread()
            raise RuntimeError(f"POST …/messages answered {response.status_code}")
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            payload = json.loads(line[6:])
            kinds.append(payload["message_type"])
            if payload["message_type"] == "usage_statistics":
                steps = payload["step_count"]
    elapsed = time.perf_counter() - started
    expected = ["tool_call_message", "tool_return_message", "assistant_message", "stop_reason"]
    if kinds[:4] != expected or steps != STEPS_PER_TURN:
        raise RuntimeError(f"not a two-step tool turn: {kinds} ({steps} steps)")
    return elapsed


async def _level(
    base_url: str, model: str, concurrency: int, turns: int, warmup: int, meter: CpuMeter
) -> dict[str, Any]:
    clients = [client(base_url) for _ in range(concurrency)]
    try:
        conversations = await asyncio.gather(*(_agent_and_conversation(c, model) for c in clients))

        async def run(http: httpx.AsyncClient, cid: str, count: int, offset: int) -> list[float]:
            return [await tool_turn(http, cid, offset + i) for i in range(count)]

        pairs = list(zip(clients, conversations, strict=True))
        await asyncio.gather(*(run(c, cid, warmup, 0) for c, cid in pairs))
        before = meter.sample()
        started = time.perf_counter()
        timings = await asyncio.gather(*(run(c, cid, turns, warmup) for c, cid in pairs))
        wall = time.perf_counter() - started
        after = meter.sample()
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    flat = [t for per in timings for t in per]
    per_turn = CpuMeter.per_unit(before, after, len(flat))
    per_step = CpuMeter.per_unit(before, after, len(flat) * STEPS_PER_TURN)
    latency = latency_summary(flat)
    result: dict[str, Any] = {
        "concurrency": concurrency,
        "turns": len(flat),
        "steps_per_turn": STEPS_PER_TURN,
        "turns_per_second": round(len(flat) / wall, 1),
        "latency": latency,
        "cpu_per_turn": per_turn,
        "cpu_per_step": per_step,
    }
    log.info(
        "  two-step tool turns C=%d: %.0f turns/s, p50 %.1f ms p99 %.1f ms, "
        "server CPU %.2f ms/step",
        concurrency,
        result["turns_per_second"],
        latency["p50_ms"],
        latency["p99_ms"],
        per_step["server_cpu_ms"] or 0.0,
    )
    return result


def tool_turns(
    base_url: str,
    model: str,
    concurrency: Sequence[int],
    turns: int,
    warmup: int,
    pids: Mapping[str, int],
) -> dict[str, Any]:
    meter = CpuMeter({**pids, "client": os.getpid()})

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {"handle": model}
        for c in concurrency:
            out[f"c{c}"] = await _level(base_url, model, c, turns, warmup, meter)
        return out

    return asyncio.run(run())


# -- history with tool messages -----------------------------------------------------------------


def seed_tool_histories(
    services: Services, model: str, lengths: Sequence[int], conversations: int
) -> dict[int, list[str]]:
    """Conversations with ``length`` messages (system included), on their own agent each;
    every other exchange is a tool call and its result, as a tool-using agent leaves them.
    """
    out: dict[int, list[str]] = {}
    for length in lengths:
        created = []
        for _ in range(conversations):
            agent = services.agents.create(
                DEFAULT_ACTOR,
                AgentSpec(
                    name="bench-history", model=model, memory_blocks=[BlockSpec("human", "x")]
                ),
            )
            row = services.conversations.create(DEFAULT_ACTOR, agent.id)
            _append_with_tools(services, row.id, length - 1)
            created.append(row.conversation_id)
        out[length] = created
    return out


def _append_with_tools(services: Services, conversation_uuid: str, count: int) -> None:
    app = services.ctx.app
    conversation = app.get(Conversation, UUID(conversation_uuid))
    assert conversation is not None
    for n in range(count):
        kind = n % 4  # user, tool call, tool result, assistant
        step = ids.new(ids.STEP)
        message_id = ids.new(ids.MESSAGE)
        if kind == 0:
            conversation.append_message(message_id, "user", "user_message", message_text(n))
        elif kind == 1:
            call = {
                "name": "memory_insert",
                "arguments": '{"label": "human"}',
                "tool_call_id": f"c{n}",
            }
            conversation.append_message(
                message_id,
                "assistant",
                "tool_call_message",
                None,
                step_id=step,
                extra={"tool_call": call, "tool_calls": [call]},
            )
        elif kind == 2:
            conversation.append_message(
                message_id,
                "tool",
                "tool_return_message",
                json.dumps({"status": "OK"}),
                step_id=step,
                extra={"tool_call_id": f"c{n - 1}", "status": "success", "tool_return": "ok"},
            )
        else:
            conversation.append_message(
                message_id, "assistant", "assistant_message", message_text(n)
            )
        if (n + 1) % 100 == 0:
            app.save(conversation)
    app.save(conversation)


def tool_history(
    base_url: str, seeded: Mapping[int, Sequence[str]], turns_each: int
) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        lengths = sorted(seeded)
        first: dict[int, list[float]] = {n: [] for n in lengths}
        warm: dict[int, list[float]] = {n: [] for n in lengths}
        rounds = max(len(v) for v in seeded.values())
        async with client(base_url) as http:
            for i in range(rounds):
                for n in lengths if i % 2 == 0 else lengths[::-1]:
                    first[n].append(await tool_turn(http, seeded[n][i], 0))
            for turn in range(1, turns_each + 1):
                for i in range(rounds):
                    for n in lengths if (i + turn) % 2 == 0 else lengths[::-1]:
                        warm[n].append(await tool_turn(http, seeded[n][i], turn))
        out: dict[str, Any] = {
            f"history_{n}": {
                "messages_before": n,
                "turn": latency_summary(warm[n]),
                "first_turn": latency_summary(first[n]),
            }
            for n in lengths
        }
        short, long = out[f"history_{lengths[0]}"], out[f"history_{lengths[-1]}"]
        ratio = (
            long["turn"]["p50_ms"] / short["turn"]["p50_ms"] if short["turn"]["p50_ms"] else None
        )
        out["p50_ratio_long_to_short"] = None if ratio is None else round(ratio, 3)
        log.info(
            "  two-step tool turn at %d vs %d messages (tool messages included): p50 %.1f vs "
            "%.1f ms (%.2fx)",
            lengths[-1],
            lengths[0],
            long["turn"]["p50_ms"],
            short["turn"]["p50_ms"],
            ratio or 0.0,
        )
        return out

    return asyncio.run(run())


# -- conversation_search ------------------------------------------------------------------------


def search_latency(services: Services, messages: int, queries: int) -> dict[str, Any]:
    agent = services.agents.create(
        DEFAULT_ACTOR, AgentSpec(name="bench-search", memory_blocks=[BlockSpec("human", "x")])
    )
    row = services.conversations.create(DEFAULT_ACTOR, agent.id)
    app = services.ctx.app
    conversation = app.get(Conversation, UUID(row.id))
    assert conversation is not None
    vocabulary = ["penguin", "glacier", "ledger", "audit", "kettle", "orbit", "harbor", "quartz"]
    for n in range(messages):
        word = vocabulary[n % len(vocabulary)]
        text = f"{message_text(n)} {word}{n % 97}"
        role = "user" if n % 2 == 0 else "assistant"
        conversation.append_message(ids.new(ids.MESSAGE), role, f"{role}_message", text)
        if (n + 1) % 500 == 0:
            app.save(conversation)
    app.save(conversation)
    services.projector.catch_up()
    search = SearchQueries(services.ctx.store)
    samples = []
    for q in range(queries):
        query = f"{vocabulary[q % len(vocabulary)]}{q % 97}"
        started = time.perf_counter()
        found = search.search(agent.id, query, None, 5)
        samples.append(time.perf_counter() - started)
        if not found:
            raise RuntimeError(f"conversation_search found nothing for {query!r}")
    summary = latency_summary(samples)
    log.info(
        "  conversation_search over %d messages: p50 %.2f ms p99 %.2f ms",
        messages,
        summary["p50_ms"],
        summary["p99_ms"],
    )
    return {"messages": messages, "queries": queries, "latency": summary}
