"""Which tasks a block of test code created, by coroutine name."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

WATCHER = "ReceiveWatch._watch"
"""The coroutine of the middleware's watcher task."""


@contextlib.contextmanager
def tasks_created() -> Iterator[list[str]]:
    """Names of the coroutines of every task created inside the block."""
    loop = asyncio.get_running_loop()
    names: list[str] = []
    previous = loop.get_task_factory()

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Task[Any]:
        names.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        yield names
    finally:
        loop.set_task_factory(previous)
