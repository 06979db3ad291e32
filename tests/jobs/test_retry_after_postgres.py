"""RetryAfter on PostgreSQL: the server tests of ``test_retry_after``.

The ``storage`` fixture of ``test_server_postgres`` runs them on a
PostgreSQL schema of their own; a retry is a change to *scheduled* there
as on SQLite.
"""

from __future__ import annotations

import pytest
from server_helpers import client, fresh_samples
from test_retry_after import (
    fresh_runs,
    test_an_async_or_sync_job_runs_again_after_its_delay,
    test_asking_again_and_again_uses_up_the_attempts,
    test_exhausted_attempts_delete_the_job_when_the_policy_says,
    test_the_job_is_scheduled_after_the_delay_it_chose,
)
from test_server_postgres import storage

__all__ = [
    "client",
    "fresh_runs",
    "fresh_samples",
    "storage",
    "test_an_async_or_sync_job_runs_again_after_its_delay",
    "test_asking_again_and_again_uses_up_the_attempts",
    "test_exhausted_attempts_delete_the_job_when_the_policy_says",
    "test_the_job_is_scheduled_after_the_delay_it_chose",
]

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]
