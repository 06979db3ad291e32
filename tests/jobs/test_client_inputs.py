"""What the client refuses before anything is written."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backburner.jobs import (
    Call,
    Client,
    JobArgumentError,
    JobFunctionError,
    JobOptions,
    SyncClient,
)
from backburner.jobs import client as client_module
from backburner.jobs.serializer import encode_arguments
from backburner.jobs.states import LATEST_READY_AT


def noop(*args: object, **kwargs: object) -> None:
    """A job function that is never run here."""


class Runner:
    """Job functions reached through a fresh bound method each time."""

    @classmethod
    def first(cls, number: int) -> None:
        """Never run here."""

    @classmethod
    def second(cls, number: int) -> None:
        """Never run here."""


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with Client(f"sqlite:///{tmp_path / 'jobs.db'}") as client:
        yield client


@pytest.mark.parametrize(
    "delay",
    [-1, math.inf, -math.inf, math.nan, 1e300, timedelta.max, 10**12],
)
async def test_a_delay_that_is_not_a_usable_number_is_refused(
    client: Client, delay: float | timedelta
) -> None:
    with pytest.raises(ValueError, match="invalid delay"):
        await client.schedule(delay, noop)

    assert (await client.list_jobs()).jobs == []


@pytest.mark.parametrize(
    "seconds",
    # Ints past the largest float, the second too long to write out.
    [0, -1, math.inf, math.nan]
    + [pytest.param(10**n, id=f"10**{n}") for n in (400, 5000)],
)
async def test_a_timeout_that_is_not_a_usable_number_is_refused(
    client: Client, seconds: float
) -> None:
    # An infinite timeout was stored, then written as Infinity (not
    # JSON) by `backburner jobs list --json`.
    with pytest.raises(ValueError, match="positive number of seconds"):
        JobOptions(timeout=seconds)
    with pytest.raises(ValueError, match="positive number of seconds"):
        await client.recurring.add_or_update(
            "nightly", "0 3 * * *", noop, job_timeout=seconds
        )

    assert await client.recurring.list() == []


@pytest.mark.parametrize("timeout", [True, "30"])
def test_a_timeout_that_is_not_a_number_is_refused(timeout: object) -> None:
    with pytest.raises(TypeError, match="timeout must be a number"):
        JobOptions(timeout=timeout)  # type: ignore[arg-type]


@pytest.mark.parametrize("delay", [math.inf, 1e300, timedelta.max])
def test_job_options_refuse_an_unusable_delay_on_construction(
    delay: float | timedelta,
) -> None:
    with pytest.raises(ValueError, match=r"invalid delay"):
        JobOptions(delay=delay)


async def test_a_delay_of_many_years_is_still_accepted(
    client: Client,
) -> None:
    job_id = await client.schedule(timedelta(days=365 * 100), noop)

    job = await client.get(job_id)
    assert job.scheduled_at is not None
    assert job.scheduled_at.year >= 2100


async def test_a_moment_past_the_latest_ready_date_is_refused(
    client: Client,
) -> None:
    # datetime.max was stored, then read back by SQLite as year 10000
    # (a corrupted job).
    with pytest.raises(ValueError, match="latest date"):
        await client.schedule(datetime.max.replace(tzinfo=UTC), noop)
    with pytest.raises(ValueError, match="invalid delay"):
        await client.schedule(
            datetime.max.replace(tzinfo=UTC) - datetime.now(UTC), noop
        )

    job_id = await client.schedule(LATEST_READY_AT, noop)
    job = await client.get(job_id)
    assert job.scheduled_at == LATEST_READY_AT


async def test_a_bulk_enqueue_stores_each_calls_own_function(
    client: Client,
) -> None:
    def name(number: int) -> str:
        return "first" if number // 2 % 2 else "second"

    def calls() -> Iterator[Call]:
        for number in range(8):
            # A new bound method per call.
            yield Call(getattr(Runner, name(number)), number)

    ids = await client.enqueue_many(calls())

    jobs = [await client.get(job_id) for job_id in ids]
    assert [(job.function, job.raw_arguments) for job in jobs] == [
        (
            f"{__name__}:Runner.{name(number)}",
            encode_arguments((number,), {}),
        )
        for number in range(8)
    ]


# -- argument size ---------------------------------------------------------


async def test_arguments_over_the_default_limit_are_refused_unwritten(
    client: Client,
) -> None:
    big = "x" * 2_000_000
    with pytest.raises(JobArgumentError) as refused:
        await client.enqueue(noop, big)

    message = str(refused.value)
    size = len(encode_arguments((big,), {}))
    assert f"{size} bytes serialised" in message
    assert "limit of 1048576 bytes" in message
    assert (await client.list_jobs()).jobs == []


async def test_the_limit_counts_utf8_bytes_and_is_configurable(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    async with Client(url, max_argument_bytes=100) as small:
        await small.enqueue(noop, "é" * 35)  # 70 bytes, plus the frame
        with pytest.raises(JobArgumentError, match="limit of 100 bytes"):
            await small.enqueue(noop, "é" * 45)
        with pytest.raises(JobArgumentError, match="of call 1"):
            await small.enqueue_many([Call(noop), Call(noop, "x" * 200)])

        assert len((await small.list_jobs()).jobs) == 1


def test_the_sync_client_passes_the_limit_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    with SyncClient(url, max_argument_bytes=50) as small:
        small.enqueue(noop, "x" * 20)
        with pytest.raises(JobArgumentError, match="limit of 50 bytes"):
            small.enqueue(noop, "x" * 100)

        assert len(small.list_jobs().jobs) == 1


@pytest.mark.parametrize("limit", [0, -1, True, 1.5])
def test_an_unusable_limit_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="max_argument_bytes"):
        Client("sqlite:///unused.db", max_argument_bytes=limit)


async def test_recurring_jobs_keep_the_clients_argument_limit(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    async with Client(url, max_argument_bytes=100) as small:
        await small.recurring.add_or_update("small", "* * * * *", noop)
        with pytest.raises(JobArgumentError, match="limit of 100 bytes"):
            await small.recurring.add_or_update(
                "large", "* * * * *", Call(noop, "x" * 200)
            )

        assert [job.id for job in await small.recurring.list()] == ["small"]


@pytest.mark.parametrize("bad", ["5", 5.0, True, None, b"5"])
async def test_a_job_id_that_is_not_an_int_is_refused_by_name(
    client: Client, bad: object
) -> None:
    message = f"a job id is an int, got {type(bad).__name__}"
    for call in (client.get, client.wait, client.delete, client.requeue):
        with pytest.raises(TypeError, match=message):
            await call(bad)  # type: ignore[operator]
    with pytest.raises(TypeError, match=message):
        await client.continue_with(bad, noop)  # type: ignore[arg-type]


def other_noop() -> None:
    """A second job function, never run here."""


def third_noop() -> None:
    """A third job function, never run here."""


async def test_a_client_imports_each_job_function_back_once(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[object] = []
    real = client_module.reference_of

    def counting(func: Callable[..., object]) -> str:
        looked_up.append(func)
        return real(func)

    monkeypatch.setattr(client_module, "reference_of", counting)

    await client.enqueue(noop)
    await client.enqueue(noop, 2)
    await client.enqueue_with(JobOptions(queue="mail"), noop)
    await client.enqueue_many([Call(noop), Call(other_noop)])
    await client.enqueue(Runner.first, 1)
    await client.enqueue(Runner.first, 2)

    assert looked_up == [noop, other_noop, Runner.first]
    stored = [job.function for job in (await client.list_jobs()).jobs]
    assert stored.count(f"{__name__}:noop") == 4
    assert stored.count(f"{__name__}:Runner.first") == 2


async def test_what_a_client_remembers_of_job_functions_is_bounded(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "_FUNCTIONS_KEPT", 2)

    for func in (noop, other_noop, third_noop):
        await client.enqueue(func)

    assert len(client._functions._known) <= 2
    # Forgotten functions are looked at again, and still work.
    await client.enqueue(noop)
    assert len((await client.list_jobs()).jobs) == 4


async def test_a_function_refused_once_is_refused_again(
    client: Client,
) -> None:
    def local() -> None:
        """A local function: no worker could import it."""

    for _ in range(2):
        with pytest.raises(JobFunctionError, match="local function"):
            await client.enqueue(local)

    assert (await client.list_jobs()).jobs == []
