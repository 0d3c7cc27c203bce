"""Real services for tests: reachable, or skipped locally and failed under CI=true."""

from __future__ import annotations

import os
import shutil
import socket
from urllib.parse import urlparse

import pytest

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def require(name: str, url: str, default_port: int) -> str:
    """The service's URL if it answers; otherwise skip, or fail when CI=true."""
    if _reachable(url, default_port):
        return url
    message = f"{name} is not reachable at {url}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: tests that need it must run)")
    pytest.skip(message)


def require_postgres() -> str:
    return require("PostgreSQL", POSTGRES_URL, 5432)


def require_redis() -> str:
    return require("Redis", REDIS_URL, 6379)


def require_program(name: str, why: str) -> str:
    """The path of an executable the test runs; otherwise skip, or fail when CI=true."""
    found = shutil.which(name)
    if found is not None:
        return found
    message = f"{name} is not installed ({why})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: tests that need it must run)")
    pytest.skip(message)
