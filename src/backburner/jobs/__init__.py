"""Durable background jobs: the client API, retries and the server.

See ``docs/jobs.md`` for the guide and ``docs/guarantees.md`` for what
the engine promises (at-least-once delivery) and what it does not.
"""

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
from backburner.jobs.mutex import Mutex, mutex
from backburner.jobs.progress import Progress
from backburner.jobs.recurring import (
    MissedRunPolicy,
    RecurringJob,
    RecurringJobNotFoundError,
    RecurringJobs,
    RecurringStatus,
    SyncRecurringJobs,
)
from backburner.jobs.retry import DEFAULT_RETRY, RetryPolicy, retry
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
    "RetryPolicy",
    "Server",
    "ServerTuning",
    "SyncClient",
    "SyncRecurringJobs",
    "UniqueKeyTakenError",
    "WaitTimeoutError",
    "current_job",
    "mutex",
    "retry",
    "run_server",
]
