"""Run asyncio code under a cancellation token.

A token is cooperative: code must look at it. :func:`cancellable` makes it
preemptive for a block of asyncio code: when the token fires, the task
running the block is cancelled at whatever ``await`` it is blocked on (a
socket read, a database round trip), and the block ends with
:class:`OperationCancelled` carrying the token's reason.

The task cancellation underneath follows the same counting protocol as
:func:`asyncio.timeout` (``Task.cancel`` / ``Task.uncancel``), so it
composes with task groups and timeouts, and a genuine outside
``task.cancel()`` still surfaces as :class:`asyncio.CancelledError`.

A scope never adds a second cancellation to a task that another one is
already unwinding (the web middleware interrupting a handler when the
client leaves, a moment before the scope hears of the same token). That
second ``task.cancel()`` would change nothing about how the block ends,
since the first cancellation wins either way, but it would land on the
cleanup the first one started, and cut short a shielded close (an
``await`` inside a ``finally``) that must finish. The scope's
interruption is held back instead, and delivered if that other
cancellation is absorbed (by an ``asyncio.timeout`` inside the block)
before the block ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from types import TracebackType
from typing import TypeVar

from backburner.cancellation.reasons import OperationCancelled
from backburner.cancellation.token import (
    CallbackRegistration,
    CancellationToken,
)

T = TypeVar("T")

# Seconds between two looks at whether another cancellation of the task,
# in flight when the token fired, was absorbed before the block ended.
# asyncio says nothing when a cancellation is absorbed, hence the look.
_HELD_RECHECK = 0.01


class cancellable:  # noqa: N801 - used like a function: `async with`
    """Async context manager: interrupt the block when ``token`` fires.

    While another cancellation of the task is in flight (one that began
    after the block was entered), the scope does not cancel the task a
    second time: it waits until that one is absorbed, and does nothing if
    the block ends first.

    Raises:
        OperationCancelled: on entry if the token has already fired, and
            on exit if it fired while the block ran.
    """

    __slots__ = (
        "_baseline",
        "_exited",
        "_fired",
        "_held",
        "_registration",
        "_task",
        "_token",
    )

    def __init__(self, token: CancellationToken) -> None:
        self._token = token
        self._task: asyncio.Task[object] | None = None
        self._registration: CallbackRegistration | None = None
        self._fired = False
        self._exited = False
        # Cancellations of the task already in flight on entry: the
        # block runs inside them, they are not "another one".
        self._baseline = 0
        self._held: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> None:
        self._token.raise_if_cancellation_requested()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("cancellable() must be used inside a task")
        self._task = task
        self._baseline = task.cancelling()
        loop = asyncio.get_running_loop()
        # Always go through the loop, even when the token is cancelled
        # from inside this very task: the callback then runs while the
        # task is suspended, so the cancellation lands on an await inside
        # the block rather than pending past its end.
        self._registration = self._token._register(
            lambda: loop.call_soon_threadsafe(self._interrupt), None
        )

    def _interrupt(self) -> None:
        self._held = None
        task = self._task
        if self._exited or task is None:
            return
        if task.cancelling() > self._baseline:
            loop = asyncio.get_running_loop()
            self._held = loop.call_later(_HELD_RECHECK, self._interrupt)
            return
        self._fired = True
        task.cancel(msg=f"cancellation token: {self._token.reason}")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._exited = True
        if self._held is not None:
            self._held.cancel()
            self._held = None
        if self._registration is not None:
            self._registration.unregister()
        if not self._fired or self._task is None:
            return False
        if self._task.uncancel() > 0:
            # Someone else cancelled the task too: theirs wins.
            return False
        if exc_type is not None and not issubclass(
            exc_type, asyncio.CancelledError
        ):
            return False
        reason = self._token.reason or "cancelled"
        raise OperationCancelled(reason, self._token) from exc


async def run_cancellable(
    token: CancellationToken, awaitable: Awaitable[T]
) -> T:
    """Await ``awaitable``, interrupting it when ``token`` fires.

    Raises:
        OperationCancelled: the token fired before or during the await.
    """
    async with cancellable(token):
        return await awaitable
    raise AssertionError("unreachable")  # pragma: no cover
