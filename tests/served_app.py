"""A starlette app served by uvicorn on a free local port, in a thread: the fake providers'
common lifecycle (``tests/fake_openai.py``, ``tests/fake_anthropic.py``).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Self

import uvicorn
from starlette.applications import Starlette


class ServedApp:
    name = "fake"

    def __init__(self) -> None:
        self._stopping = False
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def app(self) -> Starlette:
        raise NotImplementedError

    def start(self) -> Self:
        # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY on accepted connections only
        # when the listening socket's proto says TCP. Without it every keep-alive request after
        # the first waits ~40 ms (Nagle against the client's delayed ACK).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app(), log_level="warning", lifespan="off", ws="none", access_log=False
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the {self.name} server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
