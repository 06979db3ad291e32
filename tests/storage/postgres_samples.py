"""Shared pieces of the PostgreSQL storage tests that watch connections:
the admin query runner's type, a server name, a fixed moment and a job
to store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from backburner.storage.base import JobState, NewJob

Admin = Callable[..., list[tuple[object, ...]]]
SERVER = "host:1"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def new_job(arguments: str = '{"args":[],"kwargs":{}}') -> NewJob:
    """An enqueued job created at :data:`NOW`."""
    return NewJob(
        function="app.jobs:send",
        arguments=arguments,
        queue="default",
        state=JobState.ENQUEUED,
        reason="enqueued",
        created_at=NOW,
    )
