"""Issuing, listing and revoking API keys, and finding the key behind a request.

A request's key is looked up by its hash and then remembered for ``FRESH_SECONDS``: most
requests cost a hash and a dict lookup. A remembered key is re-checked against the log (not
the views, which may lag), so a revocation made by any process takes effect everywhere within
``FRESH_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from eventsourcing.domain import Aggregate

from domain import ids
from domain.api_key import ApiKey, issue, key_hash
from domain.errors import NotFound
from projections.keys import KeyQueries, KeyRow
from service.actor import Actor
from service.context import Context

FRESH_SECONDS = 0.5
# Unknown keys are remembered too (so guessing costs no query), in a bounded cache.
CACHE_SIZE = 10_000


@dataclass(frozen=True)
class IssuedKey:
    id: str
    key: str  # shown once
    organization_id: str


@dataclass(frozen=True)
class _Seen:
    row: KeyRow | None  # None: no such key, or revoked
    at: float


class KeyService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.queries = KeyQueries(ctx.store)
        self._seen: OrderedDict[str, _Seen] = OrderedDict()
        self._guard = threading.Lock()

    def issue(self, by: Actor, organization_name: str, name: str | None) -> IssuedKey:
        key, secret = issue(organization_name, name)
        self.ctx.settle(self.ctx.app.save_new(by, key))
        return IssuedKey(ids.format_id(ids.API_KEY, key.id), secret, key.organization_id)

    def list(self) -> list[KeyRow]:
        return self.queries.all()

    def revoke(self, by: Actor, key_id: str) -> KeyRow:
        if not ids.is_valid(ids.API_KEY, key_id):
            raise NotFound(f"No key {key_id!r}: key ids look like key-<uuid>")

        def command() -> list[Aggregate]:
            key = self.ctx.app.get(ApiKey, ids.to_uuid(key_id))
            if key is None:
                raise NotFound(f"No key {key_id!r}")
            key.revoke()
            return [key]

        self.ctx.settle(self.ctx.app.save_retrying(by, command))
        row = self.queries.get(key_id)
        assert row is not None
        return row

    # -- authentication --------------------------------------------------------------------

    def remembered(self, secret: str) -> tuple[bool, KeyRow | None]:
        """(known, row) from memory alone: ``known`` is False when the key must be looked up."""
        seen = self._seen.get(key_hash(secret))
        if seen is None or time.monotonic() - seen.at > FRESH_SECONDS:
            return False, None
        return True, seen.row

    def authenticate(self, secret: str) -> KeyRow | None:
        """The live key behind ``secret``, or None (unknown or revoked). May query."""
        digest = key_hash(secret)
        row = self.queries.by_hash(digest)
        if row is not None:
            key = self.ctx.app.get(ApiKey, ids.to_uuid(row.id))
            if key is None or key.revoked:
                row = None
        with self._guard:
            self._seen[digest] = _Seen(row, time.monotonic())
            self._seen.move_to_end(digest)
            while len(self._seen) > CACHE_SIZE:
                self._seen.popitem(last=False)
        return row
