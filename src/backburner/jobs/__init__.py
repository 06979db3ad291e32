"""Durable background jobs: the client API, retries and the server.

See ``docs/jobs.md`` for the guide and ``docs/guarantees.md`` for what
the engine promises (at-least-once delivery) and what it does not.

The names here are imported on first use (:pep:`562`): a worker imports
this package with the server's modules, and would otherwise pay at every
start for the client, the sync client and the recurring jobs API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backburner._lazy import resolve as _resolve

# ``mutex`` and ``retry`` are also the names of submodules: imported now,
# so that the package's attribute is the decorator, not the submodule,
# whichever is imported first.
from backburner.jobs.mutex import Mutex, mutex
from backburner.jobs.retry import (
    DEFAULT_RETRY,
    RetryAfter,
    RetryPolicy,
    retry,
)

if TYPE_CHECKING:
    from backburner.jobs.activator import Activator
    from backburner.jobs.client import (
        Call,
        Client,
        Counts,
        Job,
        JobOptions,
        JobPage,
    )
    from backburner.jobs.context import JobContext, current_job
    from backburner.jobs.continuations import ContinuationLinks, ContinueOn
    from backburner.jobs.cron import CronSchedule, InvalidCronError
    from backburner.jobs.errors import (
        InvalidStateChangeError,
        JobArgumentError,
        JobDeletedError,
        JobError,
        JobFailedError,
        JobFunctionError,
        JobNotFinishedError,
        JobNotFoundError,
        JobResultError,
        ResultNotKeptError,
        WaitTimeoutError,
    )
    from backburner.jobs.occurrences import MissedRunPolicy
    from backburner.jobs.progress import Progress
    from backburner.jobs.recurring import (
        RecurringJob,
        RecurringJobNotFoundError,
        RecurringJobs,
        RecurringStatus,
        SyncRecurringJobs,
    )
    from backburner.jobs.results import keep_result
    from backburner.jobs.server import Server, ServerTuning, run_server
    from backburner.jobs.sync import SyncClient
    from backburner.jobs.uniqueness import UniqueKeyTakenError
    from backburner.storage.base import HistoryEntry, JobId, JobState

__all__ = [
    "DEFAULT_RETRY",
    "Activator",
    "Call",
    "Client",
    "ContinuationLinks",
    "ContinueOn",
    "Counts",
    "CronSchedule",
    "HistoryEntry",
    "InvalidCronError",
    "InvalidStateChangeError",
    "Job",
    "JobArgumentError",
    "JobContext",
    "JobDeletedError",
    "JobError",
    "JobFailedError",
    "JobFunctionError",
    "JobId",
    "JobNotFinishedError",
    "JobNotFoundError",
    "JobOptions",
    "JobPage",
    "JobResultError",
    "JobState",
    "MissedRunPolicy",
    "Mutex",
    "Progress",
    "RecurringJob",
    "RecurringJobNotFoundError",
    "RecurringJobs",
    "RecurringStatus",
    "ResultNotKeptError",
    "RetryAfter",
    "RetryPolicy",
    "Server",
    "ServerTuning",
    "SyncClient",
    "SyncRecurringJobs",
    "UniqueKeyTakenError",
    "WaitTimeoutError",
    "current_job",
    "keep_result",
    "mutex",
    "retry",
    "run_server",
]

# Where each name not imported above lives.
_HOMES = {
    "Activator": "backburner.jobs.activator",
    "Call": "backburner.jobs.client",
    "Client": "backburner.jobs.client",
    "ContinuationLinks": "backburner.jobs.continuations",
    "ContinueOn": "backburner.jobs.continuations",
    "Counts": "backburner.jobs.client",
    "CronSchedule": "backburner.jobs.cron",
    "HistoryEntry": "backburner.storage.base",
    "InvalidCronError": "backburner.jobs.cron",
    "InvalidStateChangeError": "backburner.jobs.errors",
    "Job": "backburner.jobs.client",
    "JobArgumentError": "backburner.jobs.errors",
    "JobContext": "backburner.jobs.context",
    "JobDeletedError": "backburner.jobs.errors",
    "JobError": "backburner.jobs.errors",
    "JobFailedError": "backburner.jobs.errors",
    "JobFunctionError": "backburner.jobs.errors",
    "JobId": "backburner.storage.base",
    "JobNotFinishedError": "backburner.jobs.errors",
    "JobNotFoundError": "backburner.jobs.errors",
    "JobOptions": "backburner.jobs.client",
    "JobPage": "backburner.jobs.client",
    "JobResultError": "backburner.jobs.errors",
    "JobState": "backburner.storage.base",
    "MissedRunPolicy": "backburner.jobs.occurrences",
    "Progress": "backburner.jobs.progress",
    "RecurringJob": "backburner.jobs.recurring",
    "RecurringJobNotFoundError": "backburner.jobs.recurring",
    "RecurringJobs": "backburner.jobs.recurring",
    "RecurringStatus": "backburner.jobs.recurring",
    "ResultNotKeptError": "backburner.jobs.errors",
    "Server": "backburner.jobs.server",
    "ServerTuning": "backburner.jobs.server",
    "SyncClient": "backburner.jobs.sync",
    "SyncRecurringJobs": "backburner.jobs.recurring",
    "UniqueKeyTakenError": "backburner.jobs.uniqueness",
    "WaitTimeoutError": "backburner.jobs.errors",
    "current_job": "backburner.jobs.context",
    "keep_result": "backburner.jobs.results",
    "run_server": "backburner.jobs.server",
}


# Hidden from type checkers, which would otherwise type every misspelt
# name as Any and report none.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        return _resolve(globals(), __name__, name, _HOMES)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
