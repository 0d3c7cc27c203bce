"""Time travel equals the past: over random command sequences (appends, renames, model
changes, compactions, recompiles, runs, forks, the agent's own context and its reset), the
live views captured whenever a conversation was at version v equal what time travel answers
for ``as_of_version=v`` — the index row, the in-context ids, and pages of the message list
with cursors, orders, limits and a type filter — on every backend. Answers are checked twice:
as the run goes (the fold extended a few events at a time) and afterwards from a cold cache.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from api import render
from domain import ids
from domain.errors import DomainError
from projections.conversations import ConversationRow
from projections.timefmt import to_micros
from runtime.bootstrap import build
from service.services import Services
from service.time_travel import AsOf, TimeTravelService, micros_of
from tests.conftest import settings_for
from tests.scripted_model import ScriptedModel
from tests.unit.seed import ACTOR, append, finish_run, new_agent, new_conversation

# Many examples in memory (cheap), fewer on SQLite and PostgreSQL.
MANY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FEW = settings(MANY, max_examples=25)

# Pages asked of every captured version: (name, ascending, limit, cursor, types).
PAGES: tuple[tuple[str, bool, int | None, str | None, list[str] | None], ...] = (
    ("all", True, None, None, None),
    ("newest", False, 3, None, None),
    ("after", True, 2, "after", None),
    ("before", True, 2, "before", None),
    ("after_desc", False, 2, "after", None),
    ("before_desc", False, 3, "before", None),
    ("users", True, None, None, ["user_message"]),
    ("none", True, 0, None, None),
)


def built_on(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Services]:
    built = build(settings_for(backend, tmp_path, request), model=ScriptedModel())
    yield built
    built.close()


@pytest.fixture
def in_memory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    yield from built_on("memory", tmp_path, request)


@pytest.fixture(params=["sqlite", "postgres"])
def on_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    yield from built_on(request.param, tmp_path, request)


targets = st.integers(min_value=0, max_value=5)
commands = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"), targets, st.sampled_from(["user", "assistant"]), st.integers(1, 6)
        ),
        st.tuples(st.just("chat"), targets, st.integers(1, 4)),
        st.tuples(
            st.just("rename"),
            targets,
            st.sampled_from(["", "alpha", "café"]) | st.text(max_size=8),
        ),
        st.tuples(st.just("model"), targets, st.sampled_from(["openai/gpt-4o", "openai/o3"])),
        st.tuples(st.just("compact"), targets, st.sampled_from(["all", "sliding_window"])),
        st.tuples(st.just("recompile"), targets),
        st.tuples(st.just("run"), targets),
        st.tuples(st.just("fork"), targets),
        st.tuples(st.just("own"), st.integers(1, 3)),
        st.tuples(st.just("reset")),
    ),
    min_size=1,
    max_size=12,
)


@dataclass(frozen=True)
class Seen:
    """What the live views showed of one stream at one version."""

    path: str  # conv-… or, for the agent's own context, agent-…
    stream: str
    version: int
    row: ConversationRow
    in_context: list[str]
    cursor: str | None  # a message id from the middle of the listing
    pages: dict[str, list[Any]]


def stream_of(path: str) -> str:
    uuid = ids.to_uuid(path)
    return str(ids.default_conversation_id(uuid) if path.startswith(ids.AGENT) else uuid)


def version_of(services: Services, stream: str) -> int:
    return int(services.ctx.app.repository.get(UUID(stream)).version)


def live_page(services: Services, path: str, cursor: str | None, page: tuple[Any, ...]) -> Any:
    _, ascending, limit, which, types = page
    if which is not None and cursor is None:
        return None
    items = services.conversations.messages(
        ACTOR,
        path,
        before=cursor if which == "before" else None,
        after=cursor if which == "after" else None,
        limit=limit,
        ascending=ascending,
        types=types,
    )
    return [json.loads(i) for i in items]


def past_page(
    travel: TimeTravelService, path: str, version: int, cursor: str | None, page: tuple[Any, ...]
) -> Any:
    _, ascending, limit, which, types = page
    if which is not None and cursor is None:
        return None
    found = travel.messages(
        ACTOR,
        path,
        AsOf(version=version),
        before=cursor if which == "before" else None,
        after=cursor if which == "after" else None,
        limit=limit,
        ascending=ascending,
        types=types,
    )
    assert found.version == version
    return [json.loads(i) for i in found.items]


def capture(services: Services, path: str) -> Seen:
    stream = stream_of(path)
    row = services.ctx.conversations.get_any(stream)
    assert row is not None
    in_context = services.ctx.messages.in_context_ids([row.window])[row.id]
    listed = [
        json.loads(i)
        for i in services.conversations.messages(
            ACTOR, path, before=None, after=None, limit=None, ascending=True
        )
    ]
    cursor = listed[len(listed) // 2]["id"] if listed else None
    pages = {p[0]: live_page(services, path, cursor, p) for p in PAGES}
    return Seen(path, stream, version_of(services, stream), row, in_context, cursor, pages)


def check(travel: TimeTravelService, seen: Seen) -> None:
    """Time travel to ``seen.version`` answers what the views showed then."""
    if seen.path.startswith(ids.CONVERSATION):
        past = travel.conversation(ACTOR, seen.path, AsOf(version=seen.version))
        assert past.version == seen.version
        assert past.row == seen.row
        assert past.in_context_ids == seen.in_context
        assert render.conversation(past.row, past.in_context_ids) == render.conversation(
            seen.row, seen.in_context
        )
    else:  # the agent's own context: no conversation route, the same fold
        own = travel.cache.past(seen.stream, seen.version)
        row = own.row_at(seen.version)
        assert row == seen.row
        assert own.in_context_ids(seen.version, travel.cache.past_of, row.window) == (
            seen.in_context
        )
    for page in PAGES:
        expected = seen.pages[page[0]]
        assert past_page(travel, seen.path, seen.version, seen.cursor, page) == expected, page[0]


def run(services: Services, agent_id: str, paths: list[str], command: tuple[Any, ...]) -> list[str]:
    """Apply one command; returns the paths whose streams it changed."""
    name, *args = command
    if name == "own":
        append(services, stream_of(agent_id), *(f"own {i}" for i in range(args[0])))
        return [agent_id]
    if name == "reset":
        services.agents.reset_messages(ACTOR, agent_id)
        return [agent_id]
    path = paths[args[0] % len(paths)]
    uuid = stream_of(path)
    if name == "append":
        role, count = args[1], args[2]
        append(services, uuid, *(f"{role} {i}" for i in range(count)), role=role)
    elif name == "chat":  # exchanges, so compaction has assistant messages to cut at
        for i in range(args[1]):
            append(services, uuid, f"question {i}")
            append(services, uuid, f"answer {i}", role="assistant")
    elif name == "rename":
        services.conversations.update(ACTOR, path, {"summary": args[1]})
    elif name == "model":
        services.conversations.update(
            ACTOR, path, {"model": args[1], "model_settings": {"temperature": 0.5}}
        )
    elif name == "compact":
        request = {"compaction_settings": {"mode": args[1]}}
        asyncio.run(services.compaction.compact(ACTOR, path, request))
    elif name == "recompile":
        services.conversations.recompile(ACTOR, path, dry_run=False)
    elif name == "run":
        finish_run(services, uuid)
    elif name == "fork":
        fork = services.conversations.fork(ACTOR, path)
        paths.append(fork.conversation_id)
        return [fork.conversation_id, path]
    return [path]


def play(services: Services, commands: list[tuple[Any, ...]]) -> tuple[str, list[str]]:
    """A new agent and conversation, then the commands: (agent id, conversation paths)."""
    agent = new_agent(services)
    first = new_conversation(services, agent.id)
    paths = [first.conversation_id]
    for command in commands:
        try:
            run(services, agent.id, paths, command)
        except DomainError:
            continue  # refused (nothing to compact, say): nothing was recorded
    return agent.id, paths


def every_version_seen(services: Services, commands: list[tuple[Any, ...]]) -> None:
    agent = new_agent(services)
    first = new_conversation(services, agent.id)
    paths = [first.conversation_id]
    seen = [capture(services, first.conversation_id), capture(services, agent.id)]
    travel = services.time_travel
    for command in commands:
        try:
            changed = run(services, agent.id, paths, command)
        except DomainError:
            event(f"refused: {command[0]}")
            continue  # refused (nothing to compact, say): nothing was recorded
        event(f"ran: {command[0]}")
        for path in changed:
            now = capture(services, path)
            seen.append(now)
            check(travel, now)  # the warm fold, extended by this command's events
    cold = TimeTravelService(services.ctx, services.conversations, services.agents)
    for then in seen:
        check(cold, then)
        check(travel, then)


@MANY
@given(commands=commands)
def test_every_version_seen_is_what_time_travel_answers(
    in_memory: Services, commands: list[tuple[Any, ...]]
) -> None:
    every_version_seen(in_memory, commands)


@FEW
@given(commands=commands)
def test_every_version_seen_is_what_time_travel_answers_on_disk(
    on_disk: Services, commands: list[tuple[Any, ...]]
) -> None:
    every_version_seen(on_disk, commands)


@FEW
@given(commands=commands)
def test_as_of_a_time_answers_the_last_version_at_or_before_it(
    on_disk: Services, commands: list[tuple[Any, ...]]
) -> None:
    services = on_disk
    _, paths = play(services, commands)
    for path in paths:
        events: list[Any] = list(services.ctx.app.events.get(UUID(stream_of(path))))
        stamps = [to_micros(e.timestamp) for e in events]
        for e in events:
            found = services.time_travel.conversation(ACTOR, path, AsOf(moment=e.timestamp))
            # The last version at or before it: this one, unless a later one has the same
            # microsecond (times are compared as the views keep them, to the microsecond).
            wanted = micros_of(e.timestamp)
            expected = max(v for v, s in enumerate(stamps, start=1) if s <= wanted)
            assert found.version == expected >= e.originator_version
            assert found == services.time_travel.conversation(ACTOR, path, AsOf(version=expected))
