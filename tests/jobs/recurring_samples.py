"""Job functions the recurring job tests schedule."""

from __future__ import annotations

import threading

from backburner.jobs import mutex

# Names of the runs, in the order they ran (in-process servers only).
runs: list[str] = []
ran = threading.Event()


def tick(name: str) -> None:
    """Record one run of ``name``."""
    runs.append(name)
    ran.set()


async def async_tick(name: str) -> None:
    """Record one run of ``name`` on the event loop."""
    runs.append(name)
    ran.set()


def reset() -> None:
    runs.clear()
    ran.clear()


@mutex(lambda name: f"import:{name}", limit=2)
def guarded_import(name: str) -> None:
    """A recurring import that must not overlap itself (two at most)."""
    runs.append(name)
    ran.set()
