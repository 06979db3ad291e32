"""Progress reported by running jobs, read through the client."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import coordination_samples as samples
import pytest
from server_helpers import FAST, client, eventually, storage

from backburner.cli import main
from backburner.jobs import (
    Client,
    JobContext,
    JobState,
    Progress,
    Server,
    SyncClient,
    current_job,
)
from backburner.jobs.progress import (
    ProgressFlusher,
    check_progress,
    progress_from_parameters,
)
from backburner.storage import Storage, open_storage

__all__ = ["client", "storage"]

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def fresh() -> None:
    samples.reset()


def server(storage: Storage, **options: Any) -> Server:
    return Server(storage, **{"concurrency": 4, **FAST, **options})


async def test_the_latest_reported_progress_is_readable_while_running(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(samples.report_then_wait, 1000, None)

    async with server(storage, progress_interval=0.05):

        async def at_the_end() -> bool:
            return await client.get_progress(job_id) == Progress(
                1.0, "step 1000 of 1000"
            )

        await eventually(at_the_end, what="the last progress")
        job = await client.get(job_id)
        assert job.state is JobState.PROCESSING
        assert job.progress == Progress(1.0, "step 1000 of 1000")
        # The dashboard reads the percentage parameter.
        assert job.parameters["progress"] == 100
        samples.release.set()


async def test_a_thousand_reports_cost_far_less_than_a_thousand_writes(
    storage: Storage, client: Client
) -> None:
    writes = 0
    original = storage.set_parameters

    async def counting(values: Any) -> Any:
        nonlocal writes
        writes += 1
        return await original(values)

    storage.set_parameters = counting  # type: ignore[method-assign]
    job_id = await client.enqueue(samples.report_then_wait, 10_000, None)
    async with server(storage, progress_interval=0.2):
        await eventually(samples.reported.is_set, what="the reports")
        await eventually(
            lambda: client.get_progress(job_id),
            what="a progress write",
        )
        samples.release.set()
    assert (await client.get_progress(job_id)) == Progress(
        1.0, "step 10000 of 10000"
    )
    assert 1 <= writes < 100


async def test_a_thread_job_gets_its_context_and_current_job(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(samples.sync_report, None, None)

    async with server(storage):
        await eventually(samples.reported.is_set, what="the report")
        await eventually(
            lambda: client.get_progress(job_id), what="a progress write"
        )
        samples.release.set()

    assert samples.seen == {"same": True, "token": True, "attempt": 1}
    assert await client.get_progress(job_id) == Progress(0.25, "a quarter")
    assert current_job() is None


async def test_a_job_without_reports_has_no_progress(client: Client) -> None:
    job_id = await client.enqueue(samples.note, "quiet")

    assert await client.get_progress(job_id) is None
    assert (await client.get(job_id)).progress is None


def test_the_sync_client_reads_progress(tmp_path: Any) -> None:
    with SyncClient(f"sqlite:///{tmp_path / 'jobs.db'}") as sync:
        job_id = sync.enqueue(samples.note, "x")
        sync.set_parameter(job_id, "progress", 40)
        sync.set_parameter(job_id, "progress_message", "hand-set")

        assert sync.get_progress(job_id) == Progress(0.4, "hand-set")


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan"), True, "1"])
def test_a_fraction_outside_zero_to_one_is_refused(fraction: Any) -> None:
    with pytest.raises(ValueError, match="progress must"):
        check_progress(fraction, "")


def test_a_long_message_is_cut_and_a_non_string_refused() -> None:
    assert len(check_progress(0.5, "x" * 1000).message) == 200
    with pytest.raises(TypeError):
        check_progress(0.5, 42)  # type: ignore[arg-type]


def test_a_hand_set_non_number_is_no_progress() -> None:
    assert progress_from_parameters({"progress": "half"}) is None
    assert progress_from_parameters({"progress": 250}) == Progress(1.0)


async def test_a_failed_flush_keeps_values_for_the_next_one(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'flush.db'}"
    async with Client(url) as first:
        job_id = await first.enqueue(samples.note, "x")
    closed = open_storage(url)
    await closed.close()
    flusher = ProgressFlusher(closed, 60)
    flusher.report(job_id, Progress(0.5, "half"))

    await flusher.flush()  # Fails (closed storage): logged, kept.

    async with Client(url) as reader:
        assert await reader.get_progress(job_id) is None
        flusher._storage = reader.storage
        await flusher.flush()
        assert await reader.get_progress(job_id) == Progress(0.5, "half")


async def test_reporting_is_cheap() -> None:
    reports: list[Progress] = []

    class Keep:
        def report(self, job_id: int, progress: Progress) -> None:
            reports.append(progress)

    from backburner.cancellation import CancellationTokenSource

    context = JobContext(
        1, "m:f", "default", 1, CancellationTokenSource().token, Keep()
    )
    started = time.perf_counter()
    for step in range(10_000):
        context.report_progress(step / 10_000, "working")
    elapsed = time.perf_counter() - started

    assert len(reports) == 10_000
    assert context.progress == Progress(0.9999, "working")
    # Generous bound: an in-memory call, not a database write.
    assert elapsed < 2.0


def test_jobs_show_prints_the_progress(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    with SyncClient(url) as sync:
        job_id = sync.enqueue(samples.note, "x")
        quiet_id = sync.enqueue(samples.note, "y")
        sync.set_parameter(job_id, "progress", 42.4)
        sync.set_parameter(job_id, "progress_message", "copying files")
    monkeypatch.setenv("BACKBURNER_STORAGE", url)

    assert main(["jobs", "show", str(job_id)]) == 0
    shown = capsys.readouterr().out
    assert main(["jobs", "show", str(quiet_id)]) == 0
    quiet = capsys.readouterr().out

    lines = [line.split(None, 1) for line in shown.splitlines()]
    assert ["progress", "42% copying files"] in lines
    quiet_lines = [line.split(None, 1) for line in quiet.splitlines()]
    assert ["progress", "-"] in quiet_lines


async def test_a_runner_method_gets_the_context_too(
    storage: Storage, client: Client
) -> None:
    job_id = await client.enqueue(samples.Reporter.run, "half way", None)

    await server(storage).run(until_empty=True)

    assert samples.seen["runner"] == ("half way", job_id, True)
    assert await client.get_progress(job_id) == Progress(0.5, "half way")
    assert (await client.get(job_id)).state is JobState.SUCCEEDED
