"""Fetching ahead on PostgreSQL: the server tests that apply, run again.

The tests are imported from ``test_fetch_ahead``; the ``storage``
fixture of ``test_server_postgres`` makes them run on a PostgreSQL
schema of their own.
"""

from __future__ import annotations

import pytest
from server_helpers import client, fresh_samples
from test_fetch_ahead import (
    test_a_job_deleted_while_fetched_ahead_never_starts,
    test_a_late_notice_about_an_earlier_run_does_not_strand_the_job,
)
from test_server_postgres import storage

__all__ = [
    "client",
    "fresh_samples",
    "storage",
    "test_a_job_deleted_while_fetched_ahead_never_starts",
    "test_a_late_notice_about_an_earlier_run_does_not_strand_the_job",
]

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]
