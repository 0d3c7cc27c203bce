"""Wire schemas: request bodies and queries as Letta accepts them, responses as it returns them.

Unknown fields are ignored, as in Letta (newer SDKs send fields this version does not know).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

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


class CompactionResponse(Wire):
    summary: str
    num_messages_before: int
    num_messages_after: int


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


# -- responses ------------------------------------------------------------------------------


AgentRelationship = Literal[
    "agent.blocks",
    "agent.identities",
    "agent.managed_group",
    "agent.pending_approval",
    "agent.secrets",
    "agent.sources",
    "agent.tags",
    "agent.tools",
]


class RetrieveAgentQuery(Wire):
    include: list[AgentRelationship] = Field(
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
    timestamp: datetime
    payload: dict[str, Any]
    by: dict[str, Any] | None = Field(
        description="Who caused it: organization_id, user_id and key_id (null before 0.4.0)."
    )


# -- turns ----------------------------------------------------------------------------------


class TextPart(Wire):
    type: Literal["text"]
    text: str


class UrlImage(Wire):
    type: Literal["url"]
    url: str = Field(min_length=1)


class Base64Image(Wire):
    type: Literal["base64"]
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: str = Field(min_length=1)


class ImagePart(Wire):
    """An image the model sees (by URL, or inline as base64). Letta's ``letta`` source, a
    file uploaded to Letta's own storage, does not exist here and is refused.
    """

    type: Literal["image"]
    source: Annotated[UrlImage | Base64Image, Field(discriminator="type")]


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class MessageCreate(Wire):
    type: Literal["message"] | None = "message"
    role: Literal["user", "system", "assistant"]
    content: str | list[ContentPart]
    name: str | None = None
    otid: str | None = None
    sender_id: str | None = None
    group_id: str | None = None


class ClientSkillIn(Wire):
    """A skill the client's environment offers (``client_skills``): listed in the system
    prompt of this request only.
    """

    name: str
    description: str
    location: str


class ClientToolIn(Wire):
    """A tool the client runs itself (``client_tools``)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("type", "object") != "object":
            raise ValueError("parameters must be a JSON schema of type 'object'")
        return value


class ApprovalDecision(Wire):
    type: Literal["approval"] = "approval"
    tool_call_id: str = Field(min_length=1)
    approve: bool
    reason: str | None = None


class ClientToolReturn(Wire):
    type: Literal["tool"]
    tool_call_id: str = Field(min_length=1)
    tool_return: str | list[dict[str, Any]]
    status: Literal["success", "error"]
    stdout: list[str] | None = None
    stderr: list[str] | None = None


class ApprovalCreate(Wire):
    """The answer to a pending approval request (Letta's deprecated single form included)."""

    type: Literal["approval"] = "approval"
    approvals: list[ApprovalDecision | ClientToolReturn] | None = None
    approve: bool | None = None
    approval_request_id: str | None = None
    reason: str | None = None
    group_id: str | None = None


class ToolReturnCreate(Wire):
    type: Literal["tool_return"]
    tool_returns: list[ClientToolReturn]


class ToolRuleIn(Wire):
    type: Literal["requires_approval", "exit_loop", "continue_loop"]
    tool_name: str = Field(min_length=1)
    prompt_template: str | None = None


class SendMessage(Wire):
    messages: list[dict[str, Any]] | None = None
    input: str | list[ContentPart] | None = None
    max_steps: int = Field(50, ge=1, le=10_000)
    use_assistant_message: bool = True
    assistant_message_tool_name: str = "send_message"
    assistant_message_tool_kwarg: str = "message"
    include_return_message_types: list[MessageType] | None = None
    enable_thinking: str = "true"
    override_model: str | None = None
    include_compaction_messages: bool = False
    override_system: str | None = Field(
        None,
        validation_alias=AliasChoices("override_system", "system"),
        description="A system prompt for this request only, sent to the model as given "
        "(no memory blocks are added); nothing is stored.",
    )
    client_skills: list[ClientSkillIn] | None = Field(
        None,
        description="Skills listed in an <available_skills> block after the system prompt, for "
        "this request only (not with override_system, which is sent as given).",
    )
    streaming: bool = True
    stream_tokens: bool = False
    include_pings: bool = True
    background: bool = False
    client_tools: list[ClientToolIn] | None = None

    @field_validator("client_tools")
    @classmethod
    def _unique_names(cls, value: list[ClientToolIn] | None) -> list[ClientToolIn] | None:
        names = [tool.name for tool in value or []]
        if len(set(names)) != len(names):
            raise ValueError("client tool names must be unique")
        return value

    @model_validator(mode="after")
    def _one_input(self) -> SendMessage:
        if (self.messages is None) == (self.input is None):
            raise ValueError("Exactly one of 'messages' or 'input' must be provided")
        return self


class ConversationSendMessage(SendMessage):
    """``/v1/conversations/{id}/messages``: ``agent_id`` names the agent for ``default``."""

    agent_id: str | None = DEFAULT_AGENT


class AgentSendMessage(SendMessage):
    """``/v1/agents/{id}/messages``: as the conversations route, but JSON unless asked."""

    streaming: bool = False


class CancelAgentRuns(Wire):
    run_ids: list[str] | None = None


class ResetMessages(Wire):
    add_default_initial_messages: bool = False


class ResumeStream(DefaultConversation):
    run_id: str | None = Field(None, description="Resume this run (else the active one).")
    otid: str | None = Field(
        None, description="Resume the run that took a message with this otid (else the active one)."
    )
    starting_after: int = Field(0, ge=0)
    include_pings: bool | None = True
    poll_interval: float | None = Field(0.1, gt=0, le=60)
    batch_size: int | None = Field(100, ge=1, le=10_000)


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


class BlockAgentsQuery(PageQuery):
    include: list[AgentInclude] | None = Field(
        None, description="Accepted: an agent is always shown with its blocks, tools and tags."
    )


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
