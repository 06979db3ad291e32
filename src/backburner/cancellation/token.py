"""Cancellation tokens and the sources that own them.

A :class:`CancellationTokenSource` owns one :class:`CancellationToken`.
Code that may be asked to stop receives the token: it can poll it, wait
for it (from a coroutine or from a thread), or register callbacks. Only
the source can cancel, once; later calls are harmless no-ops and the
first reason wins.

Everything here is thread-safe. A callback registered from a running event
loop is called on that loop, whichever thread cancels; other callbacks are
called in the cancelling thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import ClassVar

from backburner.cancellation.reasons import (
    CancellationReason,
    OperationCancelled,
)

_log = logging.getLogger("backburner.cancellation")

Callback = Callable[[], object]


_Registered = dict[int, tuple[Callback, asyncio.AbstractEventLoop | None]]


class _State:
    """What a source and its token share; guarded by ``lock``.

    One is made per token source (one per web request, one per job), so
    it is kept small: the callbacks' dict and the thread event are made
    only when first needed, and callback ids are a plain counter.
    """

    __slots__ = ("callbacks", "event", "lock", "next_id", "reason")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reason: str | None = None
        # None until a callback is registered; None again once cancelled.
        self.callbacks: _Registered | None = None
        self.next_id = 0
        # Created only when a thread blocks on the token: most tokens
        # (one per web request) are never waited on that way.
        self.event: threading.Event | None = None


def _invoke(callback: Callback) -> None:
    try:
        callback()
    except Exception:  # noqa: BLE001 - reported below, never lost
        # A faulty callback must not stop the others or the canceller; it
        # is a bug in the caller's code, so it is reported loudly.
        _log.error(
            "cancellation callback failed",
            exc_info=True,
            extra={"event": "cancellation.callback_failed"},
        )


def _dispatch(
    callback: Callback, loop: asyncio.AbstractEventLoop | None
) -> None:
    if loop is None:
        _invoke(callback)
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        _invoke(callback)
        return
    try:
        loop.call_soon_threadsafe(_invoke, callback)
    except RuntimeError:
        # The loop is closed: nobody is left to observe the callback on
        # it, but its side effects (closing a connection) may still
        # matter, so it runs here.
        _invoke(callback)


class CallbackRegistration:
    """A callback registered on a token; unregister it when done.

    Usable as a context manager: the callback is unregistered on exit.
    """

    __slots__ = ("_id", "_state")

    def __init__(self, state: _State | None, callback_id: int) -> None:
        self._state = state
        self._id = callback_id

    def unregister(self) -> bool:
        """Remove the callback.

        Returns:
            True if it was removed before it ran, False if it already ran,
            was already removed, or the token can never be cancelled.
        """
        state = self._state
        if state is None:
            return False
        self._state = None
        with state.lock:
            callbacks = state.callbacks
            if callbacks is None:
                return False
            return callbacks.pop(self._id, None) is not None

    def __enter__(self) -> CallbackRegistration:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.unregister()


class CancellationToken:
    """A read-only view of "has cancellation been requested, and why".

    Obtain one from :attr:`CancellationTokenSource.token`, or use
    :attr:`CancellationToken.NONE` where no cancellation can happen.
    """

    NONE: ClassVar[CancellationToken]

    __slots__ = ("_state",)

    def __init__(self, state: _State | None) -> None:
        self._state = state

    @property
    def is_cancellation_requested(self) -> bool:
        """Whether the token has fired."""
        state = self._state
        return state is not None and state.reason is not None

    @property
    def reason(self) -> str | None:
        """Why the token fired, or None while it has not."""
        state = self._state
        return None if state is None else state.reason

    @property
    def can_be_cancelled(self) -> bool:
        """False for :attr:`NONE`, which never fires."""
        return self._state is not None

    def raise_if_cancellation_requested(self) -> None:
        """Raise if the token has fired.

        Raises:
            OperationCancelled: the token has fired; carries its reason.
        """
        reason = self.reason
        if reason is not None:
            raise OperationCancelled(reason, self)

    def register(self, callback: Callback) -> CallbackRegistration:
        """Call ``callback`` once, when the token fires.

        If the token has already fired the callback runs at once, in the
        caller. Registered from a running event loop, the callback later
        runs on that loop. A callback that raises is logged and does not
        prevent the others from running.
        """
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        return self._register(callback, loop)

    def _register(
        self, callback: Callback, loop: asyncio.AbstractEventLoop | None
    ) -> CallbackRegistration:
        state = self._state
        if state is None:
            return CallbackRegistration(None, -1)
        with state.lock:
            if state.reason is None:
                callback_id = state.next_id
                state.next_id = callback_id + 1
                callbacks = state.callbacks
                if callbacks is None:
                    callbacks = state.callbacks = {}
                callbacks[callback_id] = (callback, loop)
                return CallbackRegistration(state, callback_id)
        _invoke(callback)
        return CallbackRegistration(None, -1)

    async def wait(self) -> None:
        """Return once the token has fired (never, for :attr:`NONE`)."""
        if self.is_cancellation_requested:
            return
        loop = asyncio.get_running_loop()
        fired: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not fired.done():
                fired.set_result(None)

        with self._register(wake, loop):
            await fired

    def wait_blocking(self, timeout: float | None = None) -> bool:
        """Block the calling thread until the token fires.

        Meant for synchronous code running in a worker thread; do not call
        it from an event loop.

        Returns:
            True if the token fired within ``timeout`` seconds.
        """
        state = self._state
        if state is None:
            if timeout is not None:
                threading.Event().wait(timeout)
            return False
        with state.lock:
            if state.reason is not None:
                return True
            if state.event is None:
                state.event = threading.Event()
            event = state.event
        return event.wait(timeout)

    def __repr__(self) -> str:
        if not self.can_be_cancelled:
            return "<CancellationToken NONE>"
        reason = self.reason
        shown = "not cancelled" if reason is None else repr(reason)
        return f"<CancellationToken {shown}>"


CancellationToken.NONE = CancellationToken(None)


class CancellationTokenSource:
    """Owns a token and cancels it.

    Close a source when the work it guards is over: that stops its timer
    and detaches it from the tokens it is linked to, which otherwise keep
    a callback for it alive as long as they live.
    """

    __slots__ = ("_links", "_state", "_timer", "_token")

    def __init__(self) -> None:
        self._state = _State()
        self._token = CancellationToken(self._state)
        # Registrations on the tokens it follows (linked sources only).
        self._links: list[CallbackRegistration] | None = None
        self._timer: (
            threading.Timer
            | tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle]
            | None
        ) = None

    @classmethod
    def linked(cls, *tokens: CancellationToken) -> CancellationTokenSource:
        """A source that fires when any of ``tokens`` fires.

        It takes the reason of the token that fired first, and can also be
        cancelled on its own without affecting the others.
        """
        source = cls()
        for parent in tokens:
            if not parent.can_be_cancelled:
                continue

            def follow(parent: CancellationToken = parent) -> None:
                source.cancel(parent.reason or CancellationReason.REQUESTED)

            # Propagation is synchronous (no loop): once a parent reports
            # cancellation, so does the linked token.
            if source._links is None:
                source._links = []
            source._links.append(parent._register(follow, None))
            if source.is_cancellation_requested:
                break
        return source

    @property
    def token(self) -> CancellationToken:
        """The token this source controls."""
        return self._token

    @property
    def is_cancellation_requested(self) -> bool:
        """Whether :meth:`cancel` has happened."""
        return self._state.reason is not None

    def cancel(self, reason: str = CancellationReason.REQUESTED) -> bool:
        """Fire the token with ``reason`` and run its callbacks.

        Returns:
            True if this call cancelled the token, False if it had already
            been cancelled (the first reason is kept).
        """
        state = self._state
        with state.lock:
            if state.reason is not None:
                return False
            state.reason = str(reason)
            callbacks = state.callbacks
            state.callbacks = None
            event = state.event
        if event is not None:
            event.set()
        if callbacks:
            for callback, loop in callbacks.values():
                _dispatch(callback, loop)
        if self._timer is not None:
            self._stop_timer()
        return True

    def cancel_after(
        self, delay: float, reason: str = CancellationReason.TIMEOUT
    ) -> None:
        """Cancel with ``reason`` once ``delay`` seconds have passed.

        Calling it again replaces the earlier deadline. From a running
        event loop the deadline is a loop timer; elsewhere a daemon thread
        waits for it.

        Raises:
            ValueError: ``delay`` is negative.
        """
        if delay < 0:
            raise ValueError(f"delay must not be negative, got {delay}")
        if self.is_cancellation_requested:
            return
        self._stop_timer()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            timer = threading.Timer(delay, self.cancel, args=(reason,))
            timer.daemon = True
            self._timer = timer
            timer.start()
        else:
            self._timer = (loop, loop.call_later(delay, self.cancel, reason))

    def close(self) -> None:
        """Detach from linked tokens and stop any pending deadline.

        The token keeps its current state; closing is not cancelling.
        """
        links, self._links = self._links, None
        if links:
            for link in links:
                link.unregister()
        if self._timer is not None:
            self._stop_timer()

    def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is None:
            return
        if isinstance(timer, threading.Timer):
            timer.cancel()
            return
        loop, handle = timer
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            handle.cancel()
        elif not loop.is_closed():
            # Timer handles belong to their loop's thread.
            loop.call_soon_threadsafe(handle.cancel)

    def __enter__(self) -> CancellationTokenSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<CancellationTokenSource token={self._token!r}>"
