"""Real HTTP servers on 127.0.0.1, run in the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

SERVERS = ("uvicorn", "hypercorn")


def listening_socket() -> socket.socket:
    """A socket bound to a free loopback port and already listening.

    Connections made before the server starts accepting wait in the
    backlog, so tests need not wait for a "started" signal.
    """
    # IPPROTO_TCP spelled out: asyncio turns Nagle's algorithm off only on
    # sockets that say they are TCP; without it every keep-alive response
    # (head and body written apart) waits for the client's delayed ACK.
    sock = socket.socket(
        socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def run_uvicorn(app: Any) -> AsyncIterator[tuple[str, int]]:
    sock = listening_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    # The test owns the loop's signal handling, not the server.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def run_hypercorn(app: Any) -> AsyncIterator[tuple[str, int]]:
    sock = listening_socket()
    port = sock.getsockname()[1]
    config = HypercornConfig()
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.graceful_timeout = 2
    stop = asyncio.Event()
    task = asyncio.create_task(
        hypercorn_serve(app, config, shutdown_trigger=stop.wait)
    )
    try:
        yield "127.0.0.1", port
    finally:
        stop.set()
        await task


def runner(name: str) -> Callable[[Any], Any]:
    return {"uvicorn": run_uvicorn, "hypercorn": run_hypercorn}[name]
