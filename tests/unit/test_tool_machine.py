"""A state machine over send / tool error / approve / deny / client tool result / cancel /
compact on one conversation.

Invariant: the context the model would see, rebuilt from the views, is well formed — it
starts with the system message, every tool call is answered exactly once, right after it and
in order, and nothing answers a call that was not made. Only a pending approval may leave
the last calls unanswered, and then the next input must answer them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.errors import BadRequest, Conflict
from domain.tools import BY_NAME
from runtime.bootstrap import build
from runtime.settings import Settings
from service.agents import AgentSpec, BlockSpec, ToolChange
from service.context_window import ContextCache
from service.model import ChatMessage
from service.services import Services
from service.tools.box import ClientTool
from service.turns import TurnRequest, TurnResult
from tests.actors import DEFAULT_ACTOR
from tests.scripted_model import Say, ScriptedModel

CLIENT = ClientTool("lookup", "Look something up", {"type": "object", "properties": {}})
words = st.text(alphabet="abcdef", min_size=1, max_size=6)


def well_formed(messages: list[ChatMessage], pending: bool) -> None:
    assert messages and messages[0].role == "system"
    waiting: list[str] = []
    for message in messages[1:]:
        if message.role == "tool":
            assert waiting and message.tool_call_id == waiting[0], (message, waiting)
            waiting.pop(0)
            continue
        assert not waiting, f"calls {waiting} unanswered before a {message.role} message"
        if message.tool_calls:
            waiting = [c.id for c in message.tool_calls]
    assert not waiting or pending, f"calls {waiting} unanswered"


class ToolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.model = ScriptedModel()
        self.services: Services = build(Settings(database_url="memory://"), model=self.model)
        agent = self.services.agents.create(
            DEFAULT_ACTOR,
            AgentSpec(name="m", model="openai/x", memory_blocks=[BlockSpec("human", "v")]),
        )
        self.services.agents.change_tools(
            DEFAULT_ACTOR, agent.id, ToolChange(approval=("memory_rethink", True))
        )
        self.services.agents.change_tools(
            DEFAULT_ACTOR, agent.id, ToolChange(attach=_tool_id("memory_rethink"))
        )
        self.conversation = self.services.conversations.create(
            DEFAULT_ACTOR, agent.id
        ).conversation_id
        self.pending: tuple[str, list[str]] | None = None  # (server|client, call ids)

    def teardown(self) -> None:
        self.services.close()
        self.loop.close()

    def send(self, messages: list[dict[str, Any]], **fields: Any) -> TurnResult:
        async def run() -> TurnResult:
            request = TurnRequest(
                messages=messages, streaming=False, client_tools=(CLIENT,), **fields
            )
            turn = await self.services.turns.begin(DEFAULT_ACTOR, self.conversation, request)
            return await self.services.turns.result_of(turn)

        return self.loop.run_until_complete(run())

    def after(self, result: TurnResult) -> None:
        self.pending = None
        if result.stop_reason == "requires_approval":
            request = result.messages[-1]
            assert request["message_type"] == "approval_request_message"
            calls = [c["tool_call_id"] for c in request["tool_calls"]]
            kind = "client" if request["tool_call"]["name"] == "lookup" else "server"
            self.pending = (kind, calls)

    @rule(
        text=words,
        reply=st.sampled_from(["text", "memory", "unknown", "bad_json", "approval", "client"]),
        parallel=st.booleans(),
    )
    def send_message(self, text: str, reply: str, parallel: bool) -> None:
        calls = {
            "text": [],
            "memory": [("memory_insert", json.dumps({"label": "human", "new_string": text}))],
            "unknown": [("nope", "{}")],
            "bad_json": [("memory_insert", "{oops")],
            "approval": [("memory_rethink", json.dumps({"label": "human", "new_memory": text}))],
            "client": [("lookup", "{}")],
        }[reply]
        if parallel and calls:
            calls = [*calls, ("conversation_search", json.dumps({"query": text}))]
        self.model.script = [Say(text=text, calls=calls), Say(text="done")]
        user = [{"role": "user", "content": text}]
        if self.pending is not None:
            with pytest.raises(Conflict):
                self.send(user)
            self.model.script = []
            return
        self.after(self.send(user))

    @precondition(lambda self: self.pending is not None and self.pending[0] == "server")
    @rule(approve=st.booleans())
    def decide(self, approve: bool) -> None:
        assert self.pending is not None
        approvals = [
            {"type": "approval", "tool_call_id": c, "approve": approve, "reason": "r"}
            for c in self.pending[1]
        ]
        self.model.script = [Say(text="after the decision")]
        self.after(self.send([], approvals=approvals))

    @precondition(lambda self: self.pending is not None and self.pending[0] == "client")
    @rule(ok=st.booleans())
    def client_result(self, ok: bool) -> None:
        assert self.pending is not None
        results = [
            {
                "type": "tool",
                "tool_call_id": c,
                "tool_return": "found",
                "status": "success" if ok else "error",
            }
            for c in self.pending[1]
        ]
        self.model.script = [Say(text="after the result")]
        self.after(self.send([], approvals=results))

    @precondition(lambda self: self.pending is not None)
    @rule()
    def answer_an_unknown_call(self) -> None:
        with pytest.raises(BadRequest):
            self.send([], approvals=[{"type": "approval", "tool_call_id": "x", "approve": True}])

    @precondition(lambda self: self.pending is None)
    @rule(text=words)
    def cancel_mid_turn(self, text: str) -> None:
        async def run() -> TurnResult:
            self.model.release = asyncio.Event()
            self.model.script = [
                Say(calls=[("memory_insert", json.dumps({"label": "human", "new_string": text}))]),
                Say(text="never seen"),
            ]
            request = TurnRequest(messages=[{"role": "user", "content": text}], streaming=False)
            turn = await self.services.turns.begin(DEFAULT_ACTOR, self.conversation, request)
            self.model.release.set()
            await asyncio.sleep(0)  # the first step may or may not be saved first
            await self.services.runs.cancel(DEFAULT_ACTOR, self.conversation)
            result = await self.services.turns.result_of(turn)
            self.model.release = None
            self.model.script = []
            return result

        try:
            result = self.loop.run_until_complete(run())
        except Conflict:  # the turn finished before the cancel reached it
            self.model.release = None
            self.model.script = []
            return
        assert result.stop_reason in ("cancelled", "end_turn")

    @rule(mode=st.sampled_from(["all", "sliding_window"]))
    def compact(self, mode: str) -> None:
        with contextlib.suppress(BadRequest):  # nothing to reduce
            self.loop.run_until_complete(
                self.services.compaction.compact(DEFAULT_ACTOR, self.conversation, {"mode": mode})
            )

    @invariant()
    def context_is_well_formed(self) -> None:
        row = self.services.ctx.conversations.get_any(self.conversation.removeprefix("conv-"))
        assert row is not None
        fresh = ContextCache(self.services.ctx.store).messages(row.window, row.context_version)
        well_formed(fresh, self.pending is not None)
        cached = self.services.turns.loop.context.messages(row.window, row.context_version)
        assert cached == fresh


def _tool_id(name: str) -> str:
    return BY_NAME[name].id


TestToolMachine = ToolMachine.TestCase
TestToolMachine.settings = settings(
    max_examples=25,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
