"""API keys by hash (to authenticate a request) and by id (to list and revoke them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from domain import ids
from domain.api_key import ApiKey
from projections.projection import Handler, Projection, Writer
from projections.store import ViewStore
from projections.timefmt import to_micros

COLUMNS = "id, organization_id, organization_name, name, hint, created_at, revoked_at"


@dataclass(frozen=True)
class KeyRow:
    id: str
    organization_id: str
    organization_name: str
    name: str | None
    hint: str
    created_at: int
    revoked_at: int | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class KeyIndex(Projection):
    name = "keys"
    version = 1
    tables: ClassVar[dict[str, list[str]]] = {
        "api_keys": [
            "CREATE TABLE IF NOT EXISTS {api_keys} ("
            " id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, organization_id TEXT NOT NULL,"
            " organization_name TEXT NOT NULL, name TEXT, hint TEXT NOT NULL,"
            " created_at BIGINT NOT NULL, revoked_at BIGINT)",
            "CREATE UNIQUE INDEX IF NOT EXISTS {api_keys_by_hash} ON {api_keys} (key_hash)",
        ]
    }

    def handlers(self) -> Mapping[type[Any], Handler]:
        return {ApiKey.Created: self._issued, ApiKey.Revoked: self._revoked}

    def _issued(self, e: ApiKey.Created, w: Writer) -> None:
        w.insert(
            "api_keys",
            "id, key_hash, organization_id, organization_name, name, hint, created_at",
            (
                ids.format_id(ids.API_KEY, e.originator_id),
                e.key_hash,
                e.organization_id,
                e.organization_name,
                e.name,
                e.hint,
                to_micros(e.timestamp),
            ),
        )

    def _revoked(self, e: ApiKey.Revoked, w: Writer) -> None:
        w.execute(
            "UPDATE {api_keys} SET revoked_at = %s WHERE id = %s",
            (to_micros(e.timestamp), ids.format_id(ids.API_KEY, e.originator_id)),
        )


class KeyQueries:
    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def by_hash(self, key_hash: str) -> KeyRow | None:
        rows = self.store.query(f"SELECT {COLUMNS} FROM api_keys WHERE key_hash = %s", (key_hash,))
        return KeyRow(*rows[0]) if rows else None

    def get(self, key_id: str) -> KeyRow | None:
        rows = self.store.query(f"SELECT {COLUMNS} FROM api_keys WHERE id = %s", (key_id,))
        return KeyRow(*rows[0]) if rows else None

    def all(self) -> list[KeyRow]:
        rows = self.store.query(f"SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id")
        return [KeyRow(*row) for row in rows]
