"""Letta-style ids: ``<prefix>-<lowercase uuid>``. Aggregates are keyed by the bare UUID."""

from __future__ import annotations

import re
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

AGENT = "agent"
CONVERSATION = "conv"
MESSAGE = "message"
BLOCK = "block"
RUN = "run"
STEP = "step"
TOOL = "tool"
ORGANIZATION = "org"
API_KEY = "key"

DEFAULT_ORG_ID = "org-00000000-0000-4000-8000-000000000000"
DEFAULT_USER_ID = "user-00000000-0000-4000-8000-000000000000"


def pattern(prefix: str) -> str:
    """The anchored regex a path parameter with this prefix must match (decisions §6)."""
    return f"^{prefix}-{_UUID}$"


USER = "user"

_MATCHERS = {
    p: re.compile(pattern(p))
    for p in (AGENT, CONVERSATION, MESSAGE, BLOCK, RUN, USER, TOOL, ORGANIZATION, API_KEY)
}


def is_valid(prefix: str, value: str) -> bool:
    return bool(_MATCHERS[prefix].fullmatch(value))


def new(prefix: str) -> str:
    return f"{prefix}-{uuid4()}"


def to_uuid(prefixed: str) -> UUID:
    """The aggregate id behind a prefixed id that has already been validated."""
    return UUID(prefixed.split("-", 1)[1])


def format_id(prefix: str, value: UUID) -> str:
    return f"{prefix}-{value}"


def default_conversation_id(agent_id: UUID) -> UUID:
    """The id of an agent's own (agent-direct) conversation: derived, so it needs no lookup."""
    return uuid5(NAMESPACE_URL, f"convlog:agent:{agent_id}:default")
