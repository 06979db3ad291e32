"""PostgreSQL only: how the storage's connection pool starts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from backburner.storage import JobState, NewJob, open_storage
from backburner.storage.postgres import PostgresStorage

pytestmark = pytest.mark.postgres

Admin = Callable[..., list[tuple[object, ...]]]


async def test_one_callers_calls_keep_to_one_connection(
    postgres_storage_url: str, admin: Admin, postgres_schema: str
) -> None:
    # The pool lends idle connections in turn: had the first call made
    # it grow past min_size (1), these calls would take two backends by
    # turns.
    storage = open_storage(postgres_storage_url)
    assert isinstance(storage, PostgresStorage)
    await storage.migrate()
    job = NewJob(
        function="app.jobs:send",
        arguments='{"args":[],"kwargs":{}}',
        queue="default",
        state=JobState.ENQUEUED,
        reason="enqueued",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    try:
        for _ in range(5):
            await storage.create_job(job)
            await storage.counts()

        pool = await storage._ready()
        assert pool.get_stats()["pool_size"] == 1
        backends = admin(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s",
            postgres_schema,
        )
        assert backends == [(1,)]
    finally:
        await storage.close()
