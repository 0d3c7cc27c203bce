"""The built-in offline model: deterministic, and a function of the messages alone."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from adapters.builtin_model import BuiltinModel, reply_to, split_words
from service.model import ChatMessage, ModelRequest, StreamItem, TextDelta, Usage


def run(request: ModelRequest, model: BuiltinModel | None = None) -> list[StreamItem]:
    async def collect() -> list[StreamItem]:
        return [item async for item in (model or BuiltinModel()).stream(request)]

    return asyncio.run(collect())


def text_of(items: list[StreamItem]) -> str:
    return "".join(item.text for item in items if isinstance(item, TextDelta))


def user(text: str) -> ChatMessage:
    return ChatMessage("user", text)


def assistant(text: str) -> ChatMessage:
    return ChatMessage("assistant", text)


CONVERSATION = [
    ChatMessage("system", "You are a helpful agent."),
    user("hello there"),
    assistant("hi!"),
    user("what is an event log?"),
    assistant("an append-only record"),
    user("and a projection?"),
]


def test_answers_the_last_message_remembers_the_first_and_counts_turns() -> None:
    items = run(ModelRequest("convlog/builtin", CONVERSATION))
    assert text_of(items) == (
        'You said: "and a projection?". You began this conversation with "hello there". '
        "(This is convlog's built-in offline model; 3 messages from you in this conversation "
        "so far.)"
    )


def test_a_first_message_reads_naturally() -> None:
    text = text_of(run(ModelRequest("convlog/builtin", [user("hi")])))
    assert text == (
        'You said: "hi". (This is convlog\'s built-in offline model; '
        "this is your first message in this conversation.)"
    )


def test_without_any_user_message_it_greets() -> None:
    text = text_of(run(ModelRequest("convlog/builtin", [ChatMessage("system", "persona")])))
    assert text.startswith("Hello! I'm convlog's built-in offline model.")


def test_streams_word_by_word_then_exactly_one_usage_at_the_end() -> None:
    items = run(ModelRequest("convlog/builtin", CONVERSATION))
    deltas, last = items[:-1], items[-1]
    assert all(isinstance(item, TextDelta) for item in deltas)
    assert len(deltas) == len(reply_to(CONVERSATION).split())
    words = [delta.text.strip() for delta in deltas if isinstance(delta, TextDelta)]
    assert all(word and " " not in word for word in words)
    assert isinstance(last, Usage)
    assert last.completion_tokens > 0 and last.prompt_tokens > 0


def test_same_messages_same_answer_whatever_the_handle_settings_or_instance() -> None:
    first = run(ModelRequest("convlog/builtin", CONVERSATION))
    again = run(ModelRequest("convlog/builtin", list(CONVERSATION)), BuiltinModel())
    other = run(ModelRequest("openai/gpt-4o", CONVERSATION, {"temperature": 1.5}))
    assert first == again == other


def test_the_answer_changes_with_the_context() -> None:
    base = text_of(run(ModelRequest("convlog/builtin", CONVERSATION)))
    shorter = text_of(run(ModelRequest("convlog/builtin", CONVERSATION[:4])))
    assert base != shorter
    assert '"what is an event log?"' in shorter and "2 messages from you" in shorter


def test_long_messages_are_quoted_on_one_line_and_shortened() -> None:
    text = text_of(run(ModelRequest("convlog/builtin", [user("line one\nline two " + "x" * 500)])))
    assert "\n" not in text
    assert '"line one line two x' in text and "…" in text
    assert len(text) < 400


messages = st.lists(
    st.builds(
        ChatMessage,
        role=st.sampled_from(["system", "user", "assistant"]),
        content=st.text(max_size=40),
    ),
    max_size=6,
)


@given(messages)
def test_deltas_always_add_up_to_the_reply(context: list[ChatMessage]) -> None:
    items = run(ModelRequest("convlog/builtin", context))
    assert text_of(items) == reply_to(context)
    assert sum(isinstance(item, Usage) for item in items) == 1
    assert isinstance(items[-1], Usage)
    assert run(ModelRequest("convlog/builtin", list(context))) == items


@given(st.text())
def test_split_words_keeps_every_character(text: str) -> None:
    assert "".join(split_words(text)) == text
