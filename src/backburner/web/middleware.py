"""Pure ASGI middleware: a cancellation token for every HTTP request.

:class:`CancellationMiddleware` gives each HTTP request a
:class:`~backburner.cancellation.CancellationTokenSource` whose token
fires with :attr:`~backburner.cancellation.CancellationReason.
CLIENT_DISCONNECTED` when the client leaves before the final response
body was sent, and by default interrupts the handler at the ``await`` it
is blocked on.

To see a disconnect while the app is busy elsewhere, the middleware owns
``receive`` and hands the app every message in order and untouched. While
the app waits in its own ``receive`` the call goes straight to the
server; once the app suspends anywhere else, a watcher task reads for it,
ahead by at most ``max_body_buffer`` bytes of request body, so the
server's flow control on uploads still works. The price is that a client
leaving in the middle of an upload that the app is not reading is
noticed only once the app reads on, or the server notices the closed
socket by itself. The middleware takes the app's first step itself: a
request that never suspends (a hello-world route) gets no watcher at
all. See :mod:`backburner.web._receive_watch`.

A disconnect reported after the final response body was handed to the
server is not premature and is ignored: servers report one after every
response (keep-alive reuse included), and Starlette's background tasks
run after it.

Known limits: the interruption is an asyncio task cancellation, so it
lands only at an ``await``; CPU-bound code and blocking calls in the
event loop thread run to their end. Sync code in a thread must look at
the token itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
import types
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from backburner.cancellation import (
    CancellationReason,
    CancellationTokenSource,
    OperationCancelled,
)
from backburner.web._asgi import ASGIApp, Message, Receive, Scope, Send
from backburner.web._receive_watch import ReceiveWatch
from backburner.web.request import (
    SCOPE_KEY,
    STATE_TOKEN_KEY,
    CancelledRequest,
    RequestCancellationState,
    endpoint_keeps_running,
)
from backburner.web.request import _current as _current_request

_log = logging.getLogger("backburner.web")


DEFAULT_MAX_BODY_BUFFER = 64 * 1024

CancelledRequestHook = Callable[[CancelledRequest], object]


class CancellationMiddleware:
    """Give every HTTP request a token that fires on a premature disconnect.

    Install it outermost, so that it sees the server's own ``receive``
    and ``send``::

        app = CancellationMiddleware(app)
        # or, with Starlette/FastAPI: app.add_middleware(...) called last

    Lifespan and websocket scopes pass through untouched.

    Args:
        app: the ASGI application to wrap.
        cancel_handler: interrupt the handler when its client leaves
            (the default). With False the token still fires and the
            handler decides for itself.
        log_level: level of the ``request.cancelled`` log line (DEBUG by
            default; INFO makes cancelled requests visible in production
            logs).
        on_request_cancelled: called with a :class:`CancelledRequest`
            when a request ends after its client left prematurely, e.g.
            to count status 499 in metrics. An exception it raises goes
            to the server like any error of the app.
        max_body_buffer: request body bytes read ahead of the app.

    Raises:
        ValueError: ``max_body_buffer`` is not positive.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cancel_handler: bool = True,
        log_level: int = logging.DEBUG,
        on_request_cancelled: CancelledRequestHook | None = None,
        max_body_buffer: int = DEFAULT_MAX_BODY_BUFFER,
    ) -> None:
        if max_body_buffer <= 0:
            raise ValueError(
                f"max_body_buffer must be positive, got {max_body_buffer}"
            )
        self.app = app
        self.cancel_handler = cancel_handler
        self.log_level = log_level
        self.on_request_cancelled = on_request_cancelled
        self.max_body_buffer = max_body_buffer

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run the app for one connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _RequestCycle(self, scope, receive, send).run()

    def _report(self, scope: Scope, info: CancelledRequest) -> None:
        if _log.isEnabledFor(self.log_level):
            _log.log(
                self.log_level,
                "request cancelled: %s %s after %.1f ms (%s)",
                info.method,
                info.path,
                info.duration * 1000,
                info.reason,
                extra={
                    "event": "request.cancelled",
                    "method": info.method,
                    "path": info.path,
                    "duration_ms": round(info.duration * 1000, 3),
                    "status": info.status,
                    "reason": info.reason,
                },
            )
        if self.on_request_cancelled is not None:
            self.on_request_cancelled(info)


class _RequestCycle(ReceiveWatch):
    """One HTTP request going through the middleware.

    It is the request's :class:`ReceiveWatch` too: one object per
    request, and the watch tells it of a disconnect without a callback
    that would tie the two into a reference cycle.
    """

    __slots__ = (
        "_client_gone",
        "_expect_trailers",
        "_finished",
        "_interrupted",
        "_middleware",
        "_response_complete",
        "_response_started",
        "_scope",
        "_send",
        "_source",
        "_state",
        "_task",
    )

    def __init__(
        self,
        middleware: CancellationMiddleware,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        self._middleware = middleware
        self._source = CancellationTokenSource()
        self._state = RequestCancellationState(self._source)
        state = dict(scope.get("state") or {})
        state[STATE_TOKEN_KEY] = self._state.token
        # A copy: the server's scope object stays as the server made it,
        # and the router's in-place updates (scope["endpoint"]) land in
        # this copy, where the interrupt decision looks for them.
        self._scope: Scope = {**scope, "state": state, SCOPE_KEY: self._state}
        ReceiveWatch.__init__(self, receive, middleware.max_body_buffer)
        self._send = send
        # Only _on_disconnect cancels the source: a flag is cheaper to
        # read on every send than the token's state.
        self._client_gone = False

        self._response_started = False
        self._response_complete = False
        self._expect_trailers = False
        self._task: asyncio.Task[Any] | None = None
        self._interrupted = False
        self._finished = False

    async def run(self) -> None:
        current = _current_request.set(self._state)
        delivered = False
        try:
            app = self._middleware.app
            steps = app(self._scope, self.receive, self._send_out).__await__()
            try:
                first = steps.send(None)
            except StopIteration:
                # Done without ever suspending (a hello-world route):
                # nobody could disconnect in between, nothing to watch.
                pass
            else:
                self._suspended()
                await _resumed(steps, first)
        except BaseException as exc:
            # Nothing may await between the app's end and this flag:
            # the watcher must not cancel a task that has moved on.
            self._finished = True
            delivered = self._delivered(exc)
            if not self._absorb(exc):
                if self._client_gone:
                    self._report_cancelled(delivered)
                raise
        else:
            self._finished = True
            if self._interrupted:
                self._settle_interrupt()
        finally:
            _current_request.reset(current)
            self.close_watch()
            # Break the reference cycles (state and task back to this
            # object): freed by reference counting, the request leaves
            # nothing for the garbage collector, whose full runs over a
            # big app's heap cost more than the request itself.
            if self._client_gone:
                self._state.interrupt = None
            self._task = None
        if self._client_gone:
            self._report_cancelled(delivered)

    def _suspended(self) -> None:
        """The app's task waits for the first time: watch from now on."""
        self._task = asyncio.current_task()
        self.look()

    # -- the handler interruption ----------------------------------------

    def _on_disconnect(self) -> bool:
        if self._response_complete or self._finished:
            return False
        self._client_gone = True
        # From now on a shielded block may hold the interruption back
        # and ask for it when it ends.
        self._state.interrupt = self._interrupt
        if self._task is None:
            # The app has not suspended yet, so its own task is the one
            # that read the disconnect.
            self._task = asyncio.current_task()
        self._source.cancel(CancellationReason.CLIENT_DISCONNECTED)
        before = self._interrupted
        self._interrupt()
        return self._interrupted and not before

    def _interrupt(self) -> None:
        if self._finished or self._interrupted or self._task is None:
            return
        if not self._middleware.cancel_handler:
            return
        if self._state.keeps_running or endpoint_keeps_running(self._scope):
            return
        if self._state.is_shielded:
            self._state._hold_interrupt()
            return
        self._interrupted = True
        self._task.cancel(
            msg=f"request {CancellationReason.CLIENT_DISCONNECTED}"
        )

    def _settle_interrupt(self) -> bool:
        """Undo our own task cancellation; False if another one remains."""
        if not self._interrupted or self._task is None:
            return True
        return self._task.uncancel() == 0

    def _absorb(self, exc: BaseException) -> bool:
        """Whether the app's exception ends here, as a cancelled request."""
        only_ours = self._settle_interrupt()
        if not self._client_gone:
            return False
        if isinstance(exc, asyncio.CancelledError):
            # Our interruption, unless someone else (a server shutting
            # down) cancelled the task as well.
            return self._interrupted and only_ours
        if isinstance(exc, BaseExceptionGroup):
            fatal = exc.subgroup((KeyboardInterrupt, SystemExit))
            return fatal is None and only_ours
        # The client is gone: an error now has nobody to be shown to, and
        # is usually a consequence of the interruption (a driver wrapping
        # it, a send to a closed connection).
        return isinstance(exc, Exception | OperationCancelled) and only_ours

    def _delivered(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this request's cancellation (shield exit)."""
        return (
            isinstance(exc, OperationCancelled)
            and exc.token is self._state.token
        )

    def _report_cancelled(self, delivered: bool) -> None:
        token = self._state.token
        info = CancelledRequest(
            method=str(self._scope.get("method", "")),
            path=str(self._scope.get("path", "")),
            duration=time.perf_counter() - self._state.started_at,
            reason=token.reason or CancellationReason.CLIENT_DISCONNECTED,
            response_started=self._response_started,
            interrupted=self._interrupted or delivered,
        )
        self._state.cancelled = info
        self._middleware._report(self._scope, info)

    # -- send: watched for the end of the response -----------------------

    def _send_out(self, message: Message) -> Awaitable[None]:
        # A plain function, not a coroutine: the app awaits the server's
        # send itself, one frame less for every message.
        kind = message.get("type")
        if kind == "http.response.start":
            self._response_started = True
            self._expect_trailers = bool(message.get("trailers", False))
        elif kind == "http.response.body":
            if not message.get("more_body", False):
                self._response_complete = not self._expect_trailers
        elif kind == "http.response.trailers":
            if not message.get("more_trailers", False):
                self._response_complete = True
        elif kind == "http.response.pathsend":
            self._response_complete = True
        if self._response_complete:
            # A disconnect is no longer premature: nothing to watch for.
            self.stop_watching()
        if self._client_gone:
            # The client left before the response was complete: there is
            # nobody to send to, and servers differ in how they refuse.
            return _NOT_SENT
        return self._send(message)


class _NotSent:
    """What awaiting a dropped send gives: nothing, at once."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # a generator: awaitable, done at the first step


_NOT_SENT = _NotSent()


@types.coroutine
def _resumed(
    steps: Generator[Any, None, None], first: Any
) -> Generator[Any, None, None]:
    """Await the rest of ``steps``, whose first step yielded ``first``.

    The middleware takes the app's first step itself to learn whether it
    suspends at all; from then on the app runs as if awaited directly:
    what the task sends or throws in goes on to the app.
    """
    yielded = first
    while True:
        try:
            yield yielded
        except BaseException as exc:  # noqa: BLE001 - thrown on, into the app
            thrown = exc
        else:
            yield from steps
            return
        # Thrown in outside the except block, so that what the app raises
        # later is not chained to this exception.
        try:
            yielded = steps.throw(thrown)
        except StopIteration:
            return
        finally:
            del thrown
