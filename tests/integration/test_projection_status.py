"""Projection status (``service/projection_status.py``), on every backend, and as
``convlog projections status`` and ``GET /v1/admin/projections`` show it: each projection's
generation, position, lag behind the log (in positions and seconds), its last rebuild and any
rebuild in progress."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.config import EdgeConfig
from api.responses import ProjectionsStatusOut
from domain import ids
from domain.api_key import organization_id
from domain.conversation import Conversation
from runtime import cli
from runtime.bootstrap import all_projections, build
from runtime.settings import Settings
from service.actor import operator
from service.projection_status import ProjectionsStatus, ProjectionStatus, ProjectionStatusService
from service.services import Services
from tests.unit.seed import ACTOR, new_agent, new_conversation


class Interrupted(Exception):
    pass


def write_unprojected(services: Services, count: int) -> int:
    """Append ``count`` messages to a new conversation, saved but not projected; the head."""
    agent = new_agent(services)
    row = new_conversation(services, agent.id)
    conversation = services.ctx.app.get(Conversation, UUID(row.id))
    assert conversation is not None
    for n in range(count):
        conversation.append_message(
            message_id=ids.new(ids.MESSAGE),
            role="user",
            message_type="user_message",
            content=f"m{n}",
        )
    services.ctx.app.save(conversation)
    return services.ctx.log.max_position()


def by_name(status: ProjectionsStatus) -> dict[str, ProjectionStatus]:
    return {p.name: p for p in status.projections}


def test_a_fresh_store_has_every_projection_caught_up(any_services: Services) -> None:
    status = any_services.projection_status.status()
    assert status.head == 0
    assert [p.name for p in status.projections] == [p.name for p in all_projections()]
    for p in status.projections:
        assert (p.generation, p.position, p.lag_events, p.lag_seconds) == (1, 0, 0, 0.0)
        assert p.last_rebuilt_at is None and p.rebuilding is None


def test_writes_not_yet_projected_are_lag_in_positions_and_seconds(
    any_services: Services,
) -> None:
    services = any_services
    services.projector.catch_up()
    written_from = datetime.now(UTC)
    head = write_unprojected(services, 5)
    later = written_from + timedelta(seconds=30)
    status = ProjectionStatusService(services.projector, clock=lambda: later).status()
    assert status.head == head
    messages = by_name(status)["messages"]
    assert messages.position < head
    assert messages.lag_events == head - messages.position > 0
    assert 0 < messages.lag_seconds <= 30  # the oldest unapplied event, seen 30 s on
    # A projection none of the new events is for has nothing to apply: no lag.
    assert by_name(status)["keys"].lag_events == 0
    assert by_name(status)["keys"].lag_seconds == 0
    time.sleep(0.01)
    assert by_name(services.projection_status.status())["messages"].lag_seconds > 0  # real clock

    services.projector.catch_up()
    caught_up = services.projection_status.status()
    assert all(p.lag_events == 0 and p.lag_seconds == 0 for p in caught_up.projections)
    assert by_name(caught_up)["messages"].position == head


def test_a_rebuild_moves_to_the_next_generation_and_says_when(any_services: Services) -> None:
    services = any_services
    write_unprojected(services, 3)
    services.projector.catch_up()
    before = datetime.now(UTC) - timedelta(seconds=1)
    services.projector.rebuild("messages")
    after = datetime.now(UTC) + timedelta(seconds=1)
    status = by_name(services.projection_status.status())
    rebuilt = status["messages"]
    assert rebuilt.generation == 2 and rebuilt.rebuilding is None
    assert rebuilt.last_rebuilt_at is not None and before <= rebuilt.last_rebuilt_at <= after
    assert rebuilt.lag_events == 0
    assert status["agents"].generation == 1 and status["agents"].last_rebuilt_at is None

    services.projector.rebuild("messages")
    again = by_name(services.projection_status.status())["messages"]
    assert again.generation == 3
    assert again.last_rebuilt_at is not None and again.last_rebuilt_at >= rebuilt.last_rebuilt_at


@pytest.mark.parametrize("any_services", ["sqlite", "postgres"], indirect=True)
def test_a_rebuild_in_progress_is_shown_with_its_position(any_services: Services) -> None:
    services = any_services
    write_unprojected(services, 30)
    services.projector.catch_up()
    services.projector.batch_size = 2  # batches of 8 events

    def stop(position: int) -> None:
        status = by_name(services.projection_status.status())["messages"]
        assert status.rebuilding is not None  # seen while it runs
        assert (status.rebuilding.generation, status.rebuilding.position) == (2, position)
        assert status.generation == 1  # the old generation still serves
        raise Interrupted

    with pytest.raises(Interrupted):
        services.projector.rebuild("messages", stop)
    interrupted = by_name(services.projection_status.status())["messages"]
    assert interrupted.rebuilding is not None and interrupted.rebuilding.generation == 2
    assert interrupted.rebuilding.position > 0

    services.projector.rebuild("messages")  # resumes, and switches
    done = by_name(services.projection_status.status())["messages"]
    assert done.generation == 2 and done.rebuilding is None and done.last_rebuilt_at is not None


def test_views_of_an_earlier_release_gain_the_rebuild_record_in_place(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'convlog.db'}")
    services = build(settings)
    try:
        new_agent(services)
    finally:
        services.close()
    views = sqlite3.connect(tmp_path / "convlog-views.db", isolation_level=None)
    try:
        views.execute("DROP TABLE projection_rebuilds")  # as 0.5.0 left them
    finally:
        views.close()

    upgraded = build(settings)
    try:
        status = by_name(upgraded.projection_status.status())
        assert status["agents"].generation == 1 and status["agents"].last_rebuilt_at is None
        assert upgraded.agents.list(
            ACTOR, name=None, ascending=True, after=None, before=None, limit=10
        )
        upgraded.projector.rebuild("agents")
        assert by_name(upgraded.projection_status.status())["agents"].last_rebuilt_at
    finally:
        upgraded.close()


# -- the CLI and the API ---------------------------------------------------------------------


def test_the_cli_prints_the_status_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'convlog.db'}"
    services = build(Settings(database_url=url))
    try:
        head = write_unprojected(services, 4)
    finally:
        services.close()
    monkeypatch.setenv("DATABASE_URL", url)

    assert cli.main(["projections", "status"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["backend"] == "sqlite" and printed["lag"] == 4 and printed["head"] == head
    messages = {p["name"]: p for p in printed["projections"]}["messages"]
    assert set(messages) == {
        "name",
        "generation",
        "position",
        "lag_events",
        "lag_seconds",
        "last_rebuilt_at",
        "rebuilding",
    }
    assert messages["generation"] == 1 and messages["rebuilding"] is None
    assert messages["lag_events"] == head - messages["position"] > 0
    assert messages["lag_seconds"] > 0 and messages["last_rebuilt_at"] is None

    assert cli.main(["projections", "rebuild", "messages"]) == 0
    capsys.readouterr()
    assert cli.main(["projections", "status"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    messages = {p["name"]: p for p in printed["projections"]}["messages"]
    assert printed["lag"] == 0 and messages["lag_events"] == 0 and messages["lag_seconds"] == 0
    assert messages["generation"] == 2
    rebuilt = datetime.fromisoformat(messages["last_rebuilt_at"].replace("Z", "+00:00"))
    assert messages["last_rebuilt_at"].endswith("Z")
    assert abs(datetime.now(UTC) - rebuilt) < timedelta(minutes=1)


def test_the_admin_route_answers_the_same_as_the_service(services: Services) -> None:
    write_unprojected(services, 2)
    with TestClient(create_app(services), base_url="http://localhost") as http:
        answer = http.get("/v1/admin/projections")
    assert answer.status_code == 200
    body = answer.json()
    ProjectionsStatusOut.model_validate(body)  # the shape the OpenAPI document gives
    expected = services.projection_status.status().as_json()
    for found in (body, expected):
        for p in found["projections"]:
            p.pop("lag_seconds")  # read a moment apart
    assert body == expected
    assert {p["name"]: p for p in body["projections"]}["messages"]["lag_events"] > 0


def test_the_admin_route_needs_a_key_when_authentication_is_required(
    services: Services,
) -> None:
    key = services.keys.issue(operator(organization_id("ops")), "ops", "status").key
    app = create_app(services, EdgeConfig(auth_required=True))
    with TestClient(app, base_url="http://localhost") as http:
        assert http.get("/v1/admin/projections").status_code == 401
        answer = http.get("/v1/admin/projections", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200
    assert answer.json()["head"] == services.ctx.log.max_position()
