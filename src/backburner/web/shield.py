"""Blocks that the request cancellation does not interrupt.

A commit that has started should finish: a half-applied write costs more
than the few milliseconds it takes. Inside ``async with shielded():`` a
client disconnect still fires the request's token, but the handler is
not interrupted until the block ends; then the cancellation is
delivered, as :class:`~backburner.cancellation.OperationCancelled` raised
from the end of the block.

Only the request cancellation is held back. A server shutting down
cancels tasks on its own, and that still interrupts the block; wrap the
awaited call in :func:`asyncio.shield` too if it must survive that.
"""

from __future__ import annotations

from types import TracebackType

from backburner.cancellation import OperationCancelled
from backburner.web.request import (
    RequestCancellationState,
    current_request_state,
)


class shielded:  # noqa: N801 - used like a function: `async with`
    """Async context manager: the request cancellation waits for the block.

    Outside a request (no middleware, a job, a script) it does nothing.
    Blocks nest; the held-back cancellation is delivered when the
    outermost one ends.

    Raises:
        OperationCancelled: on exit, when the client left while the
            block ran and the block itself ended without an error. If
            the block raised, its exception goes on and the handler is
            interrupted at its next ``await`` instead.
    """

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state: RequestCancellationState | None = None

    async def __aenter__(self) -> None:
        state = current_request_state()
        if state is not None:
            state._enter_shield()
        self._state = state

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        state, self._state = self._state, None
        if state is None or not state._leave_shield():
            return
        if exc_type is None:
            reason = state.token.reason or "cancelled"
            raise OperationCancelled(reason, state.token)
        if state.interrupt is not None:
            state.interrupt()
