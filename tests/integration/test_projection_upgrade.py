"""Upgrading: views written by an earlier release are rebuilt when their shape changed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from runtime.bootstrap import build
from runtime.settings import Settings
from tests.unit.seed import ACTOR, new_agent, new_conversation

# The conversation index as the first release (commit cd98229) created it, at version 1.
FIRST_RELEASE_CONVERSATIONS = (
    'CREATE TABLE "conversations_g1" ('
    " id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, organization_id TEXT NOT NULL,"
    " is_default INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,"
    " summary TEXT, model TEXT, model_settings TEXT, isolated_block_ids TEXT NOT NULL,"
    " created_by_id TEXT, last_updated_by_id TEXT,"
    " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
    " last_message_at BIGINT, last_run_completion BIGINT,"
    " message_count INTEGER NOT NULL DEFAULT 0, context_from INTEGER NOT NULL DEFAULT 0)"
)
FIRST_RELEASE_COLUMNS = (
    "id, agent_id, organization_id, is_default, deleted, summary, model, model_settings,"
    " isolated_block_ids, created_by_id, last_updated_by_id, created_at, updated_at,"
    " last_message_at, last_run_completion, message_count, context_from"
)


def downgrade_conversation_index(views: Path) -> None:
    """Put the conversation index back in the first release's shape, rows and all."""
    conn = sqlite3.connect(views, isolation_level=None)
    try:
        (generation,) = conn.execute(
            "SELECT active FROM projection_generations WHERE name = 'conversations'"
        ).fetchone()
        assert generation == 1
        conn.execute("BEGIN")
        conn.execute("DROP VIEW conversations")
        conn.execute('ALTER TABLE "conversations_g1" RENAME TO current_rows')
        for (index,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'current_rows'"
            " AND sql IS NOT NULL"
        ).fetchall():
            conn.execute(f'DROP INDEX "{index}"')
        conn.execute(FIRST_RELEASE_CONVERSATIONS)
        conn.execute(
            f'INSERT INTO "conversations_g1" ({FIRST_RELEASE_COLUMNS})'
            f" SELECT {FIRST_RELEASE_COLUMNS} FROM current_rows"
        )
        conn.execute("DROP TABLE current_rows")
        conn.execute('CREATE VIEW conversations AS SELECT * FROM "conversations_g1"')
        # What that release recorded for its shape (its version; no DDL fingerprint yet).
        conn.execute(
            "UPDATE projection_generations SET fingerprint = '1' WHERE name = 'conversations'"
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_an_earlier_releases_conversation_index_is_rebuilt_on_startup(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'convlog.db'}")
    services = build(settings)
    try:
        agent = new_agent(services)
        row = new_conversation(services, agent.id, summary="kept")
    finally:
        services.close()
    downgrade_conversation_index(tmp_path / "convlog-views.db")

    upgraded = build(settings)
    try:
        assert upgraded.conversations.get(ACTOR, row.conversation_id).summary == "kept"
    finally:
        upgraded.close()
