"""Shared pieces of the SQLite enqueue tests: a job to store, and a count
of the rows a file holds, read on a connection of the test's own."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from backburner.storage.base import JobState, NewJob


def new_job() -> NewJob:
    """An enqueued job of a function every interpreter has."""
    return NewJob(
        function="os:getpid",
        arguments="[[], {}]",
        queue="default",
        state=JobState.ENQUEUED,
        reason="enqueued",
        created_at=datetime.now(UTC),
    )


def stored_jobs(path: Path) -> int:
    """How many job rows the file at ``path`` holds."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        (count,) = conn.execute("SELECT count(*) FROM jobs").fetchone()
    return int(count)
