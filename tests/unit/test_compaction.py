"""Compaction at the service level: the plan of each mode, the settings merge, the summary
message, the summarizer request, and what a compaction refuses to do (spec §2.8, §7;
decisions §12). The model is the ScriptedModel port fake (or the built-in offline model).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest

from adapters.builtin_model import summarize
from api.app import create_app
from domain import ids
from domain.agent import Agent
from domain.errors import NOTHING_TO_COMPACT, BadRequest, Conflict, InvalidArgument, NotFound
from runtime.bootstrap import build
from runtime.settings import Settings
from service.agents import AgentSpec, BlockSpec
from service.compaction import (
    DEFAULT_CLIP_CHARS,
    DEFAULT_CONTEXT_WINDOW,
    PROMPT_ALL,
    PROMPT_SLIDING,
    CompactionService,
    default_settings,
    effective_settings,
    estimate_tokens,
    packed_summary,
    plan,
    transcript,
)
from service.model import ModelError, ModelRequest, StreamItem
from service.services import Services
from service.turns import TurnRequest
from tests.frames import split_frames
from tests.scripted_model import ScriptedModel
from tests.unit.seed import ACTOR, append, listing, new_agent, new_conversation

TRUNCATED = "... [summary truncated to fit]"
SYSTEM_ALERT_ALL = (
    "Note: prior messages have been hidden from view due to conversation memory constraints.\n"
    "The following is a summary of the previous messages:\n "
)
SYSTEM_ALERT_SLIDING = (
    "Note: prior messages from the beginning of the conversation have been hidden from view "
    "due to conversation memory constraints.\nThe following is a summary of the previous "
    "messages:\n "
)


# -- helpers -------------------------------------------------------------------------------------


def context(*roles: str, text: str = "x") -> list[tuple[int, str, str]]:
    """A context as ``plan`` gets it: (position, role, text), the system message first."""
    found = [(2, "system", "the system prompt")]
    for index, role in enumerate(roles):
        found.append((3 + index, role, f"{text}{index}"))
    return found


def exchanges(count: int) -> tuple[str, ...]:
    return ("user", "assistant") * count


class GatedModel(ScriptedModel):
    """A ScriptedModel that also says when a request reached it (before waiting on release)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        self.entered.set()
        async for item in super().stream(request):
            yield item


class FailingFor(ScriptedModel):
    """A ScriptedModel whose one handle is down (a provider error); others answer."""

    def __init__(self, broken: str) -> None:
        super().__init__()
        self.broken = broken

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        if request.handle == self.broken:
            self.requests.append(request)
            raise ModelError("other", f"{self.broken} is down")
        async for item in super().stream(request):
            yield item


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
def scripted(model: ScriptedModel) -> Iterator[Services]:
    built = build(Settings(database_url="memory://"), model=model)
    yield built
    built.close()


def event_log(services: Services) -> list[tuple[int, str, str, int]]:
    """The whole event log: (position, event type, stream, version)."""
    return [
        (position, type(e).__qualname__, str(e.originator_id), e.originator_version)
        for position, e in services.ctx.log.read(0, 10**6, ())
    ]


def conversation_with(
    services: Services, count: int, model: str = "openai/gpt-4o-mini"
) -> tuple[str, str, list[str]]:
    """A conversation with ``count`` user/assistant exchanges: (conv id, uuid, message ids)."""
    agent = new_agent(services, model=model)
    row = new_conversation(services, agent.id)
    made: list[str] = []
    for index in range(count):
        made += append(services, row.id, f"question {index}")
        made += append(services, row.id, f"answer {index}", role="assistant")
    return row.conversation_id, row.id, made


def in_context(services: Services, conversation_id: str) -> list[str]:
    row = services.conversations.get(ACTOR, conversation_id)
    return services.conversations.in_context_ids([row])[row.id]


def compact(services: Services, path_id: str, request: dict[str, Any] | None = None) -> Any:
    return asyncio.run(services.compaction.compact(ACTOR, path_id, request))


# -- plan() --------------------------------------------------------------------------------------


def test_sliding_window_of_eleven_keeps_from_index_four() -> None:
    messages = context(*exchanges(5))  # N = 11
    chosen = plan(messages, "sliding_window", 0.3, DEFAULT_CONTEXT_WINDOW)
    assert chosen is not None
    assert chosen.mode == "sliding_window"
    assert chosen.keep_from == messages[4][0]  # cutoff round(0.4 * 11) = 4, an assistant
    assert messages[4][1] == "assistant"
    assert chosen.summarize == messages[1:4]
    assert (chosen.num_before, chosen.num_after) == (11, 2 + 11 - 4)


def test_self_compact_sliding_window_cuts_like_sliding_window() -> None:
    messages = context(*exchanges(5))
    chosen = plan(messages, "self_compact_sliding_window", 0.3, DEFAULT_CONTEXT_WINDOW)
    assert chosen is not None
    assert chosen.mode == "self_compact_sliding_window"
    assert chosen.keep_from == messages[4][0]
    assert chosen.summarize == messages[1:4]


def test_sliding_window_cuts_at_the_last_assistant_before_the_cutoff() -> None:
    # N = 11, cutoff 4, but messages[4] is a user message: the cut moves back to index 3.
    messages = context("user", "user", "assistant", "user", "user", "assistant", *exchanges(2))
    chosen = plan(messages, "sliding_window", 0.3, DEFAULT_CONTEXT_WINDOW)
    assert chosen is not None
    assert chosen.keep_from == messages[3][0]
    assert chosen.summarize == messages[1:3]
    assert chosen.num_after == 2 + 11 - 3


def test_sliding_window_evicts_more_until_the_rest_fits() -> None:
    # 30-character messages are 14 estimated tokens each; the system message 10.
    messages = context(*exchanges(5), text="m" * 29)
    assert estimate_tokens(messages[1][2]) == 14
    # From index 4 the rest is 10 + 7 * 14 = 108 tokens, from index 6 it is 80:
    # with a window of 120, 0.7 * 120 = 84 lets only the second cut through.
    chosen = plan(messages, "sliding_window", 0.3, 120)
    assert chosen is not None
    assert chosen.mode == "sliding_window"
    assert chosen.keep_from == messages[6][0]
    assert chosen.summarize == messages[1:6]


@pytest.mark.parametrize(
    ("roles", "window"),
    [
        # the only cut would keep nothing but the last message
        (("user", "assistant"), DEFAULT_CONTEXT_WINDOW),
        # no assistant message at all
        (("user", "user", "user"), DEFAULT_CONTEXT_WINDOW),
        # a cut exists, but what it keeps never fits 70% of the window
        (("user", "assistant", "user", "assistant", "user"), 10),
    ],
)
def test_sliding_window_without_a_usable_cut_falls_back_to_all(
    roles: tuple[str, ...], window: int
) -> None:
    messages = context(*roles)
    chosen = plan(messages, "sliding_window", 0.3, window)
    assert chosen is not None
    assert chosen.mode == "all"
    assert chosen.summarize == messages[1:]
    assert chosen.keep_from == 0
    assert (chosen.num_before, chosen.num_after) == (len(messages), 2)


def test_sliding_window_that_never_fits_the_window_falls_back_to_all() -> None:
    messages = context(*exchanges(5), text="m" * 299)
    chosen = plan(messages, "sliding_window", 0.3, 50)
    assert chosen is not None
    assert chosen.mode == "all"
    assert chosen.summarize == messages[1:]


@pytest.mark.parametrize("mode", ["all", "self_compact_all"])
def test_all_summarizes_everything_but_the_system_message(mode: str) -> None:
    messages = context(*exchanges(3))
    chosen = plan(messages, mode, 0.3, DEFAULT_CONTEXT_WINDOW)
    assert chosen is not None
    assert chosen.mode == mode
    assert chosen.summarize == messages[1:]
    assert chosen.keep_from == 0
    assert (chosen.num_before, chosen.num_after) == (7, 2)


@pytest.mark.parametrize("mode", ["all", "sliding_window"])
def test_nothing_to_reduce(mode: str) -> None:
    assert plan(context(), mode, 0.3, DEFAULT_CONTEXT_WINDOW) is None
    assert plan([], mode, 0.3, DEFAULT_CONTEXT_WINDOW) is None
    # [system, one message] -> [system, summary]: no fewer messages.
    chosen = plan(context("user"), mode, 0.3, DEFAULT_CONTEXT_WINDOW)
    assert chosen is None or chosen.num_after >= chosen.num_before


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_handle", "summarizer"),
    [
        ("openai/gpt-4o-mini", "openai/gpt-5-mini"),
        ("anthropic/claude-sonnet-4", "anthropic/claude-haiku-4-5"),
        ("google_ai/gemini-2.5-pro", "google_ai/gemini-2.5-flash"),
        ("together/llama-3", "together/llama-3"),  # no cheap default: the agent's own model
    ],
)
def test_default_settings(model_handle: str, summarizer: str) -> None:
    assert default_settings(model_handle, None) == {
        "model": summarizer,
        "model_settings": None,
        "prompt": PROMPT_SLIDING,
        "prompt_acknowledgement": False,
        "clip_chars": DEFAULT_CLIP_CHARS,
        "mode": "sliding_window",
        "sliding_window_percentage": 0.3,
    }


def test_default_settings_under_what_the_client_gave() -> None:
    settings = default_settings("openai/gpt-4o-mini", {"mode": "all", "clip_chars": 99})
    assert settings["mode"] == "all"
    assert settings["prompt"] == PROMPT_ALL  # the given mode's default prompt
    assert settings["clip_chars"] == 99
    assert settings["model"] == "openai/gpt-5-mini"
    given = default_settings("openai/gpt-4o-mini", {"model": "openai/gpt-4o", "prompt": "p"})
    assert (given["model"], given["prompt"], given["mode"]) == (
        "openai/gpt-4o",
        "p",
        "sliding_window",
    )


AGENT_SETTINGS = {
    "model": "openai/gpt-5-mini",
    "model_settings": {"temperature": 0.1},
    "prompt": "the agent's own prompt",
    "prompt_acknowledgement": True,
    "clip_chars": 1234,
    "mode": "sliding_window",
    "sliding_window_percentage": 0.4,
}


def test_effective_settings_without_a_request_are_the_agents() -> None:
    assert effective_settings(AGENT_SETTINGS, None) == AGENT_SETTINGS
    assert effective_settings(AGENT_SETTINGS, {}) == AGENT_SETTINGS


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", "openai/gpt-4o"),
        ("model_settings", {"temperature": 0.9}),
        ("prompt", "another prompt"),
        ("prompt_acknowledgement", False),
        ("clip_chars", 10),
        ("sliding_window_percentage", 0.5),
    ],
)
def test_effective_settings_overwrite_only_the_fields_sent(field: str, value: Any) -> None:
    before = dict(AGENT_SETTINGS)
    merged = effective_settings(AGENT_SETTINGS, {field: value})
    assert merged == {**AGENT_SETTINGS, field: value}
    assert before == AGENT_SETTINGS  # the agent's settings are not touched


@pytest.mark.parametrize(
    ("mode", "prompt"),
    [
        ("all", PROMPT_ALL),
        ("self_compact_all", PROMPT_ALL),
        ("self_compact_sliding_window", PROMPT_SLIDING),
    ],
)
def test_a_new_mode_without_a_prompt_takes_its_default_prompt(mode: str, prompt: str) -> None:
    merged = effective_settings(AGENT_SETTINGS, {"mode": mode})
    assert merged == {**AGENT_SETTINGS, "mode": mode, "prompt": prompt}


def test_the_same_mode_or_a_prompt_given_keeps_the_prompt() -> None:
    same = effective_settings(AGENT_SETTINGS, {"mode": "sliding_window"})
    assert same["prompt"] == "the agent's own prompt"
    given = effective_settings(AGENT_SETTINGS, {"mode": "all", "prompt": "mine"})
    assert (given["mode"], given["prompt"]) == ("all", "mine")


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        effective_settings(AGENT_SETTINGS, {"mode": "everything"})


def test_context_window_agent_limit_then_table_then_default(scripted: Services) -> None:
    def agent(**settings: Any) -> Agent:
        row = scripted.agents.create(
            ACTOR,
            AgentSpec(
                name="w",
                model="openai/gpt-4o-mini",
                memory_blocks=[BlockSpec("human", "h")],
                settings=settings,
            ),
        )
        found = scripted.ctx.app.get(Agent, ids.to_uuid(row.id))
        assert isinstance(found, Agent)
        return found

    table = CompactionService(scripted.ctx, ScriptedModel(), {"openai/gpt-4o-mini": 600})
    assert table.context_window("openai/gpt-4o-mini", agent(context_window_limit=900)) == 900
    assert table.context_window("openai/gpt-4o-mini", agent()) == 600
    assert table.context_window("openai/other", agent()) == DEFAULT_CONTEXT_WINDOW


def test_agents_get_default_compaction_settings_at_creation(scripted: Services) -> None:
    async def create() -> list[dict[str, Any]]:
        transport = httpx.ASGITransport(app=create_app(scripted))
        async with httpx.AsyncClient(transport=transport, base_url="http://convlog") as http:
            found = []
            for extra in ({}, {"compaction_settings": {"mode": "all"}}):
                response = await http.post(
                    "/v1/agents/",
                    json={"name": "d", "model": "openai/gpt-4o-mini", **extra},
                )
                assert response.status_code == 200, response.text
                found.append(response.json()["compaction_settings"])
            return found

    plain, all_mode = asyncio.run(create())
    assert plain == default_settings("openai/gpt-4o-mini", None)
    assert plain["mode"] == "sliding_window"
    assert plain["model"] == "openai/gpt-5-mini"
    assert plain["prompt"] == PROMPT_SLIDING
    assert all_mode["mode"] == "all"
    assert all_mode["prompt"] == PROMPT_ALL
    assert all_mode["model"] == "openai/gpt-5-mini"


# -- the summary message and the summarizer request -------------------------------------------

NOW = datetime(2025, 3, 4, 15, 6, 7, tzinfo=UTC)


def test_packed_summary_wording_for_all() -> None:
    packed = json.loads(packed_summary("They talked.", "all", NOW))
    assert packed == {
        "type": "system_alert",
        "message": SYSTEM_ALERT_ALL + "They talked.",
        "time": "2025-03-04 03:06:07 PM UTC+0000",
    }
    assert json.loads(packed_summary("s", "self_compact_all", NOW))["message"].startswith(
        SYSTEM_ALERT_ALL
    )


@pytest.mark.parametrize("mode", ["sliding_window", "self_compact_sliding_window"])
def test_packed_summary_wording_for_sliding_window(mode: str) -> None:
    packed = json.loads(packed_summary("They talked.", mode, NOW))
    assert packed["type"] == "system_alert"
    assert packed["message"] == SYSTEM_ALERT_SLIDING + "They talked."


def test_transcript_format() -> None:
    text = transcript([(3, "user", 'say "hi"'), (4, "assistant", "hi"), (5, "summary", "{s}")])
    assert text == (
        "<start_transcript>\n"
        '{"role": "user", "content": "say \\"hi\\""}\n'
        '{"role": "assistant", "content": "hi"}\n'
        '{"role": "user", "content": "{s}"}\n'  # a summary is summarized as a user message
        "<end_transcript>\n. Generate the summary."
    )


def echo(text: str, count: int = 2) -> str:
    """What ScriptedModel answers to a request whose last message is ``text``."""
    return f"echo: {text} [context={count}]"


def test_sliding_window_compaction_through_the_service(
    scripted: Services, model: ScriptedModel
) -> None:
    conversation, stream, made = conversation_with(scripted, 5)
    system = in_context(scripted, conversation)[0]
    done = compact(scripted, conversation)

    request = model.requests[-1]
    assert request.handle == "openai/gpt-5-mini"
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.messages[0].content == PROMPT_SLIDING
    expected_transcript = transcript(
        [(0, "user", "question 0"), (0, "assistant", "answer 0"), (0, "user", "question 1")]
    )
    assert request.messages[1].content == expected_transcript
    assert done.summary == echo(expected_transcript)
    assert (done.num_messages_before, done.num_messages_after, done.mode) == (
        11,
        9,
        "sliding_window",
    )
    assert in_context(scripted, conversation) == [system, done.summary_message_id, *made[3:]]

    items = listing(scripted, conversation)
    assert [i["id"] for i in items] == [system, *made, done.summary_message_id]
    summary = items[-1]
    assert (summary["message_type"], summary["role"]) == ("user_message", "summary")
    packed = json.loads(summary["content"])
    assert packed["message"] == SYSTEM_ALERT_SLIDING + done.summary

    compacted = [
        e for _, e in scripted.ctx.log.read(0, 10**6, ()) if type(e).__name__ == "Compacted"
    ]
    assert len(compacted) == 1
    event = compacted[0]
    assert str(event.originator_id) == stream
    assert event.summary == done.summary
    assert event.summary_message_id == done.summary_message_id
    assert event.trigger == "manual"
    assert event.model == "openai/gpt-5-mini"
    assert (event.num_messages_before, event.num_messages_after) == (11, 9)
    assert event.settings["mode"] == "sliding_window"


def test_all_compaction_through_the_service(scripted: Services, model: ScriptedModel) -> None:
    conversation, _, made = conversation_with(scripted, 3)
    system = in_context(scripted, conversation)[0]
    done = compact(scripted, conversation, {"mode": "all"})
    assert model.requests[-1].messages[0].content == PROMPT_ALL
    assert model.requests[-1].messages[1].content.count("\n{") == len(made)
    assert (done.num_messages_before, done.num_messages_after) == (7, 2)
    assert in_context(scripted, conversation) == [system, done.summary_message_id]
    assert listed(scripted, conversation) == [system, *made, done.summary_message_id]
    packed = json.loads(listing(scripted, conversation)[-1]["content"])
    assert packed["message"] == SYSTEM_ALERT_ALL + done.summary


def listed(services: Services, conversation_id: str) -> list[str]:
    return [i["id"] for i in listing(services, conversation_id)]


def test_a_second_compaction_summarizes_the_first_summary(
    scripted: Services, model: ScriptedModel
) -> None:
    conversation, stream, made = conversation_with(scripted, 2)
    system = in_context(scripted, conversation)[0]
    first = compact(scripted, conversation, {"mode": "all"})
    later = append(scripted, stream, "after") + append(scripted, stream, "ok", role="assistant")
    second = compact(scripted, conversation, {"mode": "all"})
    lines = model.requests[-1].messages[1].content.splitlines()[1:-2]
    assert [json.loads(line)["role"] for line in lines] == ["user", "user", "assistant"]
    assert json.loads(json.loads(lines[0])["content"])["type"] == "system_alert"
    assert second.num_messages_before == 4
    assert in_context(scripted, conversation) == [system, second.summary_message_id]
    assert listed(scripted, conversation) == [
        system,
        *made,
        first.summary_message_id,
        *later,
        second.summary_message_id,
    ]


def test_the_next_turn_sees_system_summary_and_the_kept_messages(
    scripted: Services, model: ScriptedModel
) -> None:
    conversation, _, _ = conversation_with(scripted, 5)
    system_text = listing(scripted, conversation)[0]["content"]
    done = compact(scripted, conversation)
    summary_text = listing(scripted, conversation)[-1]["content"]

    async def turn() -> None:
        request = TurnRequest(messages=[{"role": "user", "content": "next"}], streaming=False)
        started = await scripted.turns.begin(ACTOR, conversation, request)
        result = await scripted.turns.result_of(started)
        assert result.stop_reason == "end_turn"

    asyncio.run(turn())
    sent = [(m.role, m.content) for m in model.requests[-1].messages]
    kept = [("assistant", "answer 1")]
    for index in range(2, 5):
        kept += [("user", f"question {index}"), ("assistant", f"answer {index}")]
    assert sent == [("system", system_text), ("user", summary_text), *kept, ("user", "next")]
    assert len(sent) == done.num_messages_after + 1


def test_clip_chars_truncates_the_summary(scripted: Services) -> None:
    conversation, _, _ = conversation_with(scripted, 3)
    done = compact(scripted, conversation, {"mode": "all", "clip_chars": 20})
    assert done.summary == "echo: <start_transcript>"[:20] + TRUNCATED
    packed = json.loads(listing(scripted, conversation)[-1]["content"])
    assert packed["message"].endswith(TRUNCATED)


def test_a_summary_within_clip_chars_is_kept_whole(scripted: Services) -> None:
    conversation, _, _ = conversation_with(scripted, 1)
    whole = compact(scripted, conversation, {"mode": "all", "clip_chars": 10_000})
    assert not whole.summary.endswith(TRUNCATED)
    assert whole.summary.startswith("echo: <start_transcript>")


def test_the_built_in_model_summarizes_deterministically(services: Services) -> None:
    conversation, _, _ = conversation_with(services, 5, model="convlog/builtin")
    done = compact(services, conversation, {"mode": "all"})
    lines = [
        json.dumps({"role": role, "content": f"{word} {i}"})
        for i in range(5)
        for role, word in (("user", "question"), ("assistant", "answer"))
    ]
    assert done.summary == summarize("<start_transcript>\n" + "\n".join(lines))
    assert done.summary.startswith("10 earlier messages (5 from the user).")


def test_self_compact_uses_the_agents_own_model(scripted: Services, model: ScriptedModel) -> None:
    conversation, _, _ = conversation_with(scripted, 5)
    done = compact(scripted, conversation, {"mode": "self_compact_sliding_window"})
    assert model.requests[-1].handle == "openai/gpt-4o-mini"
    assert model.requests[-1].messages[0].content == PROMPT_SLIDING
    assert done.mode == "self_compact_sliding_window"
    packed = json.loads(listing(scripted, conversation)[-1]["content"])
    assert packed["message"].startswith(SYSTEM_ALERT_SLIDING)


def test_self_compact_falls_back_to_the_summarizer_when_the_agents_model_fails() -> None:
    model = FailingFor("openai/gpt-4o-mini")
    built = build(Settings(database_url="memory://"), model=model)
    try:
        conversation, _, _ = conversation_with(built, 5)
        done = compact(built, conversation, {"mode": "self_compact_all"})
        assert [r.handle for r in model.requests] == ["openai/gpt-4o-mini", "openai/gpt-5-mini"]
        assert done.summary.startswith("echo: <start_transcript>")
    finally:
        built.close()


def test_agent_direct_compaction(scripted: Services) -> None:
    agent = new_agent(scripted)
    own = str(ids.default_conversation_id(ids.to_uuid(agent.id)))
    made = []
    for index in range(3):
        made += append(scripted, own, f"q{index}")
        made += append(scripted, own, f"a{index}", role="assistant")
    other = new_conversation(scripted, agent.id)
    other_before = listing(scripted, other.conversation_id)
    done = compact(scripted, agent.id, {"mode": "all"})
    items = listing(scripted, agent.id)
    assert [i["id"] for i in items][1:] == [*made, done.summary_message_id]
    assert items[-1]["role"] == "summary"
    row = scripted.ctx.conversations.get_any(own)
    assert row is not None and row.summary_position is not None
    assert listing(scripted, other.conversation_id) == other_before


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("request_settings", [None, {"mode": "all"}, {"mode": "sliding_window"}])
def test_a_fresh_conversation_has_nothing_to_compact_and_writes_nothing(
    scripted: Services, model: ScriptedModel, request_settings: dict[str, Any] | None
) -> None:
    agent = new_agent(scripted)
    conversation = new_conversation(scripted, agent.id).conversation_id
    before = event_log(scripted)
    with pytest.raises(BadRequest) as caught:
        compact(scripted, conversation, request_settings)
    assert str(caught.value) == NOTHING_TO_COMPACT
    assert event_log(scripted) == before


def test_one_message_is_nothing_to_reduce(scripted: Services) -> None:
    agent = new_agent(scripted)
    row = new_conversation(scripted, agent.id)
    append(scripted, row.id, "only")
    before = event_log(scripted)
    for settings in (None, {"mode": "all"}):
        with pytest.raises(BadRequest):
            compact(scripted, row.conversation_id, settings)
    assert event_log(scripted) == before


def test_an_unknown_mode_writes_nothing(scripted: Services) -> None:
    conversation, _, _ = conversation_with(scripted, 3)
    before = event_log(scripted)
    with pytest.raises(InvalidArgument):
        compact(scripted, conversation, {"mode": "bogus"})
    assert event_log(scripted) == before


def test_a_failing_summarizer_writes_nothing(scripted: Services, model: ScriptedModel) -> None:
    conversation, _, _ = conversation_with(scripted, 3)
    before = event_log(scripted)
    model.fail = "rate_limit"
    with pytest.raises(ModelError) as caught:
        compact(scripted, conversation, {"mode": "all"})
    assert caught.value.kind == "rate_limit"
    assert event_log(scripted) == before


def test_unknown_conversations_and_agents_are_not_found(scripted: Services) -> None:
    agent = new_agent(scripted)
    unknown = f"conv-{UUID(int=5, version=4)}"
    with pytest.raises(NotFound):
        compact(scripted, unknown)
    with pytest.raises(NotFound):
        compact(scripted, f"agent-{UUID(int=6, version=4)}")
    # An agent's own context is reached through its agent id only.
    own = ids.format_id(ids.CONVERSATION, ids.default_conversation_id(ids.to_uuid(agent.id)))
    with pytest.raises(NotFound):
        compact(scripted, own)
    row = new_conversation(scripted, agent.id)
    scripted.conversations.delete(ACTOR, row.conversation_id)
    with pytest.raises(NotFound):
        compact(scripted, row.conversation_id)


def test_compaction_is_refused_while_a_run_is_active(
    scripted: Services, model: ScriptedModel
) -> None:
    conversation, _, _ = conversation_with(scripted, 3)

    async def scenario() -> None:
        model.release = asyncio.Event()
        request = TurnRequest(messages=[{"role": "user", "content": "slow"}])
        turn = await scripted.turns.begin(ACTOR, conversation, request)
        before = event_log(scripted)
        with pytest.raises(Conflict):
            await scripted.compaction.compact(ACTOR, conversation, {"mode": "all"})
        assert event_log(scripted) == before
        model.release.set()
        assert (await scripted.turns.result_of(turn)).stop_reason == "end_turn"
        model.release = None
        done = await scripted.compaction.compact(ACTOR, conversation, {"mode": "all"})
        assert done.num_messages_before == 9  # system + 3 exchanges + the turn's two

    asyncio.run(scenario())


def test_a_message_appended_while_summarizing_refuses_the_compaction() -> None:
    model = GatedModel()
    built = build(Settings(database_url="memory://"), model=model)
    try:
        conversation, stream, _ = conversation_with(built, 3)

        async def scenario() -> None:
            model.release = asyncio.Event()
            task = asyncio.create_task(
                built.compaction.compact(ACTOR, conversation, {"mode": "all"})
            )
            await model.entered.wait()
            append(built, stream, "meanwhile")
            before = event_log(built)
            model.release.set()
            with pytest.raises(Conflict):
                await task
            assert event_log(built) == before

        asyncio.run(scenario())
        assert listing(built, conversation)[-1]["content"] == "meanwhile"
        assert all(i["role"] != "summary" for i in listing(built, conversation))
    finally:
        built.close()


# -- automatic compaction (spec §3.2) ------------------------------------------------------------


class SmallContext(ScriptedModel):
    """A provider that refuses (context_window) any chat longer than ``limit`` messages."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamItem]:
        summarizing = request.messages[-1].content.startswith("<start_transcript>")
        if not summarizing and len(request.messages) > self.limit:
            self.requests.append(request)
            raise ModelError("context_window", "maximum context length exceeded")
        async for item in super().stream(request):
            yield item


def run_turns(
    services: Services, conversation: str, texts: list[str], **options: Any
) -> list[tuple[Any, Any]]:
    async def run() -> list[tuple[Any, Any]]:
        found = []
        for text in texts:
            request = TurnRequest(messages=[{"role": "user", "content": text}], **options)
            turn = await services.turns.begin(ACTOR, conversation, request)
            found.append((turn, await services.turns.result_of(turn)))
        return found

    return asyncio.run(run())


def compactions(services: Services) -> list[Any]:
    return [e for _, e in services.ctx.log.read(0, 10**6, ()) if type(e).__name__ == "Compacted"]


def small_agent_conversation(services: Services) -> str:
    agent = services.agents.create(
        ACTOR,
        AgentSpec(
            name="small",
            model="openai/gpt-4o-mini",
            memory_blocks=[BlockSpec("human", "The user is Ann.")],
            settings={
                "compaction_settings": default_settings("openai/gpt-4o-mini", {"clip_chars": 300})
            },
        ),
    )
    return new_conversation(services, agent.id).conversation_id


def test_a_turn_that_would_not_fit_compacts_first() -> None:
    model = ScriptedModel()
    built = build(
        Settings(database_url="memory://", context_windows={"openai/gpt-4o-mini": 1500}),
        model=model,
    )
    try:
        conversation = small_agent_conversation(built)
        texts = [f"turn {i}: " + "lorem ipsum " * 50 for i in range(6)]
        results = run_turns(
            built, conversation, texts, streaming=False, include_compaction_messages=True
        )
        assert [r.stop_reason for _, r in results] == ["end_turn"] * 6
        done = compactions(built)
        assert done and all(e.trigger == "context_window_exceeded" for e in done)
        noticed = [t for t, _ in results if t.notices]
        assert len(noticed) == len(done)
        for turn in noticed:
            assert [n["message_type"] for n in turn.notices] == ["summary_message", "event_message"]
            assert turn.notices[0]["compaction_stats"]["context_window"] == 1500
        last = model.requests[-1]
        assert last.messages[1].role == "user"
        assert json.loads(last.messages[1].content)["type"] == "system_alert"
        assert texts[0] not in [m.content for m in last.messages]
        assert [i["content"] for i in listing(built, conversation) if i["role"] == "user"] == texts
    finally:
        built.close()


def test_a_provider_context_window_error_compacts_and_retries() -> None:
    model = SmallContext(limit=8)
    built = build(Settings(database_url="memory://"), model=model)
    try:
        conversation = small_agent_conversation(built)
        texts = [f"short {i}" for i in range(6)]
        results = run_turns(built, conversation, texts, streaming=False)
        assert [r.stop_reason for _, r in results] == ["end_turn"] * 6
        assert compactions(built)
        last = model.requests[-1]
        assert len(last.messages) <= 8
        assert json.loads(last.messages[1].content)["type"] == "system_alert"
        assert [i["content"] for i in listing(built, conversation) if i["role"] == "user"] == texts
    finally:
        built.close()


def terse_agent_conversation(services: Services, count: int) -> str:
    """A conversation of an agent with a short system prompt, ``count`` short exchanges long."""
    agent = services.agents.create(
        ACTOR,
        AgentSpec(
            name="terse",
            system="You are terse.",
            model="openai/gpt-4o-mini",
            settings={
                "compaction_settings": default_settings("openai/gpt-4o-mini", {"clip_chars": 300})
            },
        ),
    )
    row = new_conversation(services, agent.id)
    for index in range(count):
        append(services, row.id, f"question number {index:02d} is here.")
        append(services, row.id, f"answer number {index:02d} is here!!", role="assistant")
    return row.conversation_id


def stream_turn(services: Services, conversation: str, **options: Any) -> list[dict[str, Any]]:
    """One streamed turn (a 90-character input); its data frames, decoded."""

    async def run() -> list[str]:
        request = TurnRequest(messages=[{"role": "user", "content": "x" * 90}], **options)
        turn = await services.turns.begin(ACTOR, conversation, request)
        return split_frames([frame async for frame in services.turns.frames_of(turn)])

    frames = asyncio.run(run())
    assert frames[-1] == "data: [DONE]\n\n"
    return [json.loads(f.removeprefix("data: ")) for f in frames[:-1] if f.startswith("data: ")]


# A window of 400 tokens compacts the 24 short messages before the turn; the provider then
# still refuses more than ``limit`` messages, so the turn compacts a second time.
SMALL_WINDOW = {"openai/gpt-4o-mini": 430}  # the terse prompt, metadata, a few messages


def test_two_compactions_in_one_turn_report_both() -> None:
    built = build(
        Settings(database_url="memory://", context_windows=SMALL_WINDOW), model=SmallContext(12)
    )
    try:
        conversation = terse_agent_conversation(built, 12)
        [(turn, result)] = run_turns(
            built, conversation, ["x" * 90], streaming=False, include_compaction_messages=True
        )
        assert result.stop_reason == "end_turn"
        done = compactions(built)
        assert len(done) == 2
        assert [n["message_type"] for n in turn.notices] == [
            "summary_message",
            "event_message",
            "summary_message",
            "event_message",
        ]
        assert [n["id"] for n in turn.notices[::2]] == [e.summary_message_id for e in done]
    finally:
        built.close()


def test_two_compactions_in_one_turn_stream_each_message_once() -> None:
    built = build(
        Settings(database_url="memory://", context_windows=SMALL_WINDOW), model=SmallContext(12)
    )
    try:
        conversation = terse_agent_conversation(built, 12)
        payloads = stream_turn(built, conversation, include_compaction_messages=True)
        assert payloads[-2:][0] == {"message_type": "stop_reason", "stop_reason": "end_turn"}
        assert len(compactions(built)) == 2
        message_ids = [p["id"] for p in payloads if "id" in p]
        assert len(message_ids) == len(set(message_ids)), message_ids
    finally:
        built.close()


def test_a_provider_that_keeps_refusing_gets_more_compactions() -> None:
    model = SmallContext(10)
    built = build(Settings(database_url="memory://", context_windows=SMALL_WINDOW), model=model)
    try:
        conversation = terse_agent_conversation(built, 12)
        [(_, result)] = run_turns(built, conversation, ["x" * 90], streaming=False)
        assert result.stop_reason == "end_turn", result.error
        assert len(model.requests[-1].messages) <= 10
    finally:
        built.close()
