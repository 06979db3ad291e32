"""What the middleware attaches to each HTTP request, and how to find it.

:class:`~backburner.web.CancellationMiddleware` creates one
:class:`RequestCancellationState` per HTTP request and stores it in the
ASGI scope under :data:`SCOPE_KEY` (its token also goes to
``scope["state"]["cancellation_token"]``, so Starlette code can read
``request.state.cancellation_token``). Code further down finds it with
:func:`request_cancellation_token` or, without a request object at hand,
:func:`current_request_token`.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from backburner.cancellation import (
    CancellationToken,
    CancellationTokenSource,
)

SCOPE_KEY = "backburner.cancellation"
"""Key of the :class:`RequestCancellationState` in the ASGI scope."""

STATE_TOKEN_KEY = "cancellation_token"
"""Key of the request's token in ``scope["state"]``."""

CLIENT_CLOSED_REQUEST = 499
"""Status recorded for a request whose client left before the response."""

_KEEP_RUNNING_ATTRIBUTE = "__backburner_keep_running__"

F = TypeVar("F", bound=Callable[..., Any])


class MiddlewareMissingError(RuntimeError):
    """Raised when a request's token is asked for, but no
    :class:`~backburner.web.CancellationMiddleware` wraps the app."""


@dataclass(frozen=True, slots=True)
class CancelledRequest:
    """What is known about a request whose client left prematurely.

    Passed to the middleware's ``on_request_cancelled`` hook and kept in
    :attr:`RequestCancellationState.cancelled`.

    Attributes:
        method: the HTTP method.
        path: the request path, without the query string.
        duration: seconds from the request's start to its end.
        reason: the token's reason (client disconnected).
        response_started: whether the response status had been sent.
        interrupted: whether the handler was interrupted (False when it
            opted out or was shielded until it finished).
        status: 499, the "client closed request" status for metrics.
    """

    method: str
    path: str
    duration: float
    reason: str
    response_started: bool
    interrupted: bool
    status: int = CLIENT_CLOSED_REQUEST


class RequestCancellationState:
    """The cancellation side of one HTTP request.

    Attributes:
        token: fires when the client leaves before the final response
            body was sent.
        started_at: :func:`time.perf_counter` value at the request start.
        cancelled: filled in when the request ends after its client left
            prematurely; None otherwise.
    """

    __slots__ = (
        "_interrupt_pending",
        "_keep_running",
        "_shield_depth",
        "_source",
        "cancelled",
        "interrupt",
        "started_at",
        "token",
    )

    def __init__(self, source: CancellationTokenSource) -> None:
        self._source = source
        self.token: CancellationToken = source.token
        self.started_at = time.perf_counter()
        self.cancelled: CancelledRequest | None = None
        self._keep_running = False
        self._shield_depth = 0
        self._interrupt_pending = False
        # Set by the middleware once the client has left: interrupts the
        # task running the app (a shielded block calls it at its end).
        self.interrupt: Callable[[], None] | None = None

    @property
    def status(self) -> int | None:
        """499 once the request is known to be cancelled, else None."""
        return None if self.cancelled is None else self.cancelled.status

    @property
    def keeps_running(self) -> bool:
        """Whether :meth:`keep_running` was called for this request."""
        return self._keep_running

    def keep_running(self) -> None:
        """Let the handler finish even if the client leaves.

        The token still fires; only the interruption of the handler is
        turned off. Has no effect once the handler has been interrupted.
        """
        self._keep_running = True

    @property
    def is_shielded(self) -> bool:
        """Whether a :func:`~backburner.web.shielded` block is running."""
        return self._shield_depth > 0

    def _enter_shield(self) -> None:
        self._shield_depth += 1

    def _leave_shield(self) -> bool:
        """Leave one shield level; True if an interrupt was held back."""
        self._shield_depth -= 1
        if self._shield_depth > 0 or not self._interrupt_pending:
            return False
        self._interrupt_pending = False
        return True

    def _hold_interrupt(self) -> None:
        self._interrupt_pending = True

    def __repr__(self) -> str:
        return f"<RequestCancellationState token={self.token!r}>"


class _HasScope(Protocol):
    @property
    def scope(self) -> Mapping[str, Any]: ...


_current: contextvars.ContextVar[RequestCancellationState | None] = (
    contextvars.ContextVar("backburner_request", default=None)
)


def _scope_of(request_or_scope: _HasScope | Mapping[str, Any]) -> Any:
    if isinstance(request_or_scope, Mapping):
        return request_or_scope
    return request_or_scope.scope


def find_request_cancellation_state(
    request_or_scope: _HasScope | Mapping[str, Any],
) -> RequestCancellationState | None:
    """The request's state, or None when no middleware attached one."""
    state = _scope_of(request_or_scope).get(SCOPE_KEY)
    if isinstance(state, RequestCancellationState):
        return state
    return None


def request_cancellation_state(
    request_or_scope: _HasScope | Mapping[str, Any],
) -> RequestCancellationState:
    """The request's :class:`RequestCancellationState`.

    Accepts an ASGI scope or anything with a ``scope`` attribute (a
    Starlette ``Request``).

    Raises:
        MiddlewareMissingError: no CancellationMiddleware wraps the app.
    """
    state = find_request_cancellation_state(request_or_scope)
    if state is None:
        raise MiddlewareMissingError(
            "this request has no cancellation token: add "
            "backburner.web.CancellationMiddleware as the outermost "
            "middleware of the application"
        )
    return state


def request_cancellation_token(
    request_or_scope: _HasScope | Mapping[str, Any],
) -> CancellationToken:
    """The token that fires when the request's client leaves early.

    Accepts an ASGI scope or anything with a ``scope`` attribute (a
    Starlette ``Request``).

    Raises:
        MiddlewareMissingError: no CancellationMiddleware wraps the app.
    """
    return request_cancellation_state(request_or_scope).token


def current_request_state() -> RequestCancellationState | None:
    """The state of the request being handled in this context, if any.

    Set by the middleware for the app call; context variables follow
    into child tasks and into Starlette's thread pool.
    """
    return _current.get()


def current_request_token() -> CancellationToken:
    """The current request's token, or :attr:`CancellationToken.NONE`.

    Outside a request (a script, a job) there is nobody to disconnect,
    so the token that never fires is the honest answer.
    """
    state = _current.get()
    return CancellationToken.NONE if state is None else state.token


def keep_running(endpoint: F) -> F:
    """Mark an endpoint so a client disconnect does not interrupt it.

    The request's token still fires, so the endpoint can look at it;
    it is just not cancelled at its next ``await``. Apply it below the
    route decorator::

        @app.post("/reports")
        @keep_running
        async def create_report(token: RequestCancellation) -> ...: ...

    The middleware reads the mark from ``scope["endpoint"]``, which
    Starlette's router sets when it matches the route.
    """
    setattr(endpoint, _KEEP_RUNNING_ATTRIBUTE, True)
    return endpoint


def endpoint_keeps_running(scope: Mapping[str, Any]) -> bool:
    """Whether the routed endpoint in ``scope`` is marked
    :func:`keep_running`."""
    endpoint = scope.get("endpoint")
    return bool(getattr(endpoint, _KEEP_RUNNING_ATTRIBUTE, False))
