"""Memory tools: the agent edits its own core memory blocks (Letta's names and texts).

Each returns the block's new value (as Letta 0.16.7 does); an edit is recorded on the agent,
or on the conversation's isolated copy, by ``ToolEnv.write_block``.
"""

from __future__ import annotations

import re
from typing import Any

from service.tools.env import ToolEnv, ToolError

LINE_NUMBER_WARNING = (
    "# NOTE: Line numbers shown below (with arrows like '1→') are to help during editing. "
    "Do NOT include line number prefixes in your memory edit tool calls."
)
_LINE_PREFIX = re.compile(r"^[ \t]*\d+→[ \t]*", re.MULTILINE)


def _no_line_numbers(name: str, text: str) -> None:
    if _LINE_PREFIX.search(text):
        raise ToolError(
            f"{name} contains a line number prefix, which is not allowed. Do not include line "
            "numbers when calling memory tools (line numbers are for display purposes only)."
        )
    if LINE_NUMBER_WARNING in text:
        raise ToolError(
            f"{name} contains a line number warning, which is not allowed. Do not include line "
            "number information when calling memory tools (line numbers are for display "
            "purposes only)."
        )


def _writable(env: ToolEnv, label: str) -> str:
    block = env.block(label)
    if block.get("read_only"):
        raise ToolError("Error This block is read-only and cannot be edited.")
    return str(block["value"])


def memory_replace(env: ToolEnv, args: dict[str, Any], call_id: str) -> str:
    label, old, new = args["label"], args["old_string"], args["new_string"]
    current = _writable(env, label).expandtabs()
    _no_line_numbers("old_string", old)
    _no_line_numbers("new_string", new)
    old, new = old.expandtabs(), new.expandtabs()
    count = current.count(old)
    if count == 0:
        raise ToolError(
            f"No replacement was performed, old_string `{old}` did not appear verbatim in "
            f"memory block with label `{label}`."
        )
    if count > 1:
        lines = [i + 1 for i, line in enumerate(current.split("\n")) if old in line]
        raise ToolError(
            f"No replacement was performed. Multiple occurrences of old_string `{old}` in "
            f"lines {lines}. Please ensure it is unique."
        )
    value = current.replace(old, new)
    env.write_block(label, value, "memory_replace", call_id)
    return value


def memory_insert(env: ToolEnv, args: dict[str, Any], call_id: str) -> str:
    label, text = args["label"], args["new_string"]
    insert_line = args.get("insert_line", -1)
    current = _writable(env, label).expandtabs()
    _no_line_numbers("new_string", text)
    lines = current.split("\n")
    if insert_line == -1:
        insert_line = len(lines)
    elif insert_line < 0 or insert_line > len(lines):
        raise ToolError(
            f"Invalid `insert_line` parameter: {insert_line}. It should be within the range of "
            f"lines of the memory block: [0, {len(lines)}], or -1 to append to the end of the "
            "memory block."
        )
    value = "\n".join(lines[:insert_line] + text.expandtabs().split("\n") + lines[insert_line:])
    env.write_block(label, value, "memory_insert", call_id)
    return value


def memory_rethink(env: ToolEnv, args: dict[str, Any], call_id: str) -> str:
    label, value = args["label"], args["new_memory"]
    _writable(env, label)
    _no_line_numbers("new_memory", value)
    env.write_block(label, value, "memory_rethink", call_id)
    return str(value)


def core_memory_append(env: ToolEnv, args: dict[str, Any], call_id: str) -> str:
    label = args["label"]
    value = _writable(env, label) + "\n" + str(args["content"])
    env.write_block(label, value, "core_memory_append", call_id)
    return value


def core_memory_replace(env: ToolEnv, args: dict[str, Any], call_id: str) -> str:
    label, old, new = args["label"], str(args["old_content"]), str(args["new_content"])
    current = _writable(env, label)
    if old not in current:
        raise ToolError(f"Old content '{old}' not found in memory block '{label}'")
    value = current.replace(old, new)
    env.write_block(label, value, "core_memory_replace", call_id)
    return value
