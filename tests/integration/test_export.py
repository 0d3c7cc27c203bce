"""``convlog export`` against real stores: read back with pyarrow (and DuckDB), the tables
equal the log — every position, stream, version, type, time, actor, payload and hash — over
random command sequences (messages of any text and extra JSON, tool calls, runs that finish
every way, claims with their lease times, updates, compactions), on SQLite, PostgreSQL and in
memory; incremental exports (``--since``) add up to a full one; the rows of a conversation
with a real (scripted) turn; the CLI's refusals.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.export_files import clear, open_sink
from adapters.export_pages import log_pages
from domain import ids
from domain.conversation import Conversation
from domain.run import Run
from runtime import cli
from runtime.bootstrap import build
from service.export import TABLES, Exporter, Result, SharedPages
from service.services import Services
from tests.conftest import settings_for
from tests.scripted_model import Say, ScriptedModel
from tests.unit.seed import ACTOR, listed_ids, load, new_agent, new_conversation

FEW = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FEWER = settings(FEW, max_examples=6)
TIMES = {t: {c.name for c in cols if c.kind == "time"} for t, cols in TABLES.items()}


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    built = build(settings_for(request.param, tmp_path, request), model=ScriptedModel())
    yield built
    built.close()


# -- exporting and reading back -------------------------------------------------------------------


def export(
    services: Services,
    out: Path,
    file_format: str = "parquet",
    since: int = 0,
    conversation: str | None = None,
    page_size: int = 7,  # small pages: rows meet page boundaries
    workers: int = 0,
) -> Result:
    app, chain = services.ctx.app, services.ctx.log.chain
    pages = log_pages(app.recorder, chain)
    exporter = Exporter(app, chain, pages, page_size=page_size)
    plan = exporter.plan(since, conversation)
    clear(out)
    sink = open_sink(file_format, out)
    result = exporter.run(plan, sink, workers=workers)
    sink.close()
    # Forked workers make the rows where the pages allow it (PostgreSQL, a whole log).
    shared = isinstance(pages, SharedPages) and conversation is None
    assert result.workers == (workers if shared else 0)
    return result


def read(out: Path, table: str) -> list[dict[str, Any]]:
    """A table as written (Parquet or JSON lines), times as datetimes."""
    parquet = out / f"{table}.parquet"
    if parquet.exists():
        rows: list[dict[str, Any]] = pq.read_table(parquet).to_pylist()
        return rows
    lines = (out / f"{table}.jsonl").read_bytes().split(b"\n")  # only "\n" ends a line
    found = [json.loads(line) for line in lines if line]
    for row in found:
        for name in TIMES[table]:
            if row[name] is not None:
                row[name] = datetime.fromisoformat(row[name])
    return found


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def logged(services: Services, after: int = 0) -> list[dict[str, Any]]:
    """The log after a position as the ``events`` table should have it, decoded by the
    application's own mapper."""
    app, chain = services.ctx.app, services.ctx.log.chain
    rows = []
    for e in chain.positions(after, chain.end()):
        assert e.topic is not None and e.state is not None
        event, by = app.decode(StoredEvent(e.stream_id, e.version, e.topic, e.state))
        fields = dict(vars(event))
        for key in ("originator_id", "originator_version"):
            fields.pop(key)
        at = fields.pop("timestamp")
        rows.append(
            {
                "position": e.position,
                "stream_id": str(e.stream_id),
                "version": e.version,
                "type": e.topic,
                "timestamp": at,
                "actor": by,
                "payload": canonical(json.dumps(fields, default=_plain)),
                "hash": e.stream_hash.hex() if e.stream_hash else None,
                "log_hash": e.log_hash.hex() if e.log_hash else None,
            }
        )
    return rows


def canonical(text: str) -> str:
    """JSON text compared as values of the same types (an integer is not a float)."""
    return json.dumps(json.loads(text), sort_keys=True)


def exported_events(out: Path) -> list[dict[str, Any]]:
    return [{**row, "payload": canonical(row["payload"])} for row in read(out, "events")]


def latest_runs(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A run's latest row wins (the highest position)."""
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["id"] not in found or row["position"] >= found[row["id"]]["position"]:
            found[row["id"]] = row
    return found


# -- random command sequences --------------------------------------------------------------------


# Any text but NUL, which PostgreSQL's text columns (the views) refuse, as the API does.
def text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=max_size)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | text(20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text(8), inner),
    max_leaves=8,
)
CONTENT = text(40) | st.lists(
    st.fixed_dictionaries({"type": st.just("text"), "text": text(20)}), max_size=3
)
USAGE = st.fixed_dictionaries(
    {"prompt_tokens": st.integers(0, 10_000), "completion_tokens": st.integers(0, 10_000)}
)
COMMAND = st.one_of(
    st.tuples(st.just("conversation")),
    st.tuples(
        st.just("message"),
        st.integers(0, 5),
        st.sampled_from(["user", "assistant", "system"]),
        CONTENT,
        st.dictionaries(text(8), JSON, max_size=3),
    ),
    st.tuples(st.just("tool"), st.integers(0, 5), text(12), JSON),
    st.tuples(
        st.just("run"),
        st.integers(0, 5),
        st.lists(USAGE, max_size=3),
        st.sampled_from(["complete", "fail", "cancel", "running", "delete"]),
    ),
    st.tuples(st.just("finish"), st.integers(0, 5)),
    st.tuples(st.just("claim"), st.integers(0, 5)),
    st.tuples(st.just("update"), st.integers(0, 5), st.dictionaries(text(8), JSON)),
    st.tuples(st.just("compact"), st.integers(0, 5), text(30)),
)


class World:
    """What the commands act on: an agent, its conversations, the runs left running."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.agent_id = new_agent(services).id
        self.conversations = [new_conversation(services, self.agent_id).id]
        self.running: list[UUID] = []

    def conversation(self, index: int) -> Conversation:
        return load(self.services, self.conversations[index % len(self.conversations)])

    def apply(self, command: tuple[Any, ...]) -> None:
        app = self.services.ctx.app
        kind = command[0]
        if kind == "conversation":
            self.conversations.append(new_conversation(self.services, self.agent_id).id)
        elif kind == "message":
            _, index, role, content, extra = command
            c = self.conversation(index)
            c.append_message(ids.new(ids.MESSAGE), role, f"{role}_message", content, extra=extra)
            app.save(c)  # saved without an actor: as events from before 0.4.0 were
        elif kind == "tool":
            _, index, name, arguments = command
            c = self.conversation(index)
            call = {"name": name, "arguments": json.dumps(arguments), "tool_call_id": "call-1"}
            c.append_message(
                ids.new(ids.MESSAGE),
                "assistant",
                "tool_call_message",
                None,
                extra={"tool_call": call, "tool_calls": [call]},
            )
            c.append_message(
                ids.new(ids.MESSAGE),
                "tool",
                "tool_return_message",
                json.dumps(arguments),
                extra={"name": name, "tool_call_id": "call-1", "status": "success"},
            )
            app.save_new(ACTOR, c)
        elif kind == "run":
            _, index, steps, end = command
            run = self._run(index)
            for usage in steps:
                run.finish_step(ids.new(ids.STEP), usage, [], 1_000)
            self._end(run, end)
        elif kind == "finish" and self.running:
            found: Any = app.repository.get(self.running.pop(0))
            assert isinstance(found, Run)
            found.complete("max_steps", {}, {"ttft_ns": 5, "total_duration_ns": 9})
            app.save_new(ACTOR, found)
        elif kind == "claim":
            c = self.conversation(command[1])
            if c.active_run_id is None:
                now = datetime.now(UTC)
                run_id = ids.new(ids.RUN)
                c.claim_run(run_id, now, now + timedelta(seconds=60), "test")
                c.release_run(run_id, "completed")
                app.save_new(ACTOR, c)
        elif kind == "update":
            c = self.conversation(command[1])
            c.update({"model_settings": command[2], "summary": "s"}, ACTOR.user_id)
            app.save(c)
        elif kind == "compact":
            c = self.conversation(command[1])
            if c.active_run_id is None:
                c.compact(
                    summary_message_id=ids.new(ids.MESSAGE),
                    summary=command[2],
                    content=json.dumps({"summary": command[2]}),
                    keep_from=c.version,
                    num_messages_before=2,
                    num_messages_after=1,
                    settings={"mode": "all"},
                    model="openai/x",
                    trigger="manual",
                )
                app.save_new(ACTOR, c)

    def _run(self, index: int) -> Run:
        stream = self.conversations[index % len(self.conversations)]
        return Run(
            organization_id=ACTOR.organization_id,
            agent_id=self.agent_id,
            conversation_id=ids.format_id(ids.CONVERSATION, UUID(stream)),
            stream_id=stream,
            run_type="send_message",
            background=False,
            request_config={"include_return_message_types": None},
            input_messages=[{"role": "user", "content": "hi", "otid": "o-1"}],
            model="openai/gpt-4o-mini",
        )

    def _end(self, run: Run, end: str) -> None:
        app = self.services.ctx.app
        if end == "complete":
            run.complete("end_turn", {"total_tokens": 1}, {"ttft_ns": 1_000_000})
        elif end == "fail":
            run.fail("llm_api_error", {"type": "x", "message": "boom"}, {})
        elif end == "cancel":
            run.cancel("the client asked")
        elif end == "delete":
            run.complete("end_turn", {}, {})
            run.delete()
        app.save_new(ACTOR, run)
        if end == "running":
            self.running.append(run.id)


def check_export(
    services: Services, out: Path, file_format: str, since: int = 0, workers: int = 0
) -> None:
    """The export's three tables against the log and the aggregates."""
    result = export(services, out, file_format, since=since, workers=workers)
    expected = logged(services, since)
    assert exported_events(out) == expected
    assert result.counts["events"] == len(expected)
    assert result.next_since == services.ctx.log.chain.end()
    # messages: one per appended message and per compaction summary, in log order
    appended = [
        (r["position"], json.loads(r["payload"])["message_id"])
        for r in expected
        if r["type"] == Conversation.MessageAppended.TOPIC
    ] + [
        (r["position"], json.loads(r["payload"])["summary_message_id"])
        for r in expected
        if r["type"] == Conversation.Compacted.TOPIC
    ]
    messages = read(out, "messages")
    assert [(m["position"], m["message_id"]) for m in messages] == sorted(appended)
    streams = {r["position"]: r["stream_id"] for r in expected}
    for m in messages:
        assert m["conversation_id"] == f"conv-{streams[m['position']]}"
        assert m["agent_id"] is not None and m["organization_id"] == ACTOR.organization_id
    # runs: each run touched after ``since`` once, as the aggregate itself has it
    touched = {r["stream_id"] for r in expected if r["type"].startswith("convlog.Run.")}
    runs = read(out, "runs")
    assert sorted(r["id"] for r in runs) == sorted(f"run-{s}" for s in touched)
    for row in runs:
        run: Any = services.ctx.app.repository.get(UUID(row["id"].removeprefix("run-")))
        assert isinstance(run, Run)
        assert (row["status"], row["stop_reason"], row["steps"], row["deleted"]) == (
            run.status,
            run.stop_reason,
            run.steps,
            run.deleted,
        )
        assert row["conversation_id"] == f"conv-{run.stream_id}"
        assert (row["completed_at"] is None) == (run.status == "running")


@FEW
@given(
    commands=st.lists(COMMAND, max_size=12),
    file_format=st.sampled_from(["parquet", "jsonl"]),
    workers=st.sampled_from([0, 2]),
)
def test_an_export_read_back_equals_the_log(
    store: Services,
    tmp_path: Path,
    commands: list[tuple[Any, ...]],
    file_format: str,
    workers: int,
) -> None:
    world = getattr(store, "_export_world", None) or World(store)
    store._export_world = world  # type: ignore[attr-defined]  # the log grows across examples
    before = store.ctx.log.chain.end()
    for command in commands:
        world.apply(command)
    out = tmp_path / uuid.uuid4().hex
    check_export(store, out, file_format, workers=workers)
    check_export(store, out, file_format, since=before, workers=workers)  # this example's


def test_incremental_exports_add_up_to_a_full_one(store: Services, tmp_path: Path) -> None:
    world = World(store)
    rounds: list[list[tuple[Any, ...]]] = [
        [("message", 0, "user", "hi", {}), ("run", 0, [{"prompt_tokens": 3}], "running")],
        [
            ("tool", 0, "memory_insert", {"a": 1}),
            ("conversation",),
            ("message", 1, "user", "x", {}),
        ],
        [("finish", 0), ("claim", 1), ("compact", 1, "short")],
        [],  # nothing new: an empty increment
        [("run", 1, [], "cancel"), ("run", 0, [], "delete"), ("update", 0, {"k": [1, 2]})],
    ]
    since, parts = 0, []
    for number, commands in enumerate(rounds):
        for command in commands:
            world.apply(command)
        out = tmp_path / f"part{number}"
        result = export(
            store, out, "parquet" if number % 2 else "jsonl", since=since, workers=number % 3
        )
        parts.append(out)
        assert result.plan.since == since
        since = result.next_since
    full = tmp_path / "full"
    export(store, full, "parquet", page_size=1000)
    for table in ("events", "messages"):
        assert [row for p in parts for row in read(p, table)] == read(full, table)
    # A run finished in a later increment appears again there: its latest row wins.
    assert latest_runs([row for p in parts for row in read(p, "runs")]) == latest_runs(
        read(full, "runs")
    )


GOLDEN = Path(__file__).parents[1] / "golden"


@pytest.mark.parametrize(
    "version", sorted(p.name for p in GOLDEN.iterdir() if (p / "log.jsonl").exists())
)
def test_old_logs_export_as_the_mapper_reads_them(
    version: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Logs written by earlier releases: events without an actor, upcast events."""
    services = build(settings_for("sqlite", tmp_path, request))
    try:
        lines = (GOLDEN / version / "log.jsonl").read_bytes().split(b"\n")
        records = [json.loads(line) for line in lines if line]
        events = [
            StoredEvent(
                UUID(r["originator_id"]), r["originator_version"], r["topic"], r["state"].encode()
            )
            for r in records
            if r["kind"] == "event"
        ]
        services.ctx.app.recorder.insert_events(events)
        out = tmp_path / "out"
        result = export(services, out, page_size=500)
        assert result.counts["events"] == len(events)
        assert exported_events(out) == logged(services)
        assert any(row["actor"] is None for row in read(out, "events")) == (version < "v0.4.0")
        for row in read(out, "runs"):
            run: Any = services.ctx.app.repository.get(UUID(row["id"].removeprefix("run-")))
            assert isinstance(run, Run) and (row["status"], row["steps"]) == (run.status, run.steps)
    finally:
        services.close()


# -- a conversation with a real turn -------------------------------------------------------------


def send(services: Services, conversation: str, text: str) -> None:
    async def run() -> None:
        from service.turns import TurnRequest

        request = TurnRequest(messages=[{"role": "user", "content": text}], streaming=False)
        turn = await services.turns.begin(ACTOR, conversation, request)
        await services.turns.result_of(turn)

    asyncio.run(run())


@pytest.fixture(params=["sqlite", "postgres"])
def turned(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Services, str, str]]:
    """A store with a conversation that had a two-step turn (a tool call, then the answer),
    and another conversation; the CLI is pointed at it."""
    settings = settings_for(request.param, tmp_path, request)
    monkeypatch.setenv("DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("DATABASE_SCHEMA", settings.database_schema)
    model = ScriptedModel()
    services = build(settings, model=model)
    try:
        agent_id = new_agent(services).id
        conversation = new_conversation(services, agent_id).conversation_id
        other = new_conversation(services, agent_id).conversation_id
        call = json.dumps({"label": "human", "new_string": "Likes tea"})
        model.script = [Say(reasoning="hmm", calls=[("memory_insert", call)]), Say(text="Noted.")]
        send(services, conversation, "remember I like tea")
        send(services, other, "hello")  # echoed
        yield services, conversation, agent_id
    finally:
        services.close()


def test_the_rows_of_a_conversation_with_a_run(
    turned: tuple[Services, str, str], tmp_path: Path
) -> None:
    services, conversation, agent_id = turned
    out = tmp_path / "out"
    result = export(services, out, page_size=10_000)
    assert result.counts["runs"] == 2
    mine = [m for m in read(out, "messages") if m["conversation_id"] == conversation]
    assert [m["message_id"] for m in mine] == listed_ids(services, conversation)
    assert [m["message_type"] for m in mine] == [
        "system_message",
        "user_message",
        "reasoning_message",
        "tool_call_message",
        "tool_return_message",
        "assistant_message",
    ]
    by_type = {m["message_type"]: m for m in mine}
    assert by_type["user_message"]["text"] == "remember I like tea"
    assert by_type["reasoning_message"]["text"] == "hmm"
    call = by_type["tool_call_message"]
    assert call["tool_name"] == "memory_insert" and call["text"].startswith("memory_insert(")
    answer = by_type["tool_return_message"]
    assert answer["tool_name"] == "memory_insert"
    assert answer["tool_call_id"] == "call-1-0"
    assert by_type["assistant_message"]["text"] == "Noted."
    assert {m["agent_id"] for m in mine} == {agent_id}
    run_ids = {m["run_id"] for m in mine if m["message_type"] != "system_message"}
    (run,) = [r for r in read(out, "runs") if r["id"] in run_ids]
    view = services.runs.queries.get_any(run["id"])  # the read side agrees
    assert run["conversation_id"] == conversation and run["agent_id"] == agent_id
    assert (run["status"], run["stop_reason"], run["steps"]) == ("completed", "end_turn", 2)
    assert run["model"] == "openai/gpt-4o-mini" and run["background"] is False
    # The scripted model's usage per step: prompt = messages sent, completion = 1.
    assert run["completion_tokens"] == 2
    assert run["total_tokens"] == run["prompt_tokens"] + 2 and run["prompt_tokens"] > 0
    assert run["created_at"] <= run["completed_at"]
    assert run["duration_seconds"] == pytest.approx(
        (run["completed_at"] - run["created_at"]).total_seconds()
    )
    assert view is not None and (view.status, view.stop_reason) == ("completed", "end_turn")
    # DuckDB reads the files as they are.
    duckdb = pytest.importorskip("duckdb")
    found = duckdb.sql(
        f"SELECT count(*), count(DISTINCT conversation_id) FROM '{out}/messages.parquet'"
    ).fetchall()
    assert found == [(len(read(out, "messages")), 3)]  # and the agent's own context
    types = duckdb.sql(
        f"SELECT type, count(*) FROM '{out}/events.parquet' GROUP BY type ORDER BY type"
    ).fetchall()
    assert dict(types)[Run.Created.TOPIC] == 2
    ((stamp, actor),) = duckdb.sql(
        f"SELECT typeof(timestamp), typeof(actor) FROM '{out}/events.parquet' LIMIT 1"
    ).fetchall()
    assert stamp == "TIMESTAMP WITH TIME ZONE"
    assert actor.startswith("STRUCT(organization_id VARCHAR")


# -- the command line -----------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = cli.main(["export", *args])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, (json.loads(lines[-1]) if lines else {}), err


def test_the_cli_exports_a_conversation_and_resumes(
    turned: tuple[Services, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    services, conversation, _ = turned
    whole, one, later = tmp_path / "whole", tmp_path / "one", tmp_path / "later"
    code, summary, err = run_cli(capsys, "--format", "parquet", "--out", str(whole))
    assert code == 0 and "export" in err  # the progress bar
    head = services.ctx.log.chain.head()
    assert summary["next_since"] == summary["last_position"] == head[0]
    assert summary["head"] == {"position": head[0], "log_hash": head[1].hex()}
    assert summary["counts"]["events"] == len(logged(services))
    manifest = json.loads((whole / "manifest.json").read_text())
    assert manifest["format"] == "parquet" and manifest["since"] == 0
    assert manifest["head"] == summary["head"] and manifest["counts"] == summary["counts"]
    assert sorted(p.name for p in whole.iterdir()) == [
        "events.parquet",
        "manifest.json",
        "messages.parquet",
        "runs.parquet",
    ]

    code, summary, _ = run_cli(
        capsys, "--format", "jsonl", "--out", str(one), "--conversation", conversation
    )
    assert code == 0
    stream = conversation.removeprefix("conv-")
    events = read(one, "events")
    runs = read(one, "runs")
    assert len(runs) == 1 and runs[0]["conversation_id"] == conversation
    assert {e["stream_id"] for e in events} == {stream, runs[0]["id"].removeprefix("run-")}
    assert {m["conversation_id"] for m in read(one, "messages")} == {conversation}

    send(services, conversation, "again")  # an echo: one more run
    code, summary, _ = run_cli(
        capsys, "--format", "parquet", "--out", str(later), "--since", str(head[0])
    )
    assert code == 0 and summary["since"] == head[0]
    assert [e["position"] for e in read(later, "events")] == [
        e["position"] for e in logged(services, head[0])
    ]
    assert summary["counts"]["runs"] == 1


def test_bad_input_is_refused_clearly(
    turned: tuple[Services, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "--format", "jsonl", "--out", str(out), "--since", "999999")
    assert code == 2 and "past the log's head" in err
    for unknown in ("conv-00000000-0000-4000-8000-000000000000", "conv-nope", "agent-1"):
        code, _, err = run_cli(
            capsys, "--format", "jsonl", "--out", str(out), "--conversation", unknown
        )
        assert code == 2 and "no conversation" in err
    assert not out.exists() or not any(out.iterdir())  # nothing was written
    out.mkdir(exist_ok=True)
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "--format", "parquet", "--out", str(out))
    assert code == 2 and "not empty" in err and "--overwrite" in err
    code, _, _ = run_cli(capsys, "--format", "parquet", "--out", str(out), "--overwrite")
    assert code == 0
    code, _, _ = run_cli(capsys, "--format", "jsonl", "--out", str(out), "--overwrite")
    assert code == 0  # the earlier export's files are replaced, the others left alone
    assert sorted(p.name for p in out.iterdir()) == [
        "events.jsonl",
        "manifest.json",
        "messages.jsonl",
        "notes.txt",
        "runs.jsonl",
    ]
    (tmp_path / "file").write_text("")
    code, _, err = run_cli(capsys, "--format", "jsonl", "--out", str(tmp_path / "file"))
    assert code == 2 and "not a directory" in err
    with pytest.raises(SystemExit):
        cli.main(["export", "--format", "csv", "--out", str(out)])
    with pytest.raises(SystemExit):
        cli.main(["export", "--format", "jsonl", "--out", str(out), "--since", "-1"])
