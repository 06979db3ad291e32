"""Servers in child processes: kill -9, signals, several processes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import job_samples
import pytest
from server_helpers import (
    FAST,
    TESTS_JOBS,
    client,
    eventually,
    fresh_samples,
    storage,
)

from backburner.jobs import Call, Client, JobState, Server
from backburner.jobs.heartbeat import RECOVERY_REASON
from backburner.storage import Storage, open_storage

__all__ = ["client", "fresh_samples", "storage"]

S = JobState
pytestmark = pytest.mark.timeout(180)


Spawn = Callable[..., "subprocess.Popen[bytes]"]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start ``server_process.py`` children; kill leftovers at the end."""
    children: list[subprocess.Popen[bytes]] = []
    url = f"sqlite:///{tmp_path / 'jobs.db'}"

    def start(*options: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(TESTS_JOBS)}
        child = subprocess.Popen(
            [
                sys.executable,
                str(TESTS_JOBS / "server_process.py"),
                url,
                *options,
            ],
            env=env,
            stderr=(tmp_path / f"child{len(children)}.log").open("wb"),
        )
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait()


def lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return path.read_text(encoding="utf-8").splitlines()


async def exited(child: subprocess.Popen[bytes], within: float = 60) -> int:
    return await asyncio.to_thread(child.wait, within)


async def test_jobs_of_a_killed_server_are_recovered_and_none_is_lost(
    storage: Storage, client: Client, tmp_path: Path, spawn: Spawn
) -> None:
    out = tmp_path / "out.txt"
    ids = await client.enqueue_many(
        [
            Call(job_samples.slow_line, str(out), f"j{i}", 0.4)
            for i in range(12)
        ]
    )
    text_of = {job_id: f"j{i}" for i, job_id in enumerate(ids)}
    victim = spawn("--tuned")

    def victim_is_busy() -> bool:
        seen = lines(out)
        started = sum(line.startswith("start") for line in seen)
        ended = sum(line.startswith("end") for line in seen)
        return started >= 6 and ended >= 2

    await eventually(victim_is_busy, what="the victim to run jobs")
    victim.send_signal(signal.SIGKILL)
    await exited(victim)
    running = await storage.list_jobs(state=S.PROCESSING)
    running_at_kill = {text_of[job.id] for job in running}
    assert running_at_kill, "the kill should hit running jobs"

    async with Server(storage, concurrency=4, **FAST):

        async def all_succeeded() -> bool:
            counts = await client.counts()
            return counts.by_state[S.SUCCEEDED] == len(ids)

        await eventually(all_succeeded, what="every job to succeed")

    seen = lines(out)
    starts = Counter(
        line.split()[1] for line in seen if line.startswith("start")
    )
    ends = {line.split()[1] for line in seen if line.startswith("end")}
    assert ends == set(text_of.values()), "no job may be lost"
    twice = {text for text, count in starts.items() if count > 1}
    assert twice <= running_at_kill
    for job in running:
        reasons = [e.reason for e in (await client.get(job.id)).history]
        assert RECOVERY_REASON in reasons


async def test_sigterm_puts_the_running_job_back_and_it_later_succeeds_once(
    client: Client, tmp_path: Path, spawn: Spawn
) -> None:
    marker = tmp_path / "marker"
    log = Path(f"{marker}.log")
    job_id = await client.enqueue(job_samples.honour_token_once, str(marker))
    child = spawn()
    await eventually(log.exists, what="the job to start")

    child.send_signal(signal.SIGTERM)

    assert await exited(child) == 0
    job = await client.get(job_id)
    assert job.state is S.ENQUEUED
    assert job.reason == "interrupted by shutdown"

    again = spawn("--until-empty")
    assert await exited(again) == 0
    assert (await client.get(job_id)).state is S.SUCCEEDED
    assert lines(log) == ["started", "succeeded"]


async def test_a_second_signal_stops_without_waiting_for_the_job(
    client: Client, tmp_path: Path, spawn: Spawn
) -> None:
    out = tmp_path / "out.txt"
    # Sleeps 60 s on a thread, ignoring every token: only a harder stop
    # ends the server before its 20 s shutdown timeout.
    job_id = await client.enqueue(job_samples.slow_line, str(out), "x", 60)
    child = spawn()
    await eventually(lambda: bool(lines(out)), what="the job to start")

    child.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    child.send_signal(signal.SIGTERM)

    assert await exited(child, within=15) == 0
    job = await client.get(job_id)
    assert job.state is S.ENQUEUED
    assert "did not stop in time" in job.reason


async def test_a_second_ctrl_c_stops_server_processes_harder(
    storage: Storage, client: Client, tmp_path: Path, spawn: Spawn
) -> None:
    out = tmp_path / "out.txt"
    job_id = await client.enqueue(job_samples.slow_line, str(out), "x", 60)
    parent = spawn("--processes", "2")
    await eventually(lambda: bool(lines(out)), what="the job to start")
    # Registered: both have their signal handlers in place.
    await eventually(
        lambda: _servers_registered(storage, 2), what="both servers"
    )
    children = [
        int(server.name.rsplit(":", 1)[1])
        for server in await storage.list_servers()
    ]

    # Forwarded once each: graceful, then harder (see the test above).
    parent.send_signal(signal.SIGINT)
    await asyncio.sleep(0.3)
    parent.send_signal(signal.SIGINT)

    assert await exited(parent, within=15) == 0
    assert [pid for pid in children if _alive(pid)] == []
    job = await client.get(job_id)
    assert job.state is S.ENQUEUED
    assert "did not stop in time" in job.reason


async def _servers_registered(storage: Storage, count: int) -> bool:
    return len(await storage.list_servers()) == count


async def test_several_server_processes_share_the_queue(
    client: Client, tmp_path: Path, spawn: Spawn
) -> None:
    out = tmp_path / "out.txt"
    ids = await client.enqueue_many(
        [Call(job_samples.append_line, str(out), f"l{i}") for i in range(30)]
    )

    options = ("--until-empty", "--processes", "2", "--name", "w")
    child = spawn(*options)

    assert await exited(child) == 0
    assert sorted(lines(out)) == sorted(f"l{i}" for i in range(30))
    servers = set()
    for job_id in ids:
        job = await client.get(job_id)
        assert job.state is S.SUCCEEDED
        servers.add(job.history[-1].data["server"])
    assert servers <= {"w-1", "w-2"}
    # Each child logs its own job lines, as a single server would.
    log = (tmp_path / "child0.log").read_text(encoding="utf-8")
    assert len(re.findall(r"job \d+ started: ", log)) == 30
    assert len(re.findall(r"job \d+ succeeded after ", log)) == 30


async def run_server_with(
    tmp_path: Path, options: str, before: str = "", within: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """Run ``run_server`` on a new SQLite file in a Python of its own,
    the job samples importable; ``before`` runs first."""
    code = (
        f"import sys; {before}from backburner.jobs import run_server; "
        f"sys.exit(run_server('sqlite:///{tmp_path / 'x.db'}', {options}))"
    )
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", code],
        capture_output=True,
        timeout=within,
        env={**os.environ, "PYTHONPATH": str(TESTS_JOBS)},
    )


async def test_run_server_refuses_a_module_that_does_not_import(
    tmp_path: Path,
) -> None:
    done = await run_server_with(tmp_path, "imports=['no_such_module_here']")
    assert done.returncode == 2
    assert b"no_such_module_here" in done.stderr


@pytest.mark.slow
async def test_chaos_killing_servers_repeatedly_loses_no_job(
    storage: Storage, client: Client, tmp_path: Path, spawn: Spawn
) -> None:
    out = tmp_path / "out.txt"
    texts = [f"c{i}" for i in range(400)]
    await client.enqueue_many(
        [Call(job_samples.slow_line, str(out), text, 0.02) for text in texts]
    )
    servers = [spawn("--tuned") for _ in range(3)]

    async def done() -> int:
        return (await client.counts()).by_state[S.SUCCEEDED]

    for round_ in range(4):
        target = (round_ + 1) * 60
        await eventually(
            lambda target=target: _at_least(done, target),  # type: ignore[misc]
            what=f"{target} jobs done",
        )
        victim = servers.pop(0)
        victim.send_signal(signal.SIGKILL)
        await exited(victim)
        servers.append(spawn("--tuned"))

    await eventually(
        lambda: _at_least(done, len(texts)), within=120, what="every job"
    )
    ends = {line.split()[1] for line in lines(out) if line.startswith("end")}
    assert ends == set(texts)
    for child in servers:
        # Signal handlers are in place once the server has registered.
        await eventually(
            lambda pid=child.pid: _registered(storage, pid),  # type: ignore[misc]
            what="the server to register",
        )
        child.send_signal(signal.SIGTERM)
        assert await exited(child) == 0


async def _at_least(count: Callable[[], Any], target: int) -> bool:
    return bool(await count() >= target)


async def _registered(storage: Storage, pid: int) -> bool:
    names = [server.name for server in await storage.list_servers()]
    return any(name.endswith(f":{pid}") for name in names)


async def test_sigterm_while_server_processes_start_is_a_clean_stop(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "importing.txt"
    parent = _run_server_slowly_importing(tmp_path, marker)
    try:
        # Both children are importing the job modules: neither has its
        # signal handler in place yet.
        await eventually(
            lambda: len(lines(marker)) == 2, what="both children to start"
        )

        parent.send_signal(signal.SIGTERM)

        assert await exited(parent, within=30) == 0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        children = [int(pid) for pid in lines(marker)]
        alive = [pid for pid in children if _alive(pid)]
        for pid in alive:  # only when the test failed: no orphans
            os.kill(pid, signal.SIGKILL)
    assert alive == []


def _run_server_slowly_importing(
    tmp_path: Path, marker: Path
) -> subprocess.Popen[bytes]:
    """``run_server`` with two processes whose job module takes long."""
    code = (
        "import sys; from backburner.jobs import run_server; "
        f"sys.exit(run_server('sqlite:///{tmp_path / 'jobs.db'}', "
        "imports=['slow_import'], processes=2))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(TESTS_JOBS),
        "BACKBURNER_TEST_IMPORT_MARKER": str(marker),
    }
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stderr=(tmp_path / "parent.log").open("wb"),
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_server_processes_that_cannot_all_start_are_one_error_line(
    tmp_path: Path,
) -> None:
    # Each child costs the parent file descriptors: with few allowed,
    # starting 200 runs out part way, as --processes 10000 did.
    done = await run_server_with(
        tmp_path,
        "processes=200, imports=['job_samples'], until_empty=True",
        before="import resource; "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48)); ",
        within=120,
    )
    errors = done.stderr.decode()

    assert done.returncode == 1, errors
    assert errors.count("cannot start 200 server processes") == 1
    # The started processes inherit the limit and may fail too, each with
    # its own line; the command itself (the "<string>" frame) must not.
    assert 'File "<string>"' not in errors


@pytest.mark.parametrize("name", ["", "a\nb", "x" * 201])
def test_a_server_name_that_cannot_be_shown_is_refused(
    tmp_path: Path, name: str
) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'x.db'}")

    with pytest.raises(ValueError, match="invalid server name"):
        Server(storage, name=name)


async def test_run_server_refuses_a_bad_name_before_starting_processes(
    tmp_path: Path,
) -> None:
    done = await run_server_with(
        tmp_path, f"processes=3, name={'n' * 199!r}, until_empty=True"
    )

    assert done.returncode == 2
    assert b"invalid server name" in done.stderr
    assert not (tmp_path / "x.db").exists()
