"""Running one job: interrupting ``async def`` jobs, passing the token."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import worker_samples

from backburner.cancellation import (
    CancellationToken,
    CancellationTokenSource,
    OperationCancelled,
)
from backburner.jobs import Activator, JobContext, JobState
from backburner.jobs.functions import reference_of
from backburner.jobs.serializer import encode_arguments
from backburner.jobs.thread_pool import JobThreads
from backburner.jobs.worker import perform
from backburner.storage.base import JobRecord

pytestmark = pytest.mark.timeout(30)


def job_of(func: Callable[..., Any], *args: Any) -> JobRecord:
    now = datetime.now(UTC)
    return JobRecord(
        id=1,
        function=reference_of(func),
        arguments=encode_arguments(args, {}),
        queue="default",
        state=JobState.PROCESSING,
        reason="",
        version=2,
        attempt=1,
        created_at=now,
        state_changed_at=now,
        scheduled_at=None,
        server="test",
        expires_at=None,
        timeout=None,
    )


@pytest.fixture
async def threads() -> AsyncIterator[JobThreads]:
    pool = JobThreads(2)
    yield pool
    pool.close()


async def run_cancelled(
    job: JobRecord, threads: JobThreads, delay: float
) -> BaseException | None:
    """Run ``job``, fire its token once it runs, return its error."""
    source = CancellationTokenSource()
    running = asyncio.ensure_future(
        perform(job, source.token, Activator(), threads, delay)
    )
    await asyncio.sleep(0.05)
    source.cancel("job deleted")
    ending = await running
    return ending.error


async def test_a_job_ignoring_its_token_is_interrupted_at_its_await(
    threads: JobThreads,
) -> None:
    job = job_of(worker_samples.ignore_token)

    error = await run_cancelled(job, threads, delay=0.05)

    assert isinstance(error, OperationCancelled)
    assert error.reason == "job deleted"


async def test_a_job_watching_its_token_stops_its_own_way_first(
    threads: JobThreads,
) -> None:
    job = job_of(worker_samples.stop_my_way, None)

    # The delay is far longer than the test's timeout: only the job
    # itself can end it.
    error = await run_cancelled(job, threads, delay=60)

    assert isinstance(error, worker_samples.StoppedMyWayError)
    assert str(error) == "job deleted"


async def test_a_job_swallowing_its_interruption_still_counts_cancelled(
    threads: JobThreads,
) -> None:
    job = job_of(worker_samples.swallow_interruption)

    error = await run_cancelled(job, threads, delay=0)

    assert isinstance(error, OperationCancelled)


async def test_a_token_that_fires_as_the_job_ends_interrupts_nothing(
    threads: JobThreads,
) -> None:
    source = CancellationTokenSource()
    worker_samples.to_cancel[:] = [source]
    job = job_of(worker_samples.cancel_from_thread)

    ending = await perform(job, source.token, Activator(), threads, 0)
    # The token's callback reaches the loop now, after the job ended: it
    # must leave alone the task that ran the job.
    await asyncio.sleep(0.05)

    assert ending.error is None
    assert source.is_cancellation_requested
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_a_function_of_a_c_module_is_a_plain_job_function(
    threads: JobThreads,
) -> None:
    # math.sqrt is "bound" to its module; it was refused as a method
    # bound to an instance ("pass module.sqrt").
    job = job_of(math.sqrt, 16.0)

    ending = await perform(
        job, CancellationTokenSource().token, Activator(), threads, 0
    )

    assert job.function == "math:sqrt"
    assert ending.error is None
    assert ending.value == 4.0


async def test_a_task_cancelled_from_outside_raises_cancelled_error(
    threads: JobThreads,
) -> None:
    source = CancellationTokenSource()
    running = asyncio.ensure_future(
        perform(
            job_of(worker_samples.ignore_token),
            source.token,
            Activator(),
            threads,
            0,
        )
    )
    await asyncio.sleep(0.05)

    running.cancel()

    with pytest.raises(asyncio.CancelledError):
        await running


async def test_a_runner_method_gets_the_token_and_context_by_position(
    threads: JobThreads,
) -> None:
    source = CancellationTokenSource()
    job = job_of(worker_samples.Reporter.report, "r", "stored", "stored")

    ending = await perform(job, source.token, Activator(), threads, 0)

    assert ending.error is None
    name, token, context = worker_samples.Reporter.seen
    assert name == "r"
    assert token is source.token
    assert isinstance(context, JobContext)
    assert context.job_id == job.id
    assert isinstance(token, CancellationToken)
