"""Properties of the hash chain over logs the application wrote (random commands, SQLite and
PostgreSQL): verify passes, and after any single altered, removed or swapped stored event it
fails naming the right position."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.bootstrap import build
from runtime.settings import Settings
from service.audit import verify_log
from service.services import Services
from tests.integration.tamper import tamper_for
from tests.services import require_postgres
from tests.unit.seed import append, finish_run, new_agent, new_conversation, record_runs

# A command: (kind, conversation index, count).
COMMANDS = st.lists(
    st.tuples(
        st.sampled_from(["append", "run", "runs", "new"]), st.integers(0, 3), st.integers(1, 4)
    ),
    min_size=1,
    max_size=12,
)
DAMAGES = st.sampled_from(["altered", "removed", "removed with its entry", "swapped"])


@contextmanager
def store(backend: str) -> Iterator[Services]:
    if backend == "sqlite":
        with TemporaryDirectory() as tmp:
            services = build(Settings(database_url=f"sqlite:///{Path(tmp) / 'c.db'}"))
            try:
                yield services
            finally:
                services.close()
        return
    url, schema = require_postgres(), f"t_{uuid.uuid4().hex[:12]}"
    services = build(Settings(database_url=url, database_schema=schema))
    try:
        yield services
    finally:
        services.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run_commands(services: Services, commands: list[tuple[str, int, int]]) -> None:
    agent = new_agent(services)
    conversations = [new_conversation(services, agent.id).id]
    for kind, index, count in commands:
        target = conversations[index % len(conversations)]
        if kind == "append":
            append(services, target, *[f"m{i}" for i in range(count)], catch_up=False)
        elif kind == "run":
            finish_run(services, target)
        elif kind == "runs":
            record_runs(services, agent.id, target, count)
        else:
            conversations.append(new_conversation(services, agent.id).id)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=COMMANDS, damage=DAMAGES, pick=st.floats(0, 1), other=st.floats(0, 1))
def test_verify_passes_then_names_the_damaged_position(
    backend: str, commands: list[tuple[str, int, int]], damage: str, pick: float, other: float
) -> None:
    with store(backend) as services:
        run_commands(services, commands)
        chain = services.ctx.log.chain
        report = verify_log(chain)
        end = services.ctx.log.max_position()
        assert report.intact, report.problem
        assert report.checked == end
        kept = chain.head()
        target = 1 + int(pick * (end - 1))
        tamper = tamper_for(services)
        if damage == "altered":
            tamper.alter_state(target)
            expected = target
        elif damage == "removed":
            tamper.remove_event(target)
            expected = target
        elif damage == "removed with its entry":
            tamper.remove_with_entry(target)
            expected = target + 1  # the next link; past the end, only the kept head shows it
        else:
            second = 1 + int(other * (end - 1))
            if second == target:
                second = target % end + 1
            tamper.swap_states(target, second)
            expected = min(target, second)
        found = verify_log(chain, expect=kept).problem
        assert found is not None, (damage, target)
        # Past the end, only the head the auditor kept shows the loss.
        assert found.position == (kept[0] if expected > end else expected), (damage, found)
