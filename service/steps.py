"""Saving one step's work: its messages, its tools' effects, and (on the last step) the end
of the run — in one transaction, before the next step starts.

A step either answers a pending approval (no model call: approved calls run, denied ones and
client results become tool results) or records what the model said: reasoning, text, tool
calls and their results, or the calls that wait for approval. Server tools run inside the
save command, on freshly loaded aggregates, so a clash with a concurrent writer re-runs them
on the new state. Returns ``None`` when the run is no longer active (it was cancelled).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.domain import Aggregate

from domain import ids
from domain.agent import Agent
from domain.conversation import Conversation
from projections.messages import context_row
from projections.search import SearchQueries
from service import wire
from service.block_copies import copies_updated, shared_block
from service.claims import Claims
from service.context import Context
from service.context_window import to_chat
from service.model import Answer, ChatMessage, ToolCall
from service.prompts import label_of, system_message
from service.tools.box import ToolResult, package
from service.tools.env import ToolEnv
from service.tools.web import Web
from service.turn_state import Turn

DENIED = "Error: request to call tool denied. User reason: {reason}"


@dataclass(frozen=True)
class StepPlan:
    ids: wire.StepIds
    answer: Answer
    run_now: list[ToolCall]  # server calls executed in this step
    ask: list[ToolCall]  # calls that wait for the client (approval or a client tool)
    stop: str | None  # the stop reason when this step ends the turn


@dataclass(frozen=True)
class StepSaved:
    items: list[dict[str, Any]]  # wire items, in order
    chat: list[ChatMessage]  # the same messages as the model will see them
    system: str | None  # the recompiled system message, when memory changed


class StepStore:
    def __init__(self, ctx: Context, claims: Claims, web: Web) -> None:
        self.ctx = ctx
        self.claims = claims
        self.web = web
        self.search = SearchQueries(ctx.store)

    # -- a model step ----------------------------------------------------------------------

    def save_step(self, turn: Turn, plan: StepPlan) -> StepSaved | None:
        step = plan.ids
        answer = plan.answer

        def command() -> tuple[list[Aggregate], StepSaved | None]:
            conversation, run = self.claims.load(turn)
            if not run.is_active:
                return [], None
            items: list[wire.Item] = []
            if not turn.inputs_saved:
                self._append_inputs(turn, conversation, step)
            if answer.reasoning:
                items.append(wire.reasoning(answer.reasoning, step))
            elif answer.usage.reasoning_tokens:  # the provider thought but shows nothing
                items.append(wire.hidden_reasoning(step))
            if answer.text:
                items.append(wire.assistant(answer.text, step))
            env = self._env(turn, conversation, step)
            if plan.run_now:
                items.append(wire.tool_calls(plan.run_now, step, approval=False))
                now = datetime.now(UTC)
                for call in plan.run_now:
                    items.append(wire.tool_return(turn.tools.execute(call, env, now), step))
            if plan.ask:
                items.append(wire.tool_calls(plan.ask, step, approval=True))
            for item in items:
                _append(conversation, item)
            changed = self._after_edits(turn, env, conversation)
            run.finish_step(
                step.step_id,
                _usage(answer),
                [c.id for c in plan.run_now + plan.ask],
                int((time.perf_counter() - step.started) * 1e9),
            )
            if plan.stop is not None:
                conversation.release_run(turn.run_id, "completed")
                run.complete(plan.stop, turn.usage(plus=answer.usage), turn.timings())
            return [conversation, run, *changed], _saved(conversation, items, env)

        saved, position = self.ctx.app.save_with_result(turn.actor, command)
        if plan.stop is not None:
            # The turn's last save brings the views up to all its steps (read-your-writes);
            # between steps the loop reads nothing from them, and the poller shows progress.
            self.ctx.settle(position)
        if saved is not None:
            turn.inputs_saved = True
        return saved

    # -- an approval answer ----------------------------------------------------------------

    def save_answers(self, turn: Turn, pending: dict[str, Any]) -> StepSaved | None:
        """Record the client's decisions and results for the pending calls, and run the
        approved ones. The loop then calls the model, in the same request.
        """
        approvals = turn.request.approvals or []
        step = wire.StepIds.new(turn.run_id)
        calls = {c["tool_call_id"]: c for c in pending["tool_calls"]}

        def command() -> tuple[list[Aggregate], StepSaved | None]:
            conversation, run = self.claims.load(turn)
            if not run.is_active:
                return [], None
            env = self._env(turn, conversation, step)
            now = datetime.now(UTC)
            items = [wire.approval_response(approvals, turn.actor.user_id, step)]
            for answer in approvals:
                call = calls[answer["tool_call_id"]]
                result = self._result_of(turn, answer, call, env, now)
                items.append(wire.tool_return(result, step))
            for item in items:
                _append(conversation, item)
            changed = self._after_edits(turn, env, conversation)
            return [conversation, run, *changed], _saved(conversation, items, env)

        saved, _ = self.ctx.app.save_with_result(
            turn.actor, command
        )  # the turn's last save settles
        return saved

    def _result_of(
        self,
        turn: Turn,
        answer: dict[str, Any],
        call: dict[str, Any],
        env: ToolEnv,
        now: datetime,
    ) -> ToolResult:
        tool_call = ToolCall(call["tool_call_id"], call["name"], call["arguments"])
        if answer["type"] == "tool":  # a client tool's own result
            ok = answer.get("status", "success") == "success"
            value = str(answer.get("tool_return") or "")
            return ToolResult(
                tool_call.id,
                tool_call.name,
                "success" if ok else "error",
                value,
                package(ok, value, now),
                answer.get("stdout"),
                answer.get("stderr"),
            )
        if not answer.get("approve"):
            text = DENIED.format(reason=answer.get("reason"))
            return turn.tools.error(tool_call, text, now)
        if turn.tools.is_client(tool_call.name) or tool_call.name not in turn.tools.server:
            text = (
                f"Tool {tool_call.name} runs on the client: send its result "
                "({'type': 'tool', 'tool_call_id', 'tool_return', 'status'}), not an approval."
            )
            return turn.tools.error(tool_call, text, now)
        return turn.tools.execute(tool_call, env, now)

    # -- shared ----------------------------------------------------------------------------

    def _agent(self, turn: Turn) -> Agent:
        agent = self.ctx.app.get(Agent, ids.to_uuid(turn.agent_id))
        assert agent is not None
        return agent

    def _env(self, turn: Turn, conversation: Conversation, step: wire.StepIds) -> ToolEnv:
        return ToolEnv(
            conversation=conversation,
            load_agent=lambda: self._agent(turn),
            agent_id=turn.agent_id,
            conversation_id=str(conversation.id),
            run_id=turn.run_id,
            step_id=step.step_id,
            search=self.search.search,
            web=self.web,
            timezone=str(turn.agent.settings.get("timezone") or "UTC"),
        )

    def _append_inputs(self, turn: Turn, conversation: Conversation, step: wire.StepIds) -> None:
        conversation.check_no_pending_approval()
        for m in turn.request.messages:
            conversation.append_message(
                message_id=ids.new(ids.MESSAGE),
                role=m["role"],
                message_type=f"{m['role']}_message",
                content=m["content"],
                run_id=turn.run_id,
                step_id=step.step_id,
                otid=m.get("otid") or None,
                extra={k: m[k] for k in ("name", "sender_id") if m.get(k)},
            )

    def _after_edits(self, turn: Turn, env: ToolEnv, conversation: Conversation) -> list[Aggregate]:
        """After a memory edit the system message of this conversation is recompiled, so the
        next step and the next turn see the new value; new conversations start from it. Other
        conversations keep theirs (prefix caching), as in Letta.
        """
        if not env.changed_blocks:
            return []
        agent = env.agent
        count = self.ctx.conversations.message_count_of_agent(agent.organization_id, turn.agent_id)
        conversation.recompile_system_message(
            system_message(agent, label_of(conversation), env.visible_blocks(), count)
        )
        edited = [b for b in env.changed_blocks if conversation.isolated_block(b) is None]
        if not edited:
            return []
        return [agent, *self._shared_edits(agent, turn.agent_id, edited)]

    def _shared_edits(self, agent: Agent, agent_id: str, labels: list[str]) -> list[Aggregate]:
        """Shared blocks the tools edited change on the block and on every other agent's
        copy, in this same save (``service/block_copies.py``).
        """
        edits = []
        for label in labels:
            block = shared_block(self.ctx, agent, label)
            if block is not None:
                changes = {"value": agent.block(label)["value"]}
                block.update(changes, agent_id=agent_id)
                edits.append((block, changes))
        blocks: list[Aggregate] = [block for block, _ in edits]
        return [*blocks, *copies_updated(self.ctx, edits, agent_id)]


def _append(conversation: Conversation, item: wire.Item) -> None:
    conversation.append_message(
        message_id=item.message_id,
        role=item.role,
        message_type=item.message_type,
        content=item.content,
        run_id=item.run_id,
        step_id=item.step_id,
        otid=wire.otid(item.message_id),
        extra=item.extra,
    )


def _saved(conversation: Conversation, items: list[wire.Item], env: ToolEnv) -> StepSaved:
    """What the step added, as the wire and the model see it (from the events themselves)."""
    appended = [
        e for e in conversation.pending_events if isinstance(e, Conversation.MessageAppended)
    ]
    system = None
    for e in conversation.pending_events:
        if isinstance(e, Conversation.SystemMessageRecompiled):
            system = e.content
    return StepSaved(
        [item.wire() for item in items], to_chat([context_row(e) for e in appended]), system
    )


def _usage(answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.usage.prompt_tokens,
        "completion_tokens": answer.usage.completion_tokens,
        "finish_reason": answer.finish_reason,
    }
