"""What one turn is: its request, its state while it runs, and its result."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from domain.agent import Agent
from domain.run import otids_of
from service import frames
from service.actor import Actor
from service.model import Usage
from service.streams import TurnStream
from service.tools.box import ClientTool, ToolBox


@dataclass(frozen=True)
class TurnRequest:
    messages: list[dict[str, Any]]  # each {role, content, otid?, name?, sender_id?}
    max_steps: int = 50
    stream_tokens: bool = False
    include_return_message_types: list[str] | None = None
    override_model: str | None = None
    background: bool = False
    include_pings: bool = True
    streaming: bool = True
    include_compaction_messages: bool = False
    # The answer to a pending approval: [{type: approval, tool_call_id, approve, reason?} |
    # {type: tool, tool_call_id, tool_return, status, stdout?, stderr?}]
    approvals: list[dict[str, Any]] | None = None
    client_tools: tuple[ClientTool, ...] = ()
    override_system: str | None = None  # the model's system prompt for this request only
    client_skills: tuple[dict[str, str], ...] = ()  # {name, description, location}

    @property
    def otids(self) -> list[str]:
        """The client's ids of the input messages (a retry sends the same ones)."""
        return otids_of(self.messages)


@dataclass
class TurnResult:
    stop_reason: str = "end_turn"
    messages: list[dict[str, Any]] = field(default_factory=list)  # what JSON sends return
    usage: dict[str, Any] = field(default_factory=lambda: frames.usage_statistics())
    error: dict[str, Any] | None = None
    status: int = 200  # the HTTP status a non-streaming send answers with on error
    kind: str | None = None  # the ModelError kind, when the model failed


@dataclass
class Turn:
    run_id: str
    stream_id: UUID
    lock_key: str
    lock_token: str
    agent_id: str
    agent_direct: bool
    agent: Agent
    handle: str
    model_settings: dict[str, Any]
    request: TurnRequest
    tools: ToolBox
    stream: TurnStream
    actor: Actor
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    result: TurnResult = field(default_factory=TurnResult)
    started: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    notices: list[dict[str, Any]] = field(default_factory=list)  # compaction messages
    inputs_saved: bool = False  # the request's messages are in the conversation
    steps: int = 0  # model steps saved
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int | None = None
    # The approval request the turn answers, as the conversation held it at the start.
    pending: dict[str, Any] | None = None
    # A repeated approval answer, or a retry's: the results recorded the first time, again.
    replay: list[dict[str, Any]] | None = None
    # The <available_skills> block of this request's system prompt ("" for none).
    skills: str = ""
    # The earlier run this request is a retry of (its otids were taken by that run).
    retry_of: str | None = None

    def count_step(self, usage: Usage) -> None:
        self.steps += 1
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        if usage.reasoning_tokens is not None:
            self.reasoning_tokens = (self.reasoning_tokens or 0) + usage.reasoning_tokens

    def usage(self, plus: Usage | None = None) -> dict[str, Any]:
        """Letta's usage_statistics of the steps counted so far (and of one more)."""
        extra = plus or Usage(0, 0)
        reasoning = self.reasoning_tokens
        if extra.reasoning_tokens is not None:
            reasoning = (reasoning or 0) + extra.reasoning_tokens
        return frames.usage_statistics(
            self.prompt_tokens + extra.prompt_tokens,
            self.completion_tokens + extra.completion_tokens,
            self.steps + (plus is not None),
            reasoning,
        )

    def timings(self) -> dict[str, int]:
        return {
            "ttft_ns": int(((self.first_token or time.perf_counter()) - self.started) * 1e9),
            "total_duration_ns": int((time.perf_counter() - self.started) * 1e9),
        }
