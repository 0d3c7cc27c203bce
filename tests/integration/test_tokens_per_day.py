"""The tokens-per-agent-per-day projection (README's "Adding a projection"), driven by a
projector of its own over the services' log and views: live catch-up and a rebuild give the
same rows, on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import eventsourcing.domain
import pytest

from domain import ids
from domain.run import Run
from projections.projector import Projector
from projections.tokens_per_day import TokenDay, TokensPerDay, TokensPerDayQueries
from runtime import bootstrap
from runtime.settings import Settings
from service.actor import Actor
from service.projection_status import ProjectionStatusService
from service.services import Services
from tests.unit.seed import ACTOR, OTHER_ORG

DAY_1 = datetime(2026, 12, 1, 23, 59, 0, tzinfo=UTC)
DAY_2 = datetime(2026, 12, 2, 0, 1, 0, tzinfo=UTC)


class Clock:
    """The time the library stamps on new events (``create_timestamp``)."""

    def __init__(self) -> None:
        self.now = DAY_1

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    found = Clock()
    monkeypatch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", found)
    yield found


def run_of(actor: Actor, agent_id: str) -> Run:
    return Run(
        organization_id=actor.organization_id,
        agent_id=agent_id,
        conversation_id=None,
        stream_id="s",
        run_type="send_message",
        background=False,
        request_config={},
        input_messages=[],
        model="openai/gpt-4o-mini",
    )


def step(run: Run, prompt: int, completion: int) -> None:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "finish_reason": "stop",
    }
    run.finish_step(ids.new(ids.STEP), usage, [], 1000)


def projector_for(services: Services) -> Projector:
    projector = Projector(services.ctx.store, services.ctx.log, [TokensPerDay()], batch_size=3)
    projector.setup()
    return projector


def test_rebuilding_gives_the_rows_live_catch_up_gave(any_services: Services, clock: Clock) -> None:
    services = any_services
    projector = projector_for(services)
    queries = TokensPerDayQueries(services.ctx.store)
    ann, bob, other = ids.new(ids.AGENT), ids.new(ids.AGENT), ids.new(ids.AGENT)

    first = run_of(ACTOR, ann)
    step(first, 100, 10)
    step(first, 120, 12)
    first.complete("end_turn", {"total_tokens": 242}, {})
    services.ctx.app.save(first)
    assert projector.catch_up() > 0

    clock.now = DAY_2
    second = run_of(ACTOR, ann)
    step(second, 50, 5)
    second.cancel("user")  # a cancelled run's calls were still made
    third = run_of(ACTOR, bob)
    step(third, 7, 3)
    theirs = run_of(OTHER_ORG, other)
    step(theirs, 1000, 1)
    services.ctx.app.save(second, third, theirs)
    projector.catch_up()

    live = queries.of_organization(ACTOR.organization_id)
    assert live == [
        TokenDay(ACTOR.organization_id, ann, "2026-12-01", 2, 220, 22),
        *sorted(
            [
                TokenDay(ACTOR.organization_id, ann, "2026-12-02", 1, 50, 5),
                TokenDay(ACTOR.organization_id, bob, "2026-12-02", 1, 7, 3),
            ],
            key=lambda d: d.agent_id,
        ),
    ]
    assert queries.of_organization(ACTOR.organization_id, ann)[0].total_tokens == 242
    assert queries.of_organization(OTHER_ORG.organization_id) == [
        TokenDay(OTHER_ORG.organization_id, other, "2026-12-02", 1, 1000, 1)
    ]

    result = projector.rebuild("tokens_per_day")
    assert result.generation == 2
    assert queries.of_organization(ACTOR.organization_id) == live
    assert len(queries.of_organization(OTHER_ORG.organization_id)) == 1

    status = ProjectionStatusService(projector).status()
    (mine,) = status.projections
    assert (mine.name, mine.generation, mine.lag_events) == ("tokens_per_day", 2, 0)
    assert mine.last_rebuilt_at is not None


def test_a_projection_added_later_is_filled_from_the_whole_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A store whose server did not have the projection yet.
    earlier = [p for p in bootstrap.all_projections() if p.name != "tokens_per_day"]
    monkeypatch.setattr(bootstrap, "all_projections", lambda: earlier)
    services = bootstrap.build(Settings(database_url="memory://"))
    try:
        _filled_from_the_whole_log(services)
    finally:
        services.close()


def _filled_from_the_whole_log(services: Services) -> None:
    ann = ids.new(ids.AGENT)
    run = run_of(ACTOR, ann)
    step(run, 10, 1)
    services.ctx.app.save(run)
    services.projector.catch_up()  # the registered views, without the new one

    projector = projector_for(services)  # registered now: generation 1, at position 0
    (waiting,) = ProjectionStatusService(projector).status().projections
    assert waiting.position == 0 and waiting.lag_events > 0 and waiting.lag_seconds > 0
    projector.catch_up()
    (day,) = TokensPerDayQueries(services.ctx.store).of_organization(ACTOR.organization_id)
    assert (day.agent_id, day.steps, day.prompt_tokens, day.completion_tokens) == (ann, 1, 10, 1)
