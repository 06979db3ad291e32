"""The job function of a recurring job run by server processes.

``backburner worker --import every_second_jobs`` makes it importable in
the servers. The test process cannot see a child's memory, so each run
appends one line to a file: ``<job id> <pid> <unix time>``. Lines are
written with ``O_APPEND`` in one call, so that the lines of several
processes never interleave.
"""

from __future__ import annotations

import os
import time

from backburner.jobs import current_job


async def tick(path: str) -> None:
    """Note which job ran, and in which process."""
    context = current_job()
    assert context is not None, "runs only as a job"
    line = f"{context.job_id} {os.getpid()} {time.time():.6f}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
