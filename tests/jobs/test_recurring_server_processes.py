"""Three ``backburner worker`` processes and one per-second recurring job.

The servers are real command-line workers, each a process of its own,
on one storage: a fresh PostgreSQL schema, or one SQLite file. The test
process defines a recurring job with the cron ``* * * * * *`` and lets
it run; the job function (``every_second_jobs.tick``) appends its job
id and process id to a file. Then, for the window from the first
occurrence to the last one created before the pause:

- every second has exactly one job (none skipped, none twice);
- every job succeeded and ran exactly once, in one of the three
  servers, and the server its history names is the process that wrote
  its line.

The window starts at the first occurrence after the definition (that is
what ``add_or_update`` promises) and the test waits until the scheduled
end has been created before it pauses, so no occurrence may be missing
at either end: the servers run throughout and are never a whole grace
(``missed_run_grace``) late. The workers keep the server's default
tuning: a server is declared dead after 15 s of silence, far more than
a loaded machine stalls one, since a job recovered from a live server
would rightly run twice. A minute on each storage is ``slow``; the
default run has a short version of each.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import every_second_jobs
import psycopg
import pytest
from psycopg import sql
from server_helpers import TESTS_JOBS, eventually

from backburner.jobs import Call, Client, JobState
from backburner.storage import Storage, open_storage

pytestmark = pytest.mark.timeout(240)

RECURRING_ID = "every-second"
SCRIPT = str(Path(sys.executable).with_name("backburner"))
SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Run:
    """One line the job function wrote."""

    job_id: int
    pid: int
    at: float


def read_runs(path: Path) -> list[Run]:
    if not path.exists():
        return []
    runs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        job_id, pid, at = line.split()
        runs.append(Run(int(job_id), int(pid), float(at)))
    return runs


class Workers:
    """``backburner worker`` processes; killed at the end if alive."""

    def __init__(self, url: str, logs: Path) -> None:
        self.url = url
        self.logs = logs
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(TESTS_JOBS)}
        log = self.logs / f"worker{len(self.children)}.log"
        child = subprocess.Popen(
            [
                SCRIPT,
                "worker",
                "--storage",
                self.url,
                "--import",
                every_second_jobs.__name__,
                "--concurrency",
                "2",
            ],
            cwd=self.logs,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        self.children.append(child)
        return child

    def kill_all(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.kill()
                child.wait()


def pid_of(server_name: str) -> int:
    """The process id in a default server name, ``host:pid``."""
    return int(server_name.rsplit(":", 1)[1])


async def registered(storage: Storage, pids: set[int]) -> None:
    async def all_there() -> bool:
        servers = await storage.list_servers()
        return pids <= {pid_of(server.name) for server in servers}

    await eventually(all_there, within=60, what="the workers to register")


async def stop_gracefully(workers: Workers) -> None:
    for child in workers.children:
        child.send_signal(signal.SIGTERM)
    for child in workers.children:
        code = await asyncio.to_thread(child.wait, 60)
        assert code == 0, f"worker {child.pid} exited with {code}"


def next_second_after(unix_time: float) -> datetime:
    """The first whole second strictly after ``unix_time``."""
    return datetime.fromtimestamp(math.floor(unix_time) + 1, UTC)


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One job the recurring job created, and what became of it."""

    at: datetime
    job_id: int
    state: JobState
    servers: list[str]
    """Every server its history names (processing, then succeeded)."""


async def occurrences_in(storage: Storage) -> list[Occurrence]:
    found = []
    for job in await storage.list_jobs(limit=10_000):
        parameters = await storage.get_parameters(job.id)
        assert parameters["recurring_job"] == f'"{RECURRING_ID}"'
        at = datetime.fromisoformat(parameters["occurrence"].strip('"'))
        history = await storage.get_history(job.id)
        servers = [
            str(entry.data["server"])
            for entry in history
            if "server" in entry.data
        ]
        found.append(Occurrence(at, job.id, job.state, servers))
    return sorted(found, key=lambda occurrence: occurrence.at)


@dataclass(frozen=True, slots=True)
class Window:
    """The occurrences a run must have created, one job each."""

    defined_between: tuple[float, float]
    """Unix times just before and just after ``add_or_update``."""
    first: datetime
    end: datetime
    """The last occurrence the test waited for before pausing."""
    last: datetime
    """The last occurrence created before the pause took effect."""

    @property
    def seconds(self) -> list[datetime]:
        count = (self.last - self.first) // SECOND + 1
        return [self.first + k * SECOND for k in range(count)]


async def run_window(client: Client, out: Path, seconds: int) -> Window:
    """Define the recurring job, let ``seconds`` occurrences be created,
    then pause it."""
    before = time.time()
    await client.recurring.add_or_update(
        RECURRING_ID, "* * * * * *", Call(every_second_jobs.tick, str(out))
    )
    after = time.time()
    first = (await client.recurring.get(RECURRING_ID)).next_run_at
    assert first is not None
    end = first + (seconds - 1) * SECOND

    async def end_created() -> bool:
        job = await client.recurring.get(RECURRING_ID)
        return job.last_run_at is not None and job.last_run_at >= end

    await eventually(
        end_created, within=seconds + 60, what=f"the occurrence {end}"
    )
    await client.recurring.pause(RECURRING_ID)
    last = (await client.recurring.get(RECURRING_ID)).last_run_at
    assert last is not None
    return Window((before, after), first, end, last)


async def settled(client: Client) -> None:
    """Wait until no job is waiting to run or running."""

    async def idle() -> bool:
        counts = (await client.counts()).by_state
        return counts[JobState.ENQUEUED] + counts[JobState.PROCESSING] == 0

    await eventually(idle, within=60, what="every job to finish")


def check_each_second_once(
    window: Window, occurrences: list[Occurrence]
) -> None:
    before, after = window.defined_between
    # The window opens at the first occurrence after the definition...
    assert next_second_after(before) <= window.first
    assert window.first <= next_second_after(after)
    # ...and closes at the last one created before the pause.
    assert window.last >= window.end
    created = Counter(occurrence.at for occurrence in occurrences)
    twice = sorted(at for at, count in created.items() if count > 1)
    assert not twice, f"occurrences with more than one job: {twice}"
    missing = sorted(set(window.seconds) - set(created))
    assert not missing, f"occurrences without a job: {missing}"
    assert sorted(created) == window.seconds, "a job outside the window"


def check_each_job_ran_once(
    occurrences: list[Occurrence],
    runs: list[Run],
    pids: set[int],
    taking_part: int,
) -> None:
    states = Counter(occurrence.state for occurrence in occurrences)
    assert states == {JobState.SUCCEEDED: len(occurrences)}
    ran = Counter(run.job_id for run in runs)
    job_ids = {occurrence.job_id for occurrence in occurrences}
    assert set(ran) == job_ids, "every job ran, and only those"
    assert max(ran.values()) == 1, f"jobs that ran twice: {ran}"

    ran_in = {run.job_id: run.pid for run in runs}
    for occurrence in occurrences:
        # The processing and succeeded entries name the process that
        # wrote the job's line, and no other.
        named = {pid_of(server) for server in occurrence.servers}
        assert named == {ran_in[occurrence.job_id]}, occurrence
    by_pid = Counter(run.pid for run in runs)
    assert set(by_pid) <= pids
    assert len(by_pid) >= taking_part, f"jobs run per server: {by_pid}"


async def run_for(
    url: str, logs: Path, seconds: int, taking_part: int
) -> None:
    """Three worker processes run a per-second recurring job for
    ``seconds`` seconds; every occurrence gets one job, run once, and
    at least ``taking_part`` of the servers run some."""
    out = logs / "runs.txt"
    storage = open_storage(url)
    workers = Workers(url, logs)
    try:
        await storage.migrate()
        client = Client(storage)
        pids = {workers.start().pid for _ in range(3)}
        await registered(storage, pids)

        window = await run_window(client, out, seconds)
        await settled(client)
        await stop_gracefully(workers)
        occurrences = await occurrences_in(storage)
    finally:
        workers.kill_all()
        await storage.close()

    check_each_second_once(window, occurrences)
    check_each_job_ran_once(occurrences, read_runs(out), pids, taking_part)


# -- fixtures -----------------------------------------------------------------


@pytest.fixture
def schema_url(postgres_url: str) -> Iterator[str]:
    """A URL of a fresh schema on the shared server, dropped afterwards."""
    schema = f"test_every_second_{uuid.uuid4().hex[:10]}"
    yield f"{postgres_url}?schema={schema}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)
            )
        )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


# -- PostgreSQL ---------------------------------------------------------------


@pytest.mark.postgres
async def test_three_workers_on_postgresql_run_each_second_once(
    schema_url: str, tmp_path: Path
) -> None:
    await run_for(schema_url, tmp_path, 10, taking_part=2)


@pytest.mark.slow
@pytest.mark.postgres
async def test_three_workers_on_postgresql_for_a_minute(
    schema_url: str, tmp_path: Path
) -> None:
    await run_for(schema_url, tmp_path, 60, taking_part=2)


# -- SQLite -------------------------------------------------------------------


async def test_three_workers_on_one_sqlite_file_run_each_second_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    # Five occurrences may all be won by one server, by chance.
    await run_for(sqlite_url, tmp_path, 5, taking_part=1)


@pytest.mark.slow
async def test_three_workers_on_one_sqlite_file_for_a_minute(
    sqlite_url: str, tmp_path: Path
) -> None:
    await run_for(sqlite_url, tmp_path, 60, taking_part=2)
