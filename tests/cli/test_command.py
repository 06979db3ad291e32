"""The command as a whole: storage choice, version, help, usage errors."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from backburner import __version__
from backburner.jobs import SyncClient

from .conftest import SAMPLES, Run, one_error_line


def test_version(cli: Run) -> None:
    result = cli("--version")

    assert (result.code, result.out) == (0, f"backburner {__version__}\n")


def test_help_lists_every_command(cli: Run) -> None:
    result = cli("--help")

    assert result.code == 0
    for command in ("worker", "enqueue", "jobs", "stats", "migrate"):
        assert command in result.out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["launch"], "invalid choice: 'launch'"),
        (["stats", "--colour"], "unrecognized arguments: --colour"),
        (["--storage"], "argument --storage: expected one argument"),
        (["--storage", "", "stats"], "storage URL must look like"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    cli: Run, argv: list[str], expected: str
) -> None:
    result = cli(*argv)

    assert result.code == 2
    assert expected in one_error_line(result)


def test_storage_may_be_given_before_or_after_the_command(
    cli: Run, tmp_path: Path
) -> None:
    before = f"sqlite:///{tmp_path / 'before.db'}"
    after = f"sqlite:///{tmp_path / 'after.db'}"

    cli("--storage", before, "enqueue", f"{SAMPLES}:noop")
    cli("enqueue", f"{SAMPLES}:noop", "--storage", after)
    cli("enqueue", f"{SAMPLES}:noop", "--storage", after)

    with SyncClient(before) as client:
        assert len(client.list_jobs().jobs) == 1
    with SyncClient(after) as client:
        assert len(client.list_jobs().jobs) == 2


def test_the_environment_names_the_storage(
    cli: Run, client: SyncClient
) -> None:
    # The cli fixture sets BACKBURNER_STORAGE to the client's storage.
    result = cli("enqueue", f"{SAMPLES}:noop")

    assert client.get(int(result.out)).function == f"{SAMPLES}:noop"


def test_the_default_storage_is_a_file_in_the_working_directory(
    cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BACKBURNER_STORAGE")
    monkeypatch.chdir(tmp_path)

    result = cli("enqueue", f"{SAMPLES}:noop")

    assert result.code == 0, result.err
    with SyncClient(f"sqlite:///{tmp_path / 'backburner.db'}") as client:
        assert [job.id for job in client.list_jobs().jobs] == [int(result.out)]


def test_bugs_are_not_hidden(
    cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only expected errors become one line; anything else keeps its
    # traceback so that it gets reported.
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("backburner.cli.session.with_client", broken)

    with pytest.raises(ZeroDivisionError):
        cli("stats")


# -- worker --------------------------------------------------------------


@pytest.fixture
def server_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Stand in for the job server, recording how it was started.

    The end-to-end test in test_entry_point.py runs the real one.
    """
    calls: list[Any] = []

    def run_server(url: str, **options: Any) -> int:
        calls.append((url, options))
        return 0

    module = SimpleNamespace(run_server=run_server)
    monkeypatch.setitem(sys.modules, "backburner.jobs.server", module)
    return calls


def test_worker_starts_the_server_with_the_options_given(
    cli: Run, storage_url: str, server_calls: list[Any]
) -> None:
    result = cli(
        "worker",
        "--import",
        SAMPLES,
        "--import",
        "json",
        "--queues",
        "mail, default",
        "--concurrency",
        "4",
        "--processes",
        "2",
        "--name",
        "box:1",
        "--until-empty",
    )

    assert result.code == 0, result.err
    assert server_calls == [
        (
            storage_url,
            {
                "imports": [SAMPLES, "json"],
                "queues": ["mail", "default"],
                "concurrency": 4,
                "processes": 2,
                "name": "box:1",
                "until_empty": True,
            },
        )
    ]


def test_worker_defaults(
    cli: Run, storage_url: str, server_calls: list[Any]
) -> None:
    cli("worker")

    assert server_calls == [
        (
            storage_url,
            {
                "imports": [],
                "queues": ["default"],
                "concurrency": None,
                "processes": 1,
                "name": None,
                "until_empty": False,
            },
        )
    ]


def test_worker_returns_the_server_exit_code(
    cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = SimpleNamespace(run_server=lambda url, **options: 3)
    monkeypatch.setitem(sys.modules, "backburner.jobs.server", module)

    assert cli("worker").code == 3


@pytest.mark.parametrize(
    ("argv", "expected", "code"),
    [
        (["--queues", "a,,b"], "invalid queue name ''", 2),
        (["--queues", "a,a"], "a queue is repeated", 2),
        (["--concurrency", "0"], "'0' is not a positive integer", 2),
        (["--processes", "two"], "'two' is not a positive integer", 2),
        (["--storage", "nowhere"], "storage URL must look like", 2),
        (["--import", "no_such_module_xyz"], "cannot import module", 1),
    ],
)
def test_worker_refuses_bad_options_before_starting(
    cli: Run,
    server_calls: list[Any],
    argv: list[str],
    expected: str,
    code: int,
) -> None:
    result = cli("worker", *argv)

    assert result.code == code
    assert expected in one_error_line(result)
    assert server_calls == []


def test_samples_fixture_is_the_job_samples_module(
    samples: ModuleType,
) -> None:
    assert samples.__name__ == SAMPLES
