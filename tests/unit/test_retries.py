"""Idempotent sends: a request whose messages carry an otid an earlier run took gets that
run's answer, and nothing runs again — after the run, while it runs, and across a restart.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.errors import Conflict
from runtime.bootstrap import build
from runtime.settings import Settings
from service.services import Services
from service.turns import Turn, TurnRequest
from tests.frames import split_frames
from tests.scripted_model import ScriptedModel
from tests.unit.seed import ACTOR, head, new_agent, new_conversation

T = TypeVar("T")


def request(text: str, otid: str | None, **fields: Any) -> TurnRequest:
    message: dict[str, Any] = {"role": "user", "content": text}
    if otid is not None:
        message["otid"] = otid
    return TurnRequest(messages=[message], **fields)


async def send(services: Services, conversation: str, req: TurnRequest) -> Turn:
    turn = await services.turns.begin(ACTOR, conversation, req)
    await services.turns.result_of(turn)
    return turn


async def frames(services: Services, turn: Turn) -> list[str]:
    return split_frames([f async for f in services.turns.frames_of(turn)])


def runs_of(services: Services) -> list[str]:
    rows = services.runs.list_runs(
        ACTOR,
        agent_id=None,
        conversation_id=None,
        statuses=None,
        background=None,
        ascending=True,
        limit=1000,
    )
    return [r.id for r in rows]


def test_a_retry_after_the_run_gets_its_answer_and_writes_nothing() -> None:
    model = ScriptedModel()
    services = build(Settings(database_url="memory://"), model=model)
    try:
        conversation = new_conversation(services, new_agent(services).id).conversation_id
        otid = str(uuid.uuid4())
        first = asyncio.run(send(services, conversation, request("hi", otid, streaming=False)))
        calls, written = len(model.requests), head(services)
        again = asyncio.run(send(services, conversation, request("hi", otid, streaming=False)))
        assert again.run_id == first.run_id
        assert again.result.messages == first.result.messages
        assert [m["message_type"] for m in again.result.messages] == ["assistant_message"]
        assert again.result.usage == first.result.usage
        assert (len(model.requests), head(services)) == (calls, written)
        streamed = asyncio.run(
            frames(
                services,
                asyncio.run(services.turns.begin(ACTOR, conversation, request("hi", otid))),
            )
        )
        assert '"stop_reason":"end_turn"' in streamed[-3] and streamed[-1] == "data: [DONE]\n\n"
        assert len(runs_of(services)) == 1
    finally:
        services.close()


def test_a_retry_while_the_run_is_active_waits_for_it_instead_of_409() -> None:
    model = ScriptedModel(release=asyncio.Event())
    services = build(Settings(database_url="memory://"), model=model)
    try:
        conversation = new_conversation(services, new_agent(services).id).conversation_id
        otid = str(uuid.uuid4())

        async def both() -> tuple[Turn, Turn]:
            first = await services.turns.begin(ACTOR, conversation, request("x", otid))
            with pytest.raises(Conflict):  # another message is still refused
                await services.turns.begin(ACTOR, conversation, request("y", str(uuid.uuid4())))
            assert model.release is not None
            asyncio.get_running_loop().call_later(0.05, model.release.set)
            again = await send(services, conversation, request("x", otid, streaming=False))
            await frames(services, first)
            return first, again

        first, again = asyncio.run(both())
        assert again.run_id == first.run_id
        assert again.result.stop_reason == "end_turn"
        assert len(runs_of(services)) == 1
    finally:
        services.close()


def test_the_log_remembers_otids_across_a_restart(tmp_path: Path) -> None:
    store = Settings(database_url=f"sqlite:///{tmp_path / 'log.db'}")
    otid = str(uuid.uuid4())
    services = build(store, model=ScriptedModel())
    try:
        conversation = new_conversation(services, new_agent(services).id).conversation_id
        first = asyncio.run(send(services, conversation, request("hi", otid, streaming=False)))
    finally:
        services.close()
    model = ScriptedModel()
    services = build(store, model=model)
    try:
        for name in list(services.projector.projections):
            services.projector.rebuild(name)
        again = asyncio.run(send(services, conversation, request("hi", otid, streaming=False)))
        assert again.run_id == first.run_id and model.requests == []
    finally:
        services.close()


# -- the state machine ------------------------------------------------------------------------


class RetryMachine(RuleBasedStateMachine):
    """Sends, retries with an earlier otid (streaming or not), disconnects and cancels:
    never two runs for one otid, and a retry of a finished run answers as that run did.
    """

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.model = ScriptedModel()
        self.services: Services = build(Settings(database_url="memory://"), model=self.model)
        agent = new_agent(self.services)
        self.conversation = new_conversation(self.services, agent.id).conversation_id
        self.otids: list[str] = []
        self.active: Turn | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def settle_active(self) -> None:
        if self.active is not None and self.model.release is not None:
            self.loop.call_soon(self.model.release.set)
            self.run(self.services.turns.result_of(self.active))
            self.active = None

    @rule(background=st.booleans())
    def send(self, background: bool) -> None:
        otid = str(uuid.uuid4())
        if self.active is not None:
            with pytest.raises(Conflict):
                self.run(self.services.turns.begin(ACTOR, self.conversation, request("m", otid)))
            return
        self.model.release = asyncio.Event()
        req = request("m", otid, background=background)
        self.active = self.run(self.services.turns.begin(ACTOR, self.conversation, req))
        self.otids.append(otid)

    @precondition(lambda self: self.otids)
    @rule(pick=st.integers(min_value=0), streaming=st.booleans())
    def retry(self, pick: int, streaming: bool) -> None:
        """A retry of the active run attaches to it (a foreground one: waits for it); of an
        earlier run, it is answered at once, even while another run is active.
        """
        otid = self.otids[pick % len(self.otids)]
        of_active = self.active is not None and otid in self.active.request.otids
        if of_active and self.model.release is not None:
            self.loop.call_later(0.01, self.model.release.set)
        req = request("m", otid, streaming=streaming)
        turn = self.run(self.services.turns.begin(ACTOR, self.conversation, req))
        if streaming:
            got = self.run(frames(self.services, turn))
            assert got[-1] == "data: [DONE]\n\n"
        else:
            result = self.run(self.services.turns.result_of(turn))
            listed = self.services.runs.messages(ACTOR, turn.run_id, ascending=True)
            answered = [json.loads(i) for i in listed if json.loads(i)["otid"] != otid]
            assert result.messages == [
                {k: v for k, v in m.items() if k != "role"} for m in answered
            ]
        if of_active:
            assert self.active is not None and turn.run_id == self.active.run_id
            self.run(self.services.turns.result_of(self.active))
            self.active = None

    @precondition(lambda self: self.active is not None)
    @rule()
    def finish(self) -> None:
        self.settle_active()

    @precondition(lambda self: self.active is not None)
    @rule()
    def disconnect_then_finish(self) -> None:
        """The client goes away without reading: the run still ends, once."""
        self.settle_active()

    @precondition(lambda self: self.active is not None)
    @rule()
    def cancel(self) -> None:
        self.run(self.services.runs.cancel(ACTOR, self.conversation))
        assert self.active is not None
        self.run(self.services.turns.result_of(self.active))
        self.active = None

    @invariant()
    def one_run_per_otid(self) -> None:
        taken: dict[str, list[str]] = {}
        for run_id in runs_of(self.services):
            row = self.services.runs.get(ACTOR, run_id)
            for message in row.state["metadata"]["input_messages"]:
                taken.setdefault(message["otid"], []).append(run_id)
        assert all(len(runs) == 1 for runs in taken.values()), taken
        assert set(taken) == set(self.otids)

    def teardown(self) -> None:
        self.settle_active()
        self.services.close()
        self.loop.close()


RetryMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_retry_machine = RetryMachine.TestCase


def test_a_request_that_repeats_some_otids_but_not_all_is_refused() -> None:
    model = ScriptedModel()
    services = build(Settings(database_url="memory://"), model=model)
    try:
        conversation = new_conversation(services, new_agent(services).id).conversation_id
        a, b, c = (str(uuid.uuid4()) for _ in range(3))
        asyncio.run(send(services, conversation, request("a", a, streaming=False)))
        asyncio.run(send(services, conversation, request("b", b, streaming=False)))
        calls, written = len(model.requests), head(services)
        for otids in ([a, c], [a, b]):  # a new message with an old one; two runs' messages
            messages = [{"role": "user", "content": "x", "otid": o} for o in otids]
            with pytest.raises(Conflict, match="already sent"):
                asyncio.run(
                    send(services, conversation, TurnRequest(messages=messages, streaming=False))
                )
        assert (len(model.requests), head(services)) == (calls, written)
    finally:
        services.close()
