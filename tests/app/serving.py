"""Real uvicorn servers on 127.0.0.1, in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn


def listening() -> socket.socket:
    """A socket listening on a free loopback port.

    Connections made before a server accepts wait in the backlog, so a
    test can learn the URL (and configure the app with it) first.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    """The base URL of a listening socket."""
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def serve(
    app: Any, sock: socket.socket | None = None
) -> AsyncIterator[str]:
    """Serve ``app`` (lifespan off) on 127.0.0.1; yield its URL."""
    sock = sock or listening()
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    # The test owns the loop's signals.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        await task
        sock.close()
