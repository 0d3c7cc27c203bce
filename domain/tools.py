"""The built-in tools an agent can be given, and its tool rules. Pure data.

Tools are part of the server's code, not of the log: an agent records the ids of the tools it
has, and each id is derived from the tool's name, so a log stays meaningful across releases.
What each tool does lives in ``service/tools/``; here are only names, schemas and rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from domain.errors import InvalidArgument, NotFound

TOOL = "tool"
# Letta's default cap on what a tool returns to the model (characters).
RETURN_CHAR_LIMIT = 50_000

# What ``include_base_tools`` gives a letta_v1_agent.
BASE_TOOLS = ("memory_insert", "memory_replace", "conversation_search")


@dataclass(frozen=True)
class ToolDef:
    name: str
    description: str
    parameters: Mapping[str, Any]  # JSON schema of the arguments
    tool_type: str
    return_char_limit: int = RETURN_CHAR_LIMIT

    @property
    def id(self) -> str:
        return tool_id(self.name)


def tool_id(name: str) -> str:
    return f"{TOOL}-{uuid5(NAMESPACE_URL, f'convlog:tool:{name}')}"


def _schema(properties: dict[str, Any], required: Sequence[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


def _text(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


SEARCH_CATEGORIES = (
    "company",
    "research paper",
    "news",
    "pdf",
    "github",
    "tweet",
    "personal site",
    "linkedin profile",
    "financial report",
)

_LABEL = _text("Section of the memory to be edited, identified by its label.")

BUILTIN: tuple[ToolDef, ...] = (
    ToolDef(
        "memory_insert",
        "Insert text at a specific line in a memory block.",
        _schema(
            {
                "label": _LABEL,
                "new_string": _text("The text to insert. Do not include line number prefixes."),
                "insert_line": {
                    "type": "integer",
                    "description": "The line number after which to insert the text (0 for the "
                    "beginning of the block). Defaults to -1 (the end of the block).",
                },
            },
            ("label", "new_string"),
        ),
        "letta_sleeptime_core",
    ),
    ToolDef(
        "memory_replace",
        "Replace one exact occurrence of a string in a memory block with a new string.",
        _schema(
            {
                "label": _LABEL,
                "old_string": _text(
                    "The text to replace (must match exactly, including whitespace and "
                    "indentation); it must appear exactly once."
                ),
                "new_string": _text(
                    "The new text to insert in place of the old text. Do not include line "
                    "number prefixes."
                ),
            },
            ("label", "old_string", "new_string"),
        ),
        "letta_sleeptime_core",
    ),
    ToolDef(
        "memory_rethink",
        "Rewrite the whole content of a memory block. Use it for large reorganizations, not "
        "for small edits.",
        _schema(
            {
                "label": _text("The memory block to be rewritten, identified by its label."),
                "new_memory": _text("The new content of the memory block."),
            },
            ("label", "new_memory"),
        ),
        "letta_sleeptime_core",
    ),
    ToolDef(
        "core_memory_append",
        "Append to the contents of a core memory block.",
        _schema(
            {
                "label": _text("Section of the memory to be edited."),
                "content": _text("Content to write to the memory."),
            },
            ("label", "content"),
        ),
        "letta_memory_core",
    ),
    ToolDef(
        "core_memory_replace",
        "Replace the contents of core memory. To delete memories, use an empty string for "
        "new_content.",
        _schema(
            {
                "label": _text("Section of the memory to be edited."),
                "old_content": _text("String to replace. Must be an exact match."),
                "new_content": _text("Content to write to the memory."),
            },
            ("label", "old_content", "new_content"),
        ),
        "letta_memory_core",
    ),
    ToolDef(
        "conversation_search",
        "Search prior conversation history by text.",
        _schema(
            {
                "query": _text("Text to search for."),
                "roles": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["assistant", "user", "tool"]},
                    "description": "Only messages of these roles.",
                },
                "limit": {"type": "integer", "description": "Maximum number of results."},
                "start_date": _text("Only messages on or after this date (ISO 8601)."),
                "end_date": _text("Only messages on or before this date (ISO 8601)."),
            },
            (),
        ),
        "letta_core",
    ),
    ToolDef(
        "web_search",
        "Search the web using Exa's AI-powered search engine and retrieve relevant content. "
        "Returns JSON text with each result's title, URL, publication date, author, "
        "highlights and summary.",
        _schema(
            {
                "query": _text("The search query to find relevant web content."),
                "num_results": {
                    "type": "integer",
                    "description": "Number of results to return (1-100). Defaults to 10.",
                },
                "category": {
                    "type": "string",
                    "enum": list(SEARCH_CATEGORIES),
                    "description": "Focus search on specific content types.",
                },
                "include_text": {
                    "type": "boolean",
                    "description": "Whether to retrieve full page content. Defaults to false "
                    "(only summary and highlights, since the full text usually overflows the "
                    "context window).",
                },
                "include_domains": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Domains to include in search results.",
                },
                "exclude_domains": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Domains to exclude from search results.",
                },
                "start_published_date": _text(
                    "Only content published after this date (ISO format)."
                ),
                "end_published_date": _text(
                    "Only content published before this date (ISO format)."
                ),
                "user_location": _text("Two-letter country code for localized results (e.g. US)."),
            },
            ("query",),
        ),
        "letta_builtin",
    ),
    ToolDef(
        "fetch_webpage",
        "Fetch a webpage and convert it to markdown/text format.",
        _schema({"url": _text("The URL of the webpage to fetch and convert.")}, ("url",)),
        "letta_builtin",
    ),
    ToolDef(
        "send_message",
        "Sends a message to the human user.",
        _schema({"message": _text("Message contents. All unicode is supported.")}, ("message",)),
        "letta_core",
    ),
)

BY_NAME: dict[str, ToolDef] = {t.name: t for t in BUILTIN}
BY_ID: dict[str, ToolDef] = {t.id: t for t in BUILTIN}


def base_tool_ids() -> list[str]:
    return [BY_NAME[name].id for name in BASE_TOOLS]


def by_id(tool_id_: str) -> ToolDef:
    found = BY_ID.get(tool_id_)
    if found is None:
        raise NotFound(f"Tool with id '{tool_id_}' not found")
    return found


def by_name(name: str) -> ToolDef:
    found = BY_NAME.get(name)
    if found is None:
        raise NotFound(f"Tool with name '{name}' not found")
    return found


@dataclass(frozen=True)
class ToolCause:
    """Which run, step and tool call made a change (kept on the event, for auditors)."""

    tool_name: str
    conversation_id: str
    run_id: str
    step_id: str
    tool_call_id: str


# -- tool rules -------------------------------------------------------------------------------

# The rule types a turn applies. Letta has more (child, conditional, …); those are refused
# when an agent is created or changed, never accepted and ignored.
REQUIRES_APPROVAL = "requires_approval"
EXIT_LOOP = "exit_loop"
CONTINUE_LOOP = "continue_loop"
RULE_TYPES = (REQUIRES_APPROVAL, EXIT_LOOP, CONTINUE_LOOP)


@dataclass(frozen=True)
class ToolRules:
    """An agent's tool rules, as the loop asks them."""

    rules: Sequence[Mapping[str, Any]] = field(default_factory=tuple)

    def _names(self, rule_type: str) -> set[str]:
        return {r["tool_name"] for r in self.rules if r["type"] == rule_type}

    def requires_approval(self, name: str) -> bool:
        return name in self._names(REQUIRES_APPROVAL)

    def ends_turn(self, name: str) -> bool:
        return name in self._names(EXIT_LOOP)


def check_rules(rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rules as stored: a known type and a tool name each."""
    checked = []
    for rule in rules:
        if rule.get("type") not in RULE_TYPES:
            raise InvalidArgument(
                f"Tool rule type {rule.get('type')!r} is not supported by this server; "
                f"supported: {', '.join(RULE_TYPES)}"
            )
        checked.append({"type": rule["type"], "tool_name": str(rule["tool_name"])})
    return checked


def set_approval(
    rules: Sequence[Mapping[str, Any]], name: str, required: bool
) -> list[dict[str, Any]]:
    """The rules with ``name``'s approval rule added or removed."""
    kept = [
        dict(r) for r in rules if not (r["type"] == REQUIRES_APPROVAL and r["tool_name"] == name)
    ]
    if required:
        kept.append({"type": REQUIRES_APPROVAL, "tool_name": name})
    return kept
