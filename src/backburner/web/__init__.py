"""Request cancellation for ASGI web applications.

Wrap the application in :class:`CancellationMiddleware` (outermost) and
every HTTP request gets a cancellation token that fires when its client
leaves before the response is complete; by default the handler is
interrupted too. Find the token with :func:`request_cancellation_token`
or :func:`current_request_token`; opt a route out with
:func:`keep_running`; let a commit finish with :func:`shielded`.

FastAPI users declare the token as a parameter, see
:mod:`backburner.web.fastapi`; SQLAlchemy users tie sessions to it, see
:mod:`backburner.web.sqlalchemy`. Neither is imported here, so the core
needs no framework.
"""

from backburner.web.middleware import (
    CancellationMiddleware,
    CancelledRequestHook,
)
from backburner.web.request import (
    CLIENT_CLOSED_REQUEST,
    SCOPE_KEY,
    CancelledRequest,
    MiddlewareMissingError,
    RequestCancellationState,
    current_request_state,
    current_request_token,
    keep_running,
    request_cancellation_state,
    request_cancellation_token,
)
from backburner.web.shield import shielded

__all__ = [
    "CLIENT_CLOSED_REQUEST",
    "SCOPE_KEY",
    "CancellationMiddleware",
    "CancelledRequest",
    "CancelledRequestHook",
    "MiddlewareMissingError",
    "RequestCancellationState",
    "current_request_state",
    "current_request_token",
    "keep_running",
    "request_cancellation_state",
    "request_cancellation_token",
    "shielded",
]
