"""A state machine over send / finish / fail / cancel / resume on one conversation.

Invariants: at most one active run; the listing holds exactly the inputs and answers of the
turns that succeeded, in order; every run ends terminal.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.errors import Conflict
from runtime.bootstrap import build
from runtime.settings import Settings
from service.agents import AgentSpec, BlockSpec
from service.services import Services
from service.turns import Turn, TurnRequest
from tests.actors import DEFAULT_ACTOR
from tests.frames import split_frames
from tests.scripted_model import ScriptedModel

T = TypeVar("T")

words = st.text(alphabet="abcdefgh", min_size=1, max_size=8)


class TurnMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.model = ScriptedModel()
        self.services: Services = build(Settings(database_url="memory://"), model=self.model)
        agent = self.services.agents.create(
            DEFAULT_ACTOR,
            AgentSpec(name="m", model="openai/x", memory_blocks=[BlockSpec("h", "v")]),
        )
        self.conversation = self.services.conversations.create(
            DEFAULT_ACTOR, agent.id
        ).conversation_id
        self.active: Turn | None = None
        self.expected: list[str] = []  # contents of the listed user/assistant messages
        self.pending_text = ""

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def frames(self, turn: Turn) -> list[str]:
        async def collect() -> list[str]:
            return split_frames([f async for f in self.services.turns.frames_of(turn)])

        return self.run(collect())

    @rule(text=words, background=st.booleans())
    def send(self, text: str, background: bool) -> None:
        request = TurnRequest(messages=[{"role": "user", "content": text}], background=background)
        if self.active is not None:
            with pytest.raises(Conflict):
                self.run(self.services.turns.begin(DEFAULT_ACTOR, self.conversation, request))
            return
        self.model.release = asyncio.Event()
        self.model.fail = None
        self.active = self.run(self.services.turns.begin(DEFAULT_ACTOR, self.conversation, request))
        self.pending_text = text

    @precondition(lambda self: self.active is not None)
    @rule(fail=st.sampled_from([None, "timeout", "rate_limit", "empty_response", "other"]))
    def finish(self, fail: str | None) -> None:
        assert self.active is not None and self.model.release is not None
        self.model.fail = fail
        self.loop.call_soon(self.model.release.set)
        frames = self.frames(self.active)
        assert frames[-1] == "data: [DONE]\n\n"
        stops = [
            json.loads(f[6:]) for f in frames if '"stop_reason"' in f and f.startswith("data:")
        ]
        if fail is None:
            assert stops[-1]["stop_reason"] == "end_turn"
            history_size = 1 + len(self.expected)  # system + earlier messages
            self.expected += [
                self.pending_text,
                f"echo: {self.pending_text} [context={history_size + 1}]",
            ]
        else:
            assert stops[-1]["stop_reason"] != "end_turn"
            assert any(f.startswith("event: error") for f in frames)
        self.active = None

    @rule()
    def cancel(self) -> None:
        if self.active is None:
            with pytest.raises(Conflict):
                self.run(self.services.runs.cancel(DEFAULT_ACTOR, self.conversation))
            return
        outcome = self.run(self.services.runs.cancel(DEFAULT_ACTOR, self.conversation))
        assert outcome == {self.active.run_id: "cancelled"}
        frames = self.frames(self.active)
        assert frames[-2:] == [
            'data: {"message_type":"stop_reason","stop_reason":"cancelled"}\n\n',
            "data: [DONE]\n\n",
        ]
        self.active = None

    @precondition(lambda self: self.active is not None and self.active.request.background)
    @rule(after=st.integers(min_value=0, max_value=3))
    def resume_after_finish(self, after: int) -> None:
        """A client that dropped reconnects with starting_after and loses nothing."""
        turn = self.active
        assert turn is not None and self.model.release is not None
        run = self.services.runs.find_resumable(DEFAULT_ACTOR, self.conversation)
        assert run.id == turn.run_id
        self.loop.call_soon(self.model.release.set)

        async def collect() -> list[str]:
            stream = self.services.runs.resume(
                run, starting_after=after, poll_interval=0.01, batch_size=10, ping_seconds=None
            )
            return [f async for f in stream]

        resumed = self.run(collect())
        full = self.frames(turn)
        assert resumed == full[after:]
        history_size = 1 + len(self.expected)
        self.expected += [
            self.pending_text,
            f"echo: {self.pending_text} [context={history_size + 1}]",
        ]
        self.active = None

    @invariant()
    def one_active_run_and_history_in_order(self) -> None:
        active = self.services.runs.active_runs(DEFAULT_ACTOR, self.conversation, check_exists=True)
        assert len(active) <= 1
        assert (self.active is None) == (not active)
        items = self.services.conversations.messages(
            DEFAULT_ACTOR, self.conversation, before=None, after=None, limit=None, ascending=True
        )
        contents = [json.loads(i)["content"] for i in items][1:]
        assert contents == self.expected

    def teardown(self) -> None:
        if self.active is not None:
            self.run(self.services.runs.cancel(DEFAULT_ACTOR, self.conversation))
            self.frames(self.active)
        runs = self.services.runs.list_runs(
            DEFAULT_ACTOR,
            agent_id=None,
            conversation_id=None,
            statuses=None,
            background=None,
            ascending=True,
            limit=1000,
        )
        assert all(r.status in ("completed", "failed", "cancelled") for r in runs)
        self.run(self.services.aclose())
        self.services.close()
        self.loop.close()


TurnMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_turns_state_machine = TurnMachine.TestCase
