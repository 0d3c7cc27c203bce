"""The agent requests (``POST`` and ``PATCH /v1/agents/…``), and how each of Letta's fields is
treated: applied, applied in its newer form, or refused when it asks for what convlog does
not do (a 422 naming the fields; never accepted and dropped). Fields Letta's own server
ignores are documented so on their ``Field``.

Letta's deprecated top-level ``max_tokens`` and ``parallel_tool_calls`` are applied as
``model_settings.max_output_tokens`` and ``model_settings.parallel_tool_calls`` (Letta Code
sends both forms together); the two forms must agree.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from api.schemas import CompactionSettings, CreateBlock, ToolRuleIn, Wire

# Letta's fields convlog does not implement, on create and on update: refused when given
# anything but their "nothing" value (null, false, an empty list or object).
UNSUPPORTED_AGENT_FIELDS = (
    "source_ids",
    "folder_ids",
    "block_ids",
    "tool_exec_environment_variables",
    "secrets",
    "identity_ids",
    "reasoning",
    "response_format",
    "enable_sleeptime",
    "max_files_open",
    "per_file_view_window_char_limit",
    "message_buffer_autoclear",
)
# Only on create (Letta's CreateAgent has them; its UpdateAgent does not).
UNSUPPORTED_ON_CREATE = (
    "initial_message_sequence",
    "include_multi_agent_tools",
    "include_default_source",
    "embedding_chunk_size",
    "max_reasoning_tokens",
    "enable_reasoner",
    "from_template",
    "template",
    "memory_variables",
    "template_id",
    "base_template_id",
)
# Only on update.
UNSUPPORTED_ON_UPDATE = ("message_ids", "llm_config", "embedding_config")
# deprecated top-level field -> the model_settings key it is
HIDDEN = (
    "Hidden agents are left out of lists and counts unless show_hidden_agents is set; an "
    "agent tagged role:subagent (Letta Code's subagents) is created hidden."
)
LEGACY_MODEL_FIELDS = {
    "max_tokens": "max_output_tokens",
    "parallel_tool_calls": "parallel_tool_calls",
}


def _given(value: Any) -> bool:
    return value not in (None, False, [], {}, "")


def refuse_and_move(data: Any, unsupported: tuple[str, ...], verb: str) -> Any:
    """Refuse the unsupported fields given a value; move the legacy model fields into
    ``model_settings``."""
    if not isinstance(data, dict):
        return data
    given = sorted(k for k in unsupported if _given(data.get(k)))
    if given:
        raise ValueError(f"convlog does not support {verb} {', '.join(given)}")
    given_settings = data.get("model_settings")
    if given_settings is not None and not isinstance(given_settings, dict):
        return data  # not an object: its own validation answers 422
    data = dict(data)
    settings = dict(given_settings or {})
    for legacy, key in LEGACY_MODEL_FIELDS.items():
        value = data.pop(legacy, None)
        if value is None:
            continue
        if settings.get(key) is not None and settings[key] != value:
            raise ValueError(
                f"{legacy}={value!r} contradicts model_settings.{key}={settings[key]!r}"
            )
        settings[key] = value
    if settings:
        data["model_settings"] = settings
    return data


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
    include_base_tool_rules: bool | None = None
    tools: list[str] | None = None
    tool_ids: list[str] | None = None
    tool_rules: list[ToolRuleIn] | None = None
    compaction_settings: CompactionSettings | None = None
    llm_config: dict[str, Any] | None = Field(
        None,
        description="Deprecated (Letta): the model, its context window and settings, applied "
        "as model / context_window_limit / model_settings; other fields refused.",
    )
    embedding_config: dict[str, Any] | None = Field(
        None, description="Deprecated (Letta): the embedding handle, applied as embedding."
    )
    project_id: str | None = Field(None, description="Accepted and ignored, as by Letta's server.")
    hidden: bool | None = Field(None, description=HIDDEN)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        return refuse_and_move(
            data, (*UNSUPPORTED_AGENT_FIELDS, *UNSUPPORTED_ON_CREATE), "the agent fields"
        )


class UpdateAgent(Wire):
    """``PATCH /v1/agents/{id}``: fields left out (or null) keep their value."""

    name: str | None = Field(None, min_length=1)
    system: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    model: str | None = None
    embedding: str | None = None
    model_settings: dict[str, Any] | None = None
    compaction_settings: CompactionSettings | None = None
    context_window_limit: int | None = Field(None, ge=1, le=2**31 - 1)
    timezone: str | None = None
    tool_ids: list[str] | None = None
    tool_rules: list[ToolRuleIn] | None = None
    project_id: str | None = Field(None, description="Accepted and ignored, as by Letta's server.")
    hidden: bool | None = Field(None, description=HIDDEN)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        return refuse_and_move(
            data, (*UNSUPPORTED_AGENT_FIELDS, *UNSUPPORTED_ON_UPDATE), "changing"
        )
