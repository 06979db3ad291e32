"""A job that asks to be retried after a delay it chooses (RetryAfter)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import retry_after_samples as samples
from server_helpers import (
    FAST,
    client,
    eventually,
    fresh_samples,
    state_is,
    storage,
)

from backburner.cancellation import (
    CancellationReason,
    CancellationTokenSource,
)
from backburner.jobs import (
    Client,
    HistoryEntry,
    Job,
    JobState,
    RetryAfter,
    RetryPolicy,
    Server,
)
from backburner.jobs.functions import reference_of
from backburner.jobs.serializer import encode_arguments
from backburner.jobs.worker import Ending, _after, outcome_of
from backburner.storage import Storage
from backburner.storage.base import JobRecord

__all__ = ["client", "fresh_samples", "storage"]

S = JobState
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def fresh_runs() -> None:
    samples.runs.clear()


def server(storage: Storage) -> Server:
    return Server(storage, **{"concurrency": 2, **FAST})


def retries_of(job: Job) -> list[HistoryEntry]:
    return [entry for entry in job.history if entry.state is S.SCHEDULED]


def close_to(actual: timedelta, seconds: float) -> bool:
    # Storage keeps microseconds at most.
    return abs(actual.total_seconds() - seconds) < 0.001


# -- the exception -----------------------------------------------------------


def test_the_delay_is_seconds_or_a_timedelta_and_says_why() -> None:
    asked = RetryAfter(timedelta(minutes=2), "HTTP 429")

    assert asked.delay == 120.0
    assert asked.reason == "HTTP 429"
    assert str(asked) == "retry after 120 s: HTTP 429"
    assert str(RetryAfter(1.5)) == "retry after 1.5 s"
    assert RetryAfter(0).delay == 0.0


@pytest.mark.parametrize(
    ("delay", "words"),
    [
        (-1, "invalid delay -1: use a finite number of seconds >= 0"),
        (math.nan, "invalid delay nan"),
        (math.inf, "invalid delay inf"),
        (-math.inf, "invalid delay -inf"),
        (timedelta(seconds=-1), "invalid delay"),
        (10**400, "invalid delay"),
        (timedelta.max, "ends after the latest date"),
        (10**11 * 86400, "ends after the latest date"),
    ],
)
def test_a_delay_out_of_range_is_a_value_error(delay: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        RetryAfter(delay)


@pytest.mark.parametrize("delay", ["30", None, True, [1], b"1"])
def test_a_delay_that_is_not_a_number_is_a_type_error(delay: Any) -> None:
    with pytest.raises(TypeError, match="delay must be seconds"):
        RetryAfter(delay)


def test_a_reason_that_is_not_text_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="reason must be a str"):
        RetryAfter(1, 429)  # type: ignore[arg-type]


# -- outcome -----------------------------------------------------------------


def record(func: Callable[..., Any], attempt: int) -> JobRecord:
    now = datetime.now(UTC)
    return JobRecord(
        id=1,
        function=reference_of(func),
        arguments=encode_arguments((), {}),
        queue="default",
        state=JobState.PROCESSING,
        reason="",
        version=2,
        attempt=attempt,
        created_at=now,
        state_changed_at=now,
        scheduled_at=None,
        server="test",
        expires_at=None,
        timeout=5.0,
    )


def test_a_retry_asked_for_while_timing_out_is_a_timeout() -> None:
    # The job was stopped by its timeout; RetryAfter is how it stopped.
    source = CancellationTokenSource()
    source.cancel(CancellationReason.TIMEOUT)
    policy = RetryPolicy(attempts=3, delays=(7.0,))
    ending = Ending(RetryAfter(600, "busy"), True, policy, 5.0)
    now = datetime.now(UTC)

    change = outcome_of(
        record(samples.noop, 1), ending, source.token, now, {}, timedelta(1)
    )

    assert change is not None
    assert change.to_state is S.SCHEDULED
    assert change.reason == "retry 2 of 3: timed out after 5 s"
    assert change.scheduled_at == now + timedelta(seconds=7)


def test_a_retry_past_the_last_date_is_scheduled_on_the_last_date() -> None:
    # RetryAfter and RetryPolicy refuse such delays; one that ends past
    # the last date only in the moments after that check must still not
    # break the server with an OverflowError.
    latest = datetime(9999, 12, 31, tzinfo=UTC)

    assert _after(latest - timedelta(days=1), 2 * 86400.0) == latest
    assert _after(latest, 1e13) == latest


# -- on a server -------------------------------------------------------------


async def test_the_job_is_scheduled_after_the_delay_it_chose(
    storage: Storage, client: Client
) -> None:
    # The policy would wait an hour, and never retries any Exception.
    job_id = await client.enqueue(samples.rate_limited, "a", 1, 90)

    await server(storage).run(until_empty=True)

    job = await client.get(job_id)
    assert job.state is S.SCHEDULED
    assert job.reason == (
        "retry 2 of 3: the job asked to retry after 90 s: "
        "HTTP 429 Too Many Requests"
    )
    [entry] = retries_of(job)
    assert job.scheduled_at is not None
    assert close_to(job.scheduled_at - entry.at, 90)
    assert entry.data["retry_delay"] == 90.0
    assert entry.data["retry_reason"] == "HTTP 429 Too Many Requests"
    assert entry.data["exception_type"] == "backburner.jobs.retry.RetryAfter"
    assert "rate_limited" in str(entry.data["traceback"])
    assert samples.runs == {"a": 1}


@pytest.mark.parametrize(
    "function", [samples.rate_limited, samples.rate_limited_sync]
)
async def test_an_async_or_sync_job_runs_again_after_its_delay(
    storage: Storage, client: Client, function: Callable[..., Any]
) -> None:
    job_id = await client.enqueue(function, "b", 1, 0.3)

    async with server(storage):
        await eventually(
            lambda: samples.runs.get("b") == 2, what="the second attempt"
        )
        await eventually(
            lambda: state_is(client, job_id, S.SUCCEEDED), what="success"
        )

    job = await client.get(job_id)
    assert job.attempt == 2
    [entry] = retries_of(job)
    assert entry.data["retry_delay"] == 0.3
    # Not before the delay it chose (the policy's would be an hour).
    second = [e for e in job.history if e.state is S.PROCESSING][1]
    assert second.at - entry.at >= timedelta(seconds=0.3)


async def test_asking_again_and_again_uses_up_the_attempts(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(samples.always_busy, "c")

    await server(storage).run(until_empty=True)

    job = await client.get(job_id)
    assert job.state is S.FAILED
    assert job.attempt == 2
    assert samples.runs == {"c": 2}
    assert job.reason == (
        "failed: gave up after 2 attempts (the job asked to retry after 0 s)"
    )
    assert job.history[-1].data["retry_delay"] == 0.0
    assert job.history[-1].data["retry_reason"] == ""


async def test_exhausted_attempts_delete_the_job_when_the_policy_says(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(samples.always_busy_then_deleted, "d")

    async with server(storage):
        await eventually(lambda: state_is(client, job_id, S.DELETED))

    job = await client.get(job_id)
    assert job.attempt == 2
    assert job.reason == (
        "deleted: gave up after 2 attempts "
        "(the job asked to retry after 0.01 s: still busy)"
    )


async def test_an_invalid_delay_fails_the_job_and_the_server_runs_on(
    storage: Storage, client: Client
) -> None:
    bad = await client.enqueue(samples.asks_nan_delay)
    good = await client.enqueue(samples.noop)

    await server(storage).run(until_empty=True)

    job = await client.get(bad)
    assert job.state is S.FAILED
    assert job.reason == (
        "failed: gave up after 1 attempt (ValueError: RetryAfter: "
        "invalid delay nan: use a finite number of seconds >= 0)"
    )
    assert job.history[-1].data["exception_type"] == "builtins.ValueError"
    assert (await client.get(good)).state is S.SUCCEEDED
