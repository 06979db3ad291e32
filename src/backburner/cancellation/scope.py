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


class cancellable:  # noqa: N801 - used like a function: `async with`
    """Async context manager: interrupt the block when ``token`` fires.

    Raises:
        OperationCancelled: on entry if the token has already fired, and
            on exit if it fired while the block ran.
    """

    __slots__ = ("_exited", "_fired", "_registration", "_task", "_token")

    def __init__(self, token: CancellationToken) -> None:
        self._token = token
        self._task: asyncio.Task[object] | None = None
        self._registration: CallbackRegistration | None = None
        self._fired = False
        self._exited = False

    async def __aenter__(self) -> None:
        self._token.raise_if_cancellation_requested()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("cancellable() must be used inside a task")
        self._task = task
        loop = asyncio.get_running_loop()
        # Always go through the loop, even when the token is cancelled
        # from inside this very task: the callback then runs while the
        # task is suspended, so the cancellation lands on an await inside
        # the block rather than pending past its end.
        self._registration = self._token._register(
            lambda: loop.call_soon_threadsafe(self._interrupt), None
        )

    def _interrupt(self) -> None:
        if self._exited or self._task is None:
            return
        self._fired = True
        self._task.cancel(msg=f"cancellation token: {self._token.reason}")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._exited = True
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
