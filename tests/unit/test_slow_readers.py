"""Bounded memory while clients are slow or gone: a request's frames wait in a bounded queue
(the turn waits with them, for a while, then goes on without the client), and background
runs' frames are kept within a byte budget."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from adapters.inprocess import InProcessChunkLog
from runtime.bootstrap import build
from runtime.settings import Settings
from service import streams
from service.agents import AgentSpec
from service.ports import Chunk
from service.services import Services
from service.turn_state import TurnRequest
from tests.actors import DEFAULT_ACTOR
from tests.frames import split_frames
from tests.scripted_model import ScriptedModel

LONG = " ".join(f"w{i}" for i in range(200))  # 200+ streamed fragments


@pytest.fixture
def services() -> Iterator[Services]:
    built = build(Settings(database_url="memory://"), model=ScriptedModel())
    yield built
    built.close()


def conversation_of(services: Services) -> str:
    agent = services.agents.create(DEFAULT_ACTOR, AgentSpec(name="s", model="openai/x"))
    return services.conversations.create(DEFAULT_ACTOR, agent.id).conversation_id


def test_a_client_that_stops_reading_holds_neither_the_turn_nor_memory(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "QUEUE_FRAMES", 20)
    monkeypatch.setattr(streams, "STALL_SECONDS", 0.2)
    conversation = conversation_of(services)
    request = TurnRequest(messages=[{"role": "user", "content": LONG}], stream_tokens=True)

    async def scenario() -> list[str]:
        turn = await services.turns.begin(DEFAULT_ACTOR, conversation, request)
        assert turn.stream.queue.maxsize == 20
        await asyncio.wait_for(turn.finished.wait(), 10)  # nobody read: it finished anyway
        assert turn.result.stop_reason == "end_turn"
        return split_frames([frame async for frame in services.turns.frames_of(turn)])

    frames = asyncio.run(scenario())
    assert frames[-1] == "data: [DONE]\n\n"
    error = json.loads(frames[-2].split("data: ", 1)[1])
    assert error["error_type"] == "stream_incomplete"
    assert "/messages" in error["detail"]
    listed = services.conversations.messages(
        DEFAULT_ACTOR, conversation, before=None, after=None, limit=10, ascending=True
    )
    assert any(LONG in item for item in listed)  # the turn was saved whole


def test_background_frames_stay_within_their_budget() -> None:
    log = InProcessChunkLog(budget_bytes=1000)
    run_bytes = 3 * 50 + len("data: [DONE]\n\n")

    async def finish(run: str) -> None:
        frames = [Chunk(i + 1, "x" * 50, False) for i in range(3)]
        await log.append(run, [*frames, Chunk(4, "data: [DONE]\n\n", True)])

    async def scenario() -> None:
        for run in range(10):
            await finish(f"run-{run}")
        kept = [r for r in range(10) if log.available_here(f"run-{r}")]
        assert kept == list(range(10 - 1000 // run_bytes, 10))  # the newest that fit
        await log.append("run-live", [Chunk(1, "y" * 900, False)])

    asyncio.run(scenario())
    # A live run is never evicted; the finished ones made room for it.
    assert log.available_here("run-live")
    assert not any(log.available_here(f"run-{r}") for r in range(10))
