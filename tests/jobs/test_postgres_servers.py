"""Several server processes on one PostgreSQL database.

Each server is a child process (``postgres_fleet.py``) with the tests'
short intervals; the test process is the client elsewhere. Job
functions write what they did to a file (``<event> <text> <pid>
<time>``), which is how the tests see executions across processes.

The machine's PostgreSQL is shared, so each test works in a schema of
its own; the restart tests start a private cluster (``pg_cluster``)
that they may stop and start. The big versions (20,000 jobs, repeated
restarts) are ``slow``; small versions of each run by default.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import postgres_fleet
import psycopg
import pytest
from psycopg import sql
from server_helpers import FAST, TESTS_JOBS, eventually

from backburner.jobs import Call, Client, JobState
from backburner.jobs.heartbeat import RECOVERY_REASON
from backburner.storage import Storage, StorageError, open_storage
from pg_cluster import PrivateCluster, private_cluster

__all__ = ["private_cluster"]

S = JobState
pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]
TESTS = TESTS_JOBS.parent


@dataclass(frozen=True, slots=True)
class Line:
    """One event a job function wrote."""

    event: str
    text: str
    pid: int
    at: float


def read_lines(path: Path) -> list[Line]:
    if not path.exists():
        return []
    found = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        event, text, pid, at = raw.split()
        found.append(Line(event, text, int(pid), float(at)))
    return found


def texts_of(path: Path, event: str) -> Counter[str]:
    return Counter(
        line.text for line in read_lines(path) if line.event == event
    )


class Fleet:
    """Server processes on one storage URL; killed at the end if alive."""

    def __init__(self, url: str, logs: Path) -> None:
        self.url = url
        self.logs = logs
        self.children: list[subprocess.Popen[bytes]] = []

    def spawn(self, *options: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS_JOBS), str(TESTS)]),
        }
        log = self.logs / f"server{len(self.children)}.log"
        child = subprocess.Popen(
            [
                sys.executable,
                str(TESTS_JOBS / "postgres_fleet.py"),
                self.url,
                *options,
            ],
            env=env,
            stderr=log.open("wb"),
        )
        self.children.append(child)
        return child

    def kill_all(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.kill()
                child.wait()


def server_name(child: subprocess.Popen[bytes]) -> str:
    return f"{os.uname().nodename}:{child.pid}"


async def exited(child: subprocess.Popen[bytes], within: float = 60) -> int:
    return await asyncio.to_thread(child.wait, within)


async def registered(
    storage: Storage, children: list[subprocess.Popen[bytes]]
) -> None:
    """Wait until every child server has registered (and so listens)."""
    wanted = {server_name(child) for child in children}

    async def all_there() -> bool:
        names = {server.name for server in await storage.list_servers()}
        return wanted <= names

    await eventually(all_there, within=60, what="the servers to register")


async def stop_gracefully(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        child.send_signal(signal.SIGTERM)
    for child in children:
        assert await exited(child) == 0


async def succeeded_count(client: Client) -> int:
    try:
        return (await client.counts()).by_state[S.SUCCEEDED]
    except StorageError:
        # The database is restarting: ask again at the next look.
        return -1


async def all_succeeded(client: Client, count: int, within: float) -> None:
    async def done() -> bool:
        return await succeeded_count(client) == count

    await eventually(done, within=within, what=f"{count} jobs to succeed")


async def enqueue_in_batches(client: Client, calls: list[Call]) -> list[int]:
    ids: list[int] = []
    for start in range(0, len(calls), 1000):
        ids += await client.enqueue_many(calls[start : start + 1000])
    return ids


# -- fixtures -----------------------------------------------------------------


@pytest.fixture
def schema_url(postgres_url: str) -> Iterator[str]:
    """A URL of a fresh schema on the shared server, dropped afterwards."""
    schema = f"test_fleet_{uuid.uuid4().hex[:10]}"
    yield f"{postgres_url}?schema={schema}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)
            )
        )


async def _open(url: str) -> Storage:
    storage = open_storage(url)
    await storage.migrate()
    return storage


@pytest.fixture
async def storage(schema_url: str) -> AsyncIterator[Storage]:
    opened = await _open(schema_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def fleet(schema_url: str, tmp_path: Path) -> Iterator[Fleet]:
    servers = Fleet(schema_url, tmp_path)
    yield servers
    servers.kill_all()


# -- draining -----------------------------------------------------------------


async def drain_with_three_servers(
    storage: Storage, fleet: Fleet, out: Path, jobs: int, kill: bool
) -> None:
    """Three servers drain ``jobs`` jobs; with ``kill``, one is killed
    (SIGKILL) halfway. Every job runs, and only jobs that the killed
    server was running run twice."""
    client = Client(storage)
    texts = [f"j{i}" for i in range(jobs)]
    servers = [fleet.spawn() for _ in range(3)]
    await registered(storage, servers)
    await enqueue_in_batches(
        client, [Call(postgres_fleet.mark, str(out), t) for t in texts]
    )

    running_at_kill: set[str] = set()
    if kill:
        victim = servers.pop(1)

        def half_done() -> bool:
            return sum(texts_of(out, "ran").values()) >= jobs // 2

        await eventually(half_done, within=120, what="half the jobs")
        victim.send_signal(signal.SIGKILL)
        await exited(victim)
        # The victim's heartbeat is silent from now on; its jobs stay in
        # processing for dead_after seconds, long enough to list them.
        held = await storage.list_jobs(state=S.PROCESSING, limit=10_000)
        for job in held:
            if job.server == server_name(victim):
                args, _ = (await client.get(job.id)).arguments()
                running_at_kill.add(str(args[1]))

    await all_succeeded(client, jobs, within=max(60, jobs / 50))
    await stop_gracefully(servers)

    ran = texts_of(out, "ran")
    assert set(ran) == set(texts), "every job runs"
    twice = {text for text, count in ran.items() if count > 1}
    assert twice <= running_at_kill
    by_pid = Counter(
        line.pid for line in read_lines(out) if line.event == "ran"
    )
    assert len(by_pid) == 3, f"every server takes part: {by_pid}"


async def test_three_servers_drain_2000_jobs_each_exactly_once(
    storage: Storage, fleet: Fleet, tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    await drain_with_three_servers(storage, fleet, out, 2000, kill=False)
    assert max(texts_of(out, "ran").values()) == 1


@pytest.mark.slow
async def test_three_servers_drain_20000_jobs_with_one_killed_midway(
    storage: Storage, fleet: Fleet, tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    await drain_with_three_servers(storage, fleet, out, 20_000, kill=True)


# -- a server killed ----------------------------------------------------------


async def test_jobs_of_a_killed_server_are_recovered_within_the_window(
    storage: Storage, fleet: Fleet, tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    client = Client(storage)
    texts = [f"k{i}" for i in range(90)]
    servers = [fleet.spawn("--concurrency", "4") for _ in range(3)]
    await registered(storage, servers)
    await enqueue_in_batches(
        client,
        [Call(postgres_fleet.mark_slowly, str(out), t, 0.3) for t in texts],
    )
    victim = servers.pop(0)

    def victim_is_busy() -> bool:
        mine = [line for line in read_lines(out) if line.pid == victim.pid]
        return sum(line.event == "end" for line in mine) >= 2 and any(
            line.event == "start" for line in mine[-4:]
        )

    await eventually(victim_is_busy, within=60, what="the victim to work")
    victim.send_signal(signal.SIGKILL)
    killed_at = time.time()
    await exited(victim)
    # Its registration stays until a survivor declares it dead.
    [last_beat] = [
        server.heartbeat_at
        for server in await storage.list_servers()
        if server.name == server_name(victim)
    ]
    held = [
        job
        for job in await storage.list_jobs(state=S.PROCESSING, limit=1000)
        if job.server == server_name(victim)
    ]
    assert held, "the kill should hit running jobs"

    await all_succeeded(client, len(texts), within=90)
    await stop_gracefully(servers)

    assert set(texts_of(out, "end")) == set(texts), "no job is lost"
    window = FAST["dead_after"] + FAST["heartbeat_interval"]
    survivors = {server_name(child) for child in servers}
    for record in held:
        job = await client.get(record.id)
        recovery = [e for e in job.history if e.reason == RECOVERY_REASON]
        assert len(recovery) == 1
        # Never before the victim has been silent for dead_after, and
        # soon after (generous: the survivors share two busy cores).
        silence = (recovery[0].at - last_beat).total_seconds()
        assert silence >= FAST["dead_after"]
        delay = recovery[0].at.timestamp() - killed_at
        assert delay < window + 5.0, f"recovered after {delay:.2f} s"
        assert job.history[-1].data["server"] in survivors


# -- PostgreSQL restarted -----------------------------------------------------


async def restart_midway(
    cluster: PrivateCluster, tmp_path: Path, jobs: int, restarts: int
) -> None:
    """Three servers drain ``jobs`` jobs while the database restarts
    ``restarts`` times; every server carries on and no job is lost."""
    out = tmp_path / "out.txt"
    storage = await _open(cluster.url)
    fleet = Fleet(cluster.url, tmp_path)
    try:
        client = Client(storage)
        texts = [f"r{i}" for i in range(jobs)]
        servers = [fleet.spawn() for _ in range(3)]
        await registered(storage, servers)
        await enqueue_in_batches(
            client,
            [
                Call(postgres_fleet.mark_slowly, str(out), t, 0.05)
                for t in texts
            ],
        )
        restarted_at = 0.0
        for round_ in range(1, restarts + 1):
            target = jobs * round_ // (restarts + 2)

            def enough(target: int = target) -> bool:
                return sum(texts_of(out, "end").values()) >= target

            await eventually(enough, within=120, what=f"{target} jobs")
            await asyncio.to_thread(cluster.stop)
            await asyncio.to_thread(cluster.start)
            restarted_at = time.time()

        await all_succeeded(client, jobs, within=120)
        assert all(child.poll() is None for child in servers)
        await registered(storage, servers)
        await stop_gracefully(servers)
    finally:
        fleet.kill_all()
        await storage.close()

    assert set(texts_of(out, "end")) == set(texts), "no job is lost"
    resumed = {
        line.pid
        for line in read_lines(out)
        if line.event == "start" and line.at > restarted_at
    }
    assert resumed == {child.pid for child in servers}


async def test_servers_carry_on_when_postgresql_restarts(
    private_cluster: PrivateCluster, tmp_path: Path
) -> None:
    await restart_midway(private_cluster, tmp_path, jobs=1500, restarts=1)


@pytest.mark.slow
async def test_servers_carry_on_through_repeated_postgresql_restarts(
    private_cluster: PrivateCluster, tmp_path: Path
) -> None:
    await restart_midway(private_cluster, tmp_path, jobs=6000, restarts=3)


# -- deleting a running job ---------------------------------------------------


async def test_deleting_a_job_running_on_another_server_fires_its_token(
    storage: Storage, fleet: Fleet, tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    client = Client(storage)
    # The server looks for aborted jobs only once a minute on its own:
    # a token that fires within a second was fired by the notification.
    server = fleet.spawn("--abort-check", "60")
    await registered(storage, [server])
    job_id = await client.enqueue(postgres_fleet.wait_for_deletion, str(out))

    await eventually(
        lambda: bool(texts_of(out, "start")), what="the job to start"
    )
    sent = time.time()
    await client.delete(job_id)

    def fired() -> list[Line]:
        return [line for line in read_lines(out) if line.event == "fired"]

    await eventually(lambda: bool(fired()), what="the token to fire")
    [line] = fired()
    assert line.text == "job_deleted"
    assert line.pid == server.pid
    assert line.at - sent < 1.0, f"fired after {line.at - sent:.3f} s"
    job = await client.get(job_id)
    assert job.state is S.DELETED
    await stop_gracefully([server])
