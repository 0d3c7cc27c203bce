"""Wire schemas: request bodies and queries as Letta accepts them, responses as it returns them.

Unknown fields are ignored, as in Letta (newer SDKs send fields this version does not know).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Order = Literal["asc", "desc"]
# Larger pages are refused rather than overflowing the database's LIMIT.
MAX_LIMIT = 1_000_000


class Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- requests -------------------------------------------------------------------------------


class CreateConversation(Wire):
    summary: str | None = None
    isolated_block_labels: list[str] | None = None
    model: str | None = None
    model_settings: dict[str, Any] | None = None


class UpdateConversation(Wire):
    summary: str | None = None
    model: str | None = None
    model_settings: dict[str, Any] | None = None


class CreateConversationQuery(Wire):
    agent_id: str = Field(description="The agent the conversation belongs to.")


class ListConversationsQuery(Wire):
    agent_id: str | None = None
    limit: int = Field(50, ge=0, le=MAX_LIMIT)
    after: str | None = Field(None, description="A conversation id: list the ones after it.")
    summary_search: str | None = Field(
        None, description="Only conversations whose summary contains this text literally."
    )
    order: Order = "desc"
    order_by: Literal["created_at", "last_run_completion", "last_message_at"] = "created_at"


class ListMessagesQuery(Wire):
    before: str | None = Field(None, description="A message id: items before it in this order.")
    after: str | None = Field(None, description="A message id: items after it in this order.")
    limit: int | None = Field(100, ge=0, le=MAX_LIMIT)
    order: Order = "desc"
    order_by: Literal["created_at"] = "created_at"
    group_id: str | None = None
    include_err: bool | None = None


class ListEventsQuery(Wire):
    after: int = Field(0, ge=0, le=2**62, description="A stream version: events after it.")
    limit: int = Field(100, ge=1, le=1000)


class CreateBlock(Wire):
    label: str = Field(min_length=1)
    value: str
    limit: int = Field(100_000, ge=1, le=2**31 - 1)
    description: str | None = None
    read_only: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)


class CreateAgent(Wire):
    name: str | None = None
    system: str | None = None
    agent_type: str = "letta_v1_agent"
    model: str | None = None
    embedding: str | None = None
    memory_blocks: list[CreateBlock] | None = None
    description: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    timezone: str | None = "UTC"
    context_window_limit: int | None = Field(None, ge=1, le=2**31 - 1)
    model_settings: dict[str, Any] | None = None
    include_base_tools: bool = True


class UpdateBlock(Wire):
    value: str | None = None
    limit: int | None = Field(None, ge=1, le=2**31 - 1)
    description: str | None = None
    read_only: bool | None = None
    metadata: dict[str, Any] | None = None


class ListAgentsQuery(Wire):
    name: str | None = None
    limit: int = Field(50, ge=0, le=MAX_LIMIT)
    after: str | None = None
    before: str | None = None
    order: Order = "desc"


# -- responses ------------------------------------------------------------------------------


class Health(Wire):
    version: str
    status: str


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
    tools: list[Any]
    sources: list[Any]
    tool_rules: list[Any]
    message_ids: list[str]
    timezone: str | None
    created_by_id: str | None
    last_updated_by_id: str | None
    created_at: datetime
    updated_at: datetime


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
    timestamp: datetime
    payload: dict[str, Any]
