"""The middleware's own cost per request, without a server.

Calls a bare ASGI app directly, with and without
:class:`~backburner.web.CancellationMiddleware`, alternating in short
batches, and reports the difference in microseconds per request. No
sockets, no HTTP parsing, no framework: what remains is the
middleware's bookkeeping (token source, watcher task, replayed
``receive``), the number to set against a real route's own cost.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from backburner.web import CancellationMiddleware

_SCOPE = {"type": "http", "method": "GET", "path": "/hello"}
_REQUEST = {"type": "http.request", "body": b"", "more_body": False}
_START = {"type": "http.response.start", "status": 200, "headers": []}
_BODY = {"type": "http.response.body", "body": b"hello"}


async def _bare_app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send(_START)
    await send(_BODY)


async def _send(message: Any) -> None:
    pass


async def _time_batch(app: Any, requests: int) -> float:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    for _ in range(requests):
        # Like a server: the request message, then nothing until the
        # connection ends (never, here).
        pending: list[Any] = [_REQUEST]
        idle = loop.create_future()

        async def receive(
            pending: list[Any] = pending, idle: Any = idle
        ) -> Any:
            if pending:
                return pending.pop()
            return await idle

        await app(dict(_SCOPE), receive, _send)
        # Let the cancelled watcher task finish, as a server's loop would.
        await asyncio.sleep(0)
    return (time.perf_counter() - started) / requests


async def _measure(batches: int, requests: int) -> list[float]:
    guarded = CancellationMiddleware(_bare_app)
    await _time_batch(_bare_app, requests)  # warm up
    await _time_batch(guarded, requests)
    costs = []
    for _ in range(batches):
        bare = await _time_batch(_bare_app, requests)
        wrapped = await _time_batch(guarded, requests)
        costs.append((wrapped - bare) * 1e6)
    return costs


def middleware_cost_us(batches: int = 20, requests: int = 2000) -> float:
    """Median extra microseconds per request the middleware adds."""
    return statistics.median(asyncio.run(_measure(batches, requests)))
