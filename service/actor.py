"""Who is calling: the organization every read and write is scoped to, and who to record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain import ids


@dataclass(frozen=True)
class Actor:
    organization_id: str
    user_id: str = ids.DEFAULT_USER_ID
    key_id: str | None = None  # None: authentication is off, or the server itself acts

    def recorded(self) -> dict[str, Any]:
        """What each event it causes records about it (the ``by`` of a stored event)."""
        return {
            "organization_id": self.organization_id,
            "user_id": self.user_id,
            "key_id": self.key_id,
        }


# Recorded instead of a caller's user id: the server acting on its own (a run whose process
# died), and an operator at the command line (issuing a key).
SYSTEM_USER = "system"
OPERATOR_USER = "operator"


def system(organization_id: str) -> Actor:
    return Actor(organization_id, SYSTEM_USER)


def operator(organization_id: str) -> Actor:
    return Actor(organization_id, OPERATOR_USER)
