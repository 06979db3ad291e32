"""Why an operation was cancelled, and the exception that says so."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from backburner._picklable import PicklableException

if TYPE_CHECKING:
    from backburner.cancellation.token import CancellationToken


class CancellationReason(StrEnum):
    """The reasons backburner itself cancels with.

    Any string is a valid reason; these are the ones the web layer and the
    job server use, so that callers can compare against them.
    """

    REQUESTED = "cancellation requested"
    CLIENT_DISCONNECTED = "client disconnected"
    SHUTDOWN = "shutdown"
    JOB_DELETED = "job deleted"
    TIMEOUT = "timeout"
    SUPERSEDED = "superseded"


class OperationCancelled(PicklableException):
    """Raised when work stops because its cancellation token fired.

    It derives from :class:`BaseException`, like
    :class:`asyncio.CancelledError`, so that a plain ``except Exception:``
    in application code cannot swallow a cancellation by accident.

    Attributes:
        reason: why the token fired (see :class:`CancellationReason`).
        token: the token that fired, when known. A pickled copy (one a
            process pool hands back) has none: a token belongs to the
            process that made it.
    """

    def __init__(
        self, reason: str, token: CancellationToken | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.token = token

    def __str__(self) -> str:
        return f"operation cancelled: {self.reason}"

    def __reduce__(self) -> tuple[Any, ...]:
        rebuild, (cls, args, attributes) = super().__reduce__()
        return rebuild, (cls, args, {**attributes, "token": None})
