"""Who a request acts as: its API key's organization (or the default one when authentication
is off), and the user its ``user_id`` header names within it (Letta's semantics).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from domain import ids
from domain.errors import InvalidArgument
from service.actor import Actor
from service.keys import KeyService


class Unauthorized(Exception):
    """401: no key, or a key that is unknown or revoked. ``reason`` goes in a header only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _user(request: Request) -> str:
    user_id = request.headers.get("user_id")
    if user_id is None:
        return ids.DEFAULT_USER_ID
    if not ids.is_valid(ids.USER, user_id):
        raise InvalidArgument(f"Invalid user ID format: {user_id}")
    return user_id


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None


async def actor_of(request: Request, keys: KeyService, required: bool) -> Actor:
    user_id = _user(request)
    if not required:
        return Actor(ids.DEFAULT_ORG_ID, user_id)
    secret = bearer(request)
    if secret is None:
        raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
    known, row = keys.remembered(secret)
    if not known:  # a new key, or one last checked a moment ago: ask the store
        row = await run_in_threadpool(keys.authenticate, secret)
    if row is None:
        raise Unauthorized("the API key is unknown or was revoked")
    return Actor(row.organization_id, user_id, row.id)
