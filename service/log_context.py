"""What each log line is about: the request, the run, the conversation and the organization.

Context variables, so that they follow the request into the tasks and worker threads it starts
(asyncio copies them into a new task, anyio into ``to_thread``); ``runtime/logs.py`` puts them
on every record, and into each line of ``CONVLOG_LOG_FORMAT=json``.
"""

from __future__ import annotations

from contextvars import ContextVar

FIELDS = ("request_id", "run_id", "conversation_id", "organization_id")
_VARS: dict[str, ContextVar[str | None]] = {name: ContextVar(name, default=None) for name in FIELDS}


def bind(**values: str | None) -> None:
    """Set some of the fields for what follows in this context (and what it starts)."""
    for name, value in values.items():
        if value is not None:
            _VARS[name].set(value)


def current() -> dict[str, str]:
    """The fields set in this context."""
    found = {name: var.get() for name, var in _VARS.items()}
    return {name: value for name, value in found.items() if value is not None}
