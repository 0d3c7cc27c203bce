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
from domain import ids, tools
from domain.api_key import organization_id
from domain.conversation import Conversation
from runtime.bootstrap import build
from runtime.settings import Settings
from service.actor import Actor, operator
from service.agents import AgentSpec, BlockSpec, ToolChange
from service.blocks import NewBlock
from service.services import Services
from service.tools.box import ClientTool
from service.turns import TurnRequest
from tests.actors import DEFAULT_ACTOR
from tests.golden.views import expected_views
from tests.scripted_model import ScriptedModel

HERE = Path(__file__).parent


def _turn(
    services: Services, path_id: str, text: str | Any | None, otid: str | None = None, **fields: Any
) -> None:
    messages = [] if text is None else [{"role": "user", "content": text}]
    if otid is not None:
        messages[0]["otid"] = otid

    async def send() -> None:
        turns = services.turns
        request = TurnRequest(messages=messages, streaming=False, **fields)
        turn = await turns.begin(DEFAULT_ACTOR, path_id, request)
        await turns.result_of(turn)

    asyncio.run(send())


def _failed_and_cancelled(services: Services, path_id: str) -> None:
    """A turn the model fails (RunFailed, input kept on the run) and one cancelled mid-way."""
    loop = services.turns.loop  # the step loop calls the model
    builtin = loop.model
    loop.model = ScriptedModel(fail="rate_limit")
    _turn(services, path_id, "this one fails")

    async def cancelled() -> None:
        release = asyncio.Event()
        loop.model = ScriptedModel(release=release)
        turn = await services.turns.begin(
            DEFAULT_ACTOR, path_id, TurnRequest(messages=[{"role": "user", "content": "stop"}])
        )
        await services.runs.cancel(DEFAULT_ACTOR, path_id)
        release.set()
        await services.turns.result_of(turn)

    asyncio.run(cancelled())
    loop.model = builtin


def _tools(services: Services, agent_id: str) -> None:
    """Since 0.2.0: tool turns with the built-in model's rule (memory edit, search), an
    isolated block edit, an approval and a client tool round trip, tool changes, a reset.
    """
    actor = DEFAULT_ACTOR
    talk = services.conversations.create(actor, agent_id, summary="tools").conversation_id
    _turn(services, talk, "remember that I like tea")
    _turn(services, talk, "search tea")
    isolated = services.conversations.create(actor, agent_id, isolated_block_labels=["human"])
    _turn(services, isolated.conversation_id, "remember to be brief")
    services.agents.change_tools(
        actor, agent_id, ToolChange(attach=tools.BY_NAME["memory_rethink"].id)
    )
    services.agents.change_tools(actor, agent_id, ToolChange(approval=("memory_insert", True)))
    asked = services.conversations.create(actor, agent_id).conversation_id
    _turn(services, asked, "remember that approvals are recorded")
    pending = services.ctx.app.get(Conversation, ids.to_uuid(asked))
    assert pending is not None and pending.pending_approval is not None
    call_id = pending.pending_approval["tool_calls"][0]["tool_call_id"]
    decision = {"type": "approval", "tool_call_id": call_id, "approve": False, "reason": "no"}
    _turn(services, asked, None, approvals=[decision])
    weather = ClientTool("weather", "The weather", {"type": "object", "properties": {}})
    _turn(services, asked, "call weather {}", client_tools=(weather,))
    pending = services.ctx.app.get(Conversation, ids.to_uuid(asked))
    assert pending is not None and pending.pending_approval is not None
    call_id = pending.pending_approval["tool_calls"][0]["tool_call_id"]
    result = {"type": "tool", "tool_call_id": call_id, "tool_return": "sunny", "status": "success"}
    _turn(services, asked, None, approvals=[result], client_tools=(weather,))
    services.agents.change_tools(actor, agent_id, ToolChange(approval=("memory_insert", False)))
    services.agents.change_tools(
        actor, agent_id, ToolChange(detach=tools.BY_NAME["memory_rethink"].id)
    )
    services.agents.reset_messages(actor, agent_id)
    services.agents.update(
        actor, agent_id, {"system": "You are Ann's assistant.", "settings": {"tags": ["edited"]}}
    )
    services.conversations.recompile(actor, talk, dry_run=False)
    finished = services.runs.list_runs(
        actor,
        agent_id=agent_id,
        conversation_id=None,
        statuses=["completed"],
        background=None,
        ascending=True,
        limit=1,
    )
    services.runs.delete(actor, finished[0].id)


def _since_0_3_0(services: Services, agent_id: str, compacted: str) -> None:
    """Since 0.3.0: forks (of a compacted conversation, and of a fork), a send with an otid
    and its retry, a shared block edited through the API and by a memory tool, an image.
    """
    actor = DEFAULT_ACTOR
    fork = services.conversations.fork(actor, compacted).conversation_id
    _turn(services, fork, "in the fork", otid="00000000-0000-4000-8000-0000000000f1")
    _turn(services, fork, "in the fork", otid="00000000-0000-4000-8000-0000000000f1")  # a retry
    grandchild = services.conversations.fork(actor, fork).conversation_id
    _turn(services, grandchild, "in the fork of the fork")
    carol = services.agents.create(
        actor, AgentSpec(name="carol", model="convlog/builtin", memory_blocks=[])
    )
    team = services.blocks.create(actor, NewBlock("team", "Team: red", limit=500)).id
    for member in (agent_id, carol.id):
        services.blocks.attach(actor, member, team)
    services.blocks.modify(actor, team, {"value": "Team: blue"})
    edit = json.dumps({"label": "team", "new_string": "Lead: Carol"})
    _turn(services, carol.id, f"call memory_insert {edit}")
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    _turn(services, fork, [{"type": "text", "text": "look"}, image])


def _since_0_4_0(services: Services) -> None:
    """Since 0.4.0: keys issued and revoked, and a tenant of its own acting through a key
    (each event records who caused it)."""
    org = organization_id("golden-tenant")
    kept = services.keys.issue(operator(org), "golden-tenant", "kept")
    revoked = services.keys.issue(operator(org), "golden-tenant", "revoked")
    services.keys.revoke(operator(org), revoked.id)
    tenant = Actor(org, "user-00000000-0000-4000-8000-0000000000aa", kept.id)
    dana = services.agents.create(
        tenant, AgentSpec(name="dana", model="convlog/builtin", memory_blocks=[])
    )
    talk = services.conversations.create(tenant, dana.id).conversation_id

    async def send() -> None:
        request = TurnRequest(messages=[{"role": "user", "content": "hi"}], streaming=False)
        turn = await services.turns.begin(tenant, talk, request)
        await services.turns.result_of(turn)

    asyncio.run(send())


def _since_0_5_0(services: Services) -> None:
    """Since 0.5.0: agents as Letta Code makes them (hidden, a role:subagent one, the web tools,
    the legacy max_tokens applied as model_settings)."""
    actor = DEFAULT_ACTOR
    services.agents.create(
        actor,
        AgentSpec(
            name="coder",
            model="letta/auto",
            include_base_tools=False,
            tools=["web_search", "fetch_webpage"],
            settings={"tags": ["origin:letta-code"], "model_settings": {"max_output_tokens": 2000}},
        ),
    )
    services.agents.create(
        actor, AgentSpec(name="helper", settings={"tags": ["role:subagent"], "hidden": True})
    )
    quiet = services.agents.create(actor, AgentSpec(name="quiet", settings={"hidden": True}))
    services.agents.update(actor, quiet.id, {"settings": {"hidden": False}})
    _turn(services, quiet.id, "hello from 0.5.0")


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
    _tools(services, ann.id)
    _since_0_3_0(services, ann.id, first.conversation_id)
    _since_0_4_0(services)
    _since_0_5_0(services)


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
