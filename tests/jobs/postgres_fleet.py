"""Server processes on PostgreSQL for the multi-server tests.

``python postgres_fleet.py URL [--concurrency N] [--abort-check S]``
runs one :class:`Server` with the tests' short intervals
(``server_helpers.FAST``) until SIGTERM. The job functions below write
what happened to files, since the test process cannot see a child's
memory: one line per event, ``<event> <text> <pid> <unix time>``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from server_helpers import FAST

from backburner.cancellation import CancellationToken
from backburner.jobs import Server
from backburner.storage import open_storage

_files: dict[str, int] = {}


def note(path: str, event: str, text: str) -> None:
    """Append one event line; ``O_APPEND`` keeps processes' lines whole."""
    fd = _files.get(path)
    if fd is None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        fd = _files[path] = os.open(path, flags, 0o644)
    line = f"{event} {text} {os.getpid()} {time.time():.6f}\n"
    os.write(fd, line.encode())


async def mark(path: str, text: str) -> None:
    """A job that only says it ran."""
    note(path, "ran", text)


async def mark_after(path: str, text: str, seconds: float) -> None:
    """Say it ran once ``seconds`` have passed (a job that takes time)."""
    await asyncio.sleep(seconds)
    note(path, "ran", text)


async def mark_slowly(path: str, text: str, seconds: float) -> None:
    """Say it started, wait without holding a thread, say it ended."""
    note(path, "start", text)
    await asyncio.sleep(seconds)
    note(path, "end", text)


async def wait_for_deletion(path: str, token: CancellationToken) -> None:
    """Run until the token fires; note when, and why."""
    note(path, "start", "waiting")
    await token.wait()
    note(path, "fired", str(token.reason).replace(" ", "_"))
    token.raise_if_cancellation_requested()


async def serve(url: str, concurrency: int, abort_check: float) -> None:
    storage = open_storage(url)
    tuning = {**FAST, "abort_check_interval": abort_check}
    server = Server(storage, concurrency=concurrency, **tuning)
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, server.shutdown
    )
    try:
        await server.run()
    finally:
        await storage.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--abort-check", type=float, default=FAST["abort_check_interval"]
    )
    args = parser.parse_args()
    asyncio.run(serve(args.url, args.concurrency, args.abort_check))
    return 0


if __name__ == "__main__":
    sys.exit(main())
