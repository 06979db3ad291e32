"""What a running job knows about itself: :class:`JobContext`.

A job function gets its context the way it gets its cancellation token:
by declaring a parameter annotated ``JobContext``. The server passes the
running job's context there, whatever the caller stored::

    async def export(report_id: int, context: JobContext) -> None:
        for done, part in enumerate(parts, 1):
            ...
            context.report_progress(done / len(parts), f"part {done}")

Code deeper down reaches the same object through :func:`current_job`,
which works in ``async def`` jobs and in synchronous jobs on their
thread alike.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable
from typing import Any, Protocol

from backburner.cancellation import CancellationToken
from backburner.jobs.progress import Progress, check_progress
from backburner.storage.base import JobId

__all__ = ["JobContext", "current_job"]


class _Reporter(Protocol):
    def report(self, job_id: JobId, progress: Progress) -> None: ...


class JobContext:
    """The running job: its id, attempt, token, and progress reporting.

    Built by the server for each execution; a job never builds one.

    Attributes:
        job_id: the job's id.
        function: the job function's ``module:qualname``.
        queue: the queue the job was fetched from.
        attempt: which attempt this is, from 1.
        token: the job's cancellation token (the one a token parameter
            gets).
    """

    __slots__ = (
        "_latest",
        "_reporter",
        "attempt",
        "function",
        "job_id",
        "queue",
        "token",
    )

    def __init__(
        self,
        job_id: JobId,
        function: str,
        queue: str,
        attempt: int,
        token: CancellationToken,
        reporter: _Reporter | None = None,
    ) -> None:
        self.job_id = job_id
        self.function = function
        self.queue = queue
        self.attempt = attempt
        self.token = token
        self._reporter = reporter
        self._latest: Progress | None = None

    def report_progress(self, fraction: float, message: str = "") -> None:
        """Report how far the job got; cheap enough to call in a loop.

        The value is kept in memory and written by the server at most
        every half second (see :mod:`backburner.jobs.progress`).

        Raises:
            ValueError: ``fraction`` is not a number from 0 to 1.
            TypeError: ``message`` is not a string.
        """
        progress = check_progress(fraction, message)
        self._latest = progress
        if self._reporter is not None:
            self._reporter.report(self.job_id, progress)

    @property
    def progress(self) -> Progress | None:
        """The last progress this execution reported, if any."""
        return self._latest

    def __repr__(self) -> str:
        return (
            f"JobContext(job_id={self.job_id}, function={self.function!r},"
            f" attempt={self.attempt})"
        )


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "backburner_current_job", default=None
)


def current_job() -> JobContext | None:
    """The context of the job running here, or ``None`` outside a job."""
    return _current.get()


def set_current(context: JobContext) -> contextvars.Token[JobContext | None]:
    """Make ``context`` the current job (the worker calls this)."""
    return _current.set(context)


def reset_current(token: contextvars.Token[JobContext | None]) -> None:
    """Undo :func:`set_current`."""
    _current.reset(token)


def context_parameters(target: Callable[..., Any]) -> tuple[str, ...]:
    """Names of ``target``'s parameters annotated ``JobContext``."""
    # A runner method arrives bound to a new instance each time: cache
    # on its function, so that no instance is kept alive by the cache.
    return _context_parameters(getattr(target, "__func__", target))


@functools.lru_cache(maxsize=1024)
def _context_parameters(target: Callable[..., Any]) -> tuple[str, ...]:
    try:
        signature = inspect.signature(target, eval_str=True)
    except (NameError, TypeError, ValueError):
        try:
            signature = inspect.signature(target)
        except (TypeError, ValueError):
            return ()
    return tuple(
        name
        for name, parameter in signature.parameters.items()
        if parameter.annotation is JobContext
        or parameter.annotation == "JobContext"
    )
