"""The enqueuing side of the jobs benchmark, one process per measurement.

``python -m bench.jobs_client SYSTEM ACTION [ARGS]`` opens the storage
of ``SYSTEM`` (``backburner`` or ``huey``; its file comes from the
environment, see :mod:`bench.jobs_backburner` and
:mod:`bench.jobs_huey`), does one thing and prints the result as one
JSON object:

- ``enqueue-single COUNT`` / ``enqueue-bulk COUNT``: ``{"seconds": s}``
- ``fill WORKLOAD COUNT``: ``{}``
- ``probes COUNT PAUSE TIMEOUT``: ``{"latencies": [s, ...]}``

Running the client apart from the orchestrator keeps each measurement
in a fresh interpreter that has imported only the system it measures.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from bench.jobs_record import LINE_BYTES, RECORD_ENV, wait_for

WARM_UP_PROBES = 3


class Peer(Protocol):
    """What each system's module offers the client (class ``Peer``)."""

    def enqueue_single(self, count: int) -> float: ...
    def enqueue_bulk(self, count: int) -> float: ...
    def fill(self, workload: str, count: int) -> None: ...
    def send_probe(self, number: int) -> None: ...
    def close(self) -> None: ...


def probe_loop(
    send: Callable[[int], None],
    count: int,
    record_path: Path,
    pause: float,
    timeout: float,
) -> list[float]:
    """Enqueue probes one at a time into an idle consumer.

    Each probe is sent only after the previous one started, then after a
    random pause of up to ``pause`` seconds, so that sends fall at every
    phase of a polling consumer's cycle. The first few probes warm the
    consumer up and are not counted.

    Returns:
        Seconds from just before each enqueue call to the job's start.

    Raises:
        TimeoutError: a probe did not start within ``timeout`` seconds.
    """
    rng = random.Random(7)
    latencies = []
    for number in range(1, WARM_UP_PROBES + count + 1):
        sent = time.time()
        send(number)
        if not wait_for(record_path, number, timeout):
            raise TimeoutError(f"probe {number} did not start in {timeout}s")
        with record_path.open("rb") as lines:
            lines.seek((number - 1) * LINE_BYTES)
            recorded, started = lines.read(LINE_BYTES).split()
        if int(recorded) != number:
            raise RuntimeError(f"probe {number} recorded as {recorded!r}")
        if number > WARM_UP_PROBES:
            latencies.append(float(started) - sent)
        time.sleep(rng.uniform(0, pause))
    return latencies


def run(system: str, action: str, args: Sequence[str]) -> dict[str, Any]:
    """Do ``action`` with ``system``'s client; return what it measured.

    Raises:
        ValueError: an unknown action.
    """
    module = importlib.import_module(f"bench.jobs_{system}")
    peer: Peer = module.Peer()
    try:
        if action == "enqueue-single":
            return {"seconds": peer.enqueue_single(int(args[0]))}
        if action == "enqueue-bulk":
            return {"seconds": peer.enqueue_bulk(int(args[0]))}
        if action == "fill":
            peer.fill(args[0], int(args[1]))
            return {}
        if action == "probes":
            path = Path(os.environ[RECORD_ENV])
            count, pause, timeout = (
                int(args[0]),
                float(args[1]),
                float(args[2]),
            )
            latencies = probe_loop(
                peer.send_probe, count, path, pause, timeout
            )
            return {"latencies": latencies}
        raise ValueError(f"unknown action {action!r}")
    finally:
        peer.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``SYSTEM ACTION [ARGS]``, result as JSON on stdout."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(run(argv[0], argv[1], argv[2:])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
