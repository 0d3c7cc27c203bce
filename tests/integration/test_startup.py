"""Starting against a database that is not there says so in one line (the password masked)
and exits, after a bounded wait; ``projections status`` reports the views as they stand."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import pytest

from domain import ids
from domain.conversation import Conversation
from runtime import cli
from runtime.bootstrap import build
from runtime.settings import Settings
from service.agents import AgentSpec
from tests.actors import DEFAULT_ACTOR
from tests.e2e.conftest import free_port


def test_an_unreachable_database_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://admin:s3cret@127.0.0.1:{free_port()}/x")
    monkeypatch.setenv("CONVLOG_DB_STARTUP_WAIT", "0.5")
    assert cli.main(["projections", "status"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("convlog: cannot reach the database at postgresql://admin:***@")
    assert "s3cret" not in err and "CONVLOG_DB_STARTUP_WAIT" in err


def test_status_reports_events_the_views_have_not_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'convlog.db'}"
    services = build(Settings(database_url=url))
    try:
        agent = services.agents.create(DEFAULT_ACTOR, AgentSpec(name="s", model="openai/x"))
        row = services.conversations.create(DEFAULT_ACTOR, agent.id)
        conversation = services.ctx.app.get(Conversation, UUID(row.id))
        assert conversation is not None
        for n in range(600):
            conversation.append_message(
                message_id=ids.new(ids.MESSAGE),
                role="user",
                message_type="user_message",
                content=f"m{n}",
            )
        services.ctx.app.save(conversation)  # written, not projected
    finally:
        services.close()
    monkeypatch.setenv("DATABASE_URL", url)
    assert cli.main(["projections", "status"]) == 0
    status = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status["lag"] == 600
