"""The ApiKey aggregate: a key issued to an organization, and its revocation.

Only the key's SHA-256 is stored: the key itself is shown once, when it is issued. Keys are
long random strings, so a plain hash (no salt, no stretching) cannot be reversed; it also lets
a request's key be found by an indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from uuid import NAMESPACE_URL, uuid5

from eventsourcing.domain import Aggregate, event

from domain import ids
from domain.errors import Conflict

# Keys look like ``sk-convlog-…`` so scanners and people recognise a leaked one.
KEY_PREFIX = "sk-convlog-"
# The name that stands for the organization every request uses when authentication is off,
# so the data made then stays reachable with a key later.
DEFAULT_ORGANIZATION = "default"


def organization_id(name: str) -> str:
    """An organization's id, derived from its name: the same name is the same organization."""
    if name == DEFAULT_ORGANIZATION:
        return ids.DEFAULT_ORG_ID
    return ids.format_id(ids.ORGANIZATION, uuid5(NAMESPACE_URL, f"convlog:organization:{name}"))


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(Aggregate):
    TOPIC = "convlog.ApiKey"

    class Created(Aggregate.Created):
        TOPIC = "convlog.ApiKey.Issued"
        organization_id: str
        organization_name: str
        name: str | None
        key_hash: str
        # The key's first characters: enough to tell keys apart in a list, useless to an attacker.
        hint: str

    @event(Created)
    def __init__(
        self,
        organization_id: str,
        organization_name: str,
        name: str | None,
        key_hash: str,
        hint: str,
    ) -> None:
        self.organization_id = organization_id
        self.organization_name = organization_name
        self.name = name
        self.key_hash = key_hash
        self.hint = hint
        self.revoked = False

    class Revoked(Aggregate.Event):
        TOPIC = "convlog.ApiKey.Revoked"

    def revoke(self) -> None:
        if self.revoked:
            raise Conflict("The key is already revoked")
        self._revoke()

    @event(Revoked)
    def _revoke(self) -> None:
        self.revoked = True


def issue(organization_name: str, name: str | None) -> tuple[ApiKey, str]:
    """A new key for the named organization, and the secret to hand over (never stored)."""
    secret = new_secret()
    key = ApiKey(
        organization_id=organization_id(organization_name),
        organization_name=organization_name,
        name=name,
        key_hash=key_hash(secret),
        hint=secret[: len(KEY_PREFIX) + 4],
    )
    return key, secret
