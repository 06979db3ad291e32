"""Server processes for the chaos scenarios, and reading what they did.

The children are ``tests/jobs/postgres_fleet.py`` (any storage URL, the
tests' short intervals, one line per job run in a shared file).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from chaos_harness import TESTS

from backburner.jobs import Call, Client, JobState
from backburner.storage import Storage, StorageError

TESTS_JOBS = TESTS / "jobs"


class Fleet:
    """Server child processes on one storage URL; all killed at close."""

    def __init__(self, url: str, logs: Path) -> None:
        self.url = url
        self.logs = logs
        self.children: list[subprocess.Popen[bytes]] = []

    def spawn(
        self, concurrency: int = 8, extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start one server process (``extra_env`` added to its env)."""
        env = {
            **os.environ,
            **(extra_env or {}),
            "PYTHONPATH": os.pathsep.join([str(TESTS_JOBS), str(TESTS)]),
        }
        log = self.logs / f"server{len(self.children)}.log"
        child = subprocess.Popen(
            [
                sys.executable,
                str(TESTS_JOBS / "postgres_fleet.py"),
                self.url,
                "--concurrency",
                str(concurrency),
            ],
            env=env,
            stderr=log.open("wb"),
        )
        self.children.append(child)
        return child

    @staticmethod
    def server_name(child: subprocess.Popen[bytes]) -> str:
        """The name a child's server registers under (the default one)."""
        return f"{socket.gethostname()}:{child.pid}"

    def close(self) -> None:
        """Kill every child still running."""
        for child in self.children:
            if child.poll() is None:
                child.kill()
                child.wait()

    def tracebacks(self) -> int:
        """How many tracebacks the servers printed (errors surfaced)."""
        return sum(
            path.read_text(errors="replace").count("Traceback")
            for path in self.logs.glob("server*.log")
        )


def ran(path: Path) -> Counter[str]:
    """How many times each job text ran, from the fleet's output file."""
    if not path.exists():
        return Counter()
    return Counter(
        line.split()[1]
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("ran ")
    )


async def wait_until(
    check: Callable[[], Awaitable[bool]],
    within: float,
    what: str,
    every: float = 0.1,
) -> float:
    """Wait until ``check()`` holds; return the seconds it took.

    Raises:
        AssertionError: it did not hold within ``within`` seconds.
    """
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            raise AssertionError(f"timed out after {within} s: {what}")
        await asyncio.sleep(every)
    return time.monotonic() - started


async def count_in(client: Client, state: JobState) -> int:
    """Jobs in ``state``; -1 while the storage does not answer."""
    try:
        return (await client.counts()).by_state[state]
    except StorageError:
        return -1


async def enqueue_marks(
    client: Client, out: Path, texts: list[str], seconds: float = 0.0
) -> list[int]:
    """Enqueue one ``mark`` job per text, in batches of 1,000.

    With ``seconds``, each job takes that long before it says it ran.
    """
    import postgres_fleet

    calls = [
        Call(postgres_fleet.mark_after, str(out), text, seconds)
        if seconds
        else Call(postgres_fleet.mark, str(out), text)
        for text in texts
    ]
    ids: list[int] = []
    for start in range(0, len(calls), 1000):
        ids += await client.enqueue_many(calls[start : start + 1000])
    return ids


async def processing_ids(storage: Storage) -> set[int]:
    """Ids of every job in *processing*, all pages."""
    found: set[int] = set()
    before = None
    for _ in range(10_000):
        page = await storage.list_jobs(
            state=JobState.PROCESSING, before=before, limit=1000
        )
        found |= {job.id for job in page}
        if len(page) < 1000:
            return found
        before = page[-1].id
    raise AssertionError("too many pages of processing jobs")
