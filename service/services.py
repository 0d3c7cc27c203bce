"""Every use case, wired: what the API's handlers are given (built by ``runtime.bootstrap``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from projections.projector import Projector
from service.agents import AgentService
from service.blocks import BlockService
from service.compaction import CompactionService
from service.context import Context
from service.conversations import ConversationService
from service.keys import KeyService
from service.model import ChatModel, ModelCatalog
from service.runs import RunService
from service.turns import TurnService


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

    @property
    def projector(self) -> Projector:
        return self.ctx.projector

    def heartbeat(self) -> None:
        """Tell other processes this one is alive (its claims stay its own)."""
        claims = self.turns.claims
        claims.processes.beat(claims.holder)

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
        claims.processes.forget(claims.holder)
        self.ctx.app.close()
        self.ctx.store.close()
