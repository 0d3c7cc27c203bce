"""Compaction end to end: ``POST /v1/conversations/{id}/compact`` (raw HTTP and letta-client
1.7.10) and automatic compaction when a conversation outgrows its context window, against a
real server subprocess whose ``openai/…`` handles reach the fake OpenAI server
(``tests/fake_openai.py``), which records every prompt it receives.

The fake summarizer answers ``echo: <transcript> [context=2]``, so a summary quotes the
transcript it was given: "the evicted messages are gone from the prompt" is checked message by
message (no prompt message *is* an evicted message), not by substring.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from letta_client import BadRequestError, Letta, NotFoundError

from service.compaction import PROMPT_ALL, PROMPT_SLIDING
from tests.e2e.conftest import EMBEDDING, MODEL, sdk, start_server, text_content
from tests.e2e.turns_support import (
    Sent,
    create_agent,
    create_conversation,
    env_for,
    events,
    messages,
    open_stream,
    say,
    send,
)
from tests.fake_openai import FakeOpenAI, answer_for

pytestmark = pytest.mark.e2e

SMALL_MODEL = "openai/gpt-fake-small"  # CONVLOG_CONTEXT_WINDOWS gives it a small window
SMALL_WINDOW = 2000
NOTHING_TO_COMPACT = (
    "Summarization failed to reduce the number of messages. You may not have enough messages "
    "to compact or need to use a different CompactionSettings (e.g. using `all` mode)."
)
BUSY_COMPACTING = (
    "CONFLICT: Cannot compact the conversation while a run is active; cancel it or wait"
)
HIDDEN_ALL = "Note: prior messages have been hidden from view due to conversation memory"
HIDDEN_SLIDING = (
    "Note: prior messages from the beginning of the conversation have been hidden from view"
)


# -- server and fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compaction_url(
    fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    root = tmp_path_factory.mktemp("convlog-compaction")
    env = env_for(
        fake_openai_server.base_url,
        CONVLOG_DATA_DIR=str(root / "data"),
        CONVLOG_CONTEXT_WINDOWS=json.dumps({SMALL_MODEL: SMALL_WINDOW}),
    )
    with start_server(env, root) as url:
        yield url


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> FakeOpenAI:
    return fake_openai


@pytest.fixture
def http(compaction_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=compaction_url, timeout=30.0) as c:
        yield c


@pytest.fixture
def client(compaction_url: str) -> Iterator[Letta]:
    with sdk(compaction_url) as c:
        yield c


@pytest.fixture
def agent(http: httpx.Client) -> str:
    return create_agent(http)


@pytest.fixture
def conversation(http: httpx.Client, agent: str) -> str:
    return create_conversation(http, agent)


# -- helpers -------------------------------------------------------------------------------------


def compact(http: httpx.Client, path_id: str, body: Any = None) -> httpx.Response:
    return http.post(f"/v1/conversations/{path_id}/compact", json={} if body is None else body)


def converse(http: httpx.Client, path_id: str, count: int, tag: str = "") -> list[str]:
    """``count`` exchanges; the texts sent and answered, in order."""
    said = []
    for index in range(count):
        text = f"{tag}message {index} {uuid.uuid4().hex[:6]}"
        said += [text, say(http, path_id, text).answer]
    return said


def retrieve(http: httpx.Client, conversation_id: str) -> dict[str, Any]:
    response = http.get(f"/v1/conversations/{conversation_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def in_context(http: httpx.Client, conversation_id: str) -> list[str]:
    return list(retrieve(http, conversation_id)["in_context_message_ids"])


def chats(fake: FakeOpenAI) -> list[dict[str, Any]]:
    """The turns' prompts the fake received (summarizer requests left out)."""
    return [r.body for r in fake.requests if not is_summarizer(r.body)]


def summarizer_requests(fake: FakeOpenAI) -> list[dict[str, Any]]:
    return [r.body for r in fake.requests if is_summarizer(r.body)]


def is_summarizer(body: dict[str, Any]) -> bool:
    last = (body.get("messages") or [{}])[-1]
    return str(last.get("content", "")).startswith("<start_transcript>")


def roles_and_texts(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in body["messages"]]


def transcript_lines(body: dict[str, Any]) -> list[dict[str, Any]]:
    text = body["messages"][-1]["content"]
    lines = text.split("\n")
    assert lines[0] == "<start_transcript>"
    assert text.endswith("\n<end_transcript>\n. Generate the summary.")
    return [json.loads(line) for line in lines[1:-2]]


def packed(item: dict[str, Any]) -> dict[str, Any]:
    content = item["content"]
    assert isinstance(content, str)
    found: dict[str, Any] = json.loads(content)
    return found


def agent_with(http: httpx.Client, **fields: Any) -> str:
    response = http.post(
        "/v1/agents/",
        json={
            "name": f"e2e-compaction-{uuid.uuid4().hex[:8]}",
            "model": MODEL,
            "embedding": EMBEDDING,
            "memory_blocks": [
                {"label": "human", "value": "Name: Ada"},
                {"label": "persona", "value": "I am Sam."},
            ],
            **fields,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


# -- manual compaction ---------------------------------------------------------------------------


def test_agents_are_created_with_letta_default_compaction_settings(
    http: httpx.Client, agent: str
) -> None:
    response = http.get(f"/v1/agents/{agent}")
    assert response.status_code == 200
    assert response.json()["compaction_settings"] == {
        "model": "openai/gpt-5-mini",
        "model_settings": None,
        "prompt": PROMPT_SLIDING,
        "prompt_acknowledgement": False,
        "clip_chars": 50_000,
        "mode": "sliding_window",
        "sliding_window_percentage": 0.3,
    }


def test_compact_with_an_empty_body_after_five_exchanges(
    http: httpx.Client, fake: FakeOpenAI, agent: str, conversation: str
) -> None:
    other = create_conversation(http, agent)
    converse(http, other, 1, "other ")
    said = converse(http, conversation, 5)
    listed = messages(http, conversation)
    ids = [m["id"] for m in listed]
    assert [m["content"] for m in listed[1:]] == said
    assert in_context(http, conversation) == ids
    other_before = (messages(http, other), in_context(http, other))

    log_before = events(http, conversation)
    response = compact(http, conversation)
    assert response.status_code == 200, response.text
    added = events(http, conversation)[len(log_before) :]
    assert [e["type"] for e in added] == ["convlog.Conversation.Compacted"]
    body = response.json()
    assert set(body) == {"summary", "num_messages_before", "num_messages_after"}
    # N = 11, p = 0.3: the cut is at index 4 (an answer), so 3 messages are summarized.
    assert (body["num_messages_before"], body["num_messages_after"]) == (11, 9)

    [summarizer] = summarizer_requests(fake)
    assert summarizer["model"] == "gpt-5-mini"
    assert summarizer["messages"][0] == {"role": "system", "content": PROMPT_SLIDING}
    assert transcript_lines(summarizer) == [
        {"role": "user", "content": said[0]},
        {"role": "assistant", "content": said[1]},
        {"role": "user", "content": said[2]},
    ]
    assert body["summary"] == answer_for(summarizer)

    after = messages(http, conversation)
    assert [m["id"] for m in after[:-1]] == ids  # history stays, in order
    summary = after[-1]
    assert (summary["message_type"], summary["role"]) == ("user_message", "summary")
    alert = packed(summary)
    assert alert["type"] == "system_alert"
    assert alert["message"].startswith(HIDDEN_SLIDING)
    assert alert["message"].endswith(body["summary"])
    window = in_context(http, conversation)
    assert window == [ids[0], summary["id"], *ids[4:]]
    assert len(window) == body["num_messages_after"]

    say(http, conversation, "what now")
    prompt = roles_and_texts(chats(fake)[-1])
    assert prompt[0] == ("system", listed[0]["content"])
    assert prompt[1] == ("user", summary["content"])
    assert prompt[2:] == [
        ("assistant" if i % 2 else "user", text) for i, text in enumerate(said) if i >= 3
    ] + [("user", "what now")]
    evicted = set(said[:3])
    assert not evicted & {text for _, text in prompt}

    assert (messages(http, other), in_context(http, other)) == other_before


def test_compact_in_all_mode_keeps_only_the_summary(
    http: httpx.Client, fake: FakeOpenAI, conversation: str
) -> None:
    said = converse(http, conversation, 5)
    ids = [m["id"] for m in messages(http, conversation)]
    response = compact(http, conversation, {"compaction_settings": {"mode": "all"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["num_messages_before"], body["num_messages_after"]) == (11, 2)

    [summarizer] = summarizer_requests(fake)
    # A mode other than the agent's, without a prompt: that mode's default prompt.
    assert summarizer["messages"][0] == {"role": "system", "content": PROMPT_ALL}
    assert [line["content"] for line in transcript_lines(summarizer)] == said

    after = messages(http, conversation)
    summary = after[-1]
    assert [m["id"] for m in after] == [*ids, summary["id"]]
    assert packed(summary)["message"].startswith(HIDDEN_ALL)
    assert in_context(http, conversation) == [ids[0], summary["id"]]

    say(http, conversation, "and now")
    prompt = roles_and_texts(chats(fake)[-1])
    assert [role for role, _ in prompt] == ["system", "user", "user"]
    assert prompt[1:] == [("user", summary["content"]), ("user", "and now")]


def test_compact_without_a_body_or_with_null_settings(http: httpx.Client, agent: str) -> None:
    for body in (None, {"compaction_settings": None}):
        conversation = create_conversation(http, agent)
        converse(http, conversation, 5)
        if body is None:
            response = http.post(f"/v1/conversations/{conversation}/compact")
        else:
            response = compact(http, conversation, body)
        assert response.status_code == 200, response.text
        assert (response.json()["num_messages_before"], response.json()["num_messages_after"]) == (
            11,
            9,
        )


def test_compact_through_the_sdk(client: Letta, http: httpx.Client, conversation: str) -> None:
    said = converse(http, conversation, 5)
    first = client.conversations.messages.compact(conversation)
    assert (first.num_messages_before, first.num_messages_after) == (11, 9)
    said += converse(http, conversation, 1, "later ")
    second = client.conversations.messages.compact(
        conversation, compaction_settings={"mode": "all"}
    )
    assert (second.num_messages_before, second.num_messages_after) == (11, 2)
    assert second.summary

    listed = list(client.conversations.messages.list(conversation, order="asc", limit=5))
    kinds = [m.message_type for m in listed]
    assert kinds[0] == "system_message"
    assert len(listed) == 1 + len(said) + 2
    summaries = [m for m in listed if getattr(m, "role", None) == "summary"]
    assert [m.message_type for m in summaries] == ["user_message", "user_message"]
    assert [listed.index(m) for m in summaries] == [11, 14]  # where each was made
    contents = [
        text_content(m) for m in listed if getattr(m, "role", None) in ("user", "assistant")
    ]
    assert contents == said
    assert json.loads(text_content(summaries[-1]))["message"].endswith(second.summary)
    window = client.conversations.retrieve(conversation).in_context_message_ids
    assert window == [listed[0].id, summaries[-1].id]


def test_sdk_errors(client: Letta, http: httpx.Client, agent: str) -> None:
    fresh = create_conversation(http, agent)
    with pytest.raises(BadRequestError) as bad:
        client.conversations.messages.compact(fresh)
    assert bad.value.status_code == 400
    with pytest.raises(NotFoundError):
        client.conversations.messages.compact(f"conv-{uuid.uuid4()}")


def test_a_fresh_conversation_has_nothing_to_compact_and_nothing_is_written(
    http: httpx.Client, fake: FakeOpenAI, conversation: str
) -> None:
    before = (events(http, conversation), messages(http, conversation))
    for body in ({}, {"compaction_settings": {"mode": "all"}}):
        response = compact(http, conversation, body)
        assert response.status_code == 400, response.text
        assert NOTHING_TO_COMPACT in response.json()["detail"]
    assert (events(http, conversation), messages(http, conversation)) == before
    assert len(in_context(http, conversation)) == 1


def test_a_fresh_conversation_gives_lettas_exact_detail(
    http: httpx.Client, conversation: str
) -> None:
    response = compact(http, conversation)
    assert response.status_code == 400
    assert response.json() == {"detail": NOTHING_TO_COMPACT}


def test_unknown_conversations_and_agents_are_404(http: httpx.Client) -> None:
    unknown = f"conv-{uuid.uuid4()}"
    response = compact(http, unknown)
    assert response.status_code == 404
    assert response.json()["detail"].startswith("Conversation not found")
    response = compact(http, f"agent-{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Agent not found"}


def test_a_deleted_conversation_is_404(http: httpx.Client, conversation: str) -> None:
    converse(http, conversation, 2)
    assert http.delete(f"/v1/conversations/{conversation}").status_code == 200
    response = compact(http, conversation, {"compaction_settings": {"mode": "all"}})
    assert response.status_code == 404
    assert response.json()["detail"].startswith("Conversation not found")


def test_agent_direct_compaction(http: httpx.Client, fake: FakeOpenAI, agent: str) -> None:
    other = create_conversation(http, agent)
    converse(http, other, 1, "other ")
    other_before = (messages(http, other), in_context(http, other))
    said = converse(http, agent, 5, "direct ")
    ids = [m["id"] for m in messages(http, agent)]
    response = compact(http, agent, {"compaction_settings": {"mode": "all"}})
    assert response.status_code == 200, response.text
    assert (response.json()["num_messages_before"], response.json()["num_messages_after"]) == (
        11,
        2,
    )
    after = messages(http, agent)
    assert [m["id"] for m in after[:-1]] == ids
    assert after[-1]["role"] == "summary"

    say(http, agent, "direct again")
    prompt = roles_and_texts(chats(fake)[-1])
    assert prompt[1:] == [("user", after[-1]["content"]), ("user", "direct again")]
    assert not set(said) & {text for _, text in prompt}
    assert (messages(http, other), in_context(http, other)) == other_before


def test_compaction_while_a_turn_is_running_is_a_conflict(
    http: httpx.Client, fake: FakeOpenAI, conversation: str
) -> None:
    converse(http, conversation, 5)
    before = messages(http, conversation)
    fake.first_token_delay = 1.0
    body = {"messages": [{"role": "user", "content": "slow one"}]}
    with open_stream(http, f"/v1/conversations/{conversation}/messages", body) as (
        response,
        frames,
    ):
        assert response.status_code == 200  # the turn holds the conversation from here
        refused = compact(http, conversation, {"compaction_settings": {"mode": "all"}})
        assert refused.status_code == 409, refused.text
        assert refused.json() == {"detail": BUSY_COMPACTING}
        assert refused.headers.get("x-should-retry") == "false"
        assert [f.kind for f in frames][-1] == "[DONE]"
    after = messages(http, conversation)
    assert [m["id"] for m in after[: len(before)]] == [m["id"] for m in before]
    assert all(m["role"] != "summary" for m in after)
    assert summarizer_requests(fake) == []
    fake.first_token_delay = 0.0
    assert compact(http, conversation, {"compaction_settings": {"mode": "all"}}).status_code == 200


def test_request_settings_override_the_agents_field_by_field(
    http: httpx.Client, fake: FakeOpenAI, conversation: str
) -> None:
    converse(http, conversation, 5)
    body = {"compaction_settings": {"model": "openai/gpt-4o", "prompt": "Summarize tersely."}}
    response = compact(http, conversation, {**body, "unknown_field": 1})  # ignored, as Letta
    assert response.status_code == 200, response.text
    # The agent's mode (sliding_window) still applies: 11 -> 9.
    assert (response.json()["num_messages_before"], response.json()["num_messages_after"]) == (
        11,
        9,
    )
    [summarizer] = summarizer_requests(fake)
    assert summarizer["model"] == "gpt-4o"
    assert summarizer["messages"][0] == {"role": "system", "content": "Summarize tersely."}


def test_invalid_settings_are_422_and_write_nothing(http: httpx.Client, conversation: str) -> None:
    converse(http, conversation, 5)
    before = events(http, conversation)
    for settings in (
        {"mode": "everything"},
        {"sliding_window_percentage": 1.5},
        {"clip_chars": 0},
    ):
        response = compact(http, conversation, {"compaction_settings": settings})
        assert response.status_code == 422, (settings, response.text)
    assert events(http, conversation) == before


@pytest.mark.parametrize(
    ("failure", "status", "error_type"),
    [("rate_limit", 429, "llm_rate_limit"), ("empty", 502, "llm_empty_response")],
)
def test_a_failing_summarizer_writes_nothing(
    http: httpx.Client,
    fake: FakeOpenAI,
    conversation: str,
    failure: Any,
    status: int,
    error_type: str,
) -> None:
    converse(http, conversation, 5)
    before = (events(http, conversation), in_context(http, conversation))
    fake.failure = failure
    response = compact(http, conversation, {"compaction_settings": {"mode": "all"}})
    assert response.status_code == status, response.text
    assert response.json()["error"]["type"] == error_type
    assert (events(http, conversation), in_context(http, conversation)) == before


def test_concurrent_compactions_never_interleave(
    http: httpx.Client, fake: FakeOpenAI, compaction_url: str, conversation: str
) -> None:
    converse(http, conversation, 5)
    ids = [m["id"] for m in messages(http, conversation)]
    fake.first_token_delay = 0.5  # both summarize the same context at the same time
    barrier = threading.Barrier(2)

    def one() -> httpx.Response:
        with httpx.Client(base_url=compaction_url, timeout=30.0) as own:
            barrier.wait(timeout=10)
            return compact(own, conversation, {"compaction_settings": {"mode": "all"}})

    with ThreadPoolExecutor(2) as pool:
        responses = [f.result() for f in [pool.submit(one), pool.submit(one)]]
    statuses = sorted(r.status_code for r in responses)
    assert statuses in ([200, 200], [200, 409]), [r.text for r in responses]
    listed = messages(http, conversation)
    summaries = [m["id"] for m in listed if m["role"] == "summary"]
    assert len(summaries) == statuses.count(200)
    assert [m["id"] for m in listed if m["role"] != "summary"] == ids
    assert in_context(http, conversation)[:2] == [ids[0], summaries[-1]]


# -- automatic compaction ------------------------------------------------------------------------


def long_text(index: int) -> str:
    return f"turn {index}: " + " ".join(f"word{n}" for n in range(90))  # ~600 characters


def check_automatic_compaction(
    http: httpx.Client, fake: FakeOpenAI, conversation: str, window: int, turns: int
) -> list[dict[str, Any]]:
    """Send ``turns`` long messages: every one answered; the context was compacted on the way.
    Returns the non-streaming responses.
    """
    responses = []
    said = []
    for index in range(turns):
        text = long_text(index)
        sent = say(http, conversation, text, streaming=False, include_compaction_messages=True)
        answer = [m for m in sent.body["messages"] if m["message_type"] == "assistant_message"]
        assert [m["content"] for m in answer] == [answer_for(chats(fake)[-1])]
        responses.append(sent.body)
        said += [text, answer[0]["content"]]

    listed = messages(http, conversation)
    summaries = [m for m in listed if m["role"] == "summary"]
    assert summaries, "no compaction happened"
    assert [m["content"] for m in listed if m["role"] in ("user", "assistant")] == said
    assert len(listed) == 1 + len(said) + len(summaries)

    prompt = roles_and_texts(chats(fake)[-1])
    assert prompt[1] == ("user", summaries[-1]["content"])
    assert long_text(0) not in {text for _, text in prompt}
    assert len(prompt) < 1 + len(said)
    assert in_context(http, conversation)[1] == summaries[-1]["id"]

    requests = summarizer_requests(fake)
    assert len(requests) == len(summaries)
    for body in requests:
        assert body["model"] == "gpt-5-mini"
        assert body["messages"][0] == {"role": "system", "content": PROMPT_SLIDING}
        assert body["messages"][1]["content"].startswith("<start_transcript>\n")
    return responses


def check_notices(responses: list[dict[str, Any]], window: int) -> None:
    """The responses of turns that compacted carry summary_message and event_message first."""
    noticed = [r for r in responses if r["messages"][0]["message_type"] == "summary_message"]
    assert noticed
    for response in noticed:
        kinds = [m["message_type"] for m in response["messages"]]
        assert kinds == ["summary_message", "event_message", "assistant_message"]
        summary, event_message = response["messages"][:2]
        stats = summary["compaction_stats"]
        assert stats["trigger"] == "context_window_exceeded"
        assert stats["context_window"] == window
        assert stats["messages_count_after"] < stats["messages_count_before"]
        assert event_message["event_type"] == "compaction"
        assert event_message["event_data"]["context_window"] == window


def test_a_conversation_crossing_the_agents_context_window_limit_compacts_itself(
    http: httpx.Client, fake: FakeOpenAI
) -> None:
    agent = agent_with(
        http, context_window_limit=SMALL_WINDOW, compaction_settings={"clip_chars": 300}
    )
    conversation = create_conversation(http, agent)
    responses = check_automatic_compaction(http, fake, conversation, SMALL_WINDOW, 8)
    check_notices(responses, SMALL_WINDOW)


def test_a_conversation_crossing_the_configured_context_window_compacts_itself(
    http: httpx.Client, fake: FakeOpenAI
) -> None:
    agent = agent_with(http, model=SMALL_MODEL, compaction_settings={"clip_chars": 300})
    conversation = create_conversation(http, agent)
    responses = check_automatic_compaction(http, fake, conversation, SMALL_WINDOW, 8)
    check_notices(responses, SMALL_WINDOW)


def test_long_conversations_below_the_window_are_left_alone(
    http: httpx.Client, fake: FakeOpenAI, conversation: str
) -> None:
    """The default window (128k) is far away: eight long turns compact nothing."""
    for index in range(8):
        say(http, conversation, long_text(index), streaming=False, include_compaction_messages=True)
    assert summarizer_requests(fake) == []
    assert all(m["role"] != "summary" for m in messages(http, conversation))
    assert len(roles_and_texts(chats(fake)[-1])) == 1 + 14 + 1  # system, 7 exchanges, input


# In Letta the streaming path does not forward include_compaction_messages (spec §2.3), and a
# compaction not reported as summary_message + event_message is yielded as a user_message
# holding the summary (spec §3.2).
def compacting_turn(
    http: httpx.Client, conversation: str, **options: Any
) -> tuple[Sent, dict[str, Any]]:
    """Long messages until a turn compacts: that turn's response, and the summary listed."""
    for index in range(12):
        before = [m for m in messages(http, conversation) if m["role"] == "summary"]
        body = {"messages": [{"role": "user", "content": long_text(index)}], **options}
        sent = send(http, conversation, body)
        summaries = [m for m in messages(http, conversation) if m["role"] == "summary"]
        if len(summaries) > len(before):
            return sent, summaries[-1]
    raise AssertionError("no turn compacted")


@pytest.mark.parametrize("flag", [True, False])
def test_a_streamed_turn_that_compacts_yields_the_summary_as_a_user_message(
    http: httpx.Client, flag: bool
) -> None:
    agent = agent_with(
        http, context_window_limit=SMALL_WINDOW, compaction_settings={"clip_chars": 300}
    )
    conversation = create_conversation(http, agent)
    sent, summary = compacting_turn(http, conversation, include_compaction_messages=flag)
    assert sent.status == 200
    assert "summary_message" not in sent.kinds and "event_message" not in sent.kinds
    yielded = sent.of("user_message")
    assert [(m["id"], m["content"]) for m in yielded] == [(summary["id"], summary["content"])]
    assert sent.kinds[-3:] == ["stop_reason", "usage_statistics", "[DONE]"]


def test_a_json_turn_that_compacts_without_the_flag_returns_the_summary_as_a_user_message(
    http: httpx.Client,
) -> None:
    agent = agent_with(
        http, context_window_limit=SMALL_WINDOW, compaction_settings={"clip_chars": 300}
    )
    conversation = create_conversation(http, agent)
    sent, summary = compacting_turn(http, conversation, streaming=False)
    assert sent.status == 200
    kinds = [m["message_type"] for m in sent.body["messages"]]
    assert kinds == ["user_message", "assistant_message"]
    assert sent.body["messages"][0]["id"] == summary["id"]
    assert sent.body["messages"][0]["content"] == summary["content"]
