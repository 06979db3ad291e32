"""The server side of the cancellation benchmark.

``python -m bench.cancellation_server`` serves one FastAPI app under
uvicorn on a free 127.0.0.1 port and prints ``listening HOST PORT`` once
the socket accepts connections. The same app answers under three
prefixes, so the variants share one server, one process and one run:

- ``/plain/...``: the app alone, no cancellation (the baseline);
- ``/mw/...``: the app inside :class:`CancellationMiddleware`;
- ``/plain/poll/...``: routes using the polling recipe, a loop that asks
  Starlette's ``request.is_disconnected()`` every ``--poll-ms``.

Routes:

- ``/hello``: hello world, for requests per second.
- ``/block?key=K``: waits forever; records the ``time.monotonic()`` at
  which the handler is cancelled. ``CLOCK_MONOTONIC`` is one clock for
  every process on a Linux machine, so the client can subtract its own
  reading taken just before it closed the socket.
- ``/entered?key=K``: answers once the handler of K is waiting.
- ``/cancelled?key=K``: answers ``{"at": t}`` once K was cancelled
  (``null`` after 10 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI, Request, Response

from backburner.web import CLIENT_CLOSED_REQUEST, CancellationMiddleware

T = TypeVar("T")

_WAIT = 10.0


class CancellationRecorder:
    """When each blocked handler started waiting and was cancelled."""

    def __init__(self) -> None:
        self.entered: defaultdict[str, asyncio.Event] = defaultdict(
            asyncio.Event
        )
        self.cancelled: defaultdict[str, asyncio.Event] = defaultdict(
            asyncio.Event
        )
        self.cancelled_at: dict[str, float] = {}

    async def wait_forever(self, key: str) -> None:
        """Wait until cancelled; note the instant it happens."""
        self.entered[key].set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled_at[key] = time.monotonic()
            self.cancelled[key].set()
            raise

    async def wait_cancelled(self, key: str) -> float | None:
        """The instant ``key`` was cancelled, None if not within 10 s."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.cancelled[key].wait(), _WAIT)
        self.entered.pop(key, None)
        self.cancelled.pop(key, None)
        return self.cancelled_at.pop(key, None)


class ClientGoneError(Exception):
    """The polling recipe saw the client leave."""


async def poll_disconnect(
    request: Request, work: Awaitable[T], interval: float
) -> T:
    """The polling recipe: run ``work``, checking for a disconnect.

    Every ``interval`` seconds it asks ``request.is_disconnected()``;
    when the client is gone, ``work`` is cancelled.

    Raises:
        ClientGoneError: the client disconnected.
    """
    task = asyncio.ensure_future(work)
    try:
        while True:
            # The first look also takes the request message off
            # ``receive``; only then can a disconnect be seen.
            if await request.is_disconnected():
                task.cancel()
                await asyncio.wait({task})
                raise ClientGoneError
            done, _ = await asyncio.wait({task}, timeout=interval)
            if done:
                return task.result()
    finally:
        task.cancel()


def build_app(poll_interval: float) -> Any:
    """The three-prefix app described in the module docstring."""
    recorder = CancellationRecorder()
    api = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    async def say_hello() -> dict[str, str]:
        return {"hello": "world"}

    @api.get("/hello")
    async def hello() -> dict[str, str]:
        return await say_hello()

    @api.get("/block")
    async def block(key: str) -> None:
        await recorder.wait_forever(key)

    @api.get("/poll/hello")
    async def poll_hello(request: Request) -> dict[str, str]:
        return await poll_disconnect(request, say_hello(), poll_interval)

    @api.get("/poll/block")
    async def poll_block(request: Request, key: str) -> Response:
        try:
            await poll_disconnect(
                request, recorder.wait_forever(key), poll_interval
            )
        except ClientGoneError:
            return Response(status_code=CLIENT_CLOSED_REQUEST)
        return Response()

    @api.get("/entered")
    async def entered(key: str) -> dict[str, bool]:
        await asyncio.wait_for(recorder.entered[key].wait(), _WAIT)
        return {"entered": True}

    @api.get("/cancelled")
    async def cancelled(key: str) -> dict[str, float | None]:
        return {"at": await recorder.wait_cancelled(key)}

    guarded = CancellationMiddleware(api)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await api(scope, receive, send)
            return
        prefix, _, rest = scope["path"][1:].partition("/")
        path = "/" + rest
        # Every variant pays for the same scope copy, so the prefix
        # routing costs them all alike.
        scope = {**scope, "path": path, "raw_path": path.encode()}
        await (guarded if prefix == "mw" else api)(scope, receive, send)

    return app


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the benchmark app until terminated."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.cancellation_server"
    )
    parser.add_argument("--poll-ms", type=float, default=10.0)
    args = parser.parse_args(argv)

    # IPPROTO_TCP spelled out: asyncio turns Nagle's algorithm off only
    # on sockets that say they are TCP, and without that every response
    # (head and body written apart) waits for the client's delayed ACK.
    sock = socket.socket(
        socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # Listening now: connections wait in the backlog until uvicorn runs.
    sock.listen(1024)
    host, port = sock.getsockname()
    config = uvicorn.Config(
        build_app(args.poll_ms / 1000),
        lifespan="off",
        log_level="warning",
        access_log=False,
        http="h11",
        loop="asyncio",
        backlog=1024,
    )
    print(f"listening {host} {port}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    sys.stdout.flush()


if __name__ == "__main__":
    main()
