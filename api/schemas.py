"""Wire schemas: the base every request and response shape builds on, and the request bodies
and queries of conversations, blocks, tools, models and runs as Letta accepts them. The agent
requests are in ``agent_schemas.py``, the turn requests in ``turn_schemas.py``, the responses in
``responses.py``.

Unknown fields are ignored, as in Letta (newer SDKs send fields this version does not know).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

from service.time_travel import AsOf

Order = Literal["asc", "desc"]
# The largest page any list serves (CONVLOG_MAX_LIST_LIMIT may lower it).
MAX_LIMIT = 1000


class Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


DEFAULT_AGENT = Field(
    None,
    description="With conversation_id=default: the agent whose own context this acts on "
    "(the same as passing the agent's id as conversation_id).",
)


class DefaultConversation(Wire):
    """A request that, with ``conversation_id=default``, names the agent it acts on."""

    agent_id: str | None = DEFAULT_AGENT


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


MessageType = Literal[
    "system_message",
    "user_message",
    "assistant_message",
    "reasoning_message",
    "hidden_reasoning_message",
    "tool_call_message",
    "tool_return_message",
    "approval_request_message",
    "approval_response_message",
    # A compaction's notices (JSON sends with include_compaction_messages); listings show a
    # summary as the user_message Letta lists it as, so these select nothing there.
    "summary_message",
    "event_message",
]


class ListMessagesQuery(DefaultConversation):
    before: str | None = Field(None, description="A message id: items before it in this order.")
    after: str | None = Field(None, description="A message id: items after it in this order.")
    limit: int | None = Field(100, ge=0, le=MAX_LIMIT)
    order: Order = "desc"
    order_by: Literal["created_at"] = "created_at"
    group_id: str | None = None
    include_err: bool | None = None
    include_return_message_types: list[MessageType] | None = Field(
        None, description="Only items of these message types."
    )


class AsOfQuery(Wire):
    """Time travel (docs/time-travel.md): the answer as it was, computed from the event log.
    Out of range (past the stream's end, before its creation, below 1, or both given): 400.
    """

    as_of_version: int | None = Field(
        None,
        description="A version of this resource's event stream (its n-th event; 1 is its "
        "creation, every event counts): answer as it was right after that event. At least 1; "
        "at most one of as_of_version and as_of.",
        json_schema_extra={"minimum": 1},
    )
    as_of: datetime | None = Field(
        None,
        description="An ISO-8601 time (no offset: UTC): answer as of the last version whose "
        "event is at or before it. At most one of as_of_version and as_of.",
    )

    def point(self) -> AsOf | None:
        """The point asked for, or None for the live answer."""
        found = AsOf(self.as_of_version, self.as_of)
        return found if found.given else None


class RetrieveConversationQuery(AsOfQuery):
    pass


class ConversationMessagesQuery(ListMessagesQuery, AsOfQuery):
    """The message list, live or as it was (the cursors, order and filters work alike)."""


class ListEventsQuery(Wire):
    after: int = Field(0, ge=0, le=2**62, description="A stream version: events after it.")
    limit: int = Field(100, ge=1, le=1000)


# Letta's block fields for templates, tags and hiding, which convlog does not implement:
# refused when given a value other than the default.
UNSUPPORTED_BLOCK_FIELDS = (
    "tags",
    "is_template",
    "template_name",
    "template_id",
    "base_template_id",
    "deployment_id",
    "entity_id",
    "hidden",
    "preserve_on_migration",
)


def refuse_block_fields(data: Any, extra: tuple[str, ...] = ()) -> Any:
    if isinstance(data, dict):
        given = sorted(
            k
            for k in (*UNSUPPORTED_BLOCK_FIELDS, *extra)
            if data.get(k) not in (None, False, [], "")
        )
        if given:
            raise ValueError(f"convlog does not support the block fields {', '.join(given)}")
    return data


class CreateBlock(Wire):
    label: str = Field(min_length=1)
    value: str
    limit: int = Field(100_000, ge=1, le=2**31 - 1)
    description: str | None = None
    read_only: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)
    project_id: str | None = Field(None, description="Accepted and ignored (one project).")

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        return refuse_block_fields(data)


class CompactionSettings(Wire):
    model: str | None = None
    model_settings: dict[str, Any] | None = None
    prompt: str | None = None
    prompt_acknowledgement: bool | None = None
    clip_chars: int | None = Field(None, ge=1, le=10_000_000)
    mode: (
        Literal["all", "sliding_window", "self_compact_all", "self_compact_sliding_window"] | None
    ) = None
    sliding_window_percentage: float | None = Field(None, gt=0, lt=1)

    @model_validator(mode="before")
    @classmethod
    def _null_is_not_given(cls, data: Any) -> Any:
        """A null ``mode`` or ``sliding_window_percentage`` is no setting: the agent's (or
        Letta's default) stays, as compacting needs one of each.
        """
        if isinstance(data, dict):
            needed = ("mode", "sliding_window_percentage")
            return {k: v for k, v in data.items() if v is not None or k not in needed}
        return data


class CompactionRequest(DefaultConversation):
    compaction_settings: CompactionSettings | None = None


class CancelQuery(DefaultConversation):
    pass


class RecompileQuery(Wire):
    dry_run: bool = Field(False, description="Return the compiled system message; write nothing.")


class RecompileAgentQuery(RecompileQuery):
    update_timestamp: bool = Field(
        True,
        description="convlog's compiled message always shows when it was compiled: false is "
        "refused (400).",
    )


# Letta's block-list filters convlog does not implement: refused when given a value.
UNSUPPORTED_BLOCK_FILTERS = (
    "templates_only",
    "name",
    "identity_id",
    "identifier_keys",
    "label_search",
    "description_search",
    "value_search",
    "connected_to_agents_count_gt",
    "connected_to_agents_count_lt",
    "connected_to_agents_count_eq",
    "tags",
)


class ListBlocksQuery(Wire):
    label: str | None = Field(None, description="Only blocks with this label.")
    limit: int = Field(50, ge=0, le=MAX_LIMIT)
    after: str | None = None
    before: str | None = None
    order: Order = "asc"
    project_id: str | None = Field(None, description="Accepted and ignored (one project).")

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = sorted(k for k in UNSUPPORTED_BLOCK_FILTERS if data.get(k) not in (None, ""))
            if given:
                raise ValueError(f"convlog does not support the block filters {', '.join(given)}")
        return data


class UpdateBlock(Wire):
    value: str | None = None
    limit: int | None = Field(None, ge=1, le=2**31 - 1)
    description: str | None = None
    read_only: bool | None = None
    metadata: dict[str, Any] | None = None
    project_id: str | None = Field(None, description="Accepted and ignored (one project).")

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        return refuse_block_fields(data, ("label",))  # a block keeps its label


class ListAgentsQuery(Wire):
    name: str | None = None
    tags: list[str] | None = Field(None, description="Agents with any of these tags.")
    match_all_tags: bool = Field(False, description="With tags: only agents with all of them.")
    query_text: str | None = Field(None, description="Agents whose name contains this text.")
    show_hidden_agents: bool = Field(False, description="Include agents marked hidden.")
    project_id: str | None = Field(None, description="Accepted and ignored (one project).")
    limit: int = Field(50, ge=0, le=MAX_LIMIT)
    after: str | None = None
    before: str | None = None
    order: Order = "desc"


# Letta's agent relations a request may name (include=…).
AgentInclude = Literal[
    "agent.blocks",
    "agent.identities",
    "agent.managed_group",
    "agent.pending_approval",
    "agent.secrets",
    "agent.sources",
    "agent.tags",
    "agent.tools",
]


class RetrieveAgentQuery(AsOfQuery):
    include: list[AgentInclude] = Field(
        default_factory=list,
        description="Letta's choice of relations to load. convlog always answers with all it "
        "keeps (blocks, tags, tools; sources as an empty list); it keeps no secrets, managed "
        "groups or identities, and a pending approval is on the conversation.",
    )
    include_relationships: list[str] | None = Field(
        None, description="Deprecated (Letta): as include, answered the same way."
    )


class CountAgentsQuery(Wire):
    show_hidden_agents: bool = Field(False, description="Count agents marked hidden too.")


class ListToolsQuery(Wire):
    """Tools are listed by id; cursors follow the requested order (decisions §4)."""

    name: str | None = None
    limit: int = Field(50, ge=0, le=MAX_LIMIT)
    after: str | None = Field(None, description="A tool id: the ones after it in this order.")
    before: str | None = Field(None, description="A tool id: the ones before it in this order.")
    order: Order = "asc"


class ToolApproval(Wire):
    requires_approval: bool


class ToolApprovalQuery(Wire):
    requires_approval: bool | None = Field(None, description="Deprecated: use the body.")


class ListModelsQuery(Wire):
    provider_category: list[Literal["base", "byok"]] | None = None
    provider_name: str | None = None
    provider_type: str | None = None


class ToolRuleIn(Wire):
    type: Literal["requires_approval", "exit_loop", "continue_loop"]
    tool_name: str = Field(min_length=1)
    prompt_template: str | None = None


StopReason = Literal[
    "end_turn",
    "error",
    "llm_api_error",
    "invalid_llm_response",
    "invalid_tool_call",
    "max_steps",
    "max_tokens_exceeded",
    "no_tool_call",
    "tool_rule",
    "cancelled",
    "requires_approval",
    "context_window_overflow_in_system_prompt",
    "insufficient_credits",
]


class ListRunsQuery(Wire):
    agent_id: str | None = None
    agent_ids: list[str] | None = Field(None, description="Runs of any of these agents.")
    conversation_id: str | None = None
    statuses: list[Literal["created", "running", "completed", "failed", "cancelled"]] | None = None
    stop_reason: StopReason | None = None
    active: bool | None = None
    background: bool | None = None
    limit: int = Field(100, ge=0, le=MAX_LIMIT)
    after: str | None = None
    before: str | None = None
    order: Order = "desc"
    ascending: bool | None = Field(None, description="Deprecated: use order.")


class ActiveRunsQuery(Wire):
    agent_id: str | None = None
    background: bool | None = None


class PageQuery(Wire):
    """A page of a short list (a run's messages or steps, an agent's blocks)."""

    before: str | None = Field(None, description="An id: items before it in this order.")
    after: str | None = Field(None, description="An id: items after it in this order.")
    limit: int | None = Field(100, ge=0, le=MAX_LIMIT)
    order: Order = "asc"
    order_by: Literal["created_at"] = "created_at"


class BlockAgentsQuery(PageQuery):
    include: list[AgentInclude] | None = Field(
        None, description="Accepted: an agent is always shown with its blocks, tools and tags."
    )
