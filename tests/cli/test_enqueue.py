"""``backburner enqueue``: checks before writing, then one job."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backburner.jobs import JobState, SyncClient

from .conftest import SAMPLES, Run, one_error_line


def test_enqueue_prints_the_id_of_a_job_with_those_arguments(
    cli: Run, client: SyncClient
) -> None:
    result = cli(
        "enqueue",
        f"{SAMPLES}:record",
        '{"to": ["ann", 2]}',
        "--kwargs",
        '{"queue": "q"}',
        "--queue",
        "mail",
    )

    assert result.code == 0, result.err
    job = client.get(int(result.out))
    assert result.out == f"{job.id}\n"
    assert job.function == f"{SAMPLES}:record"
    assert job.queue == "mail"
    assert job.state is JobState.ENQUEUED
    assert job.arguments() == (({"to": ["ann", 2]},), {"queue": "q"})


def test_each_argument_is_one_json_value(cli: Run, client: SyncClient) -> None:
    result = cli(
        "enqueue", f"{SAMPLES}:append_line", '"/tmp/x"', '"a \\"b\\""'
    )

    assert result.code == 0, result.err
    assert client.get(int(result.out)).arguments() == (
        ("/tmp/x", 'a "b"'),
        {},
    )


def test_delay_schedules_the_job_and_timeout_is_stored(
    cli: Run, client: SyncClient
) -> None:
    before = datetime.now(UTC)

    result = cli(
        "enqueue", f"{SAMPLES}:noop", "--delay", "90", "--timeout", "2.5"
    )

    job = client.get(int(result.out))
    assert job.state is JobState.SCHEDULED
    assert job.scheduled_at is not None
    assert job.scheduled_at >= before + timedelta(seconds=90)
    assert job.timeout == 2.5


def test_a_zero_delay_enqueues_now(cli: Run, client: SyncClient) -> None:
    result = cli("enqueue", f"{SAMPLES}:noop", "--delay", "0")

    assert client.get(int(result.out)).state is JobState.ENQUEUED


def test_a_runner_method_is_checked_without_self(
    cli: Run, client: SyncClient
) -> None:
    result = cli("enqueue", f"{SAMPLES}:Mailer.send", '"bob"')

    assert result.code == 0, result.err
    assert client.get(int(result.out)).function == f"{SAMPLES}:Mailer.send"


def test_a_cancellation_token_parameter_may_be_left_out(
    cli: Run, client: SyncClient
) -> None:
    result = cli("enqueue", f"{SAMPLES}:wait_for_token", '"n"')

    assert result.code == 0, result.err
    assert client.get(int(result.out)).arguments() == (("n",), {})


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("no_such_module_xyz:run", "No module named 'no_such_module_xyz'"),
        (f"{SAMPLES}:no_such_function", "has no attribute"),
        (f"{SAMPLES}:calls", "is not callable"),
    ],
)
def test_a_function_that_cannot_be_found_writes_nothing(
    cli: Run, client: SyncClient, reference: str, expected: str
) -> None:
    result = cli("enqueue", reference)

    assert result.code == 1
    assert expected in one_error_line(result)
    assert client.list_jobs().jobs == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["record"], "missing a required argument: 'value'"),
        (["record", "1", "2"], "too many positional arguments"),
        (
            ["record", "1", "--kwargs", '{"colour": 1}'],
            "unexpected keyword argument 'colour'",
        ),
        (["Mailer.send"], "missing a required argument: 'to'"),
    ],
)
def test_arguments_the_function_cannot_take_write_nothing(
    cli: Run, client: SyncClient, argv: list[str], expected: str
) -> None:
    result = cli("enqueue", f"{SAMPLES}:{argv[0]}", *argv[1:])

    assert result.code == 1
    assert expected in one_error_line(result)
    assert client.list_jobs().jobs == []


def test_a_value_storage_refuses_writes_nothing(
    cli: Run, client: SyncClient
) -> None:
    result = cli("enqueue", f"{SAMPLES}:record", '"nul \\u0000 inside"')

    assert result.code == 1
    assert "NUL" in one_error_line(result)
    assert client.list_jobs().jobs == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["record", "{oops"], "argument 1 is not valid JSON"),
        (["record", "hello"], "argument 1 is not valid JSON"),
        (["record", "NaN"], "NaN is not valid JSON"),
        (["record", "1", "--kwargs", "[1]"], "must be a JSON object"),
        (["record", "1", "--kwargs", "{"], "--kwargs is not valid JSON"),
        (["record", "1", "--queue", "no spaces"], "invalid queue name"),
        (["record", "1", "--delay", "-1"], "not a number of seconds"),
        (["record", "1", "--delay", "1e300"], "invalid delay 1e+300"),
        (["record", "1", "--delay", "inf"], "not a number of seconds"),
        (["record", "1", "--timeout", "0"], "(finite, > 0)"),
        (["record", "1", "--timeout", "-0.0"], "(finite, > 0)"),
        (["record", "1", "--timeout", "nan"], "(finite, > 0)"),
        (["record", "1", "--timeout", "-5"], "(finite, > 0)"),
    ],
)
def test_a_malformed_command_line_is_a_usage_error(
    cli: Run, client: SyncClient, argv: list[str], expected: str
) -> None:
    result = cli("enqueue", f"{SAMPLES}:{argv[0]}", *argv[1:])

    assert result.code == 2
    assert expected in one_error_line(result)
    assert client.list_jobs().jobs == []


def test_a_reference_without_a_colon_is_a_usage_error(cli: Run) -> None:
    result = cli("enqueue", "tests.jobs.job_samples.noop")

    assert result.code == 2
    assert "must be MODULE:FUNCTION" in one_error_line(result)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("jobs.db", "storage URL must look like"),
        ("mysql://db/jobs", "unknown storage 'mysql'"),
        ("sqlite://host/jobs.db", "SQLite URLs have no host"),
        ("postgresql://ann:secret@[::1/jobs", "malformed storage URL"),
        ("sqlite://[::1/jobs.db", "malformed storage URL"),
        ("sqlite:///jobs%00.db", "NUL character"),
        ("postgresql://ann:secret@db/jobs?bogus=1", "bogus"),
        ("sqlite:///:memory:", "in memory"),
        ("postgresql://ann:secret@db:99999/jobs", "port '99999'"),
        ("sqlite:///jobs.db?busy_timeout=nan", "busy_timeout must be"),
        ("sqlite:///jobs.db?busy_timeout=inf", "busy_timeout must be"),
        ("sqlite:///jobs.db?busy_timeout=-1", "busy_timeout must be"),
    ],
)
def test_an_unusable_storage_url_is_a_usage_error(
    cli: Run, url: str, expected: str
) -> None:
    result = cli("--storage", url, "enqueue", f"{SAMPLES}:noop")

    assert result.code == 2
    assert expected in one_error_line(result)
    assert "secret" not in result.err


def test_a_storage_that_cannot_be_opened_fails(
    cli: Run, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'missing-folder' / 'jobs.db'}"

    result = cli("enqueue", f"{SAMPLES}:noop", "--storage", url)

    assert result.code == 1
    assert "unable to open database file" in one_error_line(result)


def test_the_refusal_shows_the_signature_to_call(cli: Run) -> None:
    result = cli("enqueue", f"{SAMPLES}:record", "1", "2")

    assert one_error_line(result) == (
        f"backburner: error: {SAMPLES}:record(value, *, queue='', "
        "func='') cannot take these arguments: too many positional "
        "arguments"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = (\n", "SyntaxError: '(' was never closed"),
        ("raise RuntimeError('no SETTINGS')\n", "RuntimeError: no SETTINGS"),
    ],
)
def test_a_module_that_fails_to_import_is_one_line(
    cli: Run,
    client: SyncClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    expected: str,
) -> None:
    name = f"cli_broken_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))

    result = cli("enqueue", f"{name}:run")

    assert result.code == 1
    assert expected in one_error_line(result)
    assert client.list_jobs().jobs == []


def test_a_huge_bad_argument_is_not_echoed_whole(
    cli: Run, client: SyncClient
) -> None:
    huge = "{" + "x" * 120_000

    result = cli("enqueue", f"{SAMPLES}:record", huge)

    assert result.code == 2
    line = one_error_line(result)
    assert "argument 1 is not valid JSON" in line
    assert len(line) < 1200
    assert "more characters)" in line
    assert client.list_jobs().jobs == []
