"""Every use case, wired: what the API's handlers are given (built by ``runtime.bootstrap``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from anyio import to_thread

from projections.projector import Projector
from service.agents import AgentService
from service.blocks import BlockService
from service.compaction import CompactionService
from service.context import Context
from service.conversations import ConversationService
from service.keys import KeyService
from service.message_search import MessageSearchService
from service.metrics import Readings
from service.model import ChatModel, ModelCatalog
from service.projection_status import ProjectionStatusService
from service.runs import RunService
from service.time_travel import TimeTravelService
from service.turns import TurnService

log = logging.getLogger("convlog")


@dataclass
class Services:
    ctx: Context
    agents: AgentService
    conversations: ConversationService
    turns: TurnService
    runs: RunService
    compaction: CompactionService
    blocks: BlockService
    keys: KeyService
    model: ChatModel
    catalog: ModelCatalog  # the handles the configured providers serve
    context_windows: Mapping[str, int]  # tokens per handle, as configured
    # What needs the event loop to start (the Redis cancel listener) and to stop.
    starters: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Other services to report on in health checks, by name (Redis): each answers or raises.
    probes: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)
    # Gauges read when /metrics is scraped (projection lag, database pools).
    readings: Readings = field(default_factory=Readings)

    @cached_property
    def message_search(self) -> MessageSearchService:
        return MessageSearchService(self.ctx)

    @cached_property
    def time_travel(self) -> TimeTravelService:
        return TimeTravelService(self.ctx, self.conversations, self.agents)

    @cached_property
    def projection_status(self) -> ProjectionStatusService:
        return ProjectionStatusService(self.ctx.projector)

    @property
    def projector(self) -> Projector:
        return self.ctx.projector

    async def health(self, timeout: float = 2.0) -> dict[str, str]:
        """Each dependency's state, "ok" or "unavailable", each checked within ``timeout``."""

        def database() -> None:
            self.ctx.log.max_position()
            self.ctx.store.query("SELECT 1")

        checks: dict[str, Awaitable[object]] = {"database": to_thread.run_sync(database)}
        checks.update({name: probe() for name, probe in self.probes.items()})
        states = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check, timeout)
                states[name] = "ok"
            except Exception:
                states[name] = "unavailable"
        return states

    def heartbeat(self) -> None:
        """Tell other processes this one is alive (its claims stay its own)."""
        claims = self.turns.claims
        claims.processes.beat(claims.holder)

    def database_up(self) -> bool:
        """As of the last heartbeat (at most a second old): while it is down, requests are
        answered 503 at once instead of each waiting out the connection timeouts.
        """
        return self.turns.claims.processes.database_up

    def database_failed(self) -> None:
        self.turns.claims.processes.database_failed()

    def reap(self) -> int:
        """Free the claims of runs whose process died (recording those runs failed)."""
        return self.turns.claims.reap()

    async def astart(self) -> None:
        for start in self.starters:
            await start()

    async def aclose(self) -> None:
        await self.turns.aclose()
        await self.model.aclose()
        await self.catalog.aclose()  # closing an already closed router does nothing
        for close in self.closers:
            await close()

    def close(self) -> None:
        claims = self.turns.claims
        try:  # a clean exit frees this process's claims at once; without it, in seconds
            claims.processes.forget(claims.holder)
        except Exception:
            log.warning("could not remove this process's heartbeat", exc_info=True)
        self.ctx.app.close()
        self.ctx.store.close()
