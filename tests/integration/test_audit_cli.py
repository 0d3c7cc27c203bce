"""``convlog audit head`` and ``convlog audit verify`` on a real store (SQLite and
PostgreSQL): exit 0 on an intact log, 1 naming the first bad position, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from runtime import cli
from runtime.bootstrap import build
from tests.conftest import settings_for
from tests.integration.tamper import tamper_for
from tests.unit.seed import append, new_agent, new_conversation


@pytest.fixture(params=["sqlite", "postgres"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, list[int]]:
    """A seeded store the CLI is pointed at: a conversation id and its events' positions."""
    settings = settings_for(request.param, tmp_path, request)
    monkeypatch.setenv("DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("DATABASE_SCHEMA", settings.database_schema)
    services = build(settings)
    try:
        row = new_conversation(services, new_agent(services).id)
        for i in range(5):
            append(services, row.id, f"a{i}", f"b{i}")
        stream = services.ctx.log.history(UUID(row.id), 0, 1000)
        positions = [r.position for r in stream]
        request.node.settings = settings
        return row.conversation_id, positions
    finally:
        services.close()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = cli.main(["audit", *args])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, (json.loads(lines[-1]) if lines else {}), err


def test_an_intact_log_verifies_and_its_head_can_be_kept(
    store: tuple[str, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    conversation, positions = store
    code, head, _ = run(capsys, "head")
    assert code == 0 and head["position"] >= positions[-1]
    code, report, err = run(capsys, "verify")
    assert code == 0 and report["intact"] is True
    assert (report["position"], report["head"]) == (head["position"], head["head"])
    assert "verify" in err  # the progress bar
    code, report, _ = run(capsys, "verify", "--expect", head["expect"])
    assert code == 0 and report["intact"] is True
    code, report, _ = run(capsys, "verify", "--conversation", conversation)
    assert code == 0 and report["checked"] == len(positions)
    code, report, _ = run(capsys, "verify", "--from", str(positions[3]))
    assert code == 0 and report["checked"] == head["position"] - positions[3] + 1


def test_an_altered_event_fails_naming_its_position(
    store: tuple[str, list[int]],
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    conversation, positions = store
    services = build(request.node.settings)
    try:
        tamper_for(services).alter_state(positions[4])
    finally:
        services.close()
    for args in ((), ("--conversation", conversation)):
        code, report, err = run(capsys, "verify", *args)
        assert code == 1 and report["intact"] is False
        assert report["bad_position"] == positions[4]
        assert f"NOT INTACT at position {positions[4]}" in err


def test_bad_input_is_refused_clearly(
    store: tuple[str, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "verify", "--conversation", "conv-00000000-0000-4000-8000-000000000000"
    )
    assert code == 2 and "no conversation" in err
    code, _, err = run(capsys, "verify", "--from", "999999")
    assert code == 2 and "past the log's end" in err
    with pytest.raises(SystemExit):
        cli.main(["audit", "verify", "--expect", "12:nothex"])
