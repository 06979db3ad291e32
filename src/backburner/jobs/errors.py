"""Errors raised by the job engine.

::

    JobError
    ├── JobArgumentError      an argument cannot be stored losslessly
    ├── JobFunctionError      a job function cannot be referenced or found
    ├── JobNotFoundError      no job has that id
    ├── InvalidStateChangeError
    │                         the job is not in a state the change allows
    ├── JobResultError        the job has no result to give
    │   ├── JobNotFinishedError   not yet: it has still to run or end
    │   ├── JobFailedError        it failed for good
    │   ├── JobDeletedError       it was deleted
    │   └── ResultNotKeptError    it succeeded, but its result was dropped
    └── WaitTimeoutError      (also a TimeoutError) waiting ran out of time

Storage failures surface as
:class:`~backburner.storage.StorageError` and its subclasses.

Each error pickles to an equal one (same message, same attributes), so
a process pool or ``multiprocessing`` can hand it back to its parent.
"""

from __future__ import annotations

from collections.abc import Iterable

from backburner._picklable import PicklableException
from backburner.storage.base import JobId, JobState


class JobError(PicklableException, Exception):
    """Base class of the job engine's own errors."""


class JobArgumentError(JobError, ValueError):
    """Raised at enqueue when an argument cannot round-trip losslessly.

    Nothing is written when it is raised.

    Attributes:
        argument: the argument's name (``"args[0]"`` for a positional one,
            the keyword otherwise), followed by the path inside it.
    """

    def __init__(self, argument: str, detail: str) -> None:
        super().__init__(f"argument {argument}: {detail}")
        self.argument = argument


class JobFunctionError(JobError, ValueError):
    """Raised when a callable cannot be stored as ``module:qualname``.

    At enqueue: lambdas, local functions, bound methods of instances,
    functions of ``__main__`` and anything that does not import back to
    the same object. When a job runs: the reference no longer imports.
    """


class JobNotFoundError(JobError, LookupError):
    """Raised when an operation names a job id that does not exist."""

    def __init__(self, job_id: JobId) -> None:
        super().__init__(f"job {job_id} does not exist")
        self.job_id = job_id


class InvalidStateChangeError(JobError):
    """Raised when a job is not in a state the requested change allows.

    The job is left exactly as it was.

    Attributes:
        job_id: the job.
        state: the state the job was found in.
        target: the state the change wanted.
    """

    def __init__(
        self,
        job_id: JobId,
        state: JobState,
        target: JobState,
        allowed: Iterable[JobState],
    ) -> None:
        names = ", ".join(sorted(s.value for s in allowed))
        super().__init__(
            f"job {job_id} is {state.value}: cannot move it to "
            f"{target.value} (allowed from: {names})"
        )
        self.job_id = job_id
        self.state = state
        self.target = target


class JobResultError(JobError):
    """Raised when a job has no result to give, by
    :meth:`~backburner.jobs.Job.result` and
    :meth:`~backburner.jobs.Client.wait`.

    Attributes:
        job_id: the job.
        state: the state the job was found in.
        reason: the reason of that state.
        exception_type: the qualified name of the exception that ended
            the job's last attempt, when it raised one.
        message: that exception's message.
    """

    _TEMPLATE = "job {id} is {state}: {reason}"

    def __init__(
        self,
        job_id: JobId,
        state: JobState,
        reason: str,
        exception_type: str | None = None,
        message: str | None = None,
    ) -> None:
        super().__init__(
            self._TEMPLATE.format(id=job_id, state=state.value, reason=reason)
        )
        self.job_id = job_id
        self.state = state
        self.reason = reason
        self.exception_type = exception_type
        self.message = message


class JobNotFinishedError(JobResultError):
    """Raised by :meth:`~backburner.jobs.Job.result` while the job is
    enqueued, scheduled, awaiting or processing."""

    _TEMPLATE = "job {id} has not finished: it is {state} ({reason})"


class JobFailedError(JobResultError):
    """Raised when the job failed for good: its attempts ran out, or its
    error is never retried, or it could not even start."""

    _TEMPLATE = "job {id} failed: {reason}"


class JobDeletedError(JobResultError):
    """Raised when the job was deleted (by someone, or by its retry
    policy once attempts ran out: then ``exception_type`` is set)."""

    _TEMPLATE = "job {id} was deleted: {reason}"


class ResultNotKeptError(JobResultError):
    """Raised when the job succeeded but its return value could not be
    kept (not serialisable, or too large); ``reason`` says why."""

    _TEMPLATE = "job {id} succeeded but its result was not kept: {reason}"


class WaitTimeoutError(JobError, TimeoutError):
    """Raised by :meth:`~backburner.jobs.Client.wait` when the job did not
    finish in time. The job is left as it was.

    Attributes:
        job_id: the job.
        state: the state the job was last seen in.
        timeout: the seconds waited.
    """

    def __init__(self, job_id: JobId, state: JobState, timeout: float) -> None:
        super().__init__(
            f"job {job_id} is still {state.value} after {timeout:g} s"
        )
        self.job_id = job_id
        self.state = state
        self.timeout = timeout
