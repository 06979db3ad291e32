"""The installed ``backburner`` script and ``python -m backburner``.

These run real processes, to prove the entry points and the exit codes
a shell sees; the other test modules call ``main()`` in-process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from backburner import __version__
from backburner.jobs import Call, SyncClient

from .conftest import REPO_ROOT, SAMPLES

SCRIPT = str(Path(sys.executable).with_name("backburner"))
COMMANDS = {
    "script": [SCRIPT],
    "module": [sys.executable, "-m", "backburner"],
}


@pytest.fixture(params=sorted(COMMANDS))
def command(request: pytest.FixtureRequest) -> list[str]:
    return COMMANDS[request.param]


def _run(
    argv: list[str],
    storage_url: str,
    timeout: float = 60,
    **variables: str,
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "BACKBURNER_STORAGE": storage_url,
        **variables,
    }
    return subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_version(command: list[str], storage_url: str) -> None:
    done = _run([*command, "--version"], storage_url)

    assert (done.returncode, done.stdout) == (0, f"backburner {__version__}\n")


def test_enqueue_then_show(command: list[str], storage_url: str) -> None:
    enqueued = _run(
        [*command, "enqueue", f"{SAMPLES}:record", "[1, 2]"], storage_url
    )
    job_id = int(enqueued.stdout)
    shown = _run(
        [*command, "jobs", "show", str(job_id), "--json"], storage_url
    )

    assert enqueued.returncode == 0, enqueued.stderr
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["state"] == "enqueued"
    assert document["arguments"] == {"args": [[1, 2]], "kwargs": {}}


@pytest.mark.parametrize(
    ("argv", "code", "expected"),
    [
        (["jobs", "list", "--state", "done"], 2, "invalid state 'done'"),
        (["enqueue", f"{SAMPLES}:record", "{"], 2, "is not valid JSON"),
        (["--storage", "nowhere", "stats"], 2, "storage URL must look"),
        (["enqueue", "no_such_module_xyz:f"], 1, "No module named"),
        (["jobs", "show", "77"], 1, "job 77 does not exist"),
    ],
)
def test_mistakes_are_one_line_and_an_exit_code(
    command: list[str],
    storage_url: str,
    argv: list[str],
    code: int,
    expected: str,
) -> None:
    done = _run([*command, *argv], storage_url)

    assert done.returncode == code
    assert done.stdout == ""
    assert done.stderr.startswith("backburner: error: ")
    assert expected in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_job_functions_are_found_from_the_working_directory(
    tmp_path: Path,
) -> None:
    # The installed script's own folder is first on its path, not the
    # working directory: the command puts the latter there itself.
    (tmp_path / "cli_project_jobs.py").write_text(
        "def send(to):\n    return to\n", encoding="utf-8"
    )
    storage_url = f"sqlite:///{tmp_path / 'jobs.db'}"
    environment = {**os.environ, "BACKBURNER_STORAGE": storage_url}
    environment.pop("PYTHONPATH", None)

    done = subprocess.run(
        [SCRIPT, "enqueue", "cli_project_jobs:send", '"ann"'],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (done.returncode, done.stderr) == (0, "")
    assert int(done.stdout) == 1


def test_commands_other_than_worker_print_no_log_records(
    tmp_path: Path,
) -> None:
    # Stands for a driver logging its retries: without care, Python's
    # last-resort handler prints each WARNING around the one error line.
    (tmp_path / "cli_noisy_jobs.py").write_text(
        "import logging\n"
        "logging.getLogger('driver').warning('retrying connection')\n"
        "def send(to):\n    return to\n",
        encoding="utf-8",
    )
    environment = {
        **os.environ,
        "BACKBURNER_STORAGE": f"sqlite:///{tmp_path / 'jobs.db'}",
    }

    done = subprocess.run(
        [sys.executable, "-m", "backburner", "enqueue", "cli_noisy_jobs:send"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "backburner: error: cli_noisy_jobs:send(to) cannot take these "
        "arguments: missing a required argument: 'to'"
    ]


def test_a_worker_runs_a_job_enqueued_from_the_command_line(
    storage_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "out.txt"
    enqueued = _run(
        [
            SCRIPT,
            "enqueue",
            f"{SAMPLES}:append_line",
            json.dumps(str(target)),
            '"hi"',
        ],
        storage_url,
    )
    job_id = enqueued.stdout.strip()

    worker = _run(
        [SCRIPT, "worker", "--import", SAMPLES, "--until-empty"],
        storage_url,
        timeout=90,
    )
    shown = _run([SCRIPT, "jobs", "show", job_id, "--json"], storage_url)

    assert worker.returncode == 0, worker.stderr
    assert json.loads(shown.stdout)["state"] == "succeeded"
    assert target.read_text(encoding="utf-8") == "hi\n"


def test_a_reader_that_goes_away_gets_no_traceback(
    storage_url: str, samples: ModuleType
) -> None:
    with SyncClient(storage_url) as client:
        client.enqueue_many([Call(samples.noop) for _ in range(1000)])
    environment = {**os.environ, "BACKBURNER_STORAGE": storage_url}
    # Unbuffered, Python drops the rest of a partial write silently and
    # the closed pipe would go unnoticed: test the usual, buffered case.
    environment.pop("PYTHONUNBUFFERED", None)

    # Far more than a pipe holds: the command is still writing when the
    # reader closes its end after the first line, like `| head -1`.
    with subprocess.Popen(
        [SCRIPT, "jobs", "list", "--limit", "1000"],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline().split()[0] == "ID"
        process.stdout.close()
        stderr = process.stderr.read()
        code = process.wait(timeout=60)

    assert (code, stderr) == (1, "")


def test_a_worker_stops_cleanly_on_sigterm(storage_url: str) -> None:
    environment = {**os.environ, "BACKBURNER_STORAGE": storage_url}
    with subprocess.Popen(
        [SCRIPT, "worker", "--import", SAMPLES, "--name", "cli-test"],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stderr is not None
        # The server logs its start once it is registered: wait for it.
        for line in process.stderr:
            if "started" in line:
                break
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)

    assert code == 0


# Put first on the path of a child process, this sends the process a
# SIGINT (what Ctrl-C does) as it starts importing one module: an
# interrupt at a known moment of the command's start.
_INTERRUPT_ON_IMPORT = """
import os, signal, sys

class _InterruptOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["INTERRUPT_ON_IMPORT"]:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, _InterruptOnImport())
"""


def _with_site(tmp_path: Path, code: str) -> str:
    """A PYTHONPATH that runs ``code`` first in every child (as its
    ``sitecustomize``)."""
    (tmp_path / "sitecustomize.py").write_text(code)
    return os.pathsep.join(
        filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])
    )


@pytest.mark.parametrize(
    "module", ["typing", "backburner.cli", "backburner.jobs.server", "asyncio"]
)
def test_ctrl_c_while_the_command_loads_is_a_clean_exit(
    command: list[str], storage_url: str, tmp_path: Path, module: str
) -> None:
    done = _run(
        [*command, "worker"],
        storage_url,
        INTERRUPT_ON_IMPORT=module,
        PYTHONPATH=_with_site(tmp_path, _INTERRUPT_ON_IMPORT),
    )

    assert (done.returncode, done.stderr) == (
        130,
        "backburner: interrupted\n",
    ), done.stderr


# Added to the above, this presses Ctrl-C again as the process ends,
# while Python waits for threads and runs its exit hooks.
_INTERRUPT_AGAIN_AT_EXIT = """
import atexit, os, signal

@atexit.register
def _interrupt_again():
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(1000):  # bytecodes for the interrupt to land on
        pass
"""


@pytest.mark.parametrize(
    # Caught by the entry point, and by main() around the command.
    "module",
    ["backburner.cli", "backburner.jobs.server"],
)
def test_ctrl_c_pressed_again_while_the_command_ends_is_ignored(
    command: list[str], storage_url: str, tmp_path: Path, module: str
) -> None:
    done = _run(
        [*command, "worker"],
        storage_url,
        INTERRUPT_ON_IMPORT=module,
        PYTHONPATH=_with_site(
            tmp_path, _INTERRUPT_ON_IMPORT + _INTERRUPT_AGAIN_AT_EXIT
        ),
    )

    assert (done.returncode, done.stderr) == (
        130,
        "backburner: interrupted\n",
    ), done.stderr


def test_ctrl_c_as_a_finished_command_exits_is_ignored(
    command: list[str], storage_url: str, tmp_path: Path
) -> None:
    # As when a worker stopped on a Ctrl-C pressed more than once.
    done = _run(
        [*command, "worker", "--until-empty"],
        storage_url,
        PYTHONPATH=_with_site(tmp_path, _INTERRUPT_AGAIN_AT_EXIT),
    )

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_importing_the_package_loads_no_submodule() -> None:
    # What makes the clean exit above possible: the entry points import
    # the package before they can catch anything.
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, backburner;"
            " print(sorted(m for m in sys.modules"
            " if m.startswith(('backburner.', 'asyncio'))))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert found.stdout == "[]\n"


# Put first on the path of a child process, this sends that process (the
# command, not the server processes it starts) a SIGINT just after it
# started its first server process: a Ctrl-C while `--processes` starts.
_INTERRUPT_AFTER_FIRST_START = """
import os, signal
import multiprocessing.process as process

_start = process.BaseProcess.start

def _start_then_interrupt(self):
    _start(self)
    process.BaseProcess.start = _start
    os.kill(os.getpid(), signal.SIGINT)

process.BaseProcess.start = _start_then_interrupt
"""


def test_ctrl_c_while_server_processes_start_stops_them_all(
    storage_url: str, tmp_path: Path
) -> None:
    environment = {
        **os.environ,
        "BACKBURNER_STORAGE": storage_url,
        "PYTHONPATH": _with_site(tmp_path, _INTERRUPT_AFTER_FIRST_START),
    }
    log = tmp_path / "stderr.txt"
    with (
        log.open("w") as stderr,
        subprocess.Popen(
            [SCRIPT, "worker", "--import", SAMPLES, "--processes", "2"],
            cwd=REPO_ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        ) as process,
    ):
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        # Whatever happened, leave no server process behind.
        left = subprocess.run(
            ["pgrep", "-g", str(process.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    # Forwarded to the server processes, the Ctrl-C is a clean stop.
    errors = log.read_text()
    assert code == 0, errors
    assert [pid for pid in left if int(pid) != process.pid] == []
    assert "SIGINT: stopping the server processes" in errors
    assert "Traceback" not in errors
