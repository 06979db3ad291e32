"""Recurring job punctuality: ``python -m bench.recurring``.

One idle server (in this process) runs a recurring job whose schedule
fires every second (``* * * * * *``) for ``--seconds`` seconds. For
each occurrence it measures how late its job was

- **created**: the job's ``created_at`` minus the occurrence time;
- **started**: the moment the server took the job to run it (its
  *processing* history entry) minus the occurrence time;

and prints p50, p99 and the maximum of each, in milliseconds. The
target is a start within 50 ms of the occurrence. The first occurrence
is left out: it pays for importing the job function.

Storage is a fresh SQLite file unless ``--storage URL`` names another
(a PostgreSQL URL with ``?schema=...``: the schema is not dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from backburner.jobs import Call, Client, JobState, Server
from backburner.storage import Storage, open_storage

TARGET_MS = 50.0


def noop() -> None:
    """The recurring job: does nothing, so only scheduling is measured."""


async def _lateness(storage: Storage) -> tuple[list[float], list[float]]:
    created: list[float] = []
    started: list[float] = []
    jobs = await storage.list_jobs(limit=10_000)
    for job in sorted(jobs, key=lambda job: job.id):
        parameters = await storage.get_parameters(job.id)
        occurrence = datetime.fromisoformat(
            parameters["occurrence"].strip('"')
        )
        history = await storage.get_history(job.id)
        taken = [e.at for e in history if e.state is JobState.PROCESSING]
        if not taken:
            continue  # Created as the run ended; never started.
        created.append((job.created_at - occurrence).total_seconds() * 1e3)
        started.append((taken[0] - occurrence).total_seconds() * 1e3)
    return created[1:], started[1:]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(share * (len(ordered) - 1)))
    return ordered[index]


async def measure(url: str, seconds: float) -> dict[str, list[float]]:
    """Run the server for ``seconds`` and return the lateness samples."""
    # Imported as a module (not __main__), so that the server finds it.
    from bench import recurring

    storage = open_storage(url)
    await storage.migrate()
    try:
        client = Client(storage)
        await client.recurring.add_or_update(
            "bench-every-second", "* * * * * *", Call(recurring.noop)
        )
        async with Server(storage, concurrency=4, name="bench"):
            await asyncio.sleep(seconds)
            await client.recurring.remove("bench-every-second")
        created, started = await _lateness(storage)
    finally:
        await storage.close()
    return {"created": created, "started": started}


def _report(samples: dict[str, list[float]]) -> str:
    lines = [f"{'lateness (ms)':<16}{'n':>6}{'p50':>10}{'p99':>10}{'max':>10}"]
    for name, values in samples.items():
        if not values:
            lines.append(f"{name:<16}{0:>6}")
            continue
        lines.append(
            f"{name:<16}{len(values):>6}"
            f"{statistics.median(values):>10.2f}"
            f"{_percentile(values, 0.99):>10.2f}"
            f"{max(values):>10.2f}"
        )
    started = samples["started"]
    if started:
        worst = _percentile(started, 0.99)
        verdict = "met" if worst <= TARGET_MS else "MISSED"
        lines.append(f"target: start p99 <= {TARGET_MS:g} ms: {verdict}")
    return "\n".join(lines)


@contextlib.contextmanager
def _storage_url(given: str | None) -> Iterator[str]:
    if given is not None:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="bench-recurring-") as folder:
        yield f"sqlite:///{Path(folder) / 'jobs.db'}"


def main() -> None:
    """Parse the command line, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--storage", help="storage URL (default: SQLite)")
    args = parser.parse_args()
    with _storage_url(args.storage) as url:
        samples = asyncio.run(measure(url, args.seconds))
    print(_report(samples))


if __name__ == "__main__":
    main()
