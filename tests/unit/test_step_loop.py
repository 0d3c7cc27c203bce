"""The step loop with the scripted model: tools, memory edits, stop reasons, approvals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from domain import ids, tools
from domain.errors import BadRequest, Conflict
from runtime.bootstrap import build
from runtime.settings import Settings
from service.agents import AgentSpec, BlockSpec, ToolChange
from service.model import ChatMessage
from service.services import Services
from service.tools.box import ClientTool
from service.turns import TurnRequest, TurnResult
from tests.actors import DEFAULT_ACTOR
from tests.scripted_model import Say, ScriptedModel
from tests.unit.seed import listing

ACTOR = DEFAULT_ACTOR


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
def scripted(model: ScriptedModel) -> Iterator[Services]:
    built = build(Settings(database_url="memory://"), model=model)
    yield built
    built.close()


def agent(services: Services, **spec: Any) -> str:
    blocks = spec.pop("blocks", [BlockSpec("human", "Name: Ann"), BlockSpec("persona", "Kind.")])
    row = services.agents.create(
        ACTOR, AgentSpec(name="a", model="openai/x", memory_blocks=blocks, **spec)
    )
    return row.id


def send(services: Services, path_id: str, text: str | None = None, **fields: Any) -> TurnResult:
    messages = [] if text is None else [{"role": "user", "content": text}]

    async def run() -> TurnResult:
        request = TurnRequest(messages=messages, streaming=False, **fields)
        turn = await services.turns.begin(ACTOR, path_id, request)
        return await services.turns.result_of(turn)

    return asyncio.run(run())


def types(result: TurnResult) -> list[str]:
    return [m["message_type"] for m in result.messages]


def insert(label: str, text: str) -> tuple[str, str]:
    return ("memory_insert", json.dumps({"label": label, "new_string": text}))


def test_agents_get_the_base_tools(scripted: Services) -> None:
    row = scripted.agents.get(ACTOR, agent(scripted))
    names = [tools.BY_ID[t].name for t in row.state["tool_ids"]]
    assert names == ["memory_insert", "memory_replace", "conversation_search"]
    bare = scripted.agents.get(
        ACTOR, agent(scripted, include_base_tools=False, tools=["send_message"])
    )
    assert [tools.BY_ID[t].name for t in bare.state["tool_ids"]] == ["send_message"]


def test_a_memory_edit_then_the_answer(scripted: Services, model: ScriptedModel) -> None:
    agent_id = agent(scripted)
    conv = scripted.conversations.create(ACTOR, agent_id).conversation_id
    model.script = [Say(calls=[insert("human", "Likes tea")]), Say(text="Noted.")]
    result = send(scripted, conv, "remember I like tea")
    assert result.stop_reason == "end_turn"
    assert types(result) == ["tool_call_message", "tool_return_message", "assistant_message"]
    ret = result.messages[1]
    assert (ret["status"], ret["tool_return"]) == ("success", "Name: Ann\nLikes tea")
    assert result.usage["step_count"] == 2
    # The block changed for the agent, and the second step saw the recompiled system message.
    assert scripted.agents.get_block(ACTOR, agent_id, "human")["value"] == "Name: Ann\nLikes tea"
    second = model.requests[1].messages
    assert "Likes tea" in second[0].content
    assert [m.role for m in second[1:]] == ["user", "assistant", "tool"]
    assert second[2].tool_calls[0].name == "memory_insert"
    assert second[3].tool_call_id == second[2].tool_calls[0].id
    # A new conversation starts from the edited block.
    other = scripted.conversations.create(ACTOR, agent_id).conversation_id
    assert "Likes tea" in listing(scripted, other)[0]["content"]


def test_the_context_after_a_restart_is_what_the_loop_saw(
    scripted: Services, model: ScriptedModel
) -> None:
    conv = scripted.conversations.create(ACTOR, agent(scripted)).conversation_id
    model.script = [Say(text="thinking", calls=[insert("human", "x")]), Say(text="done")]
    send(scripted, conv, "hi")
    send(scripted, conv, "again")
    loop_view = model.requests[-1].messages  # what the last step sent, built in memory
    loop = scripted.turns.loop
    loop.context = type(loop.context)(scripted.ctx.store)  # as after a restart: no cache
    row = scripted.ctx.conversations.get_any(conv.removeprefix("conv-"))
    assert row is not None
    rebuilt = loop.context.messages(row.window, row.context_version)
    assert rebuilt[: len(loop_view)] == loop_view
    assert [m.role for m in rebuilt[len(loop_view) :]] == ["assistant"]  # its answer
    merged = rebuilt[2]
    assert (merged.role, merged.content, merged.tool_calls[0].name) == (
        "assistant",
        "thinking",
        "memory_insert",
    )


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (("nope", "{}"), "[ToolConstraintError] Cannot call nope"),
        (("memory_insert", "{not json"), "are not valid JSON"),
        (("memory_insert", '{"label": "human"}'), "missing 1 required argument: 'new_string'"),
        (insert("nobody", "x"), "Block field nobody does not exist"),
        (
            (
                "memory_replace",
                json.dumps({"label": "human", "old_string": "zzz", "new_string": ""}),
            ),
            "did not appear verbatim",
        ),
        (insert("persona", "x"), "read-only"),
        (insert("human", "y" * 50), "Exceeds 20 character limit"),
    ],
)
def test_a_tool_error_goes_back_to_the_model(
    scripted: Services, model: ScriptedModel, call: tuple[str, str], error: str
) -> None:
    blocks = [BlockSpec("human", "Name: Ann", limit=20), BlockSpec("persona", "P", read_only=True)]
    conv = scripted.conversations.create(ACTOR, agent(scripted, blocks=blocks)).conversation_id
    model.script = [Say(calls=[call]), Say(text="sorry")]
    result = send(scripted, conv, "go")
    ret = result.messages[1]
    assert ret["status"] == "error" and error in ret["tool_return"]
    assert result.stop_reason == "end_turn"
    assert json.loads(model.requests[1].messages[-1].content)["status"] == "Failed"


def test_max_steps_stops_a_model_that_loops(scripted: Services, model: ScriptedModel) -> None:
    conv = scripted.conversations.create(ACTOR, agent(scripted)).conversation_id
    model.script = [Say(calls=[insert("human", str(i))]) for i in range(5)]
    result = send(scripted, conv, "loop", max_steps=3)
    assert result.stop_reason == "max_steps" and result.usage["step_count"] == 3
    assert (
        scripted.runs.list_runs(
            ACTOR,
            agent_id=None,
            conversation_id=None,
            statuses=None,
            background=None,
            ascending=True,
            limit=5,
        )[0].status
        == "completed"
    )


def test_a_cut_off_answer_is_max_tokens_exceeded(scripted: Services, model: ScriptedModel) -> None:
    conv = scripted.conversations.create(ACTOR, agent(scripted)).conversation_id
    model.script = [Say(text="partial", finish_reason="length")]
    assert send(scripted, conv, "long").stop_reason == "max_tokens_exceeded"


def test_a_terminal_tool_rule_ends_the_turn(scripted: Services, model: ScriptedModel) -> None:
    rules = [{"type": "exit_loop", "tool_name": "memory_insert"}]
    conv = scripted.conversations.create(ACTOR, agent(scripted, tool_rules=rules)).conversation_id
    model.script = [Say(calls=[insert("human", "x")])]
    result = send(scripted, conv, "go")
    assert result.stop_reason == "tool_rule"
    assert types(result) == ["tool_call_message", "tool_return_message"]


def approve_setup(scripted: Services, model: ScriptedModel) -> tuple[str, str, str]:
    agent_id = agent(scripted)
    scripted.agents.change_tools(ACTOR, agent_id, ToolChange(approval=("memory_insert", True)))
    conv = scripted.conversations.create(ACTOR, agent_id).conversation_id
    model.script = [Say(calls=[insert("human", "secret")]), Say(text="ok")]
    result = send(scripted, conv, "go")
    assert result.stop_reason == "requires_approval"
    assert types(result) == ["approval_request_message"]
    return agent_id, conv, result.messages[0]["tool_call"]["tool_call_id"]


def test_approve_runs_the_tool_and_continues(scripted: Services, model: ScriptedModel) -> None:
    agent_id, conv, call_id = approve_setup(scripted, model)
    with pytest.raises(Conflict, match="waiting for approval"):
        send(scripted, conv, "something else")
    approval = [{"type": "approval", "tool_call_id": call_id, "approve": True}]
    result = send(scripted, conv, approvals=approval)
    assert types(result) == [
        "approval_response_message",
        "tool_return_message",
        "assistant_message",
    ]
    assert scripted.agents.get_block(ACTOR, agent_id, "human")["value"].endswith("secret")
    # Answering again runs nothing twice and returns the first result.
    again = send(scripted, conv, approvals=approval)
    assert types(again) == ["tool_return_message"]
    assert again.messages[0]["id"] == result.messages[1]["id"]
    assert scripted.agents.get_block(ACTOR, agent_id, "human")["value"].count("secret") == 1


def test_deny_records_the_reason(scripted: Services, model: ScriptedModel) -> None:
    agent_id, conv, call_id = approve_setup(scripted, model)
    approval = [{"type": "approval", "tool_call_id": call_id, "approve": False, "reason": "no"}]
    result = send(scripted, conv, approvals=approval)
    ret = result.messages[1]
    assert ret["status"] == "error"
    assert ret["tool_return"] == "Error: request to call tool denied. User reason: no"
    assert "secret" not in scripted.agents.get_block(ACTOR, agent_id, "human")["value"]


def test_an_answer_to_an_unknown_call_is_refused(scripted: Services, model: ScriptedModel) -> None:
    _, conv, _ = approve_setup(scripted, model)
    with pytest.raises(BadRequest, match="Invalid tool call IDs"):
        send(scripted, conv, approvals=[{"type": "approval", "tool_call_id": "x", "approve": True}])


def test_a_client_tool_round_trip(scripted: Services, model: ScriptedModel) -> None:
    conv = scripted.conversations.create(ACTOR, agent(scripted)).conversation_id
    weather = ClientTool("weather", "The weather", {"type": "object", "properties": {}})
    model.script = [Say(calls=[("weather", "{}")]), Say(text="It is sunny.")]
    first = send(scripted, conv, "weather?", client_tools=(weather,))
    assert first.stop_reason == "requires_approval"
    assert model.requests[0].tools[-1].name == "weather"
    call_id = first.messages[0]["tool_call"]["tool_call_id"]
    result = [
        {"type": "tool", "tool_call_id": call_id, "tool_return": "sunny", "status": "success"}
    ]
    second = send(scripted, conv, approvals=result, client_tools=(weather,))
    assert types(second) == [
        "approval_response_message",
        "tool_return_message",
        "assistant_message",
    ]
    assert second.messages[1]["tool_return"] == "sunny"
    sent = model.requests[-1].messages
    assert [m.role for m in sent[-3:]] == ["user", "assistant", "tool"]


def test_conversation_search_finds_earlier_messages(
    scripted: Services, model: ScriptedModel
) -> None:
    agent_id = agent(scripted)
    first = scripted.conversations.create(ACTOR, agent_id).conversation_id
    model.script = [Say(text="Penguins live in Antarctica.")]
    send(scripted, first, "tell me about penguins")
    second = scripted.conversations.create(ACTOR, agent_id).conversation_id
    query = json.dumps({"query": "penguins"})
    model.script = [Say(calls=[("conversation_search", query)]), Say(text="found")]
    result = send(scripted, second, "what did we say?")
    found = json.loads(result.messages[1]["tool_return"])
    assert found["message"] == "Showing 2 results:"
    assert [r["role"] for r in found["results"]] == ["assistant", "user"]
    model.script = [Say(calls=[("conversation_search", json.dumps({"query": "walrus"}))]), Say()]
    none = send(scripted, second, "and walruses?")
    assert json.loads(none.messages[1]["tool_return"])["message"] == "No results found."


def test_the_loop_reads_the_context_once_per_turn(
    scripted: Services, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between steps the loop reads nothing it already holds: one context read per turn."""
    from projections import message_reads as messages

    conv = scripted.conversations.create(ACTOR, agent(scripted)).conversation_id
    reads: list[int] = []
    real = messages.model_rows

    def counting(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("service.context_window.model_rows", counting)
    model.script = [Say(calls=[insert("human", "a")]), Say(calls=[insert("human", "b")]), Say("ok")]
    result = send(scripted, conv, "three steps")
    assert result.usage["step_count"] == 3
    assert len(reads) == 1


def test_a_huge_tool_result_is_cut_to_the_return_limit(
    scripted: Services, model: ScriptedModel
) -> None:
    big = "z" * 60_000
    blocks = [BlockSpec("human", big)]
    conv = scripted.conversations.create(ACTOR, agent(scripted, blocks=blocks)).conversation_id
    model.script = [Say(calls=[insert("human", "more")]), Say(text="ok")]
    ret = send(scripted, conv, "go").messages[1]
    assert len(ret["tool_return"]) < 50_200
    assert ret["tool_return"].endswith(
        "... [NOTE: function output was truncated since it exceeded the character limit "
        "(60005 > 50000)]"
    )


def test_send_message_is_the_answer_of_a_memgpt_style_agent(
    scripted: Services, model: ScriptedModel
) -> None:
    agent_id = agent(scripted, include_base_tools=False, tools=["send_message"])
    conv = scripted.conversations.create(ACTOR, agent_id).conversation_id
    model.script = [Say(calls=[("send_message", json.dumps({"message": "Hi Ann!"}))])]
    result = send(scripted, conv, "hello")
    assert (result.stop_reason, result.usage["step_count"]) == ("end_turn", 1)
    assert [(m["message_type"], m.get("content")) for m in result.messages] == [
        ("assistant_message", "Hi Ann!")
    ]
    assert [t.name for t in model.requests[0].tools] == ["send_message"]


def test_a_cancel_between_steps_keeps_the_steps_already_saved(
    scripted: Services, model: ScriptedModel
) -> None:
    conv = scripted.conversations.create(ACTOR, agent(scripted)).conversation_id
    model.script = [Say(calls=[insert("human", "kept")]), Say(text="never said")]
    model.release, model.hold_from = asyncio.Event(), 1  # the second model call waits

    async def run() -> TurnResult:
        request = TurnRequest(messages=[{"role": "user", "content": "go"}], streaming=False)
        turn = await scripted.turns.begin(ACTOR, conv, request)
        while len(model.requests) < 2:  # step 1 is saved, step 2 is in flight
            await asyncio.sleep(0.01)
        await scripted.runs.cancel(ACTOR, conv)
        assert model.release is not None
        model.release.set()
        return await scripted.turns.result_of(turn)

    result = asyncio.run(run())
    assert result.stop_reason == "cancelled"
    listed = [m["message_type"] for m in listing(scripted, conv)]
    assert listed == ["system_message", "user_message", "tool_call_message", "tool_return_message"]
    assert scripted.agents.get_block(ACTOR, agent_id_of(scripted, conv), "human")["value"].endswith(
        "kept"
    )
    run_id = listing(scripted, conv)[2]["run_id"]
    row = scripted.runs.get(ACTOR, run_id)
    assert (row.status, row.stop_reason) == ("cancelled", "cancelled")
    events = scripted.ctx.log.history(ids.to_uuid(run_id), 0, 100)
    assert [e.type for e in events] == [
        "convlog.Run.Started",
        "convlog.Run.StepFinished",
        "convlog.Run.Cancelled",
    ]


def agent_id_of(services: Services, conversation_id: str) -> str:
    return services.conversations.get(ACTOR, conversation_id).agent_id


def test_reasoning_is_listed_before_the_answer(scripted: Services, model: ScriptedModel) -> None:
    conv = scripted.conversations.create(ACTOR, agent(scripted)).conversation_id
    model.script = [Say(text="4", reasoning="2 and 2"), Say(text="5", reasoning_tokens=30)]
    shown = send(scripted, conv, "2+2?")
    assert [(m["message_type"], m.get("reasoning")) for m in shown.messages] == [
        ("reasoning_message", "2 and 2"),
        ("assistant_message", None),
    ]
    assert shown.messages[0]["source"] == "reasoner_model"
    hidden = send(scripted, conv, "2+3?")
    assert [m["message_type"] for m in hidden.messages] == [
        "hidden_reasoning_message",
        "assistant_message",
    ]
    assert (hidden.messages[0]["state"], hidden.usage["reasoning_tokens"]) == ("omitted", 30)
    listed = [m["message_type"] for m in listing(scripted, conv)]
    assert listed[-2:] == ["hidden_reasoning_message", "assistant_message"]
    # Reasoning is not sent back to the model.
    assert [m.role for m in model.requests[-1].messages] == ["system", "user", "assistant", "user"]


def test_the_deprecated_single_decision_answers_every_pending_call(
    scripted: Services, model: ScriptedModel
) -> None:
    agent_id, conv, _ = approve_setup(scripted, model)
    request_id = listing(scripted, conv)[-1]["id"]
    decision = [{"type": "approval", "tool_call_id": request_id, "approve": True}]
    result = send(scripted, conv, approvals=decision)
    assert types(result)[:2] == ["approval_response_message", "tool_return_message"]
    assert scripted.agents.get_block(ACTOR, agent_id, "human")["value"].endswith("secret")


def test_a_memory_edit_recompiles_only_its_own_conversation(
    scripted: Services, model: ScriptedModel
) -> None:
    agent_id = agent(scripted)
    other = scripted.conversations.create(ACTOR, agent_id).conversation_id
    conv = scripted.conversations.create(ACTOR, agent_id).conversation_id
    system_before = listing(scripted, conv)[0]
    model.script = [Say(calls=[insert("human", "Lives in Oslo")]), Say(text="ok")]
    send(scripted, conv, "I live in Oslo")
    system_after = listing(scripted, conv)[0]
    assert system_after["id"] == system_before["id"]  # in place, same id
    assert "Lives in Oslo" in system_after["content"]
    assert "Lives in Oslo" not in listing(scripted, other)[0]["content"]
    events = scripted.conversations.events(ACTOR, conv, after=0, limit=100)
    edited = scripted.ctx.log.history(ids.to_uuid(agent_id), 0, 100)
    assert [e.type for e in edited][-1] == "convlog.Agent.MemoryEdited"
    cause = edited[-1].payload
    assert cause is not None
    assert (cause["before"], cause["after"]) == ("Name: Ann", "Name: Ann\nLives in Oslo")
    assert cause["conversation_id"] == conv.removeprefix("conv-")
    assert cause["tool_name"] == "memory_insert" and cause["tool_call_id"].startswith("call-")
    assert "convlog.Conversation.SystemMessageRecompiled" in [e.type for e in events]


def test_an_isolated_block_is_edited_in_its_conversation_only(
    scripted: Services, model: ScriptedModel
) -> None:
    agent_id = agent(scripted)
    conv = scripted.conversations.create(
        ACTOR, agent_id, isolated_block_labels=["human"]
    ).conversation_id
    model.script = [Say(calls=[insert("human", "private")]), Say(text="ok")]
    send(scripted, conv, "keep this here")
    assert scripted.agents.get_block(ACTOR, agent_id, "human")["value"] == "Name: Ann"
    assert "private" in listing(scripted, conv)[0]["content"]
    types_ = [e.type for e in scripted.conversations.events(ACTOR, conv, after=0, limit=100)]
    assert "convlog.Conversation.IsolatedBlockEdited" in types_


def test_the_listing_filters_by_message_type(scripted: Services, model: ScriptedModel) -> None:
    conv = scripted.conversations.create(ACTOR, agent(scripted)).conversation_id
    model.script = [Say(calls=[insert("human", "x")]), Say(text="done")]
    send(scripted, conv, "go")
    wanted = ["tool_call_message", "tool_return_message"]
    items = scripted.conversations.messages(
        ACTOR, conv, before=None, after=None, limit=None, ascending=True, types=wanted
    )
    assert [json.loads(item)["message_type"] for item in items] == wanted


def test_override_system_reaches_the_model_for_that_request_only(
    scripted: Services, model: ScriptedModel
) -> None:
    conv = scripted.conversations.create(ACTOR, agent(scripted)).conversation_id
    stored = listing(scripted, conv)[0]["content"]
    send(scripted, conv, "hi", override_system="You are a pirate.")
    assert model.requests[-1].messages[0] == ChatMessage("system", "You are a pirate.")
    send(scripted, conv, "again")
    assert model.requests[-1].messages[0].content == stored
    assert listing(scripted, conv)[0]["content"] == stored
