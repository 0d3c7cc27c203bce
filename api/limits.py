"""Limits on what one request may ask for, beyond its size and shape (api/body.py): how many
messages a turn takes, and how many and how large an agent's memory blocks may be."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api import agent_schemas, schemas, turn_schemas
from api.config import Limits


def check(body: BaseModel | None, limits: Limits) -> list[dict[str, Any]]:
    """The 422 errors for a validated body that asks for more than the limits allow."""
    if isinstance(body, turn_schemas.SendMessage):
        count = len(body.messages or [])
        if count > limits.messages:
            message = f"At most {limits.messages} messages per request (CONVLOG_MAX_MESSAGES)"
            return [_error(("body", "messages"), message, count)]
    if isinstance(body, agent_schemas.CreateAgent):
        blocks = body.memory_blocks or []
        if len(blocks) > limits.blocks:
            message = f"At most {limits.blocks} memory blocks per agent (CONVLOG_MAX_BLOCKS)"
            return [_error(("body", "memory_blocks"), message, len(blocks))]
        return [
            e for i, b in enumerate(blocks) for e in _block(b, ("body", "memory_blocks", i), limits)
        ]
    if isinstance(body, schemas.CreateBlock | schemas.UpdateBlock):
        return _block(body, ("body",), limits)
    return []


def _block(
    block: schemas.CreateBlock | schemas.UpdateBlock, loc: tuple[Any, ...], limits: Limits
) -> list[dict[str, Any]]:
    errors = []
    most = limits.block_chars
    message = f"Blocks may hold at most {most} characters (CONVLOG_MAX_BLOCK_CHARS)"
    if "limit" in block.model_fields_set and block.limit is not None and block.limit > most:
        errors.append(_error((*loc, "limit"), message, block.limit))
    if block.value is not None and len(block.value) > most:
        errors.append(_error((*loc, "value"), message, len(block.value)))
    return errors


def _error(loc: tuple[Any, ...], message: str, given: int) -> dict[str, Any]:
    return {"type": "limit_exceeded", "loc": loc, "msg": message, "input": given}
