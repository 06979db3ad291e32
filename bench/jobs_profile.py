"""Where a drain's storage work goes: ``python -m bench.jobs_profile``.

Runs one backburner server in this process on a pre-filled SQLite
queue (no-op jobs, or jobs awaiting 10 ms) until the queue is empty,
and counts what it asked of SQLite: statements by kind, transactions,
fetches and how many jobs each took, outcome batches (written alone or
with a fetch) and their sizes, the fetches' round-trip time, and the
CPU time of all threads. Counts are divided by the number of jobs, so
a change to the server or the storage shows up as fewer statements or
transactions per job.

This is a diagnostic for :mod:`bench.jobs`, not part of its table: the
counters add a little work per statement, so its rates are not
comparable with the benchmark's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backburner.jobs.client import Call, Client
from backburner.jobs.log_output import log_to
from backburner.jobs.server import Server
from backburner.storage.sqlite import SQLiteStorage
from bench import jobs_backburner, jobs_record

_WORDS = re.compile(r"\s+")


def _kind(statement: str) -> str:
    # "INSERT INTO job_history ..." -> "INSERT job_history"
    words = _WORDS.split(statement.strip(), maxsplit=6)
    verb = words[0].upper()
    if verb in {"INSERT", "DELETE"} and len(words) > 2:
        table = words[2]
        if table.upper() == "INTO" and len(words) > 3:
            table = words[3]
        return f"{verb} {table.split('(')[0]}"
    if verb == "UPDATE" and len(words) > 1:
        return f"UPDATE {words[1]}"
    if verb == "SELECT":
        tables = re.findall(r"\bFROM\s+(\w+)", statement, re.IGNORECASE)
        return f"SELECT {tables[0] if tables else '?'}"
    return verb


async def profile(
    workload: str,
    jobs: int,
    concurrency: int,
    directory: Path,
    tuning: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Fill, drain with one server, and return the counts per job."""
    path = str(directory / "jobs.db")
    os.environ[jobs_record.RECORD_ENV] = str(directory / "record.txt")
    func = (
        jobs_backburner.sleep_10ms
        if workload == "sleep"
        else jobs_backburner.noop
    )
    async with SQLiteStorage(path) as storage:
        client = Client(storage)
        for start in range(0, jobs, 1000):
            size = min(1000, jobs - start)
            await client.enqueue_many([Call(func)] * size)

    storage = SQLiteStorage(path)
    await storage.migrate()
    statements: Counter[str] = Counter()
    conn = storage._conn  # A diagnostic may look inside.
    assert conn is not None
    conn.set_trace_callback(lambda sql: statements.update([_kind(sql)]))

    fetched: list[int] = []
    written: list[int] = []
    waits: list[float] = []
    _count_calls(storage, fetched, written, waits)

    server = Server(storage, concurrency=concurrency, **(tuning or {}))
    started = time.perf_counter()
    cpu = time.process_time()
    await server.run(until_empty=True)
    cpu = time.process_time() - cpu
    seconds = time.perf_counter() - started
    await storage.close()

    taking = [n for n in fetched if n]
    return {
        "workload": workload,
        "jobs": jobs,
        "concurrency": concurrency,
        "tuning": tuning or {},
        "seconds": round(seconds, 3),
        "jobs_per_second": round(jobs / seconds),
        "cpu_us_per_job": round(1e6 * cpu / jobs),
        "statements_per_job": round(sum(statements.values()) / jobs, 2),
        "transactions_per_job": round(statements["BEGIN"] / jobs, 3),
        "fetch_calls": len(fetched),
        "empty_fetches": len(fetched) - len(taking),
        "jobs_per_fetch": round(statistics.mean(taking), 1) if taking else 0,
        "fetch_round_trip_ms": (
            round(1000 * statistics.mean(waits), 2) if waits else 0
        ),
        "outcome_batches": len(written),
        "jobs_per_outcome_batch": (
            round(statistics.mean(written), 1) if written else 0
        ),
        "statements": {
            kind: round(count / jobs, 3)
            for kind, count in statements.most_common()
        },
    }


def _count_calls(
    storage: SQLiteStorage,
    fetched: list[int],
    written: list[int],
    seconds: list[float],
) -> None:
    """Wrap the storage calls of a server to note their sizes."""
    fetch = storage.fetch
    apply_changes = storage.apply_changes
    both = storage.apply_changes_and_fetch
    inside_both: list[bool] = []  # set while a combined call runs

    async def counted_fetch(*args: Any, **kwargs: Any) -> Any:
        found = await fetch(*args, **kwargs)
        if not inside_both:
            fetched.append(len(found))
        return found

    async def counted_apply(changes: Any) -> Any:
        written.append(len(changes))
        return await apply_changes(changes)

    async def counted_both(changes: Any, *args: Any) -> Any:
        if changes:
            written.append(len(changes))
        inside_both.append(True)
        started = time.perf_counter()
        try:
            outcomes, found = await both(changes, *args)
        finally:
            inside_both.pop()
        seconds.append(time.perf_counter() - started)
        fetched.append(len(found))
        return outcomes, found

    storage.fetch = counted_fetch  # type: ignore[method-assign]
    storage.apply_changes = counted_apply  # type: ignore[method-assign]
    storage.apply_changes_and_fetch = counted_both  # type: ignore[method-assign]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the counts of one drain as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.jobs_profile",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("workload", choices=("noop", "sleep"))
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--tuning",
        action="append",
        default=[],
        metavar="NAME=SECONDS",
        help="a ServerTuning option for the server (repeatable)",
    )
    parser.add_argument(
        "--log",
        action="store_true",
        help="log at INFO to a file, as the worker command does",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as directory:
        log = None
        if args.log:
            # The worker command's own set-up, into a file.
            log = (Path(directory) / "server.log").open("w")
            log_to(log)
        found = asyncio.run(
            profile(
                args.workload, args.jobs, args.concurrency, Path(directory)
            )
        )
        if log is not None:
            logging.shutdown()
            log.close()
    print(json.dumps(found, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
