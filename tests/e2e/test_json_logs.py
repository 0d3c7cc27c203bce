"""``CONVLOG_LOG_FORMAT=json``: the server's every line is a JSON object, uvicorn's included."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import spawn_server

pytestmark = [pytest.mark.e2e]


def test_a_server_with_json_logs_writes_only_json_lines(tmp_path: Path) -> None:
    env = {"CONVLOG_DATA_DIR": str(tmp_path / "data"), "CONVLOG_LOG_FORMAT": "json"}
    with spawn_server(env, tmp_path / "logs") as (url, _):
        assert httpx.get(f"{url}/v1/health/").status_code == 200
    (log,) = (tmp_path / "logs").glob("server-*.log")
    parsed = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert any("convlog ready" in line["message"] for line in parsed)
    assert any(line["logger"].startswith("uvicorn") for line in parsed)
