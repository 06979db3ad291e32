"""How benchmark jobs report that they ran, the same way for both systems.

Every benchmark job appends one fixed-width line to the file named by
``BENCH_JOBS_RECORD``: its probe number (0 when it has none) and the
wall-clock time (``time.time()``) at the moment the line is written.
The file is opened with ``O_APPEND``, so lines from several worker
processes and threads never interleave; a line costs one ``write``
system call, a few microseconds, the same for both systems.

Fixed-width lines let the benchmark count finished jobs from the file
size alone, without reading it while the consumers run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

RECORD_ENV = "BENCH_JOBS_RECORD"
LINE_BYTES = 28  # "%9d %17.6f\n"

_lock = threading.Lock()
_opened: dict[str, int] = {}  # path -> descriptor, one per process


def _descriptor() -> int:
    path = os.environ[RECORD_ENV]
    with _lock:
        fd = _opened.get(path)
        if fd is None:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
            fd = _opened[path] = os.open(path, flags, 0o644)
        return fd


def record(probe: int = 0) -> None:
    """Append ``probe`` and the current time as one line."""
    line = f"{probe:9d} {time.time():17.6f}\n".encode()
    os.write(_descriptor(), line)


def count(path: Path) -> int:
    """How many lines were recorded in ``path`` so far."""
    try:
        return path.stat().st_size // LINE_BYTES
    except FileNotFoundError:
        return 0


def read(path: Path) -> list[tuple[int, float]]:
    """All recorded ``(probe, time)`` pairs, in file order."""
    pairs = []
    for line in path.read_text().splitlines():
        probe, moment = line.split()
        pairs.append((int(probe), float(moment)))
    return pairs


def wait_for(
    path: Path,
    lines: int,
    timeout: float,
    alive: Callable[[], bool] | None = None,
) -> bool:
    """Wait until ``path`` holds ``lines`` lines; ``False`` on timeout.

    Gives up early, also with ``False``, once ``alive()`` says the
    process that should write the lines is gone.

    Polls the file size every 2 ms: the jobs record their own times, so
    the polling delay does not enter any measurement, and the waiting
    process takes little CPU from the two systems it measures.
    """
    deadline = time.monotonic() + timeout
    while count(path) < lines:
        if time.monotonic() > deadline:
            return False
        if alive is not None and not alive():
            return count(path) >= lines
        time.sleep(0.002)
    return True
