"""Does a turn get slower as its conversation gets longer? Turn latency on conversations with
10 and with 1,000 messages of history, seeded in-process before the server starts.

Each conversation gets one first turn (its first in this server process: the context is read
in full, reported as ``first_turn``), then ``turns_each`` more; rounds alternate between the
lengths so noise hits both alike. Every turn adds two messages, so a short conversation ends
at 10 + 2 * (turns_each + 1) messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from bench import seed
from bench.stats import latency_summary
from bench.turn_client import client, send_turn
from service.services import Services
from tests.actors import DEFAULT_ACTOR

log = logging.getLogger("bench")


def seed_histories(
    services: Services,
    agent_id: str,
    models: Mapping[str, str],
    lengths: Sequence[int],
    conversations: int,
) -> dict[str, dict[int, list[str]]]:
    """Per model label, per history length: ``conversations`` conversations (API ids) holding
    that many messages, the system message included.
    """
    out: dict[str, dict[int, list[str]]] = {}
    for label, handle in models.items():
        out[label] = {}
        for length in lengths:
            created = []
            for _ in range(conversations):
                row = services.conversations.create(DEFAULT_ACTOR, agent_id, model=handle)
                seed.append_messages(services, row.id, length - 1)
                created.append(row.conversation_id)
            out[label][length] = created
    return out


def turn_history(
    base_url: str, seeded: Mapping[str, Mapping[int, Sequence[str]]], turns_each: int
) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with client(base_url) as http:
            for label, by_length in seeded.items():
                lengths = sorted(by_length)
                first: dict[int, list[float]] = {n: [] for n in lengths}
                warm: dict[int, list[float]] = {n: [] for n in lengths}
                rounds = max(len(ids) for ids in by_length.values())
                for i in range(rounds):
                    order = lengths if i % 2 == 0 else lengths[::-1]
                    for n in order:
                        conversation_id = by_length[n][i]
                        first[n].append((await send_turn(http, conversation_id, 0)).seconds)
                for turn in range(1, turns_each + 1):
                    for i in range(rounds):
                        order = lengths if (i + turn) % 2 == 0 else lengths[::-1]
                        for n in order:
                            timing = await send_turn(http, by_length[n][i], turn)
                            warm[n].append(timing.seconds)
                per_model: dict[str, Any] = {}
                for n in lengths:
                    per_model[f"history_{n}"] = {
                        "messages_before": n,
                        "conversations": len(by_length[n]),
                        "turn": latency_summary(warm[n]),
                        "first_turn": latency_summary(first[n]),
                    }
                short, long = (
                    per_model[f"history_{lengths[0]}"],
                    per_model[f"history_{lengths[-1]}"],
                )
                per_model["p50_ratio_long_to_short"] = _ratio(
                    long["turn"]["p50_ms"], short["turn"]["p50_ms"]
                )
                per_model["p99_ratio_long_to_short"] = _ratio(
                    long["turn"]["p99_ms"], short["turn"]["p99_ms"]
                )
                per_model["first_turn_p50_ratio_long_to_short"] = _ratio(
                    long["first_turn"]["p50_ms"], short["first_turn"]["p50_ms"]
                )
                log.info(
                    "  turn at %d vs %d messages (%s): p50 %.1f vs %.1f ms (%.2fx); "
                    "first turn p50 %.1f vs %.1f ms",
                    lengths[-1],
                    lengths[0],
                    label,
                    long["turn"]["p50_ms"],
                    short["turn"]["p50_ms"],
                    per_model["p50_ratio_long_to_short"] or 0.0,
                    long["first_turn"]["p50_ms"],
                    short["first_turn"]["p50_ms"],
                )
                out[label] = per_model
        return out

    return asyncio.run(run())


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None
