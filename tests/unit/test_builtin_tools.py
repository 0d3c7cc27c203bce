"""The built-in offline model's tool rule, and a whole tool turn with it and no keys."""

from __future__ import annotations

import asyncio
import json

from adapters.builtin_model import BuiltinModel
from runtime.bootstrap import build
from runtime.settings import Settings
from service.agents import AgentSpec, BlockSpec
from service.model import AnswerBuilder, ChatMessage, ModelRequest, ToolSpec
from service.turns import TurnRequest
from tests.actors import DEFAULT_ACTOR

TOOLS = (
    ToolSpec("memory_insert", "", {}),
    ToolSpec("conversation_search", "", {}),
    ToolSpec("lookup", "", {}),
)
SYSTEM = ChatMessage("system", "<memory_blocks>\n<persona>\n<description>\nx\n</description>")


def answer(messages: list[ChatMessage], tools: tuple[ToolSpec, ...] = TOOLS) -> AnswerBuilder:
    async def run() -> AnswerBuilder:
        builder = AnswerBuilder()
        async for item in BuiltinModel().stream(
            ModelRequest("convlog/builtin", messages, {}, tools)
        ):
            builder.add(item)
        return builder

    return asyncio.run(run())


def test_remember_calls_memory_insert_on_a_block_it_sees() -> None:
    got = answer([SYSTEM, ChatMessage("user", "Remember that I like tea")]).answer()
    [call] = got.tool_calls
    assert call.name == "memory_insert"
    assert json.loads(call.arguments) == {"label": "persona", "new_string": "I like tea"}
    assert got.finish_reason == "tool_calls"


def test_search_and_call_rules() -> None:
    [search] = answer([SYSTEM, ChatMessage("user", "search for penguins")]).answer().tool_calls
    assert (search.name, json.loads(search.arguments)) == (
        "conversation_search",
        {"query": "penguins"},
    )
    [call] = answer([SYSTEM, ChatMessage("user", 'call lookup {"q": 1}')]).answer().tool_calls
    assert (call.name, call.arguments) == ("lookup", '{"q": 1}')


def test_no_tools_offered_means_no_call() -> None:
    got = answer([SYSTEM, ChatMessage("user", "remember this")], tools=()).answer()
    assert got.tool_calls == [] and got.text.startswith("You said:")


def test_after_a_tool_result_it_says_what_came_back() -> None:
    from service.model import ToolCall

    call = ToolCall("c1", "memory_insert", "{}")
    messages = [
        SYSTEM,
        ChatMessage("user", "remember x"),
        ChatMessage("assistant", "", (call,)),
        ChatMessage("tool", "saved", tool_call_id="c1"),
    ]
    got = answer(messages).answer()
    assert got.tool_calls == [] and got.text == 'I called memory_insert. It returned: "saved".'


def test_the_embedded_default_shows_a_tool_turn_with_no_keys() -> None:
    services = build(Settings(database_url="memory://"))
    try:
        agent = services.agents.create(
            DEFAULT_ACTOR, AgentSpec(name="d", memory_blocks=[BlockSpec("human", "Ann")])
        )
        conversation = services.conversations.create(DEFAULT_ACTOR, agent.id).conversation_id

        async def send() -> list[str]:
            request = TurnRequest(
                messages=[{"role": "user", "content": "remember I like tea"}], streaming=False
            )
            turn = await services.turns.begin(DEFAULT_ACTOR, conversation, request)
            result = await services.turns.result_of(turn)
            return [m["message_type"] for m in result.messages]

        kinds = asyncio.run(send())
        assert kinds == ["tool_call_message", "tool_return_message", "assistant_message"]
        human = services.agents.get_block(DEFAULT_ACTOR, agent.id, "human")
        assert human["value"] == "Ann\nI like tea"
    finally:
        services.close()


def test_a_packed_result_is_quoted_by_its_message() -> None:
    from service.model import ToolCall

    call = ToolCall("c1", "memory_insert", "{}")
    packed = json.dumps({"status": "OK", "message": "Ann\nlikes tea", "time": "t"}, indent=2)
    messages = [
        SYSTEM,
        ChatMessage("assistant", "", (call,)),
        ChatMessage("tool", packed, tool_call_id="c1"),
    ]
    assert answer(messages).answer().text == 'I called memory_insert. It returned: "Ann likes tea".'
