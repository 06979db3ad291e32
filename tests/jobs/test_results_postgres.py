"""Job results on PostgreSQL: the storage-bound results tests, run again.

The tests are imported from ``test_results``; the ``storage`` fixture
of ``test_server_postgres`` makes them run on a schema of their own.
"""

from __future__ import annotations

import pytest
from server_helpers import client, fresh_samples
from test_results import (
    released,
    running,
    test_a_job_declared_not_to_keep_its_result_never_encodes_it,
    test_a_job_that_keeps_no_result_is_unlike_one_that_returned_none,
    test_a_rich_return_value_round_trips_through_a_server,
    test_a_runner_method_can_be_declared_not_to_keep_its_result,
    test_a_storage_error_ends_the_waits_it_was_polling_for,
    test_an_integer_at_the_default_digit_limit_reads_back,
    test_an_integer_json_cannot_write_is_dropped_too,
    test_an_integer_over_the_default_digit_limit_is_dropped,
    test_an_integer_over_the_servers_own_lower_limit_is_dropped,
    test_an_oversized_result_is_dropped_and_the_job_succeeds,
    test_an_unserialisable_result_is_dropped_with_a_warning,
    test_closing_the_client_ends_its_pending_waits,
    test_keep_result_in_the_options_wins_over_the_declaration,
    test_many_waiters_cost_one_batched_query_per_tick,
    test_none_keeps_nothing_and_a_falsy_value_is_kept,
    test_runner_methods_results_are_kept,
    test_wait_raises_job_deleted_error_for_a_job_deleted_by_policy,
    test_wait_raises_job_failed_error_once_retries_ran_out,
    test_wait_returns_the_result_once_the_job_succeeds,
    test_wait_times_out_and_leaves_the_job_alone,
    test_wait_wakes_at_once_when_a_running_job_is_deleted,
)
from test_server_postgres import storage

__all__ = [
    "client",
    "fresh_samples",
    "released",
    "running",
    "storage",
    "test_a_job_declared_not_to_keep_its_result_never_encodes_it",
    "test_a_job_that_keeps_no_result_is_unlike_one_that_returned_none",
    "test_a_rich_return_value_round_trips_through_a_server",
    "test_a_runner_method_can_be_declared_not_to_keep_its_result",
    "test_a_storage_error_ends_the_waits_it_was_polling_for",
    "test_an_integer_at_the_default_digit_limit_reads_back",
    "test_an_integer_json_cannot_write_is_dropped_too",
    "test_an_integer_over_the_default_digit_limit_is_dropped",
    "test_an_integer_over_the_servers_own_lower_limit_is_dropped",
    "test_an_oversized_result_is_dropped_and_the_job_succeeds",
    "test_an_unserialisable_result_is_dropped_with_a_warning",
    "test_closing_the_client_ends_its_pending_waits",
    "test_keep_result_in_the_options_wins_over_the_declaration",
    "test_many_waiters_cost_one_batched_query_per_tick",
    "test_none_keeps_nothing_and_a_falsy_value_is_kept",
    "test_runner_methods_results_are_kept",
    "test_wait_raises_job_deleted_error_for_a_job_deleted_by_policy",
    "test_wait_raises_job_failed_error_once_retries_ran_out",
    "test_wait_returns_the_result_once_the_job_succeeds",
    "test_wait_times_out_and_leaves_the_job_alone",
    "test_wait_wakes_at_once_when_a_running_job_is_deleted",
]

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]
