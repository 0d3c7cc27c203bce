"""The fault suite's quick form (tests/faults/): every scenario must answer every request,
lose and duplicate nothing, and recover. ``scripts/faults`` prints the full figures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_openai import FakeOpenAI
from tests.faults.scenarios import NEEDS_POSTGRES, QUICK, SCENARIOS
from tests.services import require_postgres, require_program

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as served:
        yield served


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_fault_loses_nothing_and_every_request_is_answered(
    name: str, fake: FakeOpenAI, tmp_path: Path
) -> None:
    scenario = SCENARIOS[name]
    if name in NEEDS_POSTGRES:
        if name in ("kill_one_of_two", "kill_redis"):
            require_program("redis-server", "the scenario kills a Redis of its own")
        figures = scenario(fake, tmp_path, QUICK, require_postgres())
    else:
        figures = scenario(fake, tmp_path, QUICK)
    assert figures["unanswered"] == 0, figures
    assert (figures["lost"], figures["duplicated"]) == (0, 0), figures
    assert figures["recovery_seconds"] is not None, figures
