"""Stop one running database statement when a token fires.

A driver's "stop the running statement" call (SQLite's ``interrupt()``,
PostgreSQL's cancel request) acts on whatever runs at that moment. Sent
too early, before the statement has reached the database, it is lost and
the statement runs to its end. So the watch sends it when the token
fires and again at growing intervals, until the statement is over; the
lock makes sure that no call goes out once :meth:`StatementWatch.finish`
has returned, when the connection may run the next statement.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from backburner.cancellation import CancellationToken

_log = logging.getLogger("backburner.web")

FIRST_RETRY = 0.02
LAST_RETRY = 1.0
# About half a minute of retries; a statement still running by then is
# beyond what another call can do.
MAX_ATTEMPTS = 40


class StatementWatch:
    """Calls ``stop`` while the statement runs and the token has fired.

    With ``loop`` the calls are made on that loop (``stop`` must not
    block); without, in a timer thread (``stop`` may block). The first
    call comes ``first_delay`` seconds after the token fired.
    """

    __slots__ = (
        "_attempts",
        "_delay",
        "_lock",
        "_loop",
        "_registration",
        "_running",
        "_stop",
        "fired",
    )

    def __init__(
        self,
        token: CancellationToken,
        stop: Callable[[], object],
        loop: asyncio.AbstractEventLoop | None,
        first_delay: float = 0.0,
    ) -> None:
        self._lock = threading.Lock()
        self._running = True
        self._stop = stop
        self._loop = loop
        self._delay = first_delay
        self._attempts = 0
        self.fired = False
        # Registered from a loop, the callback runs on it; from a thread,
        # in the cancelling thread, where _schedule hands over to a timer
        # at once so that a blocking ``stop`` never holds the canceller.
        self._registration = token.register(self._on_token)

    def finish(self) -> None:
        """The statement is over: make no more calls."""
        with self._lock:
            self._running = False
        self._registration.unregister()

    def _on_token(self) -> None:
        self.fired = True
        self._schedule()

    def _schedule(self) -> None:
        if self._loop is not None:
            self._loop.call_later(self._delay, self._attempt)
        else:
            timer = threading.Timer(self._delay, self._attempt)
            timer.daemon = True
            timer.start()

    def _attempt(self) -> None:
        with self._lock:
            if not self._running or self._attempts >= MAX_ATTEMPTS:
                return
            self._attempts += 1
            try:
                self._stop()
            except Exception:  # noqa: BLE001 - retried, then given up
                # The statement may have ended meanwhile, or the
                # connection died: the next attempt, or finish(), tells.
                _log.debug("stopping a statement failed", exc_info=True)
        self._delay = min(max(self._delay * 4, FIRST_RETRY), LAST_RETRY)
        self._schedule()
