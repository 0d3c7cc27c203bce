"""Every setting, read from the environment in this one place."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from adapters.models import ModelRouter, ProviderConfig, providers_from_env
from api.config import MIB, EdgeConfig, Limits
from service.model import UnknownModel


class SettingsError(ValueError):
    pass


LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
# The Host header values served when bound to loopback: a page on another site that makes its
# own name resolve to 127.0.0.1 (DNS rebinding) still sends its own name, and is refused.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


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
    # "text", or "json": one JSON object per line, with request/run/conversation/organization
    log_format: str = "text"
    # seconds between checks for events written by other processes
    projection_poll_interval: float = 0.5
    # events per projection transaction (catch-up and rebuild)
    projection_batch_size: int = 500
    # connections in each pool (event store and views) for PostgreSQL
    db_pool_size: int = 10
    # longest wait for a database connection, and for one statement: past them a request is
    # answered 503 with Retry-After instead of hanging
    db_timeout_seconds: float = 5.0
    db_statement_timeout_seconds: float = 60.0
    # at startup, how long to keep trying a database that does not answer yet
    db_startup_wait_seconds: float = 30.0
    # how long a run's claim on its conversation lasts unless renewed (a dead process frees it)
    run_lease_seconds: float = 60.0
    # a process that has not written its heartbeat for this long is gone: its runs are
    # recorded failed and their conversations freed (it beats three times as often)
    process_timeout_seconds: float = 3.0
    # seconds of silence before a keepalive ping (when the request asks for pings)
    keepalive_seconds: float = 20.0
    # timeout of one model request
    model_timeout_seconds: float = 120.0
    # providers by handle prefix: OPENAI_BASE_URL/OPENAI_API_KEY for openai/…, ANTHROPIC_API_KEY/
    # ANTHROPIC_BASE_URL for anthropic/… (Messages API), PROVIDER_<NAME>_BASE_URL/_API_KEY for
    # <name>/… (OpenAI-compatible); none → the built-in offline model
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    # the handle Letta's router handles (letta/auto, letta/auto-fast, letta/auto-chat) stand for
    # here; None: they are refused, naming this setting (CONVLOG_AUTO_MODEL)
    auto_model: str | None = None
    # the web tools: Exa's API for web_search (EXA_API_KEY, EXA_BASE_URL), and whether
    # fetch_webpage may fetch loopback and private addresses (CONVLOG_FETCH_PRIVATE_ADDRESSES)
    exa_api_key: str | None = None
    exa_base_url: str = "https://api.exa.ai"
    fetch_private_addresses: bool = False
    # context window (tokens) per model handle, e.g. {"openai/gpt-4o-mini": 128000}; others
    # 128k unless the agent sets context_window_limit
    context_windows: dict[str, int] = field(default_factory=dict)
    # "off" | "required"; None: required unless the server binds to a loopback address
    auth: str | None = None
    limits: Limits = field(default_factory=Limits)
    cors_origins: tuple[str, ...] = ()
    # None: loopback names when bound to loopback, any host otherwise (keys are required then)
    allowed_hosts: tuple[str, ...] | None = None
    # seconds a client may take to send a request's headers, and to idle between requests
    header_timeout_seconds: float = 10.0
    keep_alive_seconds: float = 5.0

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    def edge(self) -> EdgeConfig:
        required = self.auth == "required" if self.auth is not None else not self.loopback
        if self.allowed_hosts is not None:
            hosts = self.allowed_hosts
        else:
            hosts = LOOPBACK_NAMES if self.loopback else ("*",)
        return EdgeConfig(
            required,
            self.limits,
            self.cors_origins,
            hosts,
            outages=database_outages(self.backend),
            retry_after_seconds=max(1, round(self.db_timeout_seconds)),
        )

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
            f"DATABASE_URL must be postgresql://…, sqlite:///path or memory://, not {masked(url)!r}"
        )

    @property
    def sqlite_path(self) -> Path:
        if self.database_url and self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return self.data_dir / "convlog.db"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def raw(key: str) -> str | None:
            value = env.get(key)
            return value if value not in (None, "") else None

        def number(key: str, default: float, low: float, high: float = 1e9) -> float:
            text = raw(key)
            if text is None:
                return default
            try:
                value = float(text)
            except ValueError:
                raise SettingsError(f"{key} must be a number, not {text!r}") from None
            if not low <= value <= high:  # also refuses nan and inf
                raise SettingsError(f"{key} must be between {low:g} and {high:g}, not {text!r}")
            return value

        def integer(key: str, default: int, low: int, high: int) -> int:
            text = raw(key)
            if text is None:
                return default
            try:
                value = int(text)
            except ValueError:
                raise SettingsError(f"{key} must be a whole number, not {text!r}") from None
            if not low <= value <= high:
                raise SettingsError(f"{key} must be between {low} and {high}, not {text!r}")
            return value

        providers = _providers(env)
        log_level = (raw("CONVLOG_LOG_LEVEL") or "info").lower()
        if log_level not in LOG_LEVELS:
            raise SettingsError(
                f"CONVLOG_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}"
            )

        def names(key: str) -> tuple[str, ...] | None:
            text = raw(key)
            return None if text is None else tuple(n.strip() for n in text.split(",") if n.strip())

        auth = raw("CONVLOG_AUTH")
        if auth is not None and auth not in ("off", "required"):
            raise SettingsError(f"CONVLOG_AUTH must be off or required, not {auth!r}")
        limits = Limits(
            body_bytes=integer("CONVLOG_MAX_BODY_BYTES", 8 * MIB, 1024, 1024 * MIB),
            json_depth=integer("CONVLOG_MAX_JSON_DEPTH", 32, 4, 256),
            number_chars=integer("CONVLOG_MAX_NUMBER_CHARS", 100, 20, 4000),
            messages=integer("CONVLOG_MAX_MESSAGES", 100, 1, 10_000),
            text_chars=integer("CONVLOG_MAX_TEXT_CHARS", 1_000_000, 1000, 100_000_000),
            blocks=integer("CONVLOG_MAX_BLOCKS", 100, 1, 10_000),
            block_chars=integer("CONVLOG_MAX_BLOCK_CHARS", 100_000, 100, 100_000_000),
            list_limit=integer("CONVLOG_MAX_LIST_LIMIT", 1000, 1, 1000),
            body_seconds=number("CONVLOG_BODY_TIMEOUT", 30.0, 0.1, 3600),
        )
        settings = cls(
            database_url=env.get("DATABASE_URL") or None,
            database_schema=env.get("DATABASE_SCHEMA") or "public",
            data_dir=Path(env.get("CONVLOG_DATA_DIR") or "data"),
            redis_url=env.get("REDIS_URL") or None,
            host=env.get("CONVLOG_HOST") or "127.0.0.1",
            port=integer("CONVLOG_PORT", 8283, 0, 65535),
            log_level=log_level,
            log_format=_log_format(raw("CONVLOG_LOG_FORMAT")),
            projection_poll_interval=number("CONVLOG_PROJECTION_POLL_INTERVAL", 0.5, 0.01, 3600),
            projection_batch_size=integer("CONVLOG_PROJECTION_BATCH_SIZE", 500, 1, 100_000),
            db_pool_size=integer("CONVLOG_DB_POOL_SIZE", 10, 1, 1000),
            db_timeout_seconds=number("CONVLOG_DB_TIMEOUT", 5.0, 0.5, 600),
            db_statement_timeout_seconds=number("CONVLOG_DB_STATEMENT_TIMEOUT", 60.0, 1, 86_400),
            db_startup_wait_seconds=number("CONVLOG_DB_STARTUP_WAIT", 30.0, 0, 3600),
            run_lease_seconds=number("CONVLOG_RUN_LEASE_SECONDS", 60.0, 1, 86_400),
            process_timeout_seconds=number("CONVLOG_PROCESS_TIMEOUT", 3.0, 0.3, 3600),
            keepalive_seconds=number("CONVLOG_KEEPALIVE_INTERVAL", 20.0, 0.01, 3600),
            model_timeout_seconds=number("CONVLOG_MODEL_TIMEOUT", 120.0, 0.1, 3600),
            providers=providers,
            exa_api_key=raw("EXA_API_KEY") or None,
            exa_base_url=raw("EXA_BASE_URL") or "https://api.exa.ai",
            fetch_private_addresses=_private_fetches(raw("CONVLOG_FETCH_PRIVATE_ADDRESSES")),
            auto_model=_auto_model(raw("CONVLOG_AUTO_MODEL"), providers),
            context_windows=_context_windows(raw("CONVLOG_CONTEXT_WINDOWS")),
            auth=auth,
            limits=limits,
            cors_origins=names("CONVLOG_CORS_ORIGINS") or (),
            allowed_hosts=names("CONVLOG_ALLOWED_HOSTS"),
            header_timeout_seconds=number("CONVLOG_HEADER_TIMEOUT", 10.0, 0.1, 3600),
            keep_alive_seconds=number("CONVLOG_KEEP_ALIVE_TIMEOUT", 5.0, 0.1, 3600),
        )
        settings.backend  # noqa: B018 (validates DATABASE_URL early, with a clear message)
        return settings


def database_outages(backend: str) -> tuple[type[BaseException], ...]:
    """The errors that mean the database cannot be reached right now (not a bug, not bad
    input). PostgreSQL's (psycopg's OperationalError, which the event store re-raises as its
    own): a lost connection, a pool or statement timeout, a server shutting down. An embedded
    SQLite file has no outages to tell apart from bugs.
    """
    if backend != "postgres":
        return ()
    import psycopg
    from eventsourcing.persistence import InterfaceError, OperationalError

    return (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)


def masked(url: str) -> str:
    """A URL fit to print: any password in it replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _log_format(text: str | None) -> str:
    if text in (None, "", "text"):
        return "text"
    if text == "json":
        return "json"
    raise SettingsError(f"CONVLOG_LOG_FORMAT must be text or json, not {text!r}")


def _private_fetches(text: str | None) -> bool:
    if text in (None, "", "deny"):
        return False
    if text == "allow":
        return True
    raise SettingsError(f"CONVLOG_FETCH_PRIVATE_ADDRESSES must be allow or deny, not {text!r}")


def _auto_model(handle: str | None, providers: Mapping[str, ProviderConfig]) -> str | None:
    """CONVLOG_AUTO_MODEL, checked now: a handle a configured provider (or the built-in
    model) serves, so that agents on letta/auto cannot fail only at their first turn."""
    if not handle:
        return None
    try:
        ModelRouter(providers).check(handle)
    except UnknownModel as exc:
        raise SettingsError(f"CONVLOG_AUTO_MODEL={handle!r}: {exc}") from None
    return handle


def _providers(env: Mapping[str, str]) -> dict[str, ProviderConfig]:
    try:
        return providers_from_env(env)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _context_windows(text: str | None) -> dict[str, int]:
    if text is None:
        return {}
    try:
        found = json.loads(text)
        if not isinstance(found, dict):
            raise ValueError
        return {str(k): int(v) for k, v in found.items() if int(v) > 0}
    except (ValueError, TypeError):
        raise SettingsError(
            "CONVLOG_CONTEXT_WINDOWS must be a JSON object of handle to tokens, e.g. "
            f'{{"openai/gpt-4o-mini": 128000}}, not {text!r}'
        ) from None
