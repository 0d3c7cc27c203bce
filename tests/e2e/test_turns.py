"""Turns end to end: sending messages (SSE and JSON), runs, one active run per conversation,
cancel, background runs and resumption, against a real server subprocess whose ``openai/…``
model is the fake OpenAI-compatible server of ``tests/fake_openai.py`` (real HTTP both ways).

The fake answers ``echo: <last user message> [context=<n messages>]`` and records every prompt,
so a test can prove what context a turn was given. Model delays are the only sleeps: they make
a turn last long enough to race, cancel or resume it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from letta_client import (
    APIStatusError,
    BadRequestError,
    ConflictError,
    Letta,
    NotFoundError,
    UnprocessableEntityError,
)
from letta_client.types.agents import AssistantMessage
from letta_client.types.agents.letta_streaming_response import (
    LettaStopReason,
    LettaUsageStatistics,
)

from tests.e2e.conftest import sdk, start_server, text_content
from tests.e2e.turns_support import (
    BUSY,
    DONE,
    NO_ACTIVE_RUNS,
    NOT_BACKGROUND,
    UUID,
    Frame,
    busy_body,
    cancel,
    create_agent,
    create_conversation,
    env_for,
    events,
    get_run,
    iter_frames,
    list_runs,
    messages,
    open_stream,
    prompt_texts,
    say,
    send,
)
from tests.fake_openai import FakeOpenAI, count_words

pytestmark = pytest.mark.e2e

MODEL_TIMEOUT = 1.5  # CONVLOG_MODEL_TIMEOUT: a hanging provider fails the turn after this
LETTA_MESSAGE_KEYS = {
    "id",
    "date",
    "name",
    "message_type",
    "otid",
    "sender_id",
    "step_id",
    "is_err",
    "seq_id",
    "run_id",
}
USAGE_KEYS = {
    "message_type",
    "completion_tokens",
    "prompt_tokens",
    "total_tokens",
    "step_count",
    "run_ids",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "context_tokens",
}
RUN_KEYS = {
    "id",
    "status",
    "created_at",
    "completed_at",
    "agent_id",
    "conversation_id",
    "base_template_id",
    "background",
    "metadata",
    "request_config",
    "stop_reason",
    "callback_url",
    "callback_sent_at",
    "callback_status_code",
    "callback_error",
    "ttft_ns",
    "total_duration_ns",
}
REQUEST_CONFIG = {
    "use_assistant_message": True,
    "assistant_message_tool_name": "send_message",
    "assistant_message_tool_kwarg": "message",
    "include_return_message_types": None,
}
DATE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"
T = TypeVar("T")


# -- servers and fixtures ------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    url: str
    data_dir: Path


@pytest.fixture(scope="module")
def turns_server(
    fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A SQLite-backed server whose ``openai/…`` handles reach the fake model."""
    root = tmp_path_factory.mktemp("convlog-turns")
    env = env_for(
        fake_openai_server.base_url,
        CONVLOG_DATA_DIR=str(root / "data"),
        CONVLOG_MODEL_TIMEOUT=str(MODEL_TIMEOUT),
    )
    with start_server(env, root) as url:
        yield Server(url, root / "data")


@pytest.fixture(scope="module")
def ping_url(
    fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A server that sends a keepalive ping after 0.1 s of silence."""
    root = tmp_path_factory.mktemp("convlog-pings")
    env = env_for(
        fake_openai_server.base_url,
        CONVLOG_DATA_DIR=str(root / "data"),
        CONVLOG_KEEPALIVE_INTERVAL="0.1",
    )
    with start_server(env, root) as url:
        yield url


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> FakeOpenAI:
    return fake_openai


@pytest.fixture
def http(turns_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=turns_server.url, timeout=30.0) as c:
        yield c


@pytest.fixture
def client(turns_server: Server) -> Iterator[Letta]:
    with sdk(turns_server.url) as c:
        yield c


@pytest.fixture
def agent(http: httpx.Client) -> str:
    return create_agent(http)


@pytest.fixture
def conversation(http: httpx.Client, agent: str) -> str:
    return create_conversation(http, agent)


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def concurrently(*calls: Callable[[], T]) -> list[T]:
    """Run the calls at the same moment (threads released by one barrier); their results."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait(timeout=10)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(run, c) for c in calls]]


def assert_letta_frames(frames: list[Frame]) -> None:
    """Every frame is ``data: <compact one-line JSON>\\n\\n``, or an ``event: error`` frame."""
    for frame in frames:
        assert "\n" not in frame.data, frame.raw
        if frame.event is None:
            assert frame.raw == f"data: {frame.data}\n\n", frame.raw
        else:
            assert frame.event == "error", frame.raw
            assert frame.raw == f"event: error\ndata: {frame.data}\n\n", frame.raw
        if not frame.done:
            compact = json.dumps(frame.payload, separators=(",", ":"), ensure_ascii=False)
            assert frame.data == compact, frame.raw


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- 1. sending and streaming --------------------------------------------------------------------


def test_stream_is_the_answer_then_stop_reason_usage_and_done(
    http: httpx.Client, fake: FakeOpenAI, agent: str, conversation: str
) -> None:
    sent = send(http, conversation, user("hello wire"))

    assert sent.status == 200
    assert sent.headers["content-type"].startswith("text/event-stream")
    assert sent.kinds == ["assistant_message", "stop_reason", "usage_statistics", DONE]
    assert_letta_frames(sent.frames)
    assert sent.frames[-1].raw == "data: [DONE]\n\n"

    (answer,) = sent.of("assistant_message")
    assert set(answer) == LETTA_MESSAGE_KEYS | {"content"}
    assert answer["content"] == "echo: hello wire [context=2]"
    assert re.fullmatch(f"message-{UUID}", answer["id"])
    assert re.fullmatch(f"run-{UUID}", answer["run_id"])
    assert re.fullmatch(f"step-{UUID}", answer["step_id"])
    assert re.fullmatch(UUID, answer["otid"])
    assert re.fullmatch(DATE, answer["date"])
    assert answer["seq_id"] is None and answer["is_err"] is None
    assert sent.of("stop_reason") == [{"message_type": "stop_reason", "stop_reason": "end_turn"}]

    # The model was asked once, with the conversation's system message and the input.
    (request,) = fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.authorization == "Bearer test"
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["stream"] is True
    assert [m["role"] for m in request.body["messages"]] == ["system", "user"]
    assert request.body["messages"][1]["content"] == "hello wire"

    (usage,) = sent.of("usage_statistics")
    assert set(usage) == USAGE_KEYS
    assert usage["step_count"] == 1
    assert usage["prompt_tokens"] == count_words(request.body)  # what the provider reported
    assert usage["completion_tokens"] == len(answer["content"].split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    listed = messages(http, conversation)
    assert [m["message_type"] for m in listed] == [
        "system_message",
        "user_message",
        "assistant_message",
    ]
    assert listed[0]["content"] == request.body["messages"][0]["content"]
    assert listed[1]["content"] == "hello wire"
    assert listed[1]["run_id"] == answer["run_id"]
    assert (listed[2]["id"], listed[2]["content"]) == (answer["id"], answer["content"])

    run = get_run(http, answer["run_id"])
    assert (run["status"], run["stop_reason"]) == ("completed", "end_turn")
    assert (run["conversation_id"], run["agent_id"]) == (conversation, agent)


def test_sdk_stream(client: Letta, conversation: str) -> None:
    items = list(
        client.conversations.messages.create(
            conversation, messages=[{"role": "user", "content": "through the sdk"}]
        )
    )
    assert [i.message_type for i in items] == [
        "assistant_message",
        "stop_reason",
        "usage_statistics",
    ]
    assert isinstance(items[0], AssistantMessage)
    assert isinstance(items[1], LettaStopReason)
    assert isinstance(items[2], LettaUsageStatistics)
    assert items[0].content == "echo: through the sdk [context=2]"
    assert items[1].stop_reason == "end_turn"
    assert items[2].step_count == 1
    assert items[0].run_id is not None
    run = client.runs.retrieve(items[0].run_id)
    assert (run.status, run.stop_reason, run.conversation_id) == (
        "completed",
        "end_turn",
        conversation,
    )


def test_streaming_false_returns_a_letta_response(http: httpx.Client, conversation: str) -> None:
    sent = send(http, conversation, {"input": "json please", "streaming": False})

    assert sent.status == 200
    assert sent.headers["content-type"].startswith("application/json")
    body = sent.body
    assert {"messages", "stop_reason", "usage"} <= set(body)
    (answer,) = body["messages"]  # the input is not echoed
    assert answer["message_type"] == "assistant_message"
    assert answer["content"] == "echo: json please [context=2]"
    assert body["stop_reason"] == {"message_type": "stop_reason", "stop_reason": "end_turn"}
    assert set(body["usage"]) == USAGE_KEYS
    assert body["usage"]["step_count"] == 1

    # decisions §10: a non-streaming send records a run with its conversation, run to the end.
    run = get_run(http, answer["run_id"])
    assert (run["status"], run["stop_reason"]) == ("completed", "end_turn")
    assert run["conversation_id"] == conversation
    assert [m["content"] for m in messages(http, conversation)[1:]] == [
        "json please",
        "echo: json please [context=2]",
    ]


def test_stream_tokens_sends_deltas_of_one_message_while_the_model_answers(
    http: httpx.Client, fake: FakeOpenAI, conversation: str
) -> None:
    fake.token_delay = 0.15
    full = "echo: one two three four [context=2]"

    sent = send(http, conversation, {"input": "one two three four", "stream_tokens": True})

    deltas = sent.of("assistant_message")
    assert len(deltas) >= 3
    assert sent.kinds == ["assistant_message"] * len(deltas) + [
        "stop_reason",
        "usage_statistics",
        DONE,
    ]
    assert_letta_frames(sent.frames)
    assert len({d["id"] for d in deltas}) == 1
    assert len({d["otid"] for d in deltas}) == 1
    assert "".join(d["content"] for d in deltas) == full
    # The first delta reached the client before the model had sent its last token.
    (request,) = fake.requests
    assert sent.frames[0].at < request.token_sent_at[-1]

    stored = messages(http, conversation)[-1]
    assert (stored["id"], stored["content"]) == (deltas[0]["id"], full)

    # Without stream_tokens the one whole message can only come after the model finished.
    later = send(http, conversation, {"input": "whole", "stream_tokens": False})
    assert later.kinds == ["assistant_message", "stop_reason", "usage_statistics", DONE]
    assert later.frames[0].at >= fake.requests[-1].token_sent_at[-1]


def test_pings_keep_a_slow_stream_alive(fake: FakeOpenAI, ping_url: str) -> None:
    fake.first_token_delay = 0.6
    with httpx.Client(base_url=ping_url, timeout=30.0) as http:
        conversation = create_conversation(http, create_agent(http))

        sent = send(http, conversation, {"input": "slow", "include_pings": True})
        pings = sent.of("ping")
        assert len(pings) >= 2, sent.kinds
        assert [k for k in sent.kinds if k != "ping"] == [
            "assistant_message",
            "stop_reason",
            "usage_statistics",
            DONE,
        ]
        assert sent.kinds.index("assistant_message") > sent.kinds.index("ping")
        assert_letta_frames(sent.frames)
        run_id = sent.of("assistant_message")[0]["run_id"]
        for ping in pings:
            assert set(ping) == LETTA_MESSAGE_KEYS
            assert re.fullmatch(f"ping-{UUID}", ping["id"])
            assert ping["run_id"] == run_id
            assert ping["seq_id"] is None  # nothing was sent before them
            assert re.fullmatch(DATE, ping["date"])

        quiet = send(http, conversation, {"input": "slow again", "include_pings": False})
        assert quiet.kinds == ["assistant_message", "stop_reason", "usage_statistics", DONE]

        # Between the events of a background run, pings carry the last seq_id sent.
        fake.first_token_delay = 0.0
        fake.token_delay = 0.3
        numbered = send(
            http,
            conversation,
            {"input": "bg pings", "background": True, "stream_tokens": True},
        )
        last_seq = None
        for frame in numbered.frames:
            if frame.kind == "assistant_message":
                last_seq = frame.payload["seq_id"]
            elif frame.kind == "ping":
                assert frame.payload["seq_id"] == last_seq
        assert numbered.kinds.count("ping") >= 2
        assert last_seq is not None and last_seq >= 3
        fake.token_delay = 0.0
        fake.first_token_delay = 0.6

    with sdk(ping_url) as client:
        items = list(client.conversations.messages.create(conversation, input="sdk pings"))
        kinds = [i.message_type for i in items]
        assert "ping" in kinds
        assert [k for k in kinds if k != "ping"] == [
            "assistant_message",
            "stop_reason",
            "usage_statistics",
        ]


def test_resume_without_a_body_sends_no_pings(fake: FakeOpenAI, ping_url: str) -> None:
    fake.first_token_delay = 0.3
    fake.token_delay = 0.3
    with httpx.Client(base_url=ping_url, timeout=30.0) as http:
        conversation = create_conversation(http, create_agent(http))
        body = {"input": "bg", "background": True, "stream_tokens": True, "include_pings": False}
        path = f"/v1/conversations/{conversation}/messages"
        with open_stream(http, path, body) as (_, frames):
            next(frames)
            with http.stream("POST", f"/v1/conversations/{conversation}/stream") as resumed:
                assert resumed.status_code == 200
                kinds = [f.kind for f in iter_frames(resumed)]
            list(frames)
    assert kinds[0] == "assistant_message"  # from the start: seq 1 again
    assert "ping" not in kinds


def test_include_return_message_types_filters_messages_only(
    http: httpx.Client, fake: FakeOpenAI, conversation: str
) -> None:
    only_reasoning = {"include_return_message_types": ["reasoning_message"]}
    sent = send(http, conversation, {"input": "hidden", **only_reasoning})
    assert sent.kinds == ["stop_reason", "usage_statistics", DONE]
    (run,) = list_runs(http, conversation_id=conversation)
    assert run["request_config"] == {
        **REQUEST_CONFIG,
        "include_return_message_types": ["reasoning_message"],
    }
    # Filtered from the answer, not from the conversation.
    assert messages(http, conversation)[-1]["content"] == "echo: hidden [context=2]"

    fake.token_delay = 0.02
    tokens = send(
        http, conversation, {"input": "no deltas", "stream_tokens": True, **only_reasoning}
    )
    assert tokens.kinds == ["stop_reason", "usage_statistics", DONE]

    kept = send(
        http,
        conversation,
        {"input": "shown", "include_return_message_types": ["assistant_message"]},
    )
    assert kept.kinds == ["assistant_message", "stop_reason", "usage_statistics", DONE]

    body = send(
        http,
        conversation,
        {"input": "json", "streaming": False, "include_return_message_types": ["user_message"]},
    ).body
    assert body["messages"] == []
    assert body["stop_reason"]["stop_reason"] == "end_turn"


def test_input_is_sugar_for_one_user_message(
    http: httpx.Client, fake: FakeOpenAI, conversation: str
) -> None:
    sent = send(http, conversation, {"input": "sugar"})
    assert sent.answer == "echo: sugar [context=2]"
    assert fake.requests[-1].body["messages"][-1] == {"role": "user", "content": "sugar"}

    parts = send(http, conversation, {"input": [{"type": "text", "text": "in parts"}]})
    assert parts.answer == "echo: in parts [context=4]"

    listed = messages(http, conversation)
    assert [m["message_type"] for m in listed[1:]] == ["user_message", "assistant_message"] * 2
    assert listed[1]["content"] == "sugar"


def test_model_comes_from_override_then_conversation_then_agent(
    http: httpx.Client, fake: FakeOpenAI, agent: str, conversation: str
) -> None:
    def asked() -> dict[str, Any]:
        return {k: v for k, v in fake.requests[-1].body.items() if k != "messages"}

    say(http, conversation, "agent model")
    assert asked()["model"] == "gpt-4o-mini"
    say(http, conversation, "override", override_model="openai/gpt-fake")
    assert asked()["model"] == "gpt-fake"

    created = http.post(
        "/v1/conversations/",
        params={"agent_id": agent},
        json={
            "model": "openai/gpt-fake-mini",
            "model_settings": {"provider_type": "openai", "temperature": 0.3},
        },
    )
    assert created.status_code == 200, created.text
    tuned = created.json()["id"]
    say(http, tuned, "conversation model")
    assert (asked()["model"], asked()["temperature"]) == ("gpt-fake-mini", 0.3)
    say(http, tuned, "override wins", override_model="openai/gpt-4o")
    assert asked()["model"] == "gpt-4o"
    run = list_runs(http, conversation_id=tuned)[0]
    assert run["status"] == "completed"


def test_several_input_messages_keep_their_order_and_otid(
    http: httpx.Client, fake: FakeOpenAI, conversation: str
) -> None:
    otid = str(uuid.uuid4())
    sent = send(
        http,
        conversation,
        {
            "messages": [
                {"role": "user", "content": "first of two", "otid": otid},
                {"role": "user", "content": "second of two"},
            ]
        },
    )
    assert sent.answer == "echo: second of two [context=3]"
    assert prompt_texts(fake.requests[-1].body)[1:] == ["first of two", "second of two"]
    listed = messages(http, conversation)[1:]
    assert [(m["message_type"], m["content"]) for m in listed] == [
        ("user_message", "first of two"),
        ("user_message", "second of two"),
        ("assistant_message", sent.answer),
    ]
    assert listed[0]["otid"] == otid


def test_stream_escapes_what_looks_like_sse_and_keeps_unicode(
    http: httpx.Client, client: Letta, fake: FakeOpenAI, conversation: str
) -> None:
    tricky = "héllo ✓ 世界\n\ndata: [DONE]\n\nevent: error\ndata: {}"
    answer = f"echo: {tricky} [context=2]"
    fake.token_delay = 0.01
    sent = send(http, conversation, {"input": tricky, "stream_tokens": True})
    assert_letta_frames(sent.frames)
    assert sent.kinds[-3:] == ["stop_reason", "usage_statistics", DONE]
    assert sent.answer == answer
    assert "世界" in "".join(f.raw for f in sent.frames)  # UTF-8 on the wire, not \u escapes
    items = list(client.conversations.messages.create(conversation, input=tricky))
    assert text_content(items[0]) == f"echo: {tricky} [context=4]"
    assert messages(http, conversation)[1]["content"] == tricky


def test_bad_sends_are_rejected_before_anything_runs(
    http: httpx.Client, client: Letta, fake: FakeOpenAI, conversation: str
) -> None:
    path = f"/v1/conversations/{conversation}/messages"

    empty = http.post(path, json={"messages": []})
    assert (empty.status_code, empty.json()) == (422, {"detail": "Messages must not be empty"})

    for body in (
        {"input": "a", "messages": [{"role": "user", "content": "b"}]},
        {},
    ):
        invalid = http.post(path, json=body)
        assert invalid.status_code == 422, invalid.text
        assert set(invalid.json()) == {"trace_id", "detail"}
        assert isinstance(invalid.json()["detail"], str)

    ghost = f"conv-{uuid.uuid4()}"
    missing = http.post(f"/v1/conversations/{ghost}/messages", json={"input": "hello?"})
    assert missing.status_code == 404, missing.text
    assert missing.json()["detail"].startswith("Conversation not found")

    unknown_model = http.post(path, json={"input": "x", "override_model": "nope/x"})
    assert unknown_model.status_code == 404, unknown_model.text
    assert unknown_model.json()["detail"].startswith("NOT_FOUND: Handle nope/x not found")

    with pytest.raises(UnprocessableEntityError, match="Messages must not be empty"):
        client.conversations.messages.create(conversation, messages=[])
    with pytest.raises(NotFoundError):
        client.conversations.messages.create(ghost, input="hello?")
    with pytest.raises(NotFoundError, match="nope/x"):
        client.conversations.messages.create(conversation, input="x", override_model="nope/x")

    # Nothing ran, nothing was recorded, nothing is held.
    assert fake.requests == []
    assert list_runs(http, conversation_id=conversation) == []
    assert [m["message_type"] for m in messages(http, conversation)] == ["system_message"]
    assert say(http, conversation, "fine now").answer == "echo: fine now [context=2]"


# -- 2. listing after turns ----------------------------------------------------------------------


def walk(http: httpx.Client, conversation: str, order: str, direction: str) -> list[list[str]]:
    """Pages of two ids, following ``after`` (from the start) or ``before`` (from the end)."""
    pages: list[list[str]] = []
    params: dict[str, Any] = {"order": order, "limit": 2}
    if direction == "before":
        ids = [m["id"] for m in messages(http, conversation, order=order)]
        params["before"] = ids[-1]
        pages.append([ids[-1]])
    while True:
        page = [m["id"] for m in messages(http, conversation, **params)]
        if not page:
            return pages
        assert len(page) <= 2
        pages.append(page)
        assert len(pages) < 20, pages
        if direction == "after":
            params["after"] = page[-1]
        else:
            params["before"] = page[0]


def test_listing_after_turns_walks_every_message_once(
    http: httpx.Client, client: Letta, conversation: str
) -> None:
    for text in ("first", "second", "third"):
        say(http, conversation, text)
    ascending = messages(http, conversation, order="asc")
    ids = [m["id"] for m in ascending]
    assert [m["content"] for m in ascending[1:]] == [
        "first",
        "echo: first [context=2]",
        "second",
        "echo: second [context=4]",
        "third",
        "echo: third [context=6]",
    ]
    assert len(set(ids)) == 7
    assert [m["id"] for m in messages(http, conversation, order="desc")] == ids[::-1]

    # SDK auto-pagination, both orders.
    assert [
        m.id for m in client.conversations.messages.list(conversation, limit=2, order="asc")
    ] == ids
    assert [
        m.id for m in client.conversations.messages.list(conversation, limit=2, order="desc")
    ] == ids[::-1]

    # Raw cursors: `after` pages forward in the listing's order, `before` backward.
    for order, expected in (("asc", ids), ("desc", ids[::-1])):
        forward = walk(http, conversation, order, "after")
        assert [i for page in forward for i in page] == expected
        backward = walk(http, conversation, order, "before")
        # Each page keeps the listing's order; pages come nearest-first.
        assert [i for page in reversed(backward) for i in page] == expected

    # The SDK walking backwards from the last message reaches the first one exactly once.
    behind = [
        m.id
        for m in client.conversations.messages.list(
            conversation, limit=2, order="asc", before=ids[-1]
        )
    ]
    assert sorted(behind) == sorted(ids[:-1])
    assert len(behind) == len(ids) - 1


# -- 3. conversations are isolated ---------------------------------------------------------------


def test_two_conversations_of_one_agent_never_see_each_other(
    http: httpx.Client, fake: FakeOpenAI, agent: str
) -> None:
    a = create_conversation(http, agent)
    b = create_conversation(http, agent)

    assert say(http, a, "alpha-one").answer == "echo: alpha-one [context=2]"
    assert say(http, a, "alpha-two").answer == "echo: alpha-two [context=4]"
    assert say(http, b, "bravo-one").answer == "echo: bravo-one [context=2]"
    prompt_b = prompt_texts(fake.requests[-1].body)
    assert prompt_b[1:] == ["bravo-one"]
    assert not any("alpha" in text for text in prompt_b)

    assert say(http, a, "alpha-three").answer == "echo: alpha-three [context=6]"
    prompt_a = prompt_texts(fake.requests[-1].body)
    assert prompt_a[1:] == [
        "alpha-one",
        "echo: alpha-one [context=2]",
        "alpha-two",
        "echo: alpha-two [context=4]",
        "alpha-three",
    ]
    assert not any("bravo" in text for text in prompt_a)

    assert say(http, b, "bravo-two").answer == "echo: bravo-two [context=4]"
    prompt_b = prompt_texts(fake.requests[-1].body)
    assert prompt_b[1:] == ["bravo-one", "echo: bravo-one [context=2]", "bravo-two"]

    # Each prompt starts with its own conversation's system message.
    system_a = messages(http, a)[0]
    system_b = messages(http, b)[0]
    assert system_a["id"] != system_b["id"]
    assert prompt_a[0] == system_a["content"] and prompt_b[0] == system_b["content"]
    assert not any("alpha" in str(m["content"]) for m in messages(http, b))

    # The agent's own context sees neither.
    assert say(http, agent, "direct").answer == "echo: direct [context=2]"
    assert not any(
        "alpha" in text or "bravo" in text for text in prompt_texts(fake.requests[-1].body)
    )


# -- 4. one active run per conversation ----------------------------------------------------------


def test_concurrent_sends_give_exactly_one_conflict(
    turns_server: Server, http: httpx.Client, fake: FakeOpenAI, conversation: str
) -> None:
    fake.first_token_delay = 1.0

    def attempt(text: str) -> list[Any] | ConflictError:
        # Default retries: without `x-should-retry: false` the loser would retry into a success.
        with Letta(base_url=turns_server.url, timeout=30.0) as c:
            try:
                return list(c.conversations.messages.create(conversation, input=text))
            except ConflictError as exc:
                return exc

    results = concurrently(lambda: attempt("one"), lambda: attempt("two"))

    conflicts = [r for r in results if isinstance(r, ConflictError)]
    answers = [r for r in results if isinstance(r, list)]
    assert len(conflicts) == 1 and len(answers) == 1, results
    (conflict,) = conflicts
    assert conflict.status_code == 409
    assert conflict.response.headers["x-should-retry"] == "false"
    assert busy_body(conflict.body)
    assert [i.message_type for i in answers[0]] == [
        "assistant_message",
        "stop_reason",
        "usage_statistics",
    ]
    assert len(fake.requests) == 1  # the loser never reached the model
    assert len(list_runs(http, conversation_id=conversation)) == 1


def test_lock_is_free_the_moment_done_is_read(
    client: Letta, fake: FakeOpenAI, conversation: str
) -> None:
    for n in range(4):
        items = list(client.conversations.messages.create(conversation, input=f"next {n}"))
        assert [i.message_type for i in items] == [
            "assistant_message",
            "stop_reason",
            "usage_statistics",
        ]
        # decisions §1: finalised before [DONE].
        assert isinstance(items[0], AssistantMessage) and items[0].run_id is not None
        run = client.runs.retrieve(items[0].run_id)
        assert run.status == "completed"
        assert run.completed_at is not None
    assert len(fake.requests) == 4


def test_non_streaming_send_is_refused_while_a_turn_runs(
    http: httpx.Client, fake: FakeOpenAI, conversation: str
) -> None:
    fake.first_token_delay = 0.8
    path = f"/v1/conversations/{conversation}/messages"
    with open_stream(http, path, {"input": "holder"}) as (response, frames):
        assert response.status_code == 200  # the run holds the conversation now
        refused = http.post(path, json={"input": "json", "streaming": False})
        streaming = http.post(path, json={"input": "stream"})
        rest = list(frames)
    holder = next(f.payload["run_id"] for f in rest if f.kind == "assistant_message")
    for answer in (refused, streaming):
        assert answer.status_code == 409, answer.text
        # decisions §14: the busy answer names the run that holds the conversation
        assert answer.json() == {"detail": BUSY, "run_id": holder}
        assert answer.headers["x-should-retry"] == "false"
    assert [f.kind for f in rest] == ["assistant_message", "stop_reason", "usage_statistics", DONE]
    assert len(fake.requests) == 1


HUGE_MARKER = "overflow-marker"


def fail_with_a_huge_message(client: Letta, fake: FakeOpenAI, conversation: str) -> dict[str, Any]:
    """A 100,000-word message the provider refuses (context length); the error event's body."""
    fake.failure = "context_length"
    huge = f"{HUGE_MARKER} " + "word " * 100_000
    seen: list[Any] = []
    stream = client.conversations.messages.create(
        conversation, messages=[{"role": "user", "content": huge}]
    )
    with pytest.raises(APIStatusError) as raised:
        for item in stream:
            seen.append(item)
    fake.failure = None
    error = raised.value
    assert type(error) is APIStatusError  # mid-stream: the 200 response's status, no subclass
    assert error.status_code == 200
    assert [(s.message_type, s.stop_reason) for s in seen] == [("stop_reason", "error")]
    assert isinstance(error.body, dict)
    assert error.body["message_type"] == "error_message"
    assert error.body["error_type"] == "internal_error"
    assert error.body["message"] == "An unknown error occurred with the LLM streaming request."
    assert re.fullmatch(f"run-{UUID}", error.body["run_id"])
    return error.body


def test_failed_turn_frees_the_lock_and_stays_out_of_the_context(
    http: httpx.Client, client: Letta, fake: FakeOpenAI, conversation: str
) -> None:
    say(http, conversation, "before")
    error = fail_with_a_huge_message(client, fake, conversation)

    run = get_run(http, error["run_id"])
    assert (run["status"], run["stop_reason"]) == ("failed", "error")
    assert run["completed_at"] is not None
    assert run["metadata"]["error"]["error_type"] == "internal_error"
    assert run["metadata"]["error"]["message"] == error["message"]

    sent = say(http, conversation, "after the failure")  # at once: the lock is free
    assert sent.answer == "echo: after the failure [context=4]"
    prompt = prompt_texts(fake.requests[-1].body)
    assert prompt[1:] == ["before", "echo: before [context=2]", "after the failure"]
    assert not any(HUGE_MARKER in text for text in prompt)
    listed = messages(http, conversation)
    assert not any(HUGE_MARKER in str(m["content"]) for m in listed)
    assert len(listed) == 5


def test_failed_input_is_recorded_on_its_run_in_the_log(
    turns_server: Server, client: Letta, fake: FakeOpenAI, conversation: str
) -> None:
    error = fail_with_a_huge_message(client, fake, conversation)
    run_uuid = uuid.UUID(error["run_id"].removeprefix("run-"))
    with sqlite3.connect(f"file:{turns_server.data_dir / 'convlog.db'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT topic, state FROM stored_events WHERE originator_id = ?"
            " ORDER BY originator_version",
            (run_uuid.hex,),
        ).fetchall()
    db.close()
    assert [topic for topic, _ in rows] == ["convlog.Run.Started", "convlog.Run.Failed"]
    started = json.loads(rows[0][1])
    (given,) = started["input_messages"]
    assert given["role"] == "user" and given["content"].startswith(HUGE_MARKER)
    failed = json.loads(rows[1][1])
    assert failed["error"]["error_type"] == "internal_error"


def test_failed_input_is_visible_to_an_auditor_through_the_api(
    http: httpx.Client, client: Letta, fake: FakeOpenAI, conversation: str
) -> None:
    error = fail_with_a_huge_message(client, fake, conversation)
    shown = json.dumps(events(http, conversation)) + json.dumps(get_run(http, error["run_id"]))
    assert HUGE_MARKER in shown


# -- 5. provider failures ------------------------------------------------------------------------

# failure -> (stop_reason, error_type, HTTP status when not streaming, exact message or None)
FAILURES: dict[str, tuple[str, str, int, str | None]] = {
    "rate_limit": ("llm_api_error", "llm_rate_limit", 429, None),
    "auth": ("llm_api_error", "llm_authentication", 401, None),
    "empty": ("invalid_llm_response", "llm_empty_response", 502, None),
    "server_error": (
        "llm_api_error",
        "llm_error",
        502,
        "An error occurred with the LLM request.",
    ),
    "hang": (
        "llm_api_error",
        "llm_timeout",
        504,
        "The LLM request timed out. Please try again.",
    ),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_provider_failures_map_to_letta_errors(
    http: httpx.Client, fake: FakeOpenAI, conversation: str, failure: str
) -> None:
    stop_reason, error_type, status, text = FAILURES[failure]
    fake.failure = failure  # type: ignore[assignment]

    started = time.monotonic()
    sent = send(http, conversation, {"input": "streamed"})
    if failure == "hang":
        assert time.monotonic() - started >= MODEL_TIMEOUT * 0.9
    assert sent.kinds == ["stop_reason", "error", DONE]
    assert_letta_frames(sent.frames)
    assert sent.of("stop_reason") == [{"message_type": "stop_reason", "stop_reason": stop_reason}]
    error = sent.frames[1].payload
    assert error["message_type"] == "error_message"
    assert error["error_type"] == error_type
    assert isinstance(error["message"], str) and error["message"]
    if text is not None:
        assert error["message"] == text
    run = get_run(http, error["run_id"])
    assert (run["status"], run["stop_reason"]) == ("failed", stop_reason)
    assert run["metadata"]["error"]["error_type"] == error_type

    # Not streaming: an HTTP error in Letta's provider-error shape (the lock was freed).
    answer = http.post(
        f"/v1/conversations/{conversation}/messages", json={"input": "json", "streaming": False}
    )
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "detail"}
    assert body["error"]["type"] == error_type
    assert body["error"]["message"] == error["message"]

    runs = list_runs(http, conversation_id=conversation)
    assert [(r["status"], r["stop_reason"]) for r in runs] == [("failed", stop_reason)] * 2

    fake.failure = None
    assert say(http, conversation, "recovered").answer == "echo: recovered [context=2]"


def test_provider_stalling_mid_stream_fails_the_turn_and_keeps_nothing(
    http: httpx.Client, fake: FakeOpenAI, conversation: str
) -> None:
    fake.failure = "stall"  # the first token, then silence past CONVLOG_MODEL_TIMEOUT
    sent = send(http, conversation, {"input": "stall me", "stream_tokens": True})
    assert sent.kinds == ["assistant_message", "stop_reason", "error", DONE]
    assert sent.of("assistant_message")[0]["content"] == "echo:"
    assert sent.of("stop_reason")[0]["stop_reason"] == "llm_api_error"
    error = sent.frames[2].payload
    assert error["error_type"] == "llm_timeout"
    run = get_run(http, error["run_id"])
    assert (run["status"], run["stop_reason"]) == ("failed", "llm_api_error")

    fake.failure = None
    assert say(http, conversation, "unstuck").answer == "echo: unstuck [context=2]"
    assert [m["content"] for m in messages(http, conversation)[1:]] == [
        "unstuck",
        "echo: unstuck [context=2]",
    ]


def test_context_window_error_without_streaming_is_letta_400(
    http: httpx.Client, fake: FakeOpenAI, conversation: str
) -> None:
    fake.failure = "context_length"
    answer = http.post(
        f"/v1/conversations/{conversation}/messages", json={"input": "long", "streaming": False}
    )
    assert answer.status_code == 400, answer.text
    assert set(answer.json()) == {"detail"}
    assert answer.json()["detail"].startswith("CONTEXT_WINDOW_EXCEEDED: ")


# -- 6. runs -------------------------------------------------------------------------------------


def test_runs_in_letta_shape_and_filtered(
    http: httpx.Client, client: Letta, fake: FakeOpenAI, agent: str, conversation: str
) -> None:
    ok = say(http, conversation, "for the run").run_id
    fake.failure = "server_error"
    failed = send(http, conversation, {"input": "breaks"}).run_id
    fake.failure = None

    run = get_run(http, ok)
    assert set(run) == RUN_KEYS
    assert run["id"] == ok
    assert (run["status"], run["stop_reason"]) == ("completed", "end_turn")
    assert (run["agent_id"], run["conversation_id"]) == (agent, conversation)
    assert run["background"] is False
    # The input stays on the run for audit (decisions §9), beside Letta's run_type.
    assert run["metadata"]["run_type"] == "send_conversation_message"
    assert run["metadata"]["input_messages"][0]["role"] == "user"
    assert run["request_config"] == REQUEST_CONFIG
    assert parse_time(run["completed_at"]) >= parse_time(run["created_at"])
    assert isinstance(run["ttft_ns"], int) and run["ttft_ns"] > 0
    assert run["total_duration_ns"] >= run["ttft_ns"]

    bad = get_run(http, failed)
    assert (bad["status"], bad["stop_reason"]) == ("failed", "llm_api_error")
    assert bad["metadata"]["run_type"] == "send_conversation_message"
    assert bad["metadata"]["error"]["error_type"] == "llm_error"
    assert bad["completed_at"] is not None

    def ids(**params: Any) -> list[str]:
        return [r["id"] for r in list_runs(http, **params)]

    assert ids(conversation_id=conversation) == [failed, ok]  # newest first
    assert ids(conversation_id=conversation, order="asc") == [ok, failed]
    assert ids(conversation_id=conversation, statuses="completed") == [ok]
    assert ids(conversation_id=conversation, statuses="failed") == [failed]
    assert ids(conversation_id=conversation, statuses=["completed", "failed"]) == [failed, ok]
    assert ids(conversation_id=conversation, statuses=["running", "cancelled"]) == []
    assert ids(agent_id=agent) == [failed, ok]
    assert ids(conversation_id=conversation, background="true") == []

    assert [r.id for r in client.runs.list(conversation_id=conversation, statuses=["failed"])] == [
        failed
    ]
    assert client.runs.retrieve(ok).status == "completed"
    missing = http.get(f"/v1/runs/run-{uuid.uuid4()}")
    assert missing.status_code == 404, missing.text


# -- 7. agent-direct -----------------------------------------------------------------------------


def test_agent_direct_send_list_and_runs(
    http: httpx.Client, client: Letta, fake: FakeOpenAI, agent: str
) -> None:
    sent = say(http, agent, "direct hello")
    assert sent.answer == "echo: direct hello [context=2]"
    run = get_run(http, sent.run_id)
    assert run["conversation_id"] is None
    assert run["agent_id"] == agent
    assert run["metadata"]["run_type"] == "send_message"
    assert (run["status"], run["stop_reason"]) == ("completed", "end_turn")
    assert [r["id"] for r in list_runs(http, agent_id=agent)] == [sent.run_id]

    listed = list(client.conversations.messages.list(agent, order="asc"))
    assert [(m.message_type, text_content(m)) for m in listed[1:]] == [
        ("user_message", "direct hello"),
        ("assistant_message", "echo: direct hello [context=2]"),
    ]
    assert listed[0].message_type == "system_message"

    items = list(client.conversations.messages.create(agent, input="again"))
    assert text_content(items[0]) == "echo: again [context=4]"

    idle = cancel(http, agent)
    assert idle.status_code == 409, idle.text
    assert idle.json() == {"detail": f"CONFLICT: No active runs to cancel for conversation {agent}"}


def test_agent_direct_one_active_run_and_cancel(
    http: httpx.Client, fake: FakeOpenAI, agent: str
) -> None:
    conversation = create_conversation(http, agent)
    fake.token_delay = 0.2
    direct = f"/v1/conversations/{agent}/messages"
    body = {"input": "a long direct answer", "stream_tokens": True}
    with open_stream(http, direct, body) as (_, frames):
        first = next(frames)
        assert first.kind == "assistant_message"
        busy = http.post(direct, json={"input": "me too"})
        assert busy.status_code == 409, busy.text
        assert busy_body(busy.json())
        # The agent's own context and its conversations are locked separately.
        beside = send(http, conversation, {"input": "x", "streaming": False})
        assert beside.status == 200, beside.body
        stopped = cancel(http, agent)
        assert stopped.status_code == 200, stopped.text
        assert stopped.json() == {first.payload["run_id"]: "cancelled"}
        rest = list(frames)
    assert [f.kind for f in rest][-2:] == ["stop_reason", DONE]
    assert rest[-2].payload == {"message_type": "stop_reason", "stop_reason": "cancelled"}
    run = get_run(http, first.payload["run_id"])
    assert (run["status"], run["stop_reason"]) == ("cancelled", "cancelled")
    assert run["conversation_id"] is None

    # As Letta (§6): cancelling through the agent id stops its conversations' runs too.
    with open_stream(http, f"/v1/conversations/{conversation}/messages", body) as (_, frames):
        in_conversation = next(frames).payload["run_id"]
        everything = cancel(http, agent)
        tail = [f.kind for f in frames]
    assert everything.status_code == 200, everything.text
    assert everything.json() == {in_conversation: "cancelled"}
    assert tail[-2:] == ["stop_reason", DONE]
    assert get_run(http, in_conversation)["status"] == "cancelled"

    fake.token_delay = 0.0
    sent = say(http, agent, "after cancel")  # the agent lock is free again
    assert sent.answer == "echo: after cancel [context=2]"


# -- 8. cancel -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream_tokens", [False, True])
def test_cancel_mid_stream(
    http: httpx.Client, fake: FakeOpenAI, conversation: str, stream_tokens: bool
) -> None:
    fake.token_delay = 0.2
    full = "echo: please take your time with this one [context=2]"
    path = f"/v1/conversations/{conversation}/messages"
    body = {"input": "please take your time with this one", "stream_tokens": stream_tokens}
    started = time.monotonic()
    with open_stream(http, path, body) as (response, frames):
        assert response.status_code == 200
        before: list[Frame] = []
        if stream_tokens:
            before.append(next(frames))  # the model is answering
        active = list_runs(http, conversation_id=conversation, statuses="running")
        assert len(active) == 1
        run_id = active[0]["id"]
        assert [r["id"] for r in list_runs(http, conversation_id=conversation, active="true")] == [
            run_id
        ]
        assert (active[0]["completed_at"], active[0]["stop_reason"]) == (None, None)
        stopped = cancel(http, conversation)
        rest = list(frames)
    took = time.monotonic() - started

    assert stopped.status_code == 200, stopped.text
    assert stopped.json() == {run_id: "cancelled"}
    frames_seen = before + rest
    assert_letta_frames(frames_seen)
    kinds = [f.kind for f in frames_seen]
    deltas = kinds.count("assistant_message")
    assert kinds == ["assistant_message"] * deltas + ["stop_reason", DONE]
    assert frames_seen[-2].payload == {"message_type": "stop_reason", "stop_reason": "cancelled"}
    if stream_tokens:
        assert deltas >= 1
    partial = "".join(f.payload["content"] for f in frames_seen if f.kind == "assistant_message")
    assert full.startswith(partial) and partial != full
    assert took < 0.2 * len(full.split()) - 0.4  # stopped well before the model would finish

    run = get_run(http, run_id)
    assert (run["status"], run["stop_reason"]) == ("cancelled", "cancelled")
    assert run["completed_at"] is not None
    assert [m["message_type"] for m in messages(http, conversation)] == ["system_message"]

    again = cancel(http, conversation)
    assert again.status_code == 409, again.text
    assert again.json() == {
        "detail": f"CONFLICT: No active runs to cancel for conversation {conversation}"
    }
    fake.token_delay = 0.0
    assert say(http, conversation, "next").answer == "echo: next [context=2]"


def test_cancel_when_idle_or_unknown(http: httpx.Client, client: Letta, conversation: str) -> None:
    idle = cancel(http, conversation)
    assert idle.status_code == 409, idle.text
    assert idle.json() == {
        "detail": f"CONFLICT: No active runs to cancel for conversation {conversation}"
    }
    ghost = cancel(http, f"conv-{uuid.uuid4()}")
    assert ghost.status_code == 404, ghost.text
    with pytest.raises(ConflictError, match="No active runs to cancel"):
        client.conversations.cancel(conversation)
    with pytest.raises(NotFoundError):
        client.conversations.cancel(f"conv-{uuid.uuid4()}")


# -- 9. background runs and resumption -----------------------------------------------------------


def test_background_events_are_numbered(
    http: httpx.Client, fake: FakeOpenAI, conversation: str
) -> None:
    fake.token_delay = 0.02
    sent = send(
        http, conversation, {"input": "count us", "background": True, "stream_tokens": True}
    )
    deltas = sent.of("assistant_message")
    assert [d["seq_id"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert len(deltas) >= 3
    assert sent.kinds[len(deltas) :] == ["stop_reason", "usage_statistics", DONE]
    assert sent.answer == "echo: count us [context=2]"
    assert_letta_frames(sent.frames)
    run = get_run(http, sent.run_id)
    assert run["background"] is True
    assert (run["status"], run["stop_reason"]) == ("completed", "end_turn")

    whole = send(http, conversation, {"input": "one piece", "background": True})
    assert whole.kinds == ["assistant_message", "stop_reason", "usage_statistics", DONE]
    assert whole.of("assistant_message")[0]["seq_id"] == 1


def test_background_run_survives_a_dropped_client_and_resumes_after_any_seq(
    turns_server: Server, http: httpx.Client, client: Letta, fake: FakeOpenAI, conversation: str
) -> None:
    fake.token_delay = 0.15
    full = "echo: resume me from anywhere you like [context=2]"
    send_path = f"/v1/conversations/{conversation}/messages"
    resume_path = f"/v1/conversations/{conversation}/stream"
    body = {"input": "resume me from anywhere you like", "background": True, "stream_tokens": True}
    with open_stream(http, send_path, body) as (_, frames):
        first = next(frames)
    # The client went away after one event; the run goes on.
    assert first.payload["seq_id"] == 1

    with (
        httpx.Client(base_url=turns_server.url, timeout=30.0) as other,
        open_stream(http, resume_path, {"starting_after": 1}) as (after_one, rest_frames),
        open_stream(other, resume_path, {"starting_after": 0}) as (from_start, all_frames),
        open_stream(other, resume_path, {"starting_after": 3}) as (after_three, tail_frames),
    ):
        sdk_stream = client.conversations.messages.stream(conversation, starting_after=2)
        assert (after_one.status_code, from_start.status_code, after_three.status_code) == (
            200,
            200,
            200,
        )
        rest, everything, tail = list(rest_frames), list(all_frames), list(tail_frames)
        sdk_items = list(sdk_stream)

    raw = [f.raw for f in everything]
    assert raw[0] == first.raw
    assert [f.raw for f in rest] == raw[1:]
    assert [f.raw for f in tail] == raw[3:]
    assert [f.kind for f in everything][-3:] == ["stop_reason", "usage_statistics", DONE]
    deltas = [f.payload for f in everything if f.kind == "assistant_message"]
    assert [d["seq_id"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert "".join(d["content"] for d in deltas) == full
    assert [i.message_type for i in sdk_items] == [f.kind for f in everything[2:-1]]
    assert [getattr(i, "seq_id", None) for i in sdk_items[: len(deltas) - 2]] == list(
        range(3, len(deltas) + 1)
    )

    # The turn was saved although its first client left.
    assert messages(http, conversation)[-1]["content"] == full
    assert get_run(http, first.payload["run_id"])["status"] == "completed"
    # Over now: nothing left to resume.
    over = http.post(resume_path, json={"starting_after": 0})
    assert (over.status_code, over.json()) == (400, {"detail": NO_ACTIVE_RUNS})


def test_resume_needs_an_active_background_run(
    http: httpx.Client, client: Letta, fake: FakeOpenAI, conversation: str
) -> None:
    resume_path = f"/v1/conversations/{conversation}/stream"
    idle = http.post(resume_path, json={})
    assert (idle.status_code, idle.json()) == (400, {"detail": NO_ACTIVE_RUNS})
    with pytest.raises(BadRequestError, match="No active runs found"):
        client.conversations.messages.stream(conversation)
    # As Letta: the conversation itself is not looked up.
    ghost = http.post(f"/v1/conversations/conv-{uuid.uuid4()}/stream", json={})
    assert (ghost.status_code, ghost.json()) == (400, {"detail": NO_ACTIVE_RUNS})

    fake.first_token_delay = 0.6
    with open_stream(http, f"/v1/conversations/{conversation}/messages", {"input": "fg"}) as (
        response,
        frames,
    ):
        assert response.status_code == 200
        foreground = http.post(resume_path, json={})
        rest = list(frames)
    assert (foreground.status_code, foreground.json()) == (400, {"detail": NOT_BACKGROUND})
    assert [f.kind for f in rest] == ["assistant_message", "stop_reason", "usage_statistics", DONE]


def test_cancel_a_background_run(http: httpx.Client, fake: FakeOpenAI, conversation: str) -> None:
    fake.token_delay = 0.2
    send_path = f"/v1/conversations/{conversation}/messages"
    resume_path = f"/v1/conversations/{conversation}/stream"
    body = {"input": "a background answer to cancel", "background": True, "stream_tokens": True}
    with open_stream(http, send_path, body) as (_, frames):
        first = next(frames)
        run_id = first.payload["run_id"]
        with open_stream(http, resume_path, {"starting_after": 1}) as (resumed, resumed_frames):
            assert resumed.status_code == 200
            stopped = cancel(http, conversation)
            assert stopped.status_code == 200, stopped.text
            assert stopped.json() == {run_id: "cancelled"}
            rest = list(frames)
            rest_resumed = list(resumed_frames)

    for tail in (rest, rest_resumed):
        assert [f.kind for f in tail][-2:] == ["stop_reason", DONE]
        assert tail[-2].payload == {"message_type": "stop_reason", "stop_reason": "cancelled"}
        assert set(f.kind for f in tail[:-2]) <= {"assistant_message"}
    assert [f.raw for f in rest] == [f.raw for f in rest_resumed]
    run = get_run(http, run_id)
    assert (run["status"], run["stop_reason"], run["background"]) == (
        "cancelled",
        "cancelled",
        True,
    )
    assert [m["message_type"] for m in messages(http, conversation)] == ["system_message"]
    after = http.post(resume_path, json={})
    assert (after.status_code, after.json()) == (400, {"detail": NO_ACTIVE_RUNS})


def test_resume_past_the_last_event_ends_with_the_run(
    turns_server: Server, http: httpx.Client, fake: FakeOpenAI, conversation: str
) -> None:
    fake.token_delay = 0.15
    body = {"input": "a short one here", "background": True, "stream_tokens": True}
    with open_stream(http, f"/v1/conversations/{conversation}/messages", body) as (_, frames):
        first = next(frames)
    resume = {"starting_after": 1000, "include_pings": False}
    # The run ends within a second; a stream still silent 3 s later will never end.
    with httpx.Client(base_url=turns_server.url, timeout=httpx.Timeout(30.0, read=3.0)) as late:
        try:
            with open_stream(late, f"/v1/conversations/{conversation}/stream", resume) as (
                response,
                resumed,
            ):
                assert response.status_code == 200
                kinds = [f.kind for f in resumed]
        except httpx.ReadTimeout:
            pytest.fail("the resumed stream was still open 3 s after its run had ended")
    assert kinds in ([], [DONE])
    assert get_run(http, first.payload["run_id"])["status"] == "completed"
