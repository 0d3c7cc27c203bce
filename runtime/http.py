"""The HTTP server's protocol: uvicorn's h11, plus a deadline for each request's headers.

uvicorn closes idle keep-alive connections, but a client that trickles a request's headers a
byte at a time (slowloris) holds its connection, and a worker's slot, for ever. Each
connection here must deliver a whole request head within ``header_seconds`` of opening, or of
its previous response; otherwise it is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


def with_header_deadline(header_seconds: float) -> type[H11Protocol]:
    class DeadlineH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(header_seconds, self._check)

        def _check(self) -> None:
            waiting = self.cycle is None or self.cycle.response_complete
            if waiting and not self.transport.is_closing():
                self.timeout_keep_alive_handler()  # closes the connection

    return DeadlineH11Protocol


def _from_environment() -> type[H11Protocol]:
    from runtime.settings import Settings

    return with_header_deadline(Settings.from_env().header_timeout_seconds)


def __getattr__(name: str) -> Any:
    """``runtime.http:FromEnvironment``: the protocol with the deadline the settings name, by
    import string (worker processes cannot be handed a class made at run time)."""
    if name == "FromEnvironment":
        return _from_environment()
    raise AttributeError(name)
