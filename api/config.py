"""What the HTTP edge enforces: who may call, from where, and how big a request may be.

Built from the settings by ``runtime``; every limit here is documented in docs/security.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    body_bytes: int = 8 * MIB  # 413 past it
    json_depth: int = 32  # nested objects and arrays; 422 past it
    number_chars: int = 100  # the characters of one JSON number; 422 past it
    messages: int = 100  # input messages in one request
    text_chars: int = 1_000_000  # characters of one string in a body (a message's text)
    blocks: int = 100  # memory blocks of one agent
    block_chars: int = 100_000  # one block's value (and its ``limit``)
    list_limit: int = 1000  # the largest ``limit`` of a list
    body_seconds: float = 30.0  # to receive a request's body; 408 past it


@dataclass(frozen=True)
class EdgeConfig:
    auth_required: bool = False
    limits: Limits = field(default_factory=Limits)
    # Browser origins that may call (CORS); requests from any other Origin are refused.
    cors_origins: tuple[str, ...] = ()
    # Host header values served ("*": any); others are refused (DNS rebinding).
    allowed_hosts: tuple[str, ...] = ("*",)
    # Errors that mean the database cannot be reached: answered 503 with Retry-After.
    outages: tuple[type[BaseException], ...] = ()
    retry_after_seconds: int = 5
