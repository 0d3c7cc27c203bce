"""Letta Code's one-tool headless task against the real server: ``letta -p`` with a prompt
that makes the (fake) model call its Bash tool once, which Letta Code runs here and answers
through the approval flow. Per run: wall time from the start of ``letta`` to its exit with the
result, the HTTP requests Letta Code made (counted by a proxy in this process, so the counting
costs the server nothing), and the server CPU they cost.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from bench.cpu import process_cpu_seconds
from bench.fake_model import fake_openai_process
from bench.server import running_server
from bench.stats import median
from tests.letta_code.node import letta_code, letta_code_env
from tests.served_app import ServedApp

log = logging.getLogger("bench")
PROMPT = 'make the file [[call Bash {"command": "echo bench > made.txt"}]]'
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}
TASK_FLAGS = ("--new-agent", "--permission-mode", "bypassPermissions", "--output-format", "json")
_ID = re.compile(r"\b(agent|conv|message|run|block|tool)-[0-9a-f-]{36}\b")


class CountingProxy(ServedApp):
    """Forwards every request to ``target`` as it is (streams included) and counts them."""

    name = "counting proxy"

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self) -> Counter[str]:
        with self._lock:
            seen, self.seen = self.seen, Counter()
        return seen

    def app(self) -> Starlette:
        client = httpx.AsyncClient(base_url=self.target, timeout=None)

        async def forward(request: Request) -> StreamingResponse:
            route = _ID.sub(lambda m: "{" + m.group(1) + "_id}", request.url.path)
            with self._lock:
                self.seen[f"{request.method} {route}"] += 1
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
            upstream = client.build_request(
                request.method,
                request.url.path,
                params=str(request.query_params),
                content=await request.body(),
                headers=headers,
            )
            answer = await client.send(upstream, stream=True)

            async def body() -> AsyncIterator[bytes]:
                async for piece in answer.aiter_raw():
                    yield piece
                await answer.aclose()

            kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
            return StreamingResponse(body(), status_code=answer.status_code, headers=kept)

        methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])


def _one_run(binary: Path, proxy: CountingProxy, server_pid: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-letta-code-") as root:
        workdir, home = Path(root) / "project", Path(root) / "home"
        workdir.mkdir()
        home.mkdir()
        proxy.take()
        cpu_before = process_cpu_seconds(server_pid) or 0.0
        started = time.perf_counter()
        done = subprocess.run(
            [str(binary), "-p", PROMPT, *TASK_FLAGS],
            cwd=workdir,
            env=letta_code_env(f"http://127.0.0.1:{proxy.port}", home),
            capture_output=True,
            text=True,
            timeout=300,
        )
        wall = time.perf_counter() - started
        cpu = (process_cpu_seconds(server_pid) or 0.0) - cpu_before
        requests = proxy.take()
        result = json.loads(done.stdout) if done.returncode == 0 and done.stdout else {}
        if result.get("is_error", True) or not (workdir / "made.txt").exists():
            raise RuntimeError(
                f"the Letta Code task failed: {done.stdout[-800:]}{done.stderr[-800:]}"
            )
        return {
            "wall_ms": round(wall * 1000, 1),
            "server_cpu_ms": round(cpu * 1000, 1),
            "http_requests": sum(requests.values()),
            "requests": dict(sorted(requests.items())),
            "letta_duration_ms": result.get("duration_ms"),
        }


def one_tool_task(server_env: Mapping[str, str], runs: int) -> dict[str, Any]:
    """Median figures over ``runs`` after one warm-up run (which loads the server's code)."""
    missing = [name for name in ("node", "npm") if shutil.which(name) is None]
    if missing:
        return {"skipped": f"Letta Code needs {' and '.join(missing)}"}
    binary = letta_code()
    with fake_openai_process() as fake:
        env = {
            **server_env,
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": "bench",
            "CONVLOG_AUTO_MODEL": "openai/gpt-fake",
        }
        with running_server(env) as server, CountingProxy(server.base_url) as proxy:
            _one_run(binary, proxy, server.pid)
            measured = [_one_run(binary, proxy, server.pid) for _ in range(runs)]
    summary = {
        key: median([m[key] for m in measured])
        for key in ("wall_ms", "server_cpu_ms", "http_requests")
    }
    log.info(
        "  Letta Code one-tool task: %.0f ms wall, %d requests, %.1f ms server CPU (medians)",
        summary["wall_ms"],
        summary["http_requests"],
        summary["server_cpu_ms"],
    )
    return {**summary, "runs": runs, "requests_per_run": measured[-1]["requests"], "all": measured}
