"""The three tables an export writes (docs/export.md): their columns, and a batch of rows as
the columns a ``TableSink`` takes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Column:
    name: str
    # int (64-bit), float (64-bit), bool, str, json (a JSON document, as text), time (ISO
    # 8601 text with its offset, as stored; written as UTC microseconds), actor
    # (organization_id, user_id, key_id: the ``by`` of a stored event)
    kind: str


def _columns(spec: str) -> tuple[Column, ...]:
    return tuple(Column(*item.split(":")) for item in spec.split())


EVENTS = _columns(
    "position:int stream_id:str version:int type:str timestamp:time actor:actor"
    " payload:json hash:str log_hash:str"
)
MESSAGES = _columns(
    "position:int message_id:str conversation_id:str agent_id:str organization_id:str"
    " run_id:str step_id:str message_type:str role:str text:str tool_name:str"
    " tool_call_id:str tokens:int created_at:time"
)
RUNS = _columns(
    "id:str conversation_id:str agent_id:str organization_id:str status:str stop_reason:str"
    " model:str run_type:str background:bool steps:int prompt_tokens:int"
    " completion_tokens:int total_tokens:int created_at:time completed_at:time"
    " duration_seconds:float ttft_seconds:float deleted:bool position:int"
)
TABLES: dict[str, tuple[Column, ...]] = {"events": EVENTS, "messages": MESSAGES, "runs": RUNS}
ACTOR_FIELDS = ("organization_id", "user_id", "key_id")

Columns = dict[str, list[Any]]  # one batch of a table: column name -> values, all one length


def columns_of(table: str, rows: list[tuple[Any, ...]]) -> Columns:
    """Row tuples (in the table's column order) as columns."""
    names = [c.name for c in TABLES[table]]
    if not rows:
        return {name: [] for name in names}
    return dict(zip(names, map(list, zip(*rows, strict=True)), strict=True))
