"""The ASGI factory: ``uvicorn --factory runtime.asgi:create``."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette

from api.app import create_app
from runtime import logs, tracing
from runtime.bootstrap import open_services
from runtime.settings import Settings
from service.services import Services

log = logging.getLogger("convlog")

# How often each process looks for runs whose process died.
REAP_INTERVAL_SECONDS = 1.0


def _poll_projections(services: Services, interval: float, stop: threading.Event) -> None:
    """Apply events written by other processes (or left by a crash) within a poll interval."""
    next_reap = 0.0
    while not stop.wait(interval):
        try:
            services.projector.poll()
            if time.monotonic() >= next_reap:
                services.reap()
                next_reap = time.monotonic() + REAP_INTERVAL_SECONDS
        except Exception:
            log.exception("projection catch-up failed; retrying in %.1fs", interval)


def _dump_tasks() -> None:
    """``kill -USR1 <pid>``: log what every asyncio task is waiting on (for a stuck request)."""
    for task in asyncio.all_tasks():
        lines = []
        awaited: Any = task.get_coro()
        while awaited is not None:  # down the chain of awaits: where it waits, innermost last
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
            if frame is not None:
                code = frame.f_code
                lines.append(f"  {code.co_filename}:{frame.f_lineno} {code.co_name}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
        log.warning("task %s waits:\n%s", task.get_name(), "\n".join(lines))


def _beat(services: Services, interval: float, stop: threading.Event) -> None:
    """The heartbeat, on a thread of its own so that no long catch-up can delay it."""
    while not stop.wait(interval):
        try:
            services.heartbeat()
        except Exception:
            log.warning("could not write this process's heartbeat; retrying", exc_info=True)


def from_environment() -> Starlette:
    """The app of one worker of ``convlog serve --workers N`` (each reads the settings, and
    sets up its own logging: a worker is a process of its own)."""
    settings = Settings.from_env()
    logs.configure(settings.log_level, settings.log_format)
    return create(settings)


def create(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    exporting = tracing.configure()
    services = open_services(settings)
    edge = settings.edge()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = threading.Event()
        poller = threading.Thread(
            target=_poll_projections,
            args=(services, settings.projection_poll_interval, stop),
            name="projections",
            daemon=True,
        )
        poller.start()
        beater = threading.Thread(
            target=_beat,
            args=(services, settings.process_timeout_seconds / 3, stop),
            name="heartbeat",
            daemon=True,
        )
        beater.start()
        await services.astart()
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _dump_tasks)
        log.info(
            "convlog ready (%s store, %s); %s",
            settings.backend,
            "Redis" if settings.redis_url else "single node, no Redis",
            _auth_line(edge.auth_required, services),
        )
        try:
            yield
        finally:
            stop.set()
            await services.aclose()
            poller.join(timeout=5)
            beater.join(timeout=5)
            services.close()
            if exporting:
                tracing.shutdown()  # the last spans go out before the process ends

    return create_app(services, edge, lifespan)


def _auth_line(required: bool, services: Services) -> str:
    if not required:
        return (
            "authentication off: every request acts for the default organization "
            "(set CONVLOG_AUTH=required to ask for keys)"
        )
    if not services.keys.list():
        return (
            "authentication required, but no API key exists yet: "
            "create one with `convlog keys create --organization NAME`"
        )
    return "authentication required (Authorization: Bearer <key>)"
