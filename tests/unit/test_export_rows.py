"""The export's pure parts (service/export/): decoding stored events the quick way gives what
the application's mapper gives (upcasters included, on every golden log), and the rows of
messages and runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from domain import ids
from domain.conversation import Conversation
from domain.run import Run
from runtime.bootstrap import build
from runtime.settings import Settings
from service.export import MESSAGES, RUNS, columns_of
from service.export.decoding import EventDecoder, payload_json
from service.export.messages import Owner, message_row, summary_row
from service.export.runs import RunState
from service.services import Services

GOLDEN = Path(__file__).parents[1] / "golden"
OWNER = Owner("conv-x", "agent-y", "org-z")
AT = "2026-01-02T03:04:05.000006+00:00"


@pytest.fixture
def memory() -> Iterator[Services]:
    built = build(Settings(database_url="memory://"))
    yield built
    built.close()


def make(cls: Any, **fields: Any) -> Any:
    """A domain event (the classes' fields are not visible to the type checker)."""
    return cls(**fields)


def stored(services: Services, event: Any, by: dict[str, Any] | None = None) -> StoredEvent:
    """How the application stores ``event`` (with ``by``, if given)."""
    result = services.ctx.app.mapper.to_stored_event(event)
    if by is not None:
        state = json.loads(result.state)
        state["by"] = by
        result = StoredEvent(
            result.originator_id,
            result.originator_version,
            result.topic,
            json.dumps(state).encode(),
        )
    return result


def both_ways(decoder: EventDecoder, s: StoredEvent) -> tuple[Any, Any]:
    stream = str(s.originator_id)
    quick = decoder.read(stream, s.originator_version, s.topic, s.state, True)
    slow = decoder._slow(stream, s.originator_version, s.topic, s.state)
    return quick, slow


def same(quick: Any, slow: Any) -> None:
    assert quick[0] == slow[0]  # the time, as ISO 8601
    assert quick[1] == slow[1]  # by
    # The payload, as values of the same types (an integer is not a float).
    assert json.dumps(json.loads(quick[2])) == json.dumps(json.loads(slow[2]))
    assert type(quick[3]) is type(slow[3]) and vars(quick[3]) == vars(slow[3])


@pytest.mark.parametrize(
    "version", sorted(p.name for p in GOLDEN.iterdir() if (p / "log.jsonl").exists())
)
def test_the_quick_way_decodes_every_golden_event_as_the_mapper_does(
    memory: Services, version: str
) -> None:
    decoder = EventDecoder(memory.ctx.app)
    records = [
        json.loads(line)
        for line in (GOLDEN / version / "log.jsonl").read_text().split("\n")
        if line
    ]
    for record in records:
        if record["kind"] != "event":
            continue
        s = StoredEvent(
            UUID(record["originator_id"]),
            record["originator_version"],
            record["topic"],
            record["state"].encode(),
        )
        same(*both_ways(decoder, s))


def test_odd_states_take_the_slow_way_and_agree(memory: Services) -> None:
    decoder = EventDecoder(memory.ctx.app)
    stream = uuid4()
    now = datetime.now(UTC)
    events = [
        # A time inside the fields (a claim's lease): only the mapper turns it back.
        make(
            Conversation.RunClaimed,
            originator_id=stream,
            originator_version=3,
            timestamp=now,
            run_id="run-1",
            lease_until=now + timedelta(seconds=60),
            lapsed_run_id=None,
            holder="p",
        ),
        # An integer beyond 64 bits, which orjson does not read.
        make(
            Conversation.MessageAppended,
            originator_id=stream,
            originator_version=4,
            timestamp=now,
            message_id="message-1",
            role="user",
            message_type="user_message",
            content="big",
            run_id=None,
            step_id=None,
            otid=None,
            extra={"n": 2**70 + 1, "m": -(2**63) - 1, "f": 1.5e300, "s": "é\u2028\n"},
        ),
    ]
    for event in events:
        for by in (None, {"organization_id": "o", "user_id": "u", "key_id": None}):
            quick, slow = both_ways(decoder, stored(memory, event, by))
            same(quick, slow)
            assert quick[1] == by
    extra = json.loads(both_ways(decoder, stored(memory, events[1]))[0][2])["extra"]
    assert (extra["n"], extra["m"]) == (2**70 + 1, -(2**63) - 1)
    # A claim stored before ``holder`` existed is upcast, both ways.
    s = stored(memory, events[0])
    state = json.loads(s.state)
    del state["holder"], state["class_version"]
    old = StoredEvent(s.originator_id, s.originator_version, s.topic, json.dumps(state).encode())
    quick, slow = both_ways(decoder, old)
    same(quick, slow)
    assert quick[3].holder is None and json.loads(quick[2])["holder"] is None


def test_payloads_are_compact_json_of_any_value() -> None:
    when = datetime(2026, 1, 2, tzinfo=UTC)
    assert (
        payload_json({"a": [1, "é"], "t": when}) == '{"a":[1,"é"],"t":"2026-01-02T00:00:00+00:00"}'
    )
    assert json.loads(payload_json({"n": 2**70, "u": UUID(int=1)})) == {
        "n": 2**70,
        "u": "00000000-0000-0000-0000-000000000001",
    }


def appended(message_type: str, role: str, content: Any, **extra: Any) -> Any:
    return make(
        Conversation.MessageAppended,
        originator_id=uuid4(),
        originator_version=2,
        timestamp=datetime.now(UTC),
        message_id="message-1",
        role=role,
        message_type=message_type,
        content=content,
        run_id="run-1",
        step_id="step-1",
        otid=None,
        extra=extra,
    )


def row_of(e: Any) -> dict[str, Any]:
    return dict(zip([c.name for c in MESSAGES], message_row(e, 9, OWNER, AT), strict=True))


def test_message_rows() -> None:
    user = row_of(appended("user_message", "user", [{"type": "text", "text": "hi"}, {"x": 1}]))
    assert user == {
        "position": 9,
        "message_id": "message-1",
        "conversation_id": "conv-x",
        "agent_id": "agent-y",
        "organization_id": "org-z",
        "run_id": "run-1",
        "step_id": "step-1",
        "message_type": "user_message",
        "role": "user",
        "text": "hi",
        "tool_name": None,
        "tool_call_id": None,
        "tokens": None,
        "created_at": AT,
    }
    calls = [
        {"name": "web_search", "arguments": '{"q": 1}', "tool_call_id": "c1"},
        {"name": "fetch_webpage", "arguments": "{}", "tool_call_id": "c2"},
    ]
    call = row_of(appended("tool_call_message", "assistant", None, tool_calls=calls))
    assert call["tool_name"] == "web_search,fetch_webpage"
    assert call["text"] == 'web_search({"q": 1})\nfetch_webpage({})'
    answer = row_of(
        appended("tool_return_message", "tool", "42", name="web_search", tool_call_id="c1")
    )
    assert (answer["tool_name"], answer["tool_call_id"], answer["text"]) == (
        "web_search",
        "c1",
        "42",
    )
    thought = row_of(appended("reasoning_message", "assistant", None, reasoning="because"))
    assert thought["text"] == "because"
    counted = row_of(appended("assistant_message", "assistant", "ok", usage={"total_tokens": 7}))
    assert counted["tokens"] == 7
    summary = make(
        Conversation.Compacted,
        originator_id=uuid4(),
        originator_version=5,
        timestamp=datetime.now(UTC),
        summary_message_id="message-s",
        summary="they talked",
        content='{"summary": "they talked"}',
        keep_from=3,
        num_messages_before=4,
        num_messages_after=2,
        settings={},
        model="m",
        trigger="manual",
        run_id=None,
    )
    row = dict(zip([c.name for c in MESSAGES], summary_row(summary, 10, OWNER, AT), strict=True))
    assert (row["message_id"], row["role"], row["message_type"], row["text"]) == (
        "message-s",
        "summary",
        "user_message",
        "they talked",
    )


def run_events(end: str) -> list[Any]:
    run = Run(
        organization_id="org-z",
        agent_id="agent-y",
        conversation_id=None,
        stream_id=str(UUID(int=3)),
        run_type="send_message",
        background=True,
        request_config={},
        input_messages=[],
        model="openai/x",
    )
    run.finish_step("step-1", {"prompt_tokens": 10, "completion_tokens": 2}, [], 5)
    run.finish_step("step-2", {"prompt_tokens": 20, "completion_tokens": 3}, [], 5)
    if end == "completed":
        run.complete("max_steps", {"total_tokens": 999}, {"ttft_ns": 250_000_000})
    elif end == "failed":
        run.fail("llm_api_error", {"message": "x"}, {})
    elif end == "cancelled":
        run.cancel("asked")
    elif end == "deleted":
        run.complete("end_turn", {}, {})
        run.delete()
    return list(run.collect_events())


@pytest.mark.parametrize("end", ["running", "completed", "failed", "cancelled", "deleted"])
def test_run_rows_fold_every_event(end: str) -> None:
    events = run_events(end)
    state = RunState(f"run-{events[0].originator_id}")
    for e in events:
        state.apply(e)
    (row,) = [dict(zip([c.name for c in RUNS], state.row(), strict=True))]
    assert row["conversation_id"] == f"conv-{UUID(int=3)}"
    assert (row["agent_id"], row["organization_id"], row["model"]) == (
        "agent-y",
        "org-z",
        "openai/x",
    )
    assert (row["run_type"], row["background"], row["steps"]) == ("send_message", True, 2)
    # The steps' own usage (as tokens_per_day counts it), whatever the end says.
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (30, 5, 35)
    status = {"deleted": "completed"}.get(end, end)
    assert row["status"] == status and row["deleted"] == (end == "deleted")
    reasons = {"completed": "max_steps", "failed": "llm_api_error", "cancelled": "cancelled"}
    assert row["stop_reason"] == reasons.get(end, "end_turn" if end == "deleted" else None)
    if end == "running":
        assert row["completed_at"] is None and row["duration_seconds"] is None
    else:
        created = datetime.fromisoformat(row["created_at"])
        completed = datetime.fromisoformat(row["completed_at"])
        assert row["duration_seconds"] == (completed - created).total_seconds() >= 0
    assert row["ttft_seconds"] == (0.25 if end == "completed" else None)
    assert columns_of("runs", [state.row()])["id"] == [state.id]
    assert ids.is_valid(ids.RUN, state.id)
