"""SQLite pushed to its limits: four busy processes, then a full disk."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import postgres_fleet
import pytest
from chaos_fleet import count_in, ran, wait_until
from chaos_harness import Record, seconds, size

from backburner.jobs import Call, Client, Job, JobState
from backburner.storage import StorageError, open_storage

S = JobState
HERE = Path(__file__).resolve().parent
PROCESSES = 4
PER_PROCESS = size(5_000, 250)

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(int(seconds(900, 150))),
]


def spawn_child(url: str, out: Path, name: str) -> subprocess.Popen[bytes]:
    """One process that enqueues and drains (``chaos_child.py``)."""
    return subprocess.Popen(
        [
            sys.executable,
            str(HERE / "chaos_child.py"),
            url,
            str(out),
            str(PER_PROCESS),
            name,
        ],
        stderr=(out.parent / f"{name}.log").open("wb"),
    )


def files(where: Path, pattern: str) -> int:
    return len(list(where.glob(pattern)))


def text_of(where: Path, pattern: str) -> str:
    return "".join(path.read_text() for path in sorted(where.glob(pattern)))


@pytest.mark.chaos_smoke
async def test_four_processes_enqueue_and_drain_one_file_at_full_speed(
    tmp_path: Path, record: Record
) -> None:
    total = PROCESSES * PER_PROCESS
    figures = record(
        "SQLite: 4 processes enqueue and drain one file",
        storage="sqlite",
        size=f"{total:,} jobs, one enqueue call each",
    )
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    storage = open_storage(url)
    await storage.migrate()
    out = tmp_path / "out.txt"
    children = [spawn_child(url, out, f"p{n}") for n in range(PROCESSES)]
    try:
        client = Client(storage)

        async def all_enqueued() -> bool:
            return files(tmp_path, "out.txt.*.enqueued") == PROCESSES

        async def all_done() -> bool:
            return await count_in(client, S.SUCCEEDED) == total

        budget = 60 + total / 50
        took = await wait_until(all_enqueued, budget, "every enqueue")
        took += await wait_until(all_done, budget, "every job to succeed")
        for child in children:
            child.send_signal(signal.SIGTERM)
        codes = [await asyncio.to_thread(c.wait, 60) for c in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        await storage.close()

    errors = text_of(tmp_path, "out.txt.errors")
    logs = text_of(tmp_path, "p*.log")
    runs = ran(out)
    figures.jobs_lost = total - len(runs)
    figures.duplicates = sum(n - 1 for n in runs.values())
    figures.errors_surfaced = len(errors.splitlines()) + logs.count(
        "Traceback"
    )
    figures.note(
        f"{total / took:,.0f} jobs/s enqueued and drained"
        " (process start included)"
    )

    assert "locked" not in errors + logs
    assert errors == "", errors
    assert codes == [0] * PROCESSES
    assert figures.jobs_lost == 0
    assert figures.duplicates == 0


@contextlib.contextmanager
def small_filesystem(where: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of the given size mounted at ``where`` (needs root)."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", where],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", where], check=False)


@dataclass
class FullDisk:
    """What filling the disk left behind."""

    written: list[int]
    refusals: list[StorageError]
    stored: int
    readable: list[Job]
    after_room: int


PAYLOAD = "x" * 8192


async def fill_the_disk(disk: Path) -> FullDisk:
    """Enqueue 8 KiB jobs, single and in threes, until five refusals;
    then free some room and enqueue once more."""
    room = disk / "room"
    room.write_bytes(b"\0" * 256 * 1024)
    storage = open_storage(f"sqlite:///{disk / 'jobs.db'}")
    await storage.migrate()
    client = Client(storage)
    written: list[int] = []
    refusals: list[StorageError] = []
    try:
        # Bounded: 2 MiB cannot hold 1,000 jobs of 8 KiB.
        for n in range(1000):
            try:
                if n % 2:
                    three = [Call(postgres_fleet.mark, PAYLOAD, f"b{n}")] * 3
                    written += await client.enqueue_many(three)
                else:
                    written.append(
                        await client.enqueue(
                            postgres_fleet.mark, PAYLOAD, f"o{n}"
                        )
                    )
            except StorageError as error:
                refusals.append(error)
                if len(refusals) >= 5:
                    break
        stored = (await client.counts()).by_state[S.ENQUEUED]
        readable = [await client.get(job_id) for job_id in written]
        room.unlink()
        await client.enqueue(postgres_fleet.mark, PAYLOAD, "after")
        after_room = (await client.counts()).by_state[S.ENQUEUED]
    finally:
        await storage.close()
    return FullDisk(written, refusals, stored, readable, after_room)


@pytest.mark.chaos_smoke
async def test_a_full_disk_refuses_the_enqueue_and_writes_nothing(
    tmp_path: Path, record: Record
) -> None:
    figures = record(
        "SQLite: disk full while enqueuing",
        storage="sqlite",
        size="2 MiB tmpfs, 8 KiB arguments",
    )
    with small_filesystem(tmp_path / "small", 2) as disk:
        full = await fill_the_disk(disk)

    figures.errors_surfaced = len(full.refusals)
    figures.jobs_lost = len(full.written) - full.stored
    figures.note(f"{len(full.written)} jobs stored before the disk filled")
    if full.refusals:
        figures.note(f"the error: {full.refusals[0]}")

    assert len(full.refusals) == 5, "the disk should have filled"
    assert full.stored == len(full.written), "a refusal wrote nothing"
    for job in full.readable:
        assert job.arguments()[0][0] == PAYLOAD
    assert full.after_room == full.stored + 1, "room again, jobs again"


@pytest.mark.chaos_smoke
async def test_a_full_disk_says_the_disk_is_full(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small", 2) as disk:
        full = await fill_the_disk(disk)

    assert full.refusals
    assert all("full" in str(error) for error in full.refusals)
