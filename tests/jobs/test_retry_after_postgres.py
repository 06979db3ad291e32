"""RetryAfter on PostgreSQL: the server tests of ``test_retry_after``.

The ``storage`` fixture defined here runs them on a PostgreSQL schema of
their own; a retry is a change to *scheduled* there as on SQLite.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import sql
from server_helpers import client, fresh_samples
from test_retry_after import (
    fresh_runs,
    test_an_async_or_sync_job_runs_again_after_its_delay,
    test_asking_again_and_again_uses_up_the_attempts,
    test_exhausted_attempts_delete_the_job_when_the_policy_says,
    test_the_job_is_scheduled_after_the_delay_it_chose,
)

from backburner.storage import Storage, open_storage

__all__ = [
    "client",
    "fresh_runs",
    "fresh_samples",
    "test_an_async_or_sync_job_runs_again_after_its_delay",
    "test_asking_again_and_again_uses_up_the_attempts",
    "test_exhausted_attempts_delete_the_job_when_the_policy_says",
    "test_the_job_is_scheduled_after_the_delay_it_chose",
]

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]


@pytest.fixture
async def storage(postgres_url: str) -> AsyncIterator[Storage]:
    """A migrated PostgreSQL storage on a schema of this test's own."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    opened = open_storage(f"{postgres_url}?schema={schema}")
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(schema)
                )
            )
