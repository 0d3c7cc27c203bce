"""The hash chain on every backend: what the application writes verifies, and any single
altered, removed, inserted or swapped stored event is found at its position."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

from runtime.bootstrap import build
from runtime.settings import Settings
from service.audit import verify_log, verify_stream
from service.services import Services
from tests.conftest import settings_for
from tests.integration.tamper import Tamper, tamper_for
from tests.unit.seed import append, finish_run, new_agent, new_conversation, record_runs


@pytest.fixture(params=["sqlite", "postgres"])
def stored_services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    """A store that can be changed behind the application's back (not the in-memory one)."""
    built = build(settings_for(request.param, tmp_path, request))
    yield built
    built.close()


def seed(services: Services) -> tuple[UUID, list[int]]:
    """An agent, two conversations with messages and runs; the conversation's stream and
    the positions of its events."""
    agent = new_agent(services)
    first = new_conversation(services, agent.id)
    second = new_conversation(services, agent.id)
    first_uuid, second_uuid = first.id, second.id
    append(services, first_uuid, "one", "two")
    append(services, second_uuid, "elsewhere")
    finish_run(services, first_uuid)
    record_runs(services, agent.id, first_uuid, 2)
    append(services, first_uuid, "three")
    stream = UUID(first_uuid)
    positions = [r.position for r in services.ctx.log.history(stream, 0, 1000)]
    return stream, positions


def test_what_the_application_writes_verifies(any_services: Services) -> None:
    stream, positions = seed(any_services)
    chain = any_services.ctx.log.chain
    report = verify_log(chain)
    assert report.intact, report.problem
    assert report.checked == any_services.ctx.log.max_position() > len(positions)
    assert (report.last_position, bytes.fromhex(report.head)) == chain.head()
    assert verify_stream(chain, stream).checked == len(positions)
    middle = positions[len(positions) // 2]
    assert verify_log(chain, start=middle).checked == report.checked - middle + 1
    assert verify_log(chain, expect=(middle, _log_hash_at(any_services, middle))).intact


def _log_hash_at(services: Services, position: int) -> bytes:
    (entry,) = services.ctx.log.chain.positions(position - 1, position)
    assert entry.log_hash is not None
    return entry.log_hash


DAMAGE = ("altered", "removed", "removed with its entry", "inserted", "swapped")


def damage_log(tamper: Tamper, damage: str, target: int, following: int) -> int:
    """Change the stored log at or around ``target`` (an event of the conversation; the
    conversation's next event is at ``following``); the position verify must name."""
    if damage == "altered":
        tamper.alter_state(target)
    elif damage == "removed":
        tamper.remove_event(target)
    elif damage == "removed with its entry":
        tamper.remove_with_entry(target)
        return target + 1  # the next position's link no longer holds
    elif damage == "inserted":
        return tamper.insert_after_end()
    else:
        tamper.swap_states(target, following)
    return target


@pytest.mark.parametrize("damage", DAMAGE)
def test_any_single_change_is_found_at_its_position(stored_services: Services, damage: str) -> None:
    stream, positions = seed(stored_services)
    target, following = positions[1], positions[2]
    bad = damage_log(tamper_for(stored_services), damage, target, following)
    report = verify_log(stored_services.ctx.log.chain)
    assert report.problem is not None, damage
    assert report.problem.position == bad, report.problem
    if damage != "inserted":
        problem = verify_stream(stored_services.ctx.log.chain, stream).problem
        assert problem is not None and problem.position in (target, following)


def test_a_rewritten_chain_fails_against_the_head_an_auditor_kept(
    stored_services: Services,
) -> None:
    _, positions = seed(stored_services)
    kept = stored_services.ctx.log.chain.head()
    tamper = tamper_for(stored_services)
    tamper.alter_state(positions[1])
    tamper.rechain()  # an attacker who recomputes every hash after the change
    assert verify_log(stored_services.ctx.log.chain).intact
    report = verify_log(stored_services.ctx.log.chain, expect=kept)
    assert report.problem is not None and report.problem.position == kept[0]


def _old_release_writes(services: Services, count: int) -> None:
    """Events stored as a release before 0.6.0 stored them: through the library's own
    recorder, with no chain entry (an old log, or an old process in a rolling upgrade)."""
    recorder: Any = services.ctx.app.recorder
    if isinstance(recorder, PostgresApplicationRecorder):
        plain: Any = PostgresApplicationRecorder(
            recorder.datastore, events_table_name=recorder.events_table_name
        )
    else:
        plain = SQLiteApplicationRecorder(recorder.datastore)
    stream = uuid4()
    plain.insert_events(
        [StoredEvent(stream, v, "convlog.Probe.Poked", b"{}") for v in range(1, count + 1)]
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_events_stored_without_a_chain_are_chained_first(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = settings_for(backend, tmp_path, request)
    services = build(settings)
    try:
        seed(services)
        _old_release_writes(services, 3)
        assert verify_log(services.ctx.log.chain).problem is not None
        append(services, seed_conversation(services), "after the upgrade")  # chains the gap
        report = verify_log(services.ctx.log.chain)
        assert report.intact and report.checked == services.ctx.log.max_position()
        _old_release_writes(services, 2)
    finally:
        services.close()
    reopened = build(settings)  # opening a store chains what it finds unchained
    try:
        report = verify_log(reopened.ctx.log.chain)
        assert report.intact and report.checked == reopened.ctx.log.max_position()
    finally:
        reopened.close()


def seed_conversation(services: Services) -> str:
    return str(new_conversation(services, new_agent(services, name="later").id).id)


def test_concurrent_writers_in_two_processes_keep_one_chain(
    pg_schema: tuple[str, str],
) -> None:
    url, schema = pg_schema
    settings = Settings(database_url=url, database_schema=schema)
    first, second = build(settings), build(settings)  # two processes' stores
    try:
        conversations = [(s, seed_conversation(s)) for s in (first, second) for _ in range(2)]

        def write(services: Services, conversation: str) -> None:
            for i in range(15):
                append(services, conversation, f"m{i}", f"n{i}", catch_up=False)

        threads = [threading.Thread(target=write, args=pair) for pair in conversations]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report = verify_log(first.ctx.log.chain)
        assert report.intact, report.problem
        assert report.checked == first.ctx.log.max_position()
        assert (report.last_position, bytes.fromhex(report.head)) == second.ctx.log.chain.head()
    finally:
        first.close()
        second.close()


def test_a_save_with_nothing_to_store_stores_nothing(any_services: Services) -> None:
    before = any_services.ctx.log.chain.head()
    any_services.ctx.app.save()
    assert any_services.ctx.log.chain.head() == before


def test_an_event_that_no_longer_decodes_is_listed_with_its_bytes(
    stored_services: Services,
) -> None:
    stream, positions = seed(stored_services)
    tamper_for(stored_services).garble(positions[1])
    listed = stored_services.ctx.log.history(stream, 0, 100)
    assert [e.position for e in listed] == positions
    (broken,) = [e for e in listed if e.error is not None]
    assert broken.position == positions[1] and broken.payload is None and broken.timestamp is None
    assert all(e.hash is not None and e.stored_state for e in listed)
