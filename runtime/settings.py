"""Every setting, read from the environment in this one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapters.models import ProviderConfig, providers_from_env


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    # absent → SQLite files under data_dir; postgresql://… → PostgreSQL; memory:// → in memory
    database_url: str | None = None
    # PostgreSQL schema holding the event store and the views
    database_schema: str = "public"
    data_dir: Path = Path("data")
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8283
    log_level: str = "info"
    # seconds between checks for events written by other processes
    projection_poll_interval: float = 0.5
    # events per projection transaction (catch-up and rebuild)
    projection_batch_size: int = 500
    # connections in each pool (event store and views) for PostgreSQL
    db_pool_size: int = 10
    # how long a run's claim on its conversation lasts unless renewed (a dead process frees it)
    run_lease_seconds: float = 60.0
    # seconds of silence before a keepalive ping (when the request asks for pings)
    keepalive_seconds: float = 20.0
    # timeout of one model request
    model_timeout_seconds: float = 120.0
    # OpenAI-compatible providers by handle prefix: OPENAI_BASE_URL/OPENAI_API_KEY for openai/…,
    # PROVIDER_<NAME>_BASE_URL/_API_KEY for <name>/…; none → the built-in offline model
    providers: dict[str, ProviderConfig] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        url = self.database_url
        if not url:
            return "sqlite"
        if url.startswith("memory://"):
            return "memory"
        if url.startswith(("postgresql://", "postgres://")):
            return "postgres"
        if url.startswith("sqlite:///"):
            return "sqlite"
        raise SettingsError(
            f"DATABASE_URL must be postgresql://…, sqlite:///path or memory://, not {url!r}"
        )

    @property
    def sqlite_path(self) -> Path:
        if self.database_url and self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return self.data_dir / "convlog.db"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def number(key: str, default: float) -> float:
            raw = env.get(key)
            if raw is None or raw == "":
                return default
            try:
                return float(raw)
            except ValueError:
                raise SettingsError(f"{key} must be a number, not {raw!r}") from None

        settings = cls(
            database_url=env.get("DATABASE_URL") or None,
            database_schema=env.get("DATABASE_SCHEMA") or "public",
            data_dir=Path(env.get("CONVLOG_DATA_DIR") or "data"),
            redis_url=env.get("REDIS_URL") or None,
            host=env.get("CONVLOG_HOST") or "127.0.0.1",
            port=int(number("CONVLOG_PORT", 8283)),
            log_level=(env.get("CONVLOG_LOG_LEVEL") or "info").lower(),
            projection_poll_interval=number("CONVLOG_PROJECTION_POLL_INTERVAL", 0.5),
            projection_batch_size=int(number("CONVLOG_PROJECTION_BATCH_SIZE", 500)),
            db_pool_size=int(number("CONVLOG_DB_POOL_SIZE", 10)),
            run_lease_seconds=number("CONVLOG_RUN_LEASE_SECONDS", 60.0),
            keepalive_seconds=number("CONVLOG_KEEPALIVE_INTERVAL", 20.0),
            model_timeout_seconds=number("CONVLOG_MODEL_TIMEOUT", 120.0),
            providers=_providers(env),
        )
        settings.backend  # noqa: B018 (validates DATABASE_URL early, with a clear message)
        return settings


def _providers(env: Mapping[str, str]) -> dict[str, ProviderConfig]:
    try:
        return providers_from_env(env)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
