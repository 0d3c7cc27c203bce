"""Property tests of compaction (decisions §12): whatever the order of appends, turns and
compactions (modes all / sliding_window),

(a) the full listing is the history, in order: every appended message, plus each summary at
    the position where it was made (a ``user_message`` with role ``summary``);
(b) the in-context window is system + the latest summary + the suffix after the checkpoint;
(c) the model's context on the next turn is that window, message for message;
(d) replaying the log into every projection gives the same window, listing and views.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from domain.errors import BadRequest
from runtime.bootstrap import build
from runtime.settings import Settings
from service.services import Services
from service.turns import TurnRequest
from tests.scripted_model import ScriptedModel
from tests.unit.seed import ACTOR, append, listing, new_agent, new_conversation, view_tables

FEW = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

words = st.text(alphabet="abcdefgh ", min_size=1, max_size=12).map(str.strip).filter(bool)
compaction_requests = st.one_of(
    st.none(),
    st.just({"mode": "all"}),
    st.just({"mode": "sliding_window"}),
    st.builds(
        lambda p: {"mode": "sliding_window", "sliding_window_percentage": p},
        st.sampled_from([0.1, 0.3, 0.5, 0.8]),
    ),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.sampled_from(["user", "assistant"]), words),
        st.tuples(st.just("exchange"), words, words),
        st.tuples(st.just("exchanges"), st.integers(min_value=2, max_value=5)),
        st.tuples(st.just("turn"), words),
        st.tuples(st.just("compact"), compaction_requests),
        st.tuples(st.just("compact"), compaction_requests),  # twice as likely
    ),
    min_size=2,
    max_size=14,
)


@dataclass
class Listed:
    id: str
    role: str  # system | user | assistant | summary
    content: str  # what the model gets (the packed JSON for a summary)
    summary: str | None = None  # the raw summary text


@dataclass
class Model:
    """What the tests expect: the history and the window, by message id."""

    history: list[Listed] = field(default_factory=list)
    window: list[str] = field(default_factory=list)

    def by_id(self) -> dict[str, Listed]:
        return {m.id: m for m in self.history}


class Scenario:
    def __init__(self) -> None:
        self.model = ScriptedModel()
        self.services: Services = build(Settings(database_url="memory://"), model=self.model)
        agent = new_agent(self.services)
        row = new_conversation(self.services, agent.id)
        self.stream = row.id
        self.conversation = row.conversation_id
        system = listing(self.services, self.conversation)[0]
        self.expected = Model([Listed(system["id"], "system", system["content"])], [system["id"]])

    def close(self) -> None:
        self.services.close()

    # -- operations ------------------------------------------------------------------------------

    def append(self, role: str, text: str) -> None:
        [message_id] = append(self.services, self.stream, text, role=role)
        self.expected.history.append(Listed(message_id, role, text))
        self.expected.window.append(message_id)

    def turn(self, text: str) -> None:
        async def run() -> str:
            request = TurnRequest(messages=[{"role": "user", "content": text}], streaming=False)
            turn = await self.services.turns.begin(ACTOR, self.conversation, request)
            result = await self.services.turns.result_of(turn)
            assert result.stop_reason == "end_turn", result.error
            return str(result.messages[0]["content"])

        answer = run_async(run())
        self.check_model_context(text)  # (c)
        assert answer == f"echo: {text} [context={len(self.expected.window) + 1}]"
        user, assistant = listing(self.services, self.conversation)[-2:]
        assert (user["role"], user["content"]) == ("user", text)
        assert (assistant["role"], assistant["content"]) == ("assistant", answer)
        for item in (user, assistant):
            self.expected.history.append(Listed(item["id"], item["role"], item["content"]))
            self.expected.window.append(item["id"])

    def compact(self, request: dict[str, Any] | None) -> None:
        before_log = self.services.ctx.log.max_position()
        previous = list(self.expected.window)
        asked = self.model.requests[:]
        try:
            done = run_async(self.services.compaction.compact(ACTOR, self.conversation, request))
        except BadRequest:
            event("compaction refused")
            if (request or {}).get("mode") == "all":
                assert len(previous) <= 2  # [system] or [system, one message]
            assert self.services.ctx.log.max_position() == before_log  # nothing written
            return
        event(f"compacted ({done.mode})")
        assert done.num_messages_before == len(previous)
        assert done.num_messages_after < done.num_messages_before
        kept_count = done.num_messages_after - 2
        assert kept_count >= 0
        if done.mode == "all":
            assert kept_count == 0
        evicted = previous[1 : len(previous) - kept_count]
        kept = previous[len(previous) - kept_count :] if kept_count else []
        known = self.expected.by_id()
        # The cut: never the previous summary kept; a kept suffix starts at an answer.
        assert known[previous[1]].id not in kept
        if kept:
            assert known[kept[0]].role == "assistant"
        # The summarizer was asked once, about exactly the evicted messages, in order.
        [summarizer] = self.model.requests[len(asked) :]
        lines = summarizer.messages[1].content.splitlines()
        assert lines[0] == "<start_transcript>"
        assert [json.loads(line) for line in lines[1 : 1 + len(evicted)]] == [
            # a summary is summarized as a user message holding its packed JSON
            {
                "role": "user" if known[i].role == "summary" else known[i].role,
                "content": known[i].content,
            }
            for i in evicted
        ]
        assert lines[1 + len(evicted)] == "<end_transcript>"
        item = listing(self.services, self.conversation)[-1]
        assert item["id"] == done.summary_message_id
        assert (item["message_type"], item["role"]) == ("user_message", "summary")
        packed = json.loads(item["content"])
        assert packed["type"] == "system_alert"
        assert packed["message"].endswith(":\n " + done.summary)
        self.expected.history.append(
            Listed(done.summary_message_id, "summary", item["content"], done.summary)
        )
        self.expected.window = [previous[0], done.summary_message_id, *kept]

    # -- checks ----------------------------------------------------------------------------------

    def check_listing(self) -> None:  # (a)
        items = listing(self.services, self.conversation)
        assert [(i["id"], i["role"]) for i in items] == [
            (m.id, m.role) for m in self.expected.history
        ]
        assert [i["content"] for i in items] == [m.content for m in self.expected.history]
        for item in items:
            if item["role"] == "summary":
                assert item["message_type"] == "user_message"

    def in_context(self) -> list[str]:
        row = self.services.conversations.get(ACTOR, self.conversation)
        return self.services.conversations.in_context_ids([row])[row.id]

    def check_window(self) -> None:  # (b)
        assert self.in_context() == self.expected.window
        summaries = [m.id for m in self.expected.history if m.role == "summary"]
        if summaries:
            assert self.expected.window[1] == summaries[-1]  # only the latest summary

    def check_model_context(self, text: str) -> None:  # (c)
        known = self.expected.by_id()
        sent = [(m.role, m.content) for m in self.model.requests[-1].messages]
        wanted = [
            ("user" if known[i].role == "summary" else known[i].role, known[i].content)
            for i in self.expected.window
        ]
        assert sent == [*wanted, ("user", text)]

    def check_replay(self) -> None:  # (d)
        views = view_tables(self.services)
        listed = listing(self.services, self.conversation)
        window = self.in_context()
        for name in list(self.services.projector.projections):
            self.services.projector.rebuild(name)
        assert listing(self.services, self.conversation) == listed
        assert self.in_context() == window
        assert view_tables(self.services) == views


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)


@FEW
@given(ops=operations)
def test_history_window_context_and_replay(ops: list[tuple[Any, ...]]) -> None:
    scenario = Scenario()
    try:
        for op in ops:
            if op[0] == "append":
                scenario.append(op[1], op[2])
            elif op[0] == "exchange":
                scenario.append("user", op[1])
                scenario.append("assistant", op[2])
            elif op[0] == "exchanges":
                for index in range(op[1]):
                    scenario.append("user", f"question {index}")
                    scenario.append("assistant", f"answer {index}")
            elif op[0] == "turn":
                scenario.turn(op[1])
            else:
                scenario.compact(op[1])
            scenario.check_listing()
            scenario.check_window()
        scenario.check_replay()
        scenario.check_listing()
        scenario.check_window()
        scenario.turn("after the replay")  # (c) once more, on the rebuilt views
        scenario.check_listing()
    finally:
        scenario.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    exchanges=st.integers(min_value=2, max_value=8),
    mode=st.sampled_from(["all", "sliding_window"]),
)
def test_compacting_with_the_built_in_model_keeps_history(exchanges: int, mode: str) -> None:
    """The same invariants with convlog's own offline model as the summarizer."""
    built = build(Settings(database_url="memory://"))
    try:
        agent = new_agent(built, model="convlog/builtin")
        row = new_conversation(built, agent.id)
        made = []
        for index in range(exchanges):
            made += append(built, row.id, f"q{index}")
            made += append(built, row.id, f"a{index}", role="assistant")
        before = built.ctx.log.max_position()
        if mode == "sliding_window" and exchanges < 4:
            # N = 5 or 7: the cut falls at index 2, summarizing one message: no reduction.
            with pytest.raises(BadRequest):
                run_async(built.compaction.compact(ACTOR, row.conversation_id, {"mode": mode}))
            assert built.ctx.log.max_position() == before
            return
        done = run_async(built.compaction.compact(ACTOR, row.conversation_id, {"mode": mode}))
        items = listing(built, row.conversation_id)
        assert [i["id"] for i in items][1:] == [*made, done.summary_message_id]
        assert done.summary.endswith(".")  # the built-in model's deterministic summary
        evicted = done.num_messages_before - (done.num_messages_after - 1)
        assert done.summary.startswith(f"{evicted} earlier messages")
        in_context = built.conversations.in_context_ids(
            [built.conversations.get(ACTOR, row.conversation_id)]
        )
        kept = (
            made[len(made) - (done.num_messages_after - 2) :] if done.num_messages_after > 2 else []
        )
        assert in_context[row.id] == [items[0]["id"], done.summary_message_id, *kept]
    finally:
        built.close()
