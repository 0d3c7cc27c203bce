"""Old logs keep working: every golden log replays into the views its release wrote.

Each ``tests/golden/<version>/`` holds a log written by that release (``write.py``) and what
its API showed. The current code must load every aggregate of it (events, upcasters,
snapshots) and project it, on every backend, into the same views. Where a later release
deliberately shows more, ``upgrade`` below says so, field by field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from api import render
from domain import tools
from domain.tools import BASE_TOOLS
from service.audit import verify_log
from service.services import Services
from tests.golden.views import expected_views

HERE = Path(__file__).parent
VERSIONS = sorted(p.name for p in HERE.iterdir() if (p / "log.jsonl").exists())


def load_log(services: Services, version: str) -> list[UUID]:
    events: list[StoredEvent] = []
    snapshots: list[StoredEvent] = []
    originators: set[UUID] = set()
    for line in (HERE / version / "log.jsonl").read_text().splitlines():
        record = json.loads(line)
        originator_id = UUID(record["originator_id"])
        stored = StoredEvent(
            originator_id=originator_id,
            originator_version=record["originator_version"],
            topic=record["topic"],
            state=record["state"].encode("utf-8"),
        )
        if record["kind"] == "event":
            events.append(stored)
            originators.add(originator_id)
        else:
            snapshots.append(stored)
    services.ctx.app.recorder.insert_events(events)
    assert services.ctx.app.snapshots is not None
    services.ctx.app.snapshots.recorder.insert_events(snapshots)
    services.projector.catch_up()
    return sorted(originators)


def upgrade(version: str, views: dict[str, Any]) -> dict[str, Any]:
    """A golden release's views as the current release shows them, where it shows more."""
    if version == "v0.1.0":
        # Agents had no tools before; they now have what ``include_base_tools`` promised.
        base = [render.tool(tools.BY_NAME[name]).model_dump(mode="json") for name in BASE_TOOLS]
        for agent in views["agents"]:
            assert agent["tools"] == []
            agent["tools"] = base
    if version in ("v0.1.0", "v0.2.0"):
        # Agents showed no message_ids; they now show their own context's in-context ids:
        # all it listed in v0.1.0, only the system message after v0.2.0's writer reset it.
        for agent in views["agents"]:
            assert agent["message_ids"] == []
            listed = in_context(views["agent_messages"][agent["id"]])
            agent["message_ids"] = listed if version == "v0.1.0" else listed[:1]
    if release(version) < (0, 5, 0):
        # 0.5.0 shows each agent's hidden flag (Letta's field); no older agent set it.
        for agent in views["agents"]:
            assert "hidden" not in agent
            agent["hidden"] = None
    return views


def release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.removeprefix("v").split("."))


def in_context(listed: list[dict[str, Any]]) -> list[str]:
    """The in-context ids of an agent's own context as listed (never compacted in the golden
    logs): every message but summaries.
    """
    return [m["id"] for m in listed if m.get("role") != "summary"]


def test_there_is_a_golden_log() -> None:
    assert VERSIONS, "tests/golden/<version>/log.jsonl is missing"


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_log_replays_into_the_same_views(any_services: Services, version: str) -> None:
    originators = load_log(any_services, version)
    for originator in originators:  # every aggregate loads: topics, upcasters, snapshots
        assert any_services.ctx.app.repository.get(originator).id == originator
    expected = json.loads((HERE / version / "views.json").read_text())
    actual = json.loads(json.dumps(expected_views(any_services, render)))
    if "message_search" not in expected:  # a view releases before 0.5.0 did not have
        actual.pop("message_search")
    assert actual == upgrade(version, expected)


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_log_rebuilds_into_the_same_views(any_services: Services, version: str) -> None:
    load_log(any_services, version)
    before = json.loads(json.dumps(expected_views(any_services, render)))
    for name in any_services.projector.projections:
        any_services.projector.rebuild(name)
    assert json.loads(json.dumps(expected_views(any_services, render))) == before


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_log_is_chained_and_verifies(any_services: Services, version: str) -> None:
    """A log written before the hash chain existed gets one as it is stored, and verifies."""
    load_log(any_services, version)
    report = verify_log(any_services.ctx.log.chain)
    assert report.intact, report.problem
    assert report.checked == any_services.ctx.log.max_position()
