"""The HTTP server's protocol: uvicorn's httptools one (the C parser of Node's llhttp, which
costs a fraction of h11's pure-Python parsing per request and per streamed chunk), plus a
deadline for each request's headers.

uvicorn closes idle keep-alive connections, but a client that trickles a request's headers a
byte at a time (slowloris) holds its connection, and a worker's slot, for ever. Each
connection here must deliver a whole request head within ``header_seconds`` of opening, or of
its previous response; otherwise it is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def with_header_deadline(header_seconds: float) -> type[HttpToolsProtocol]:
    class DeadlineProtocol(HttpToolsProtocol):
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

    return DeadlineProtocol


def _from_environment() -> type[HttpToolsProtocol]:
    from runtime.settings import Settings

    return with_header_deadline(Settings.from_env().header_timeout_seconds)


def __getattr__(name: str) -> Any:
    """``runtime.http:FromEnvironment``: the protocol with the deadline the settings name, by
    import string (worker processes cannot be handed a class made at run time)."""
    if name == "FromEnvironment":
        return _from_environment()
    raise AttributeError(name)
