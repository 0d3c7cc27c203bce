"""Pure helpers: the compiled system message, ids, model handles."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest

from domain import ids
from domain.errors import InvalidArgument
from domain.handles import HANDLE_FORMAT_ERROR, validate_handle
from domain.memory import (
    CORE_MEMORY,
    DEFAULT_DESCRIPTIONS,
    DEFAULT_SYSTEM_PROMPT,
    compile_system_message,
    render_block,
)

NOW = datetime(2025, 3, 4, 15, 6, 7, tzinfo=UTC)
AGENT = "agent-00000000-0000-4000-8000-000000000001"


def block(label: str, value: str, **extra: object) -> dict[str, object]:
    return {"label": label, "value": value, "limit": 100, "description": None, **extra}


# -- memory --------------------------------------------------------------------------------------


def test_core_memory_placeholder_is_replaced_in_place() -> None:
    text = compile_system_message(
        f"Before\n{CORE_MEMORY}\nAfter", [block("human", "Ann")], NOW, 3, agent_id=AGENT
    )
    assert text.startswith("Before\n<memory_blocks>\n")
    assert text.endswith("</memory_metadata>\nAfter")
    assert CORE_MEMORY not in text


def test_prompt_without_placeholder_gets_memory_appended() -> None:
    text = compile_system_message("Be brief.", [block("human", "Ann")], NOW, 0, agent_id=AGENT)
    assert text.startswith("Be brief.\n\n<memory_blocks>")
    assert text.endswith("</memory_metadata>")


def test_blocks_are_rendered_in_order_with_their_metadata() -> None:
    text = compile_system_message(
        DEFAULT_SYSTEM_PROMPT,
        [block("human", "Ann"), block("persona", "Kind", read_only=True, limit=50)],
        NOW,
        0,
        agent_id=AGENT,
    )
    assert text.index("<human>") < text.index("<persona>")
    human = text[text.index("<human>") : text.index("</human>")]
    assert DEFAULT_DESCRIPTIONS["human"] in human  # no description: the default one
    assert "- chars_current=3\n- chars_limit=100" in human
    assert "read_only" not in human
    persona = text[text.index("<persona>") : text.index("</persona>")]
    assert "- read_only=true\n- chars_current=4\n- chars_limit=50" in persona
    assert "<value>\nKind\n</value>" in persona


def test_own_description_wins_over_the_default() -> None:
    rendered = render_block(block("human", "Ann", description="Who I talk to"))
    assert "<description>\nWho I talk to\n</description>" in rendered
    assert DEFAULT_DESCRIPTIONS["human"] not in rendered


def test_metadata_names_agent_conversation_recompile_time_and_message_count() -> None:
    text = compile_system_message("p", [], NOW, 42, agent_id=AGENT, conversation_id="conv-1")
    metadata = text[text.index("<memory_metadata>") :]
    assert metadata == (
        "<memory_metadata>\n"
        f"- AGENT_ID: {AGENT}\n"
        "- CONVERSATION_ID: conv-1\n"
        "- System prompt last recompiled: 2025-03-04 03:06:07 PM UTC+0000\n"
        "- 42 previous messages between you and the user are stored in recall memory\n"
        "</memory_metadata>"
    )
    own = compile_system_message("p", [], NOW, 0, agent_id=AGENT)
    assert "- CONVERSATION_ID: default\n" in own


def test_metadata_is_in_the_agents_timezone() -> None:
    text = compile_system_message("p", [], NOW, 0, agent_id=AGENT, timezone="Europe/Oslo")
    assert "- System prompt last recompiled: 2025-03-04 04:06:07 PM CET+0100" in text
    unknown = compile_system_message("p", [], NOW, 0, agent_id=AGENT, timezone="Nowhere/City")
    assert "03:06:07 PM UTC+0000" in unknown


def test_metadata_keeps_the_clock_offset() -> None:
    tz = timezone(timedelta(hours=2))
    text = compile_system_message("p", [], NOW.astimezone(tz), 0, agent_id=AGENT)
    assert "2025-03-04 05:06:07 PM UTC+02:00+0200" in text


def test_compile_is_deterministic() -> None:
    blocks = [block("human", "Ann")]
    assert compile_system_message("p", blocks, NOW, 1, agent_id=AGENT) == compile_system_message(
        "p", blocks, NOW, 1, agent_id=AGENT
    )


# -- ids -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", [ids.AGENT, ids.CONVERSATION, ids.MESSAGE, ids.BLOCK, ids.RUN])
def test_new_ids_are_valid_and_round_trip(prefix: str) -> None:
    value = ids.new(prefix)
    assert ids.is_valid(prefix, value)
    assert re.fullmatch(ids.pattern(prefix), value)
    assert ids.format_id(prefix, ids.to_uuid(value)) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "agent-",
        "agent-123",
        f"conv-{uuid4()}",  # another prefix
        f"agent-{str(uuid4()).upper()}",  # ids are lowercase
        f"agent-{uuid4().hex}",  # no dashes
        f"agent-{uuid4()}x",
        f" agent-{uuid4()}",
    ],
)
def test_malformed_ids_are_invalid(value: str) -> None:
    assert not ids.is_valid(ids.AGENT, value)


@pytest.mark.parametrize("prefix", [ids.AGENT, ids.CONVERSATION, ids.MESSAGE])
def test_an_id_with_a_trailing_newline_is_invalid(prefix: str) -> None:
    value = f"{ids.new(prefix)}\n"
    assert not ids.is_valid(prefix, value)


def test_any_uuid_version_is_a_valid_id() -> None:
    assert ids.is_valid(ids.CONVERSATION, f"conv-{UUID(int=1)}")


def test_default_conversation_id_is_stable_and_per_agent() -> None:
    a, b = uuid4(), uuid4()
    assert ids.default_conversation_id(a) == ids.default_conversation_id(UUID(str(a)))
    assert ids.default_conversation_id(a) != ids.default_conversation_id(b)
    assert ids.default_conversation_id(a) != a


def test_default_ids_are_valid() -> None:
    assert ids.DEFAULT_ORG_ID.startswith("org-")
    assert ids.to_uuid(ids.DEFAULT_ORG_ID)
    assert ids.to_uuid(ids.DEFAULT_USER_ID)


# -- handles -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "handle", [None, "", "openai/gpt-4o-mini", "convlog/builtin", "a/b/c", "ollama/llama3:8b"]
)
def test_valid_handles_pass_through(handle: str | None) -> None:
    assert validate_handle(handle) == handle


@pytest.mark.parametrize("handle", ["gpt-4o", "/gpt-4o", "openai/", "/"])
def test_malformed_handles_are_invalid_arguments(handle: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(HANDLE_FORMAT_ERROR)):
        validate_handle(handle)
