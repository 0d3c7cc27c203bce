"""The turn requests: what ``POST …/messages`` takes (conversations and the agent messaging
API), with its content parts, approvals and client tools, and resuming a stream."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from api.schemas import DEFAULT_AGENT, DefaultConversation, MessageType, Wire


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
