"""``convlog serve --workers N``: N processes on one port, sharing PostgreSQL (and Redis). The
cluster tests (``test_turns_cluster.py``) also run against a ``--workers 2`` server; here: the
workers are there, their metrics add up, and a store that is one process's is refused."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.e2e.conftest import REPO, SCRUBBED, SERVE, spawn_server
from tests.services import require_postgres

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def schema() -> Iterator[tuple[str, str]]:
    url = require_postgres()
    name = f"e2e_workers_{uuid.uuid4().hex[:10]}"
    yield url, name
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def test_two_workers_serve_one_port_and_their_metrics_add_up(
    schema: tuple[str, str], tmp_path: Path
) -> None:
    url, name = schema
    env = {"DATABASE_URL": url, "DATABASE_SCHEMA": name, "CONVLOG_DATA_DIR": str(tmp_path)}
    with spawn_server(env, tmp_path / "logs", ("--workers", "2")) as (base, _):
        with httpx.Client(base_url=base, timeout=10) as http:
            for _ in range(40):  # fresh connections: the kernel spreads them over the workers
                assert httpx.get(f"{base}/v1/agents/count").json() == 0
            scraped = http.get("/metrics").text
        (log,) = (tmp_path / "logs").glob("server-*.log")
        workers = set(re.findall(r"Started server process \[(\d+)\]", log.read_text()))
        ready = log.read_text().count("convlog ready")
    assert len(workers) == 2 and ready == 2, log.read_text()[-2000:]
    counted = re.search(
        r'convlog_http_request_duration_seconds_count\{method="GET",'
        r'route="/v1/agents/count",status="200"\} (\S+)',
        scraped,
    )
    assert counted is not None and float(counted.group(1)) == 40.0, scraped[:3000]
    assert "without Redis" in log.read_text()  # said what does not hold across workers


def test_workers_need_postgresql(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["CONVLOG_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [*SERVE, "--workers", "2"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--workers 2 needs PostgreSQL" in done.stderr and "sqlite" in done.stderr
