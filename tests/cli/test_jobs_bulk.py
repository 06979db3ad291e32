"""``backburner jobs``: the function filter, and acting on many jobs."""

from __future__ import annotations

import sqlite3
from types import ModuleType

import pytest

from backburner.cli import bulk
from backburner.jobs import Client, JobOptions, JobState, SyncClient
from backburner.storage.base import JobId

from . import arrange
from .conftest import Run, one_error_line

S = JobState
NOOP = "tests.jobs.job_samples:noop"
SEND = "tests.jobs.job_samples:Mailer.send"


def failed_job(
    url: str, client: SyncClient, samples: ModuleType, queue: str = "default"
) -> JobId:
    job_id = client.enqueue_with(JobOptions(queue=queue), samples.noop)
    arrange.fail(url, job_id, queue)
    return job_id


def state_of(client: SyncClient, *ids: JobId) -> list[JobState]:
    return [client.get(job_id).state for job_id in ids]


# -- list --function ---------------------------------------------------


def test_list_keeps_only_jobs_of_the_exact_function(
    cli: Run, client: SyncClient, samples: ModuleType
) -> None:
    first = client.enqueue(samples.noop)
    client.enqueue(samples.async_noop)
    client.enqueue(samples.Mailer.send, "a")
    deleted = client.enqueue(samples.noop)
    client.delete(deleted)

    every = cli("jobs", "list", "--function", NOOP, "--json")
    enqueued = cli("jobs", "list", "--function", NOOP, "--state", "enqueued")
    method = cli("jobs", "list", "--function", SEND, "--json")

    assert every.code == 0, every.err
    assert [job["id"] for job in every.json()["jobs"]] == [deleted, first]
    assert [int(row.split()[0]) for row in enqueued.out.splitlines()[1:]] == [
        first
    ]
    assert [job["function"] for job in method.json()["jobs"]] == [SEND]


def test_list_pages_through_one_function_with_before(
    cli: Run, client: SyncClient, samples: ModuleType
) -> None:
    ids = [client.enqueue(samples.noop) for _ in range(3)]
    client.enqueue(samples.async_noop)

    first = cli("jobs", "list", "--function", NOOP, "--limit", "2", "--json")
    rest = cli(
        "jobs",
        "list",
        "--function",
        NOOP,
        "--before",
        str(first.json()["next_before"]),
        "--json",
    )

    listed = [job["id"] for job in first.json()["jobs"] + rest.json()["jobs"]]
    assert listed == ids[::-1]
    assert rest.json()["next_before"] is None


@pytest.mark.parametrize(
    "text", ["noop", ":noop", "tests.jobs:", "a b:c", "a:b\nc", "a:\udc80"]
)
def test_a_malformed_function_is_a_usage_error(cli: Run, text: str) -> None:
    result = cli("jobs", "list", "--function", text)

    assert result.code == 2
    assert "invalid job function" in one_error_line(result)


# -- several ids -------------------------------------------------------


def test_requeue_of_several_ids_counts_the_changed_and_the_skipped(
    cli: Run, storage_url: str, client: SyncClient, samples: ModuleType
) -> None:
    failed = failed_job(storage_url, client, samples)
    enqueued = client.enqueue(samples.noop)
    deleted = client.enqueue(samples.noop)
    client.delete(deleted)

    result = cli(
        "jobs", "requeue", str(failed), str(enqueued), str(deleted), "4242"
    )

    assert (result.code, result.out) == (3, "requeued 2, skipped 2\n")
    assert result.err.splitlines() == [
        f"backburner: skipped: job {enqueued} is enqueued: cannot move it "
        "to enqueued (allowed from: awaiting, deleted, failed, processing, "
        "scheduled, succeeded)",
        "backburner: skipped: job 4242 does not exist",
    ]
    assert state_of(client, failed, enqueued, deleted) == [S.ENQUEUED] * 3
    assert client.get(failed).attempt == 0


def test_delete_of_several_ids_that_all_change_exits_0(
    cli: Run, client: SyncClient, samples: ModuleType
) -> None:
    ids = [client.enqueue(samples.noop) for _ in range(3)]

    result = cli("jobs", "delete", str(ids[0]), str(ids[2]), str(ids[0]))

    assert (result.code, result.out, result.err) == (
        0,
        "deleted 2, skipped 0\n",
        "",
    )
    assert state_of(client, *ids) == [S.DELETED, S.ENQUEUED, S.DELETED]


# -- a selection -------------------------------------------------------


def test_a_selection_changes_every_match_across_pages_and_nothing_else(
    cli: Run,
    storage_url: str,
    client: SyncClient,
    samples: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bulk, "PAGE_SIZE", 2)
    matching = [failed_job(storage_url, client, samples) for _ in range(5)]
    elsewhere = failed_job(storage_url, client, samples, queue="mail")
    other = client.enqueue(samples.Mailer.send, "a")
    arrange.fail(storage_url, other)
    waiting = client.enqueue(samples.noop)

    result = cli(
        "jobs",
        "requeue",
        "--state",
        "failed",
        "--queue",
        "default",
        "--function",
        NOOP,
        "--yes",
    )

    assert (result.code, result.out, result.err) == (
        0,
        "requeued 5, skipped 0\n",
        "",
    )
    assert state_of(client, *matching) == [S.ENQUEUED] * 5
    assert state_of(client, elsewhere, other, waiting) == [
        S.FAILED,
        S.FAILED,
        S.ENQUEUED,
    ]


def test_a_selection_matching_nothing_changes_nothing(
    cli: Run, client: SyncClient, samples: ModuleType
) -> None:
    job_id = client.enqueue(samples.noop)

    result = cli("jobs", "delete", "--state", "failed", "--yes")

    assert (result.code, result.out) == (0, "deleted 0, skipped 0\n")
    assert state_of(client, job_id) == [S.ENQUEUED]


def test_a_job_that_left_the_selected_state_meanwhile_is_skipped(
    cli: Run,
    storage_url: str,
    client: SyncClient,
    samples: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = failed_job(storage_url, client, samples)
    moved = failed_job(storage_url, client, samples)
    act = bulk._act

    async def someone_deletes_it_first(
        on: Client, action: bulk.BulkAction, job_id: JobId, *rest: object
    ) -> None:
        # Another operator deletes the job between the listing that
        # found it failed and the requeue of it.
        if job_id == moved:
            await on.delete(job_id, reason="deleted by someone else")
        await act(on, action, job_id, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(bulk, "_act", someone_deletes_it_first)

    result = cli("jobs", "requeue", "--state", "failed", "--yes")

    assert (result.code, result.out) == (3, "requeued 1, skipped 1\n")
    assert f"job {moved} is deleted" in result.err
    assert state_of(client, first, moved) == [S.ENQUEUED, S.DELETED]
    assert client.get(moved).reason == "deleted by someone else"


def test_a_selection_without_yes_is_refused_before_anything_is_read(
    cli: Run, storage_url: str, client: SyncClient, samples: ModuleType
) -> None:
    job_id = failed_job(storage_url, client, samples)

    result = cli("jobs", "requeue", "--state", "failed")

    assert result.code == 2
    assert "add --yes to requeue them" in one_error_line(result)
    assert state_of(client, job_id) == [S.FAILED]


def test_dry_run_counts_the_selection_and_changes_nothing(
    cli: Run, storage_url: str, client: SyncClient, samples: ModuleType
) -> None:
    ids = [failed_job(storage_url, client, samples) for _ in range(3)]
    client.enqueue(samples.noop)

    result = cli("jobs", "delete", "--state", "failed", "--dry-run", "--yes")

    assert (result.code, result.out, result.err) == (
        0,
        "would delete 3 (dry run: nothing changed)\n",
        "",
    )
    assert state_of(client, *ids) == [S.FAILED] * 3


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["requeue"], "give the ids of the jobs to requeue"),
        (["delete", "1", "--state", "failed"], "not both"),
        (["delete", "1", "--function", NOOP], "not both"),
        (["requeue", "--queue", "default", "--yes"], "with --state"),
        (["requeue", "1", "2", "--dry-run"], "--dry-run counts a selection"),
        (["requeue", "--state", "enqueued", "--yes"], "cannot be requeued"),
        (["delete", "--state", "deleted", "--yes"], "cannot be deleted"),
        (["delete", "--state", "lost", "--yes"], "invalid state 'lost'"),
        (["delete", "--state", "failed", "--function", "x"], "invalid job"),
        (["delete", "1", "0"], "invalid job id '0'"),
    ],
)
def test_jobs_named_wrongly_are_a_usage_error_and_change_nothing(
    cli: Run,
    client: SyncClient,
    samples: ModuleType,
    argv: list[str],
    complaint: str,
) -> None:
    job_id = client.enqueue(samples.noop)

    result = cli("jobs", *argv)

    assert result.code == 2
    assert complaint in one_error_line(result)
    assert state_of(client, job_id) == [S.ENQUEUED]


def test_a_storage_failure_part_way_says_how_far_the_command_got(
    cli: Run,
    storage_url: str,
    client: SyncClient,
    samples: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bulk, "PAGE_SIZE", 2)
    # The second page holds the damaged job (a page reads one job more
    # than it shows, to know whether another page follows).
    damaged, *rest = [client.enqueue(samples.noop) for _ in range(4)]
    path = storage_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE jobs SET created_at = 'not a time' WHERE id = ?",
            (damaged,),
        )
    conn.close()

    result = cli("jobs", "delete", "--state", "enqueued", "--yes")

    assert result.code == 1
    line = one_error_line(result)
    assert f"job {damaged} is corrupted in storage" in line
    assert "(after deleted 2, skipped 0; run the command again" in line
    assert state_of(client, *rest) == [S.ENQUEUED, S.DELETED, S.DELETED]
