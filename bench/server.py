"""The real server as a subprocess (``convlog serve``), and its memory use from /proc."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

log = logging.getLogger("bench")

STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def convlog_executable() -> str:
    """The ``convlog`` console script of the interpreter running the benchmark."""
    candidate = Path(sys.executable).with_name("convlog")
    if candidate.exists():
        return str(candidate)
    raise FileNotFoundError(f"no convlog script beside {sys.executable}; run scripts/install")


def proc_status_kib(pid: int, field: str) -> int | None:
    """A ``kB`` field of /proc/<pid>/status (``VmHWM``: peak resident set; ``VmRSS``: now)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def mib(kib: int | None) -> float | None:
    return None if kib is None else round(kib / 1024, 1)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def memory(self) -> dict[str, float | None]:
        return {
            "peak_rss_mib": mib(proc_status_kib(self.pid, "VmHWM")),
            "rss_mib": mib(proc_status_kib(self.pid, "VmRSS")),
        }

    def log_tail(self, limit: int = 4000) -> str:
        self.log_file.flush()
        self.log_file.seek(0)
        return self.log_file.read().decode("utf-8", "replace")[-limit:]


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    with httpx.Client(base_url=server.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {server.process.returncode}:\n{server.log_tail()}"
                )
            try:
                if client.get("/v1/health/").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"server not healthy after {STARTUP_TIMEOUT_SECONDS}s:\n{server.log_tail()}")


@contextmanager
def running_server(env: Mapping[str, str], args: tuple[str, ...] = ()) -> Iterator[Server]:
    """Start ``convlog serve`` on a free port with ``env`` over this process's environment
    (single node: no Redis; warnings only, so logging costs nothing per request), and ``args``
    (``--workers N``).
    """
    port = free_port()
    full_env = dict(os.environ)
    full_env.pop("REDIS_URL", None)
    full_env.update({"CONVLOG_LOG_LEVEL": "warning", **env})
    with tempfile.TemporaryFile() as log_file:
        process = subprocess.Popen(
            [convlog_executable(), "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        server = Server(process, f"http://127.0.0.1:{port}", log_file)
        try:
            _wait_healthy(server)
            log.info("  server pid %d on %s", server.pid, server.base_url)
            yield server
        finally:
            _stop(server)


def _stop(server: Server) -> None:
    process = server.process
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        log.warning("server %d did not stop on SIGINT; killing it", process.pid)
        process.kill()
        process.wait()
