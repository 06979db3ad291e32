"""The server on PostgreSQL: the SQLite tests that apply, run again.

The tests are imported from ``test_server``; the ``storage`` fixture
defined here makes them run on a PostgreSQL schema of their own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import sql
from server_helpers import client, fresh_samples
from test_server import (
    test_a_flaky_job_is_retried_then_succeeds,
    test_a_job_enqueued_in_the_same_process_starts_without_polling,
    test_a_job_timeout_fires_its_token_with_reason_timeout,
    test_a_job_whose_attempts_run_out_is_deleted_when_configured,
    test_a_notification_heard_on_the_loop_starts_a_fetch_next_turn,
    test_deleting_a_running_job_fires_its_token_and_it_ends_deleted,
    test_jobs_whose_fetch_reply_was_lost_are_put_back_and_run_once,
    test_outcomes_of_many_jobs_are_written_in_batches,
    test_queues_are_drained_in_the_order_given,
    test_requeue_and_delete_races_never_run_a_job_twice,
    test_shutdown_puts_a_job_that_honours_its_token_back_on_its_queue,
    test_succeeded_jobs_expire_after_retention_and_failed_ones_stay,
    test_sync_async_and_runner_jobs_succeed_with_their_history,
    test_the_reconciler_never_looks_between_a_fetch_and_its_start,
)

from backburner.storage import Storage, open_storage

__all__ = [
    "client",
    "fresh_samples",
    "test_a_flaky_job_is_retried_then_succeeds",
    "test_a_job_enqueued_in_the_same_process_starts_without_polling",
    "test_a_job_timeout_fires_its_token_with_reason_timeout",
    "test_a_job_whose_attempts_run_out_is_deleted_when_configured",
    "test_a_notification_heard_on_the_loop_starts_a_fetch_next_turn",
    "test_deleting_a_running_job_fires_its_token_and_it_ends_deleted",
    "test_jobs_whose_fetch_reply_was_lost_are_put_back_and_run_once",
    "test_outcomes_of_many_jobs_are_written_in_batches",
    "test_queues_are_drained_in_the_order_given",
    "test_requeue_and_delete_races_never_run_a_job_twice",
    "test_shutdown_puts_a_job_that_honours_its_token_back_on_its_queue",
    "test_succeeded_jobs_expire_after_retention_and_failed_ones_stay",
    "test_sync_async_and_runner_jobs_succeed_with_their_history",
    "test_the_reconciler_never_looks_between_a_fetch_and_its_start",
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
