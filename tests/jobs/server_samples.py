"""Job functions for the server tests, beside ``job_samples``."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from job_samples import KnownError

from backburner.cancellation import CancellationToken
from backburner.jobs import retry

# How many executions of each name are running now, and the most ever
# seen at once (more than one means a double execution).
active: dict[str, int] = {}
most_at_once: dict[str, int] = {}
runs: dict[str, int] = {}
started = threading.Event()


async def exclusive(name: str, token: CancellationToken) -> None:
    """Runs until its token fires; counts overlapping executions."""
    active[name] = active.get(name, 0) + 1
    runs[name] = runs.get(name, 0) + 1
    most_at_once[name] = max(most_at_once.get(name, 0), active[name])
    started.set()
    try:
        await token.wait()
        await asyncio.sleep(0)
    finally:
        active[name] -= 1
    token.raise_if_cancellation_requested()


def ignore_token(seconds: float) -> None:
    """A synchronous job that never looks at any token."""
    started.set()
    threading.Event().wait(seconds)


def reset() -> None:
    active.clear()
    most_at_once.clear()
    runs.clear()
    started.clear()


@retry(attempts=5, delays=[0], never_retry=(KnownError,))
def refuses(name: str) -> None:
    """Fails with an expected error that its policy never retries."""
    runs[name] = runs.get(name, 0) + 1
    raise KnownError(f"{name} is not allowed")


def returning_coroutine(func: Any) -> Any:
    """A decorator that hides that ``func`` is a coroutine function."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    wrapper.__module__ = func.__module__
    wrapper.__qualname__ = func.__qualname__
    return wrapper


@returning_coroutine
async def hidden_coroutine(name: str) -> None:
    """Looks synchronous to ``inspect``; returns a coroutine."""
    await asyncio.sleep(0)
    runs[name] = runs.get(name, 0) + 1
