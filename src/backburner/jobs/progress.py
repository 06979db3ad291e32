"""Progress reported by running jobs, coalesced and written in batches.

A job reports progress through its :class:`~backburner.jobs.context.
JobContext` (a fraction from 0 to 1 and a short message). Reporting is
an in-memory assignment: the server's :class:`ProgressFlusher` keeps the
latest value of each job and writes what changed every
``progress_interval`` seconds (0.5 by default), all jobs in one
transaction, so a job may report in a tight loop without slowing down.

Progress is stored as two job parameters, which is what the dashboard
and ``backburner jobs show`` read:

- ``progress``: percent, a number from 0 to 100;
- ``progress_message``: the message (at most 200 characters).

Known limit: a value reported less than ``progress_interval`` before
the job ends is written by the next flush, shortly after the outcome;
a value reported just before the server dies is lost with it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backburner.jobs.serializer import encode_value
from backburner.storage.base import JobId, Storage, StorageError

__all__ = [
    "MESSAGE_PARAMETER",
    "PROGRESS_PARAMETER",
    "Progress",
    "ProgressFlusher",
    "check_progress",
    "progress_from_parameters",
]

_log = logging.getLogger("backburner.server")

PROGRESS_PARAMETER = "progress"
"""The job parameter holding the progress in percent (0 to 100)."""
MESSAGE_PARAMETER = "progress_message"
"""The job parameter holding the progress message."""
MAX_MESSAGE = 200


@dataclass(frozen=True, slots=True)
class Progress:
    """The latest progress a job reported.

    Attributes:
        fraction: how much is done, from 0.0 to 1.0.
        message: what the job is doing ("" when it said nothing).
    """

    fraction: float
    message: str = ""

    @property
    def percent(self) -> float:
        """The fraction in percent, from 0 to 100."""
        return self.fraction * 100


def check_progress(fraction: float, message: str) -> Progress:
    """Validate a report; a long message is cut to 200 characters.

    Raises:
        ValueError: ``fraction`` is not a number from 0 to 1.
        TypeError: ``message`` is not a string.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise ValueError(f"progress must be a number, got {fraction!r}")
    if not (math.isfinite(fraction) and 0 <= fraction <= 1):
        raise ValueError(f"progress must be from 0 to 1, got {fraction!r}")
    if not isinstance(message, str):
        raise TypeError(f"a progress message is a str, got {message!r}")
    return Progress(float(fraction), message[:MAX_MESSAGE])


def progress_from_parameters(
    parameters: Mapping[str, Any],
) -> Progress | None:
    """Read the progress out of a job's decoded parameters.

    Returns ``None`` when the job reported none (or the stored value is
    not a percentage: it was set by hand to something else).
    """
    percent = parameters.get(PROGRESS_PARAMETER)
    if isinstance(percent, bool) or not isinstance(percent, int | float):
        return None
    if not math.isfinite(percent):
        return None
    message = parameters.get(MESSAGE_PARAMETER, "")
    fraction = min(max(float(percent) / 100, 0.0), 1.0)
    return Progress(fraction, message if isinstance(message, str) else "")


def encode_progress(progress: Progress) -> dict[str, str]:
    """The parameters that store ``progress``."""
    return {
        PROGRESS_PARAMETER: encode_value(
            round(progress.percent, 4), PROGRESS_PARAMETER
        ),
        MESSAGE_PARAMETER: encode_value(progress.message, MESSAGE_PARAMETER),
    }


class ProgressFlusher:
    """Keeps the latest progress of each job; writes it in batches.

    :meth:`report` is thread-safe and never waits for storage: job
    threads and coroutines call it directly.

    Args:
        storage: where to write.
        interval: seconds between two writes.
    """

    def __init__(self, storage: Storage, interval: float) -> None:
        self._storage = storage
        self._interval = interval
        self._lock = threading.Lock()
        self._latest: dict[JobId, Progress] = {}

    def report(self, job_id: JobId, progress: Progress) -> None:
        """Remember ``progress`` as the latest value of ``job_id``."""
        with self._lock:
            self._latest[job_id] = progress

    def _take(self) -> dict[JobId, Progress]:
        with self._lock:
            taken, self._latest = self._latest, {}
        return taken

    async def flush(self) -> None:
        """Write what was reported since the last write (one transaction).

        A failed write is logged and its values are kept for the next
        one unless a job reported a newer value meanwhile.
        """
        taken = self._take()
        if not taken:
            return
        values = {job_id: encode_progress(p) for job_id, p in taken.items()}
        try:
            await self._storage.set_parameters(values)
        except StorageError as error:
            _log.warning(
                "writing the progress of %d jobs failed: %s",
                len(values),
                error,
                extra={"event": "server.progress_write_failed"},
            )
            with self._lock:
                for job_id, progress in taken.items():
                    self._latest.setdefault(job_id, progress)

    async def run(self) -> None:
        """Flush every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def close(self) -> None:
        """Write what is left (called once the jobs have stopped)."""
        await self.flush()
