"""Write a golden log: a small event log made by this release, and the views it gives.

Run once per release whose events changed (``python -m tests.golden.write <version>``); the
output directory is committed and never edited again. ``test_golden.py`` replays every golden
log with the current code and checks that it still loads and projects into the same views.

The log is JSON lines of stored events (topic, originator, version, state as the stored JSON)
and snapshots, so an auditor can read it and a reviewer can diff it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from api import render
from runtime.bootstrap import Services, build
from runtime.settings import Settings
from service.agents import AgentSpec, BlockSpec
from service.context import DEFAULT_ACTOR
from service.turns import TurnRequest
from tests.golden.views import expected_views
from tests.scripted_model import ScriptedModel

HERE = Path(__file__).parent


def _turn(services: Services, path_id: str, text: str) -> None:
    async def send() -> None:
        turns = services.turns
        turn = await turns.begin(
            DEFAULT_ACTOR,
            path_id,
            TurnRequest(messages=[{"role": "user", "content": text}], streaming=False),
        )
        await turns.result_of(turn)

    asyncio.run(send())


def _failed_and_cancelled(services: Services, path_id: str) -> None:
    """A turn the model fails (RunFailed, input kept on the run) and one cancelled mid-way."""
    builtin = services.turns.model
    services.turns.model = ScriptedModel(fail="rate_limit")
    _turn(services, path_id, "this one fails")

    async def cancelled() -> None:
        release = asyncio.Event()
        services.turns.model = ScriptedModel(release=release)
        turn = await services.turns.begin(
            DEFAULT_ACTOR, path_id, TurnRequest(messages=[{"role": "user", "content": "stop"}])
        )
        await services.runs.cancel(DEFAULT_ACTOR, path_id)
        release.set()
        await services.turns.result_of(turn)

    asyncio.run(cancelled())
    services.turns.model = builtin


def populate(services: Services) -> None:
    """A bit of everything the release can record."""
    actor = DEFAULT_ACTOR
    ann = services.agents.create(
        actor,
        AgentSpec(
            name="ann",
            model="convlog/builtin",
            memory_blocks=[BlockSpec("human", "The user is Ann."), BlockSpec("persona", "A bot.")],
            settings={"tags": ["golden"], "timezone": "UTC"},
        ),
    )
    services.agents.update_block(actor, ann.id, "human", {"value": "The user is Ann Lee."})
    first = services.conversations.create(actor, ann.id, summary="first")
    for text in ("hello", "what did I say?", "third message", "fourth"):
        _turn(services, first.conversation_id, text)
    asyncio.run(
        services.compaction.compact(actor, first.conversation_id, {"mode": "sliding_window"})
    )
    _turn(services, first.conversation_id, "after compaction")
    isolated = services.conversations.create(actor, ann.id, isolated_block_labels=["human"])
    _turn(services, isolated.conversation_id, "isolated hello")
    services.conversations.update(actor, isolated.conversation_id, {"summary": "renamed"})
    _turn(services, ann.id, "agent-direct hello")  # the agent's own context
    _failed_and_cancelled(services, first.conversation_id)
    # Enough conversations for an agent snapshot (every 20 events).
    for _ in range(20):
        services.conversations.create(actor, ann.id)
    gone = services.conversations.create(actor, ann.id, summary="to delete")
    services.conversations.delete(actor, gone.conversation_id)
    bob = services.agents.create(
        actor, AgentSpec(name="bob", memory_blocks=[BlockSpec("human", "x")])
    )
    services.conversations.create(actor, bob.id)
    services.agents.delete(actor, bob.id)


def dump_log(services: Services) -> list[dict[str, Any]]:
    recorder = services.ctx.app.recorder
    records: list[dict[str, Any]] = []
    for n in recorder.select_notifications(start=1, limit=1_000_000):
        records.append(
            {
                "kind": "event",
                "originator_id": str(n.originator_id),
                "originator_version": n.originator_version,
                "topic": n.topic,
                "state": n.state.decode("utf-8"),
            }
        )
    snapshots = services.ctx.app.snapshots
    assert snapshots is not None
    for originator in sorted({r["originator_id"] for r in records}):
        from uuid import UUID

        for s in snapshots.recorder.select_events(UUID(originator)):
            records.append(
                {
                    "kind": "snapshot",
                    "originator_id": str(s.originator_id),
                    "originator_version": s.originator_version,
                    "topic": s.topic,
                    "state": s.state.decode("utf-8"),
                }
            )
    return records


def main(version: str) -> None:
    out = HERE / version
    out.mkdir(parents=True, exist_ok=False)
    services = build(Settings(database_url="memory://"))
    try:
        populate(services)
        with (out / "log.jsonl").open("w") as f:
            for record in dump_log(services):
                f.write(json.dumps(record, sort_keys=True) + "\n")
        views = expected_views(services, render)
        (out / "views.json").write_text(json.dumps(views, indent=1, sort_keys=True) + "\n")
    finally:
        services.close()


if __name__ == "__main__":
    main(sys.argv[1])
