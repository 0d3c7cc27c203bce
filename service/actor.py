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


# The server acting on its own (a run whose process died) or an operator at the command line:
# recorded under this user id rather than a caller's.
SYSTEM_USER = "system"


def system(organization_id: str) -> Actor:
    return Actor(organization_id, SYSTEM_USER)
