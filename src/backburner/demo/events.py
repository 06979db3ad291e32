"""The demo's live log: what the server did with each request.

Handlers and worker threads record events; the page reads them back
with a long poll (``GET /api/events?after=<id>&wait=<seconds>``), so a
new event reaches the browser as soon as it is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class DemoEvent:
    """One line of the live log.

    Attributes:
        id: increasing number, 1 for the first event.
        request: the demo's number for the request, None for events
            that belong to no request of ours.
        route: the path of the route that recorded it.
        kind: ``started``, ``progress``, ``cancelled``, ``interrupted``,
            ``client left``, ``completed`` or ``499``.
        detail: a human-readable explanation.
        elapsed_ms: milliseconds since the request started, if known.
        at: wall-clock time, seconds since the epoch.
    """

    id: int
    request: int | None
    route: str
    kind: str
    detail: str
    elapsed_ms: float | None
    at: float

    def as_json(self) -> dict[str, Any]:
        """The event as a JSON-ready dictionary."""
        return asdict(self)


class EventLog:
    """A bounded, thread-safe log of :class:`DemoEvent`.

    Args:
        capacity: how many of the latest events are kept.

    Raises:
        ValueError: ``capacity`` is not positive.
    """

    def __init__(self, capacity: int = 200) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self._lock = threading.Lock()
        self._events: deque[DemoEvent] = deque(maxlen=capacity)
        self._last_id = 0
        self._requests = itertools.count(1)
        self._waiters: list[
            tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]
        ] = []

    def next_request(self) -> int:
        """A fresh request number."""
        with self._lock:
            return next(self._requests)

    def record(
        self,
        request: int | None,
        route: str,
        kind: str,
        detail: str = "",
        *,
        started: float | None = None,
    ) -> DemoEvent:
        """Append an event; callable from any thread.

        Args:
            request: the request number, or None.
            route: the route's path.
            kind: what happened (see :class:`DemoEvent`).
            detail: a human-readable explanation.
            started: :func:`time.monotonic` value at the request start;
                gives the event its ``elapsed_ms``.
        """
        elapsed = None
        if started is not None:
            elapsed = round((time.monotonic() - started) * 1000, 1)
        with self._lock:
            self._last_id += 1
            event = DemoEvent(
                self._last_id,
                request,
                route,
                kind,
                detail,
                elapsed,
                time.time(),
            )
            self._events.append(event)
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            # A closed loop raises RuntimeError: nobody waits there now.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_wake, future)
        return event

    @property
    def last_id(self) -> int:
        """The id of the latest event, 0 before the first."""
        return self._last_id

    def since(self, after: int) -> list[DemoEvent]:
        """The kept events with an id greater than ``after``, oldest first."""
        with self._lock:
            return [event for event in self._events if event.id > after]

    async def wait_newer(self, after: int, seconds: float) -> None:
        """Return once an event newer than ``after`` exists, or after
        ``seconds``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._last_id > after:
                return
            self._waiters.append((loop, future))
        try:
            await asyncio.wait_for(future, seconds)
        except TimeoutError:
            pass  # the long poll ends empty; the page asks again
        finally:
            with self._lock:
                if (loop, future) in self._waiters:
                    self._waiters.remove((loop, future))


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
