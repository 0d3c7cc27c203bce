"""One turn's tools: the registry of server tools by name, client tools, and running a call.

A call's result is what Letta shows and what it gives the model: the API's ``tool_return`` is
the tool's value (a dict as JSON text — Letta shows a Python repr there), and the model reads
it packed as ``{"status": "OK"|"Failed", "message": …, "time": …}``. Every failure (unknown
tool, arguments that are not JSON or miss a field, a tool that refuses) is an error result the
model sees, never an exception out of the turn.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain import tools
from domain.agent import Agent
from domain.tools import ToolDef, ToolRules
from service.model import ToolCall, ToolSpec
from service.tools import memory, search, web
from service.tools.env import ToolEnv, ToolError

log = logging.getLogger("convlog.tools")

ServerFn = Callable[[ToolEnv, dict[str, Any], str], "str | dict[str, Any]"]

SERVER_TOOLS: dict[str, ServerFn] = {
    "memory_insert": memory.memory_insert,
    "memory_replace": memory.memory_replace,
    "memory_rethink": memory.memory_rethink,
    "core_memory_append": memory.core_memory_append,
    "core_memory_replace": memory.core_memory_replace,
    "conversation_search": search.conversation_search,
    "web_search": web.web_search,
    "fetch_webpage": web.fetch_webpage,
    "send_message": lambda env, args, call_id: "Sent message successfully.",
}
# Search results are not cut (Letta): the tool's own limit bounds them.
UNTRUNCATED = frozenset({"conversation_search"})
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


@dataclass(frozen=True)
class ClientTool:
    """A tool the client runs itself, declared per request (``client_tools``)."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolResult:
    tool_call_id: str
    name: str
    status: str  # success | error
    value: str  # the API's tool_return
    model_text: str  # what the model reads
    stdout: list[str] | None = None
    stderr: list[str] | None = None


def package(ok: bool, message: str | dict[str, Any], at: datetime) -> str:
    """A tool result as the model reads it (Letta's format)."""
    time = at.strftime("%Y-%m-%d %I:%M:%S %p %Z%z")
    status = "OK" if ok else "Failed"
    return json.dumps(
        {"status": status, "message": message, "time": time}, indent=2, ensure_ascii=False
    )


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return (
        text[:limit] + "... [NOTE: function output was truncated since it exceeded the "
        f"character limit ({len(text)} > {limit})]"
    )


def check_arguments(definition: ToolDef, args: dict[str, Any]) -> None:
    """Required fields present, known fields only, JSON types as the schema says."""
    properties: dict[str, Any] = dict(definition.parameters.get("properties", {}))
    missing = [n for n in definition.parameters.get("required", []) if n not in args]
    if missing:
        names = ", ".join(f"'{n}'" for n in missing)
        plural = "s" if len(missing) > 1 else ""
        raise ToolError(
            f"{definition.name}() missing {len(missing)} required argument{plural}: {names}"
        )
    unknown = sorted(set(args) - set(properties))
    if unknown:
        raise ToolError(f"{definition.name}() got unexpected arguments: {unknown}")
    for name, value in args.items():
        wanted = _JSON_TYPES.get(properties[name].get("type", ""))
        if wanted is None or value is None:
            continue
        if (isinstance(value, bool) and bool not in wanted) or not isinstance(value, wanted):
            raise ToolError(
                f"{definition.name}() argument '{name}' must be of type "
                f"{properties[name]['type']}, not {type(value).__name__}"
            )


class ToolBox:
    def __init__(self, agent: Agent, client_tools: Sequence[ClientTool] = ()) -> None:
        self.client = {tool.name: tool for tool in client_tools}
        # Client tools replace server tools of the same name.
        self.server = {
            d.name: d
            for d in (tools.BY_ID[i] for i in agent.tool_ids if i in tools.BY_ID)
            if d.name not in self.client
        }
        self.rules = ToolRules(agent.tool_rules)

    def specs(self) -> tuple[ToolSpec, ...]:
        server = [ToolSpec(d.name, d.description, d.parameters) for d in self.server.values()]
        client = [ToolSpec(c.name, c.description, c.parameters) for c in self.client.values()]
        return tuple(server + client)

    def names(self) -> list[str]:
        return sorted([*self.server, *self.client])

    def is_client(self, name: str) -> bool:
        return name in self.client

    def pauses(self, name: str) -> bool:
        """Whether a call waits for the client: its own tool, or a server tool to approve."""
        return name in self.client or (name in self.server and self.rules.requires_approval(name))

    def ends_turn(self, name: str) -> bool:
        return self.rules.ends_turn(name)

    def spoken(self, call: ToolCall) -> str | None:
        """The message of a well-formed call to the agent's own send_message, else None."""
        if call.name != "send_message" or "send_message" not in self.server:
            return None
        try:
            message = json.loads(call.arguments).get("message")
        except (ValueError, AttributeError):
            return None
        return message if isinstance(message, str) else None

    @property
    def has_rules(self) -> bool:
        return bool(self.rules.rules)

    def execute(self, call: ToolCall, env: ToolEnv, at: datetime) -> ToolResult:
        definition = self.server.get(call.name)
        try:
            if definition is None:
                raise ToolError(
                    f"[ToolConstraintError] Cannot call {call.name}, valid tools include: "
                    f"{self.names()}."
                )
            args = parse_arguments(call)
            check_arguments(definition, args)
            value = SERVER_TOOLS[call.name](env, args, call.id)
        except ToolError as exc:
            return self.error(call, str(exc), at)
        except Exception as exc:  # a bug in a tool: the model sees it failed, the log says why
            log.exception("tool %s failed", call.name)
            return self.error(call, f"Error executing function {call.name}: {exc!r}", at)
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if call.name not in UNTRUNCATED:
            text = truncate(text, definition.return_char_limit)
            value = text if isinstance(value, str) else value
        return ToolResult(call.id, call.name, "success", text, package(True, value, at))

    def error(self, call: ToolCall, text: str, at: datetime) -> ToolResult:
        return ToolResult(call.id, call.name, "error", text, package(False, text, at))


def parse_arguments(call: ToolCall) -> dict[str, Any]:
    try:
        args = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError as exc:
        raise ToolError(f"The arguments of {call.name} are not valid JSON: {exc}") from None
    if not isinstance(args, dict):
        raise ToolError(f"The arguments of {call.name} must be a JSON object")
    # Letta's agents may add these bookkeeping fields; they are not tool arguments.
    args.pop("request_heartbeat", None)
    args.pop("thinking", None)
    return args
