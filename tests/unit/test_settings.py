"""Settings come from the environment; a bad value is a SettingsError at startup."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.settings import Settings, SettingsError


def test_defaults_with_an_empty_environment() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.backend == "sqlite"
    assert settings.sqlite_path == Path("data") / "convlog.db"
    assert (settings.port, settings.projection_batch_size) == (8283, 500)
    assert settings.providers == {}


def test_empty_strings_mean_the_default() -> None:
    env = {"CONVLOG_PORT": "", "DATABASE_URL": "", "CONVLOG_PROJECTION_BATCH_SIZE": ""}
    assert Settings.from_env(env) == Settings()


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("memory://", "memory"),
        ("sqlite:///tmp/x.db", "sqlite"),
        ("postgresql://u@h:5432/db", "postgres"),
        ("postgres://u@h/db", "postgres"),
    ],
)
def test_database_url_selects_the_backend(url: str, backend: str) -> None:
    assert Settings.from_env({"DATABASE_URL": url}).backend == backend


def test_sqlite_url_names_the_file() -> None:
    settings = Settings.from_env({"DATABASE_URL": "sqlite:///var/lib/convlog/c.db"})
    assert settings.sqlite_path == Path("var/lib/convlog/c.db")


def test_data_dir_holds_the_default_sqlite_file() -> None:
    settings = Settings.from_env({"CONVLOG_DATA_DIR": "/srv/x"})
    assert settings.sqlite_path == Path("/srv/x/convlog.db")


def test_values_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_SCHEMA": "tenant1",
            "REDIS_URL": "redis://r:6379/0",
            "CONVLOG_HOST": "0.0.0.0",
            "CONVLOG_PORT": "9000",
            "CONVLOG_LOG_LEVEL": "DEBUG",
            "CONVLOG_PROJECTION_POLL_INTERVAL": "0.25",
            "CONVLOG_PROJECTION_BATCH_SIZE": "64",
            "CONVLOG_DB_POOL_SIZE": "3",
            "CONVLOG_RUN_LEASE_SECONDS": "30",
            "CONVLOG_KEEPALIVE_INTERVAL": "5",
            "CONVLOG_MODEL_TIMEOUT": "9.5",
        }
    )
    assert settings.database_schema == "tenant1"
    assert settings.redis_url == "redis://r:6379/0"
    assert (settings.host, settings.port, settings.log_level) == ("0.0.0.0", 9000, "debug")
    assert settings.projection_poll_interval == 0.25
    assert (settings.projection_batch_size, settings.db_pool_size) == (64, 3)
    assert (settings.run_lease_seconds, settings.keepalive_seconds) == (30.0, 5.0)
    assert settings.model_timeout_seconds == 9.5


def test_providers_are_read() -> None:
    settings = Settings.from_env(
        {"PROVIDER_MY_VLLM_BASE_URL": "http://h/v1", "OPENAI_API_KEY": "sk-x"}
    )
    assert set(settings.providers) == {"my_vllm", "openai"}
    assert settings.providers["my_vllm"].base_url == "http://h/v1"
    assert "sk-x" not in repr(settings)


@pytest.mark.parametrize("url", ["mysql://h/db", "sqlite://relative.db", "http://x", "memory"])
def test_unknown_database_url_is_a_settings_error(url: str) -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        Settings.from_env({"DATABASE_URL": url})


@pytest.mark.parametrize(
    "key",
    [
        "CONVLOG_PORT",
        "CONVLOG_PROJECTION_POLL_INTERVAL",
        "CONVLOG_PROJECTION_BATCH_SIZE",
        "CONVLOG_DB_POOL_SIZE",
        "CONVLOG_RUN_LEASE_SECONDS",
        "CONVLOG_KEEPALIVE_INTERVAL",
        "CONVLOG_MODEL_TIMEOUT",
    ],
)
def test_non_numbers_are_settings_errors(key: str) -> None:
    with pytest.raises(SettingsError, match=key):
        Settings.from_env({key: "ten"})


def test_provider_key_without_endpoint_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="PROVIDER_X_BASE_URL"):
        Settings.from_env({"PROVIDER_X_API_KEY": "k"})


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("key", ["CONVLOG_PORT", "CONVLOG_PROJECTION_BATCH_SIZE"])
def test_non_finite_integers_are_settings_errors(key: str, raw: str) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env({key: raw})


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("CONVLOG_PROJECTION_BATCH_SIZE", "0"),
        ("CONVLOG_PROJECTION_BATCH_SIZE", "-5"),
        ("CONVLOG_DB_POOL_SIZE", "0"),
        ("CONVLOG_PORT", "-1"),
        ("CONVLOG_PORT", "70000"),
        ("CONVLOG_PORT", "80.5"),
        ("CONVLOG_PROJECTION_POLL_INTERVAL", "-1"),
        ("CONVLOG_RUN_LEASE_SECONDS", "-5"),
        ("CONVLOG_LOG_LEVEL", "loud"),
    ],
)
def test_out_of_range_values_are_settings_errors(key: str, raw: str) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env({key: raw})


def test_authentication_is_required_unless_bound_to_loopback() -> None:
    local = Settings.from_env({}).edge()
    assert not local.auth_required
    assert local.allowed_hosts == ("localhost", "127.0.0.1", "[::1]")
    public = Settings.from_env({"CONVLOG_HOST": "0.0.0.0"}).edge()
    assert public.auth_required and public.allowed_hosts == ("*",)
    assert Settings.from_env({"CONVLOG_AUTH": "required"}).edge().auth_required
    assert (
        not Settings.from_env({"CONVLOG_HOST": "0.0.0.0", "CONVLOG_AUTH": "off"})
        .edge()
        .auth_required
    )


def test_edge_settings_are_read() -> None:
    edge = Settings.from_env(
        {
            "CONVLOG_MAX_BODY_BYTES": "4096",
            "CONVLOG_MAX_JSON_DEPTH": "8",
            "CONVLOG_MAX_LIST_LIMIT": "50",
            "CONVLOG_CORS_ORIGINS": "https://a.example, https://b.example",
            "CONVLOG_ALLOWED_HOSTS": "api.example",
        }
    ).edge()
    assert (edge.limits.body_bytes, edge.limits.json_depth, edge.limits.list_limit) == (4096, 8, 50)
    assert edge.cors_origins == ("https://a.example", "https://b.example")
    assert edge.allowed_hosts == ("api.example",)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CONVLOG_AUTH", "maybe"),
        ("CONVLOG_MAX_LIST_LIMIT", "5000"),
        ("CONVLOG_MAX_BODY_BYTES", "10"),
        ("CONVLOG_MAX_JSON_DEPTH", "deep"),
    ],
)
def test_bad_edge_settings_are_refused(key: str, value: str) -> None:
    with pytest.raises(SettingsError, match=key):
        Settings.from_env({key: value})


def test_passwords_are_masked_when_a_url_is_shown() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"DATABASE_URL": "mysql://admin:s3cret@db:3306/x"})
    assert "s3cret" not in str(refused.value) and "admin:***@db" in str(refused.value)
