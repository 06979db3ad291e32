"""A short in-memory record of what the server did, for people and tests.

The log says the same things; this record lets the development pages
show them ("your search was cancelled after 1.2 s") and lets tests wait
for an event instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Activity", "Event"]

Predicate = Callable[["Event"], bool]


@dataclass(frozen=True)
class Event:
    """One thing that happened: a kind and its facts."""

    kind: str
    facts: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


class Activity:
    """The last ``size`` events, newest last."""

    def __init__(self, size: int = 200) -> None:
        self.events: deque[Event] = deque(maxlen=size)
        self._waiters: list[tuple[Predicate, asyncio.Future[Event]]] = []

    def record(self, kind: str, **facts: Any) -> Event:
        """Add an event; wake whoever waits for one like it."""
        event = Event(kind, facts)
        self.events.append(event)
        for waiter in list(self._waiters):
            predicate, future = waiter
            if not future.done() and predicate(event):
                future.get_loop().call_soon_threadsafe(_resolve, future, event)
                self._waiters.remove(waiter)
        return event

    async def wait_for(self, kind: str, **facts: Any) -> Event:
        """The first event of ``kind`` with ``facts``, past or future."""

        def matches(event: Event) -> bool:
            return event.kind == kind and all(
                event.facts.get(name) == value for name, value in facts.items()
            )

        for event in self.events:
            if matches(event):
                return event
        future: asyncio.Future[Event] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append((matches, future))
        return await future

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest events, newest first, as JSON-ready dicts."""
        newest = list(self.events)[-limit:]
        return [
            {"kind": e.kind, "at": e.at, **e.facts} for e in reversed(newest)
        ]


def _resolve(future: asyncio.Future[Event], event: Event) -> None:
    if not future.done():
        future.set_result(event)
