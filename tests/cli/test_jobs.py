"""``backburner jobs``: list, show, requeue and delete."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from decimal import Decimal
from types import ModuleType

import pytest

from backburner.jobs import JobOptions, JobState, Server, SyncClient
from backburner.storage import open_storage

from . import arrange
from .conftest import Run, one_error_line

JOB_KEYS = [
    "id",
    "function",
    "queue",
    "state",
    "reason",
    "attempt",
    "created_at",
    "state_changed_at",
    "scheduled_at",
    "server",
    "expires_at",
    "timeout",
]
JSON_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
HUMAN_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _parse(text: str) -> datetime:
    assert JSON_TIME.fullmatch(text), text
    return datetime.fromisoformat(text)


# -- list --------------------------------------------------------------


def test_list_shows_jobs_newest_first_in_aligned_columns(
    cli: Run, client: SyncClient, samples: ModuleType
) -> None:
    first = client.enqueue(samples.noop)
    second = client.enqueue_with(
        JobOptions(queue="mail"), samples.Mailer.send, "a"
    )

    result = cli("jobs", "list")

    assert result.code == 0, result.err
    header, *rows = result.out.splitlines()
    assert header.split() == [
        "ID",
        "STATE",
        "QUEUE",
        "FUNCTION",
        "ATTEMPT",
        "CREATED",
        "CHANGED",
        "REASON",
    ]
    assert [int(row.split()[0]) for row in rows] == [second, first]
    assert rows[0].split()[1:4] == [
        "enqueued",
        "mail",
        "tests.jobs.job_samples:Mailer.send",
    ]
    # Aligned: every column starts at the same offset on every line.
    for title in ("QUEUE", "FUNCTION", "CREATED", "REASON"):
        column = header.index(title)
        assert all(row[column - 2 : column] == "  " for row in rows)
        assert all(row[column] != " " for row in rows)
    created = header.index("CREATED")
    assert HUMAN_TIME.fullmatch(rows[0][created : created + 20])


def test_list_filters_by_state_and_queue(
    cli: Run, client: SyncClient, samples: ModuleType
) -> None:
    kept = client.enqueue_with(JobOptions(queue="mail"), samples.noop)
    client.enqueue(samples.noop)
    deleted = client.enqueue_with(JobOptions(queue="mail"), samples.noop)
    client.delete(deleted)

    filters = ["--state", "enqueued", "--queue", "mail"]

    table = cli("jobs", "list", *filters)
    listed = cli("jobs", "list", *filters, "--json").json()["jobs"]

    assert [job["id"] for job in listed] == [kept]
    assert table.code == 0
    assert [line.split()[0] for line in table.out.splitlines()] == [
        "ID",
        str(kept),
    ]


def test_list_json_has_a_stable_shape_and_pages(
    cli: Run, client: SyncClient, samples: ModuleType
) -> None:
    ids = [client.enqueue(samples.record, n) for n in range(3)]

    first = cli("jobs", "list", "--json", "--limit", "2").json()
    last = cli(
        "jobs",
        "list",
        "--json",
        "--limit",
        "2",
        "--before",
        str(first["next_before"]),
    ).json()

    assert list(first) == ["jobs", "next_before"]
    assert [job["id"] for job in first["jobs"]] == [ids[2], ids[1]]
    assert first["next_before"] == ids[1]
    assert [job["id"] for job in last["jobs"]] == [ids[0]]
    assert last["next_before"] is None
    job = last["jobs"][0]
    assert list(job) == JOB_KEYS
    assert job["state"] == "enqueued"
    assert job["function"] == "tests.jobs.job_samples:record"
    assert job["attempt"] == 0
    assert job["scheduled_at"] is None
    assert _parse(job["created_at"]) <= _parse(job["state_changed_at"])


def test_list_says_so_when_there_are_no_jobs(cli: Run) -> None:
    assert cli("jobs", "list").out == "no jobs\n"
    assert cli("jobs", "list", "--json").json() == {
        "jobs": [],
        "next_before": None,
    }


def test_list_tells_how_to_get_the_next_page(
    cli: Run, client: SyncClient, samples: ModuleType
) -> None:
    client.enqueue(samples.noop)
    newest = client.enqueue(samples.noop)

    result = cli("jobs", "list", "--limit", "1")

    assert result.out.splitlines()[-1] == f"(more: add --before {newest})"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--state", "done"], "invalid state 'done' (choose from enqueued,"),
        (["--state", "Enqueued"], "invalid state 'Enqueued'"),
        (["--queue", "a b"], "invalid queue name"),
        (["--limit", "0"], "not a positive integer"),
        (["--limit", "1001"], "over 1000"),
        (["--before", "x"], "invalid job id 'x'"),
        (["--colour"], "unrecognized arguments: --colour"),
    ],
)
def test_list_refuses_bad_filters(
    cli: Run, argv: list[str], expected: str
) -> None:
    result = cli("jobs", "list", *argv)

    assert result.code == 2
    assert expected in one_error_line(result)


# -- show --------------------------------------------------------------


def test_show_json_has_arguments_parameters_and_history(
    cli: Run,
    client: SyncClient,
    storage_url: str,
    samples: ModuleType,
) -> None:
    job_id = client.enqueue(samples.record, {"n": 1}, queue="q")
    client.set_parameter(job_id, "tenant", "acme")
    arrange.fail(storage_url, job_id)

    document = cli("jobs", "show", str(job_id), "--json").json()

    assert list(document) == [
        *JOB_KEYS,
        "arguments",
        "parameters",
        "result",
        "result_error",
        "history",
    ]
    assert document["id"] == job_id
    assert document["state"] == "failed"
    assert document["attempt"] == 1
    assert document["arguments"] == {
        "args": [{"n": 1}],
        "kwargs": {"queue": "q"},
    }
    assert document["parameters"] == {"tenant": "acme"}
    history = document["history"]
    assert [entry["state"] for entry in history] == [
        "enqueued",
        "processing",
        "failed",
    ]
    assert all(
        list(entry) == ["state", "reason", "at", "data"] for entry in history
    )
    assert history[-1]["data"]["message"] == "boom 1"
    assert history[-1]["data"]["traceback"] == arrange.TRACEBACK
    times = [_parse(entry["at"]) for entry in history]
    assert times == sorted(times)


def test_show_prints_the_exception_of_a_failure(
    cli: Run,
    client: SyncClient,
    storage_url: str,
    samples: ModuleType,
) -> None:
    job_id = client.enqueue(samples.record, 7)
    arrange.fail(storage_url, job_id)

    result = cli("jobs", "show", str(job_id))

    assert result.code == 0, result.err
    out = result.out
    assert re.search(r"^state +failed \(failed\)$", out, re.MULTILINE)
    assert re.search(r"^args +\[7\]$", out, re.MULTILINE)
    assert "exception_type: builtins.RuntimeError" in out
    assert "message: boom 1" in out
    # The traceback is a block, one line of it per line of output.
    assert "      RuntimeError: boom 1\n" in out
    history = out[out.index("history (oldest first):") :].splitlines()
    states = [
        line.split()[1]
        for line in history[2:]
        if HUMAN_TIME.match(line.strip())
    ]
    assert states == ["enqueued", "processing", "failed"]


def test_control_characters_from_a_job_stay_escaped_on_their_line(
    cli: Run,
    client: SyncClient,
    storage_url: str,
    samples: ModuleType,
) -> None:
    # An exception message quoted in the reason broke the table's rows,
    # reached the terminal as escape sequences, and made `jobs show`
    # fail with a traceback from the history table.
    job_id = client.enqueue(samples.record, 7)
    arrange.fail(storage_url, job_id, message="one\ntwo \x1b[31mred\r")

    listed = cli("jobs", "list")
    shown = cli("jobs", "show", str(job_id))

    assert (listed.code, shown.code) == (0, 0), shown.err
    escaped = "failed: one\\ntwo \\x1b[31mred\\r"
    assert len(listed.out.splitlines()) == 2
    assert listed.out.splitlines()[1].endswith(escaped)
    assert f"failed ({escaped})" in shown.out
    # A message of several lines is a block; each of its lines escaped.
    lines = [line.strip() for line in shown.out.splitlines()]
    message = lines.index("message:")
    assert lines[message + 1 : message + 3] == ["one", "two \\x1b[31mred"]
    assert "\x1b" not in listed.out + shown.out
    assert "\r" not in listed.out + shown.out


def test_show_prints_the_result_as_stored(
    cli: Run,
    client: SyncClient,
    storage_url: str,
    samples: ModuleType,
) -> None:
    job_id = client.enqueue(samples.noop)
    value = {"total": Decimal("9.50"), "note": "two\nlines"}
    arrange.succeed(storage_url, job_id, value)

    result = cli("jobs", "show", str(job_id))
    document = cli("jobs", "show", str(job_id), "--json").json()

    assert result.code == 0, result.err
    stored = {
        "total": {"__bb__": "decimal", "v": "9.50"},
        "note": "two\nlines",
    }
    line = re.search(r"^result +(.+)$", result.out, re.MULTILINE)
    assert line is not None
    assert json.loads(line.group(1)) == stored
    # Printed once, on its own line, not again under the history.
    assert result.out.count('"9.50"') == 1
    assert document["result"] == stored
    assert document["result_error"] is None
    assert document["history"][-1]["data"]["result"] == stored
    assert client.get(job_id).result() == value


def test_show_says_why_a_result_was_not_kept_and_when_there_is_none(
    cli: Run,
    client: SyncClient,
    storage_url: str,
    samples: ModuleType,
) -> None:
    dropped = client.enqueue(samples.noop)
    arrange.succeed(storage_url, dropped, {"handle": object()})
    nothing = client.enqueue(samples.noop)
    arrange.succeed(storage_url, nothing, None)
    waiting = client.enqueue(samples.noop)

    dropped_text = cli("jobs", "show", str(dropped)).out
    dropped_json = cli("jobs", "show", str(dropped), "--json").json()
    nothing_text = cli("jobs", "show", str(nothing)).out
    nothing_json = cli("jobs", "show", str(nothing), "--json").json()
    waiting_text = cli("jobs", "show", str(waiting)).out

    why = "dict is not serialisable: values of type object cannot be stored"
    assert re.search(rf"^result +not kept: {why}$", dropped_text, re.MULTILINE)
    assert dropped_json["result"] is None
    assert dropped_json["result_error"] == why
    assert re.search(r"^result +null$", nothing_text, re.MULTILINE)
    assert nothing_json["result"] is None
    assert nothing_json["result_error"] is None
    assert re.search(r"^result +-$", waiting_text, re.MULTILINE)


def test_show_says_a_result_was_not_to_be_kept_and_shows_nothing_of_it(
    cli: Run, client: SyncClient, storage_url: str, samples: ModuleType
) -> None:
    job_id = client.enqueue(samples.issue_code, "ann")

    async def run_jobs() -> None:
        async with open_storage(storage_url) as storage:
            await Server(storage, poll_interval=0.05).run(until_empty=True)

    asyncio.run(run_jobs())
    text = cli("jobs", "show", str(job_id)).out
    document = cli("jobs", "show", str(job_id), "--json").json()

    why = "keep_result is off for this job"
    assert re.search(rf"^result +not kept: {why}$", text, re.MULTILINE)
    assert document["result"] is None
    assert document["result_error"] == why
    assert "s3cret" not in text
    assert "s3cret" not in json.dumps(document)


def test_show_of_a_job_without_parameters(
    cli: Run, client: SyncClient, samples: ModuleType
) -> None:
    job_id = client.enqueue_with(
        JobOptions(delay=60, timeout=1.5), samples.noop
    )

    result = cli("jobs", "show", str(job_id))

    assert re.search(r"^parameters:\n  \(none\)$", result.out, re.MULTILINE)
    assert re.search(r"^timeout +1\.5 s$", result.out, re.MULTILINE)
    scheduled = re.search(r"^scheduled +(\S+)$", result.out, re.MULTILINE)
    assert scheduled is not None
    assert HUMAN_TIME.fullmatch(scheduled.group(1))


@pytest.mark.parametrize("command", ["show", "requeue", "delete"])
def test_an_unknown_job_id_fails(
    cli: Run, client: SyncClient, samples: ModuleType, command: str
) -> None:
    client.enqueue(samples.noop)

    result = cli("jobs", command, "4242")

    assert result.code == 1
    assert one_error_line(result) == (
        "backburner: error: job 4242 does not exist"
    )


@pytest.mark.parametrize("command", ["show", "requeue", "delete"])
@pytest.mark.parametrize(
    "text", ["abc", "0", "-3", "1.5", "9223372036854775808", "9" * 23]
)
def test_a_malformed_job_id_is_a_usage_error(
    cli: Run, command: str, text: str
) -> None:
    result = cli("jobs", command, "--", text)

    assert result.code == 2
    assert f"invalid job id {text!r}" in one_error_line(result)


# -- requeue, delete -----------------------------------------------------


def test_requeue_puts_a_failed_job_back_on_its_queue(
    cli: Run,
    client: SyncClient,
    storage_url: str,
    samples: ModuleType,
) -> None:
    job_id = client.enqueue(samples.noop)
    arrange.fail(storage_url, job_id)

    result = cli("jobs", "requeue", str(job_id))

    assert (result.code, result.out) == (0, f"job {job_id} requeued\n")
    job = client.get(job_id)
    assert job.state is JobState.ENQUEUED
    assert job.attempt == 0


def test_requeue_of_an_enqueued_job_is_refused(
    cli: Run, client: SyncClient, samples: ModuleType
) -> None:
    job_id = client.enqueue(samples.noop)

    result = cli("jobs", "requeue", str(job_id))

    assert result.code == 1
    assert f"job {job_id} is enqueued: cannot move it to enqueued" in (
        one_error_line(result)
    )
    assert len(client.get(job_id).history) == 1


def test_delete_moves_a_job_to_deleted_once(
    cli: Run, client: SyncClient, samples: ModuleType
) -> None:
    job_id = client.enqueue(samples.noop)

    deleted = cli("jobs", "delete", str(job_id))
    again = cli("jobs", "delete", str(job_id))

    assert (deleted.code, deleted.out) == (0, f"job {job_id} deleted\n")
    assert client.get(job_id).state is JobState.DELETED
    assert again.code == 1
    assert f"job {job_id} is deleted: cannot move it to deleted" in (
        one_error_line(again)
    )
    assert len(client.get(job_id).history) == 2


def test_jobs_without_a_subcommand_is_a_usage_error(cli: Run) -> None:
    result = cli("jobs")

    assert result.code == 2
    assert "required: COMMAND" in one_error_line(result)
