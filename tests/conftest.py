"""Shared fixtures: the wired services on each backend (memory, SQLite file, PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from runtime.bootstrap import build
from runtime.settings import Settings
from service.services import Services
from tests.fake_anthropic import fake_anthropic, fake_anthropic_server  # noqa: F401 (fixtures)
from tests.fake_openai import fake_openai, fake_openai_server  # noqa: F401 (fixtures)
from tests.services import require_postgres

os.environ.setdefault("EVENTSOURCING_DISABLE_REDEFINITION_CHECK", "1")


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL schema (url, schema), dropped afterwards."""
    url = require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield url, schema
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def settings_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    if backend == "memory":
        return Settings(database_url="memory://")
    if backend == "sqlite":
        return Settings(database_url=f"sqlite:///{tmp_path / 'convlog.db'}")
    url, schema = request.getfixturevalue("pg_schema")
    return Settings(database_url=url, database_schema=schema)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """Fast unit-level services: in-memory event store and views."""
    built = build(Settings(database_url="memory://"))
    yield built
    built.close()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def any_services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    """The same contract on every backend."""
    built = build(settings_for(request.param, tmp_path, request))
    yield built
    built.close()


@pytest.fixture
def pg_services(
    pg_schema: tuple[str, str],
) -> Iterator[tuple[Services, str, str]]:
    """Services on a fresh PostgreSQL schema, with the database URL and the schema."""
    url, schema = pg_schema
    built = build(Settings(database_url=url, database_schema=schema))
    yield built, url, schema
    built.close()
