"""The responses' shapes, for the OpenAPI document (the handlers render them, ``api/render.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from api.schemas import Wire


class Health(Wire):
    version: str = Field(description="the Letta server release whose API this serves")
    convlog_version: str = Field(description="this server's own release")
    status: str = Field(description="ok, or degraded / unavailable when a dependency is down")
    database: str = Field(description="ok or unavailable")
    redis: str | None = Field(None, description="ok or unavailable; absent without Redis")


class ConversationOut(Wire):
    id: str
    agent_id: str
    summary: str | None
    in_context_message_ids: list[str]
    isolated_block_ids: list[str]
    model: str | None
    model_settings: dict[str, Any] | None
    created_by_id: str | None
    last_updated_by_id: str | None
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime | None


class BlockOut(Wire):
    id: str
    label: str
    value: str
    limit: int
    description: str | None
    read_only: bool
    metadata: dict[str, Any]
    is_template: bool = False
    template_name: str | None = None
    preserve_on_migration: bool | None = False


class MemoryOut(Wire):
    blocks: list[BlockOut]
    file_blocks: list[Any] = Field(default_factory=list)
    prompt_template: str | None = None
    agent_type: str | None = None


class AgentStateOut(Wire):
    id: str
    name: str
    system: str
    agent_type: str
    description: str | None
    metadata: dict[str, Any] | None
    tags: list[str]
    model: str | None
    embedding: str | None
    llm_config: dict[str, Any]
    embedding_config: dict[str, Any] | None
    model_settings: dict[str, Any] | None
    memory: MemoryOut
    blocks: list[BlockOut]
    tools: list[ToolOut]
    sources: list[Any]
    tool_rules: list[dict[str, Any]]
    message_ids: list[str]
    timezone: str | None
    hidden: bool | None = None
    compaction_settings: dict[str, Any] | None = None
    created_by_id: str | None
    last_updated_by_id: str | None
    created_at: datetime
    updated_at: datetime


class ToolOut(Wire):
    id: str
    tool_type: str
    description: str | None
    source_type: str | None
    name: str
    tags: list[str]
    source_code: str | None
    json_schema: dict[str, Any] | None
    args_json_schema: dict[str, Any] | None
    return_char_limit: int
    pip_requirements: list[Any] | None
    npm_requirements: list[Any] | None
    default_requires_approval: bool | None
    enable_parallel_execution: bool | None
    created_by_id: str | None
    last_updated_by_id: str | None
    metadata_: dict[str, Any] | None
    project_id: str | None


class ModelOut(Wire):
    """Letta's Model (an LLMConfig with newer names); fields convlog has no value for are null."""

    handle: str
    name: str
    display_name: str
    provider_type: str
    provider_name: str
    model_type: Literal["llm"] = "llm"
    max_context_window: int
    model: str
    model_endpoint_type: str
    model_endpoint: str | None
    model_wrapper: str | None = None
    context_window: int
    put_inner_thoughts_in_kwargs: bool | None = False
    temperature: float = 0.7
    max_tokens: int | None = None
    enable_reasoner: bool = True
    reasoning_effort: str | None = None
    max_reasoning_tokens: int = 0
    frequency_penalty: float | None = None
    provider_category: str | None = None
    parallel_tool_calls: bool | None = None


class DeletedAgent(Wire):
    message: str


class MessageOut(Wire):
    """One listed item (a LettaMessage). Fields beyond these depend on ``message_type``."""

    model_config = ConfigDict(extra="allow")
    id: str
    date: str
    message_type: str
    role: str = Field(description="system|user|assistant|tool|summary|approval")
    name: str | None = None
    otid: str | None = None
    sender_id: str | None = None
    step_id: str | None = None
    is_err: bool | None = None
    seq_id: int | None = None
    run_id: str | None = None
    content: Any = None


class EventOut(Wire):
    position: int = Field(description="Global position in the event log.")
    version: int = Field(description="Position in this conversation's stream.")
    type: str
    timestamp: datetime | None = Field(description="Null when the stored bytes do not decode.")
    payload: dict[str, Any] | None = Field(description="Null when the stored bytes do not decode.")
    by: dict[str, Any] | None = Field(
        description="Who caused it: organization_id, user_id and key_id (null before 0.4.0)."
    )
    stream_id: str = Field(description="The stream (aggregate) id the hash covers, a UUID.")
    stored_state: str = Field(description="The stored bytes the hash covers, as text (JSON).")
    hash: str | None = Field(
        description="sha256(previous_hash ‖ stream id (16 bytes) ‖ version (8 bytes, big "
        "endian) ‖ len(type) (4 bytes, big endian) ‖ type ‖ stored_state), hex; see "
        "docs/adr-005-tamper-evidence.md. Null if the event has no chain entry."
    )
    previous_hash: str | None = Field(
        description="The hash of the stream's event before this one (64 zeros for version 1)."
    )
    error: str | None = Field(
        default=None, description="Why the stored event could not be decoded (a damaged log)."
    )


class AuditProblem(Wire):
    position: int = Field(description="The first log position found wrong.")
    what: str


class AuditOut(Wire):
    verified: bool = Field(description="Whether every event of the stream matches its hashes.")
    checked: int = Field(description="Events checked.")
    position: int = Field(description="The log position of the last event checked.")
    head: str = Field(description="The log hash at that position, hex.")
    problem: AuditProblem | None


class RunOut(Wire):
    id: str
    status: str
    created_at: datetime
    completed_at: datetime | None
    agent_id: str
    conversation_id: str | None
    base_template_id: str | None = None
    background: bool
    metadata: dict[str, Any]
    request_config: dict[str, Any]
    stop_reason: str | None
    callback_url: str | None = None
    callback_sent_at: datetime | None = None
    callback_status_code: int | None = None
    callback_error: str | None = None
    ttft_ns: int | None = None
    total_duration_ns: int | None = None


class LettaResponse(Wire):
    messages: list[dict[str, Any]]
    stop_reason: dict[str, Any]
    usage: dict[str, Any]
    logprobs: Any = None
    turns: Any = None


class CompactionResponse(Wire):
    summary: str
    num_messages_before: int
    num_messages_after: int


class RebuildingOut(Wire):
    generation: int = Field(description="the generation being built beside the active one")
    position: int = Field(description="the log position it has reached")


class ProjectionStatusOut(Wire):
    name: str
    generation: int = Field(description="the active generation, which readers see")
    position: int = Field(description="the last log position the active generation applied")
    lag_events: int = Field(
        description="log positions from `position` to the head (events of every kind, the "
        "ones this projection ignores too); 0 when it has nothing left to apply"
    )
    lag_seconds: float = Field(
        description="age of the oldest event it has not applied yet; 0 when caught up"
    )
    last_rebuilt_at: datetime | None = Field(
        description="when a rebuild switched to the active generation; null if none has"
    )
    rebuilding: RebuildingOut | None = Field(
        description="a rebuild running now, or one interrupted (the next rebuild resumes it)"
    )


class ProjectionsStatusOut(Wire):
    head: int = Field(description="the log's last position")
    projections: list[ProjectionStatusOut]
