"""``backburner recurring``: list, trigger, pause, resume and remove."""

from __future__ import annotations

from types import ModuleType

from backburner.jobs import Call, JobState, SyncClient

from .conftest import Run, one_error_line


def test_list_shows_status_schedule_and_last_job(
    cli: Run, client: SyncClient, samples: ModuleType
) -> None:
    client.recurring.add_or_update(
        "nightly",
        "30 2 * * *",
        Call(samples.noop),
        time_zone="Europe/Berlin",
        queue="reports",
    )
    client.recurring.add_or_update("every", "* * * * *", samples.noop)
    client.recurring.pause("every")
    job_id = client.recurring.trigger("nightly")

    result = cli("recurring", "list")

    assert result.code == 0, result.err
    header, *rows = result.out.splitlines()
    assert header.split()[:4] == ["ID", "STATUS", "CRON", "TIME"]
    assert rows[0].split()[:2] == ["every", "paused"]
    nightly = rows[1].split()
    assert nightly[:2] == ["nightly", "active"]
    assert "Europe/Berlin" in nightly
    assert "reports" in nightly
    assert rows[1].endswith(f"{job_id} (enqueued)")


def test_list_as_json(
    cli: Run, client: SyncClient, samples: ModuleType
) -> None:
    client.recurring.add_or_update("every", "*/5 * * * * *", samples.noop)

    result = cli("recurring", "list", "--json")

    assert result.code == 0, result.err
    (document,) = result.json()["recurring_jobs"]
    assert document["id"] == "every"
    assert document["status"] == "active"
    assert document["cron"] == "*/5 * * * * *"
    assert document["function"] == "tests.jobs.job_samples:noop"
    assert document["missed"] == "run_once"
    assert document["next_run_at"].endswith("Z")
    assert document["last_job_id"] is None


def test_no_recurring_jobs(cli: Run) -> None:
    result = cli("recurring", "list")

    assert (result.code, result.out) == (0, "no recurring jobs\n")


def test_trigger_pause_resume_and_remove(
    cli: Run, client: SyncClient, samples: ModuleType
) -> None:
    client.recurring.add_or_update("r", "0 3 * * *", samples.noop)

    triggered = cli("recurring", "trigger", "r")
    paused = cli("recurring", "pause", "r")
    status_paused = client.recurring.get("r").status.value
    resumed = cli("recurring", "resume", "r")
    status_resumed = client.recurring.get("r").status.value
    removed = cli("recurring", "remove", "r")

    job_id = int(triggered.out.split()[-1])
    assert triggered.out == f"recurring job r triggered: job {job_id}\n"
    assert client.get(job_id).state is JobState.ENQUEUED
    assert paused.out == "recurring job r paused\n"
    assert status_paused == "paused"
    assert resumed.out.startswith("recurring job r resumed; next run 20")
    assert status_resumed == "active"
    assert removed.out == "recurring job r removed\n"
    assert client.recurring.list() == []


def test_an_unknown_recurring_job_is_one_line_and_exit_code_1(
    cli: Run,
) -> None:
    for command in ("trigger", "pause", "resume", "remove"):
        result = cli("recurring", command, "ghost")
        assert result.code == 1
        assert "'ghost' does not exist" in one_error_line(result)


def test_a_malformed_id_is_a_usage_error(cli: Run) -> None:
    result = cli("recurring", "pause", "no spaces")

    assert result.code == 2
    assert "invalid recurring job id" in one_error_line(result)
