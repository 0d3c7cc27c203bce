"""Core memory blocks and the system message compiled from them (spec §5.1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import InvalidArgument

CORE_MEMORY = "{CORE_MEMORY}"
DEFAULT_CONVERSATION = "default"  # what the metadata names an agent's own context

DEFAULT_BLOCK_LIMIT = 100_000

DEFAULT_DESCRIPTIONS = {
    "human": (
        "The human block: Stores key details about the person you are conversing with, "
        "allowing for more personalized and friend-like conversation."
    ),
    "persona": (
        "The persona block: Stores details about your current persona, guiding how you behave "
        "and respond. This helps you to maintain consistency and personality in your "
        "interactions."
    ),
}

DEFAULT_SYSTEM_PROMPT = """<base_instructions>
You are a helpful self-improving agent with advanced memory and file system capabilities.
<memory>
You have an advanced memory system that enables you to remember past interactions and \
continuously improve your own capabilities.
Your memory consists of memory blocks and external memory:
- Memory Blocks: Stored as memory blocks, each containing a label (title), description \
(explaining how this block should influence your behavior), and value (the actual content). \
Memory blocks have size limits. Memory blocks are embedded within your system instructions \
and remain constantly available in-context.
- External memory: Additional memory storage that is accessible and that you can bring into \
context with tools when needed.
</memory>
Continue executing and calling tools until the current task is complete or you need user input.
</base_instructions>

{CORE_MEMORY}"""


def check_limit(value: str, limit: int) -> None:
    """A block's value fits its limit (Letta's text when it does not)."""
    if len(value) > limit:
        raise InvalidArgument(
            f"Edit failed: Exceeds {limit} character limit (requested {len(value)})"
        )


def with_isolated(
    agent_blocks: Sequence[Mapping[str, Any]], isolated: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The blocks a conversation sees: its isolated copies in place of the agent's."""
    overlay = {b["label"]: b for b in isolated}
    return [overlay.get(b["label"], b) for b in agent_blocks]


def render_block(block: Mapping[str, Any]) -> str:
    label = block["label"]
    description = block.get("description") or DEFAULT_DESCRIPTIONS.get(label, "")
    value = block["value"]
    metadata = []
    if block.get("read_only"):
        metadata.append("- read_only=true")
    metadata.append(f"- chars_current={len(value)}")
    metadata.append(f"- chars_limit={block['limit']}")
    meta = "\n".join(metadata)
    return (
        f"<{label}>\n<description>\n{description}\n</description>\n"
        f"<metadata>\n{meta}\n</metadata>\n<value>\n{value}\n</value>\n</{label}>"
    )


def render_memory(blocks: Sequence[Mapping[str, Any]]) -> str:
    body = "\n\n".join(render_block(b) for b in blocks)
    return (
        "<memory_blocks>\nThe following memory blocks are currently engaged in your core "
        f"memory unit:\n\n{body}\n\n</memory_blocks>"
    )


def local_time(moment: datetime, timezone: str | None) -> datetime:
    """``moment`` in the agent's timezone (UTC when it names none or an unknown one)."""
    try:
        return moment.astimezone(ZoneInfo(timezone)) if timezone else moment
    except (ZoneInfoNotFoundError, ValueError):
        return moment


def render_metadata(
    now: datetime, previous_message_count: int, agent_id: str, conversation_id: str
) -> str:
    """Letta 0.16.7's metadata block: which agent and conversation, when, how much history."""
    recompiled = now.strftime("%Y-%m-%d %I:%M:%S %p %Z%z")
    return (
        "<memory_metadata>\n"
        f"- AGENT_ID: {agent_id}\n"
        f"- CONVERSATION_ID: {conversation_id}\n"
        f"- System prompt last recompiled: {recompiled}\n"
        f"- {previous_message_count} previous messages between you and the user are stored "
        "in recall memory\n"
        "</memory_metadata>"
    )


def compile_system_message(
    system_prompt: str,
    blocks: Sequence[Mapping[str, Any]],
    now: datetime,
    previous_message_count: int,
    *,
    agent_id: str,
    conversation_id: str = DEFAULT_CONVERSATION,
    timezone: str | None = None,
) -> str:
    """The agent's prompt with ``{CORE_MEMORY}`` replaced by the rendered blocks and metadata.
    ``conversation_id`` is ``default`` for the agent's own context.
    """
    metadata = render_metadata(
        local_time(now, timezone), previous_message_count, agent_id, conversation_id
    )
    memory = render_memory(blocks) + "\n\n" + metadata
    if CORE_MEMORY not in system_prompt:
        system_prompt = system_prompt + "\n\n" + CORE_MEMORY
    return system_prompt.replace(CORE_MEMORY, memory)
