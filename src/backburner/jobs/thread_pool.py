"""Daemon threads that run synchronous job functions.

Not :class:`concurrent.futures.ThreadPoolExecutor`: its threads are
joined when the interpreter exits, so one synchronous job that ignores
its cancellation token would keep a stopping server alive forever. Here
the threads are daemons; a server that gave up on a job (and put it back
on its queue) can exit while the job's thread still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Work = tuple[
    Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"
]


class JobThreads:
    """Up to ``size`` daemon threads, started as work arrives."""

    def __init__(self, size: int, name: str = "backburner-job") -> None:
        self._size = size
        self._name = name
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._lock = threading.Lock()
        self._closed = False

    async def run(self, call: Callable[[], T]) -> T:
        """Run ``call`` on a pool thread and return (or raise) its result.

        Cancelling the awaiting task stops the wait, not the thread.

        Raises:
            RuntimeError: the pool is closed.
        """
        if self._closed:
            raise RuntimeError("the job thread pool is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._busy += 1
            started = len(self._threads)
            if self._busy > started and started < self._size:
                thread = threading.Thread(
                    target=self._serve,
                    name=f"{self._name}-{started + 1}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
        self._work.put((call, loop, future))
        return await future

    def _serve(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            call, loop, future = item
            try:
                result = call()
            except BaseException as error:  # noqa: BLE001 - handed over
                # Whatever the job raised belongs to the awaiting task,
                # which decides what it means; the thread lives on.
                _settle(loop, future, None, error)
            else:
                _settle(loop, future, result, None)
            with self._lock:
                self._busy -= 1

    def close(self) -> None:
        """Let idle threads end; busy ones end after their job."""
        self._closed = True
        for _ in self._threads:
            self._work.put(None)


def _settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    def settle() -> None:
        if future.done():
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    # RuntimeError: the loop is closed, the server gave up on this job.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle)
