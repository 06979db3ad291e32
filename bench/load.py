"""A small HTTP load generator: ``python -m bench.load``.

``wrk`` is the usual tool, but it is rarely installed; this one is a
few keep-alive connections driven by asyncio over raw sockets, run in a
process of its own so that it does not share a core's time with the
server it measures. It does far less per request than a Python ASGI
server (no parsing beyond the status line and ``content-length``), so
on the benchmark's hello-world route the server is the bottleneck.

Several targets are measured in one run, in turns: time is cut into
slices, each slice loads one target with every connection, and each
cycle gives every target one slice (in a rotating order). On a shared
machine the background load drifts slowly compared with a slice, so the
targets of one cycle see nearly the same machine, and comparing them
cycle by cycle cancels most of the noise.

Prints one JSON object: for each target, the requests per second of
each cycle, and the count of responses with a status other than 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from bench.raw_http import get_request, read_response


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load run measured.

    Attributes:
        targets: the request targets, in the order given.
        rps: per target, requests per second in each cycle.
        errors: responses with a status other than 200.
    """

    targets: list[str]
    rps: dict[str, list[float]]
    errors: int


class _Schedule:
    """Which target the load is on at a given moment."""

    def __init__(
        self, targets: Sequence[str], slice_seconds: float, cycles: int
    ) -> None:
        self.targets = list(targets)
        self.slice_seconds = slice_seconds
        self.cycles = cycles
        self.start = 0.0

    def begin(self, warmup: float) -> None:
        self.start = time.monotonic() + warmup

    @property
    def end(self) -> float:
        slices = self.cycles * len(self.targets)
        return self.start + slices * self.slice_seconds

    def slot(self, now: float) -> tuple[int, int] | None:
        """(cycle, target index) at ``now``; None while warming up."""
        if now < self.start:
            return None
        number = int((now - self.start) / self.slice_seconds)
        cycle, position = divmod(number, len(self.targets))
        # Rotate the order each cycle so no target always goes first.
        return cycle, (position + cycle) % len(self.targets)


async def generate_load(
    host: str,
    port: int,
    targets: Sequence[str],
    *,
    slice_seconds: float,
    cycles: int,
    warmup: float,
    connections: int,
) -> LoadResult:
    """Load ``targets`` in turns; see the module docstring.

    A response counts for its slice only if it was sent and received
    within that slice, so requests straddling a switch are dropped.

    Raises:
        OSError: a connection failed.
        asyncio.IncompleteReadError: the server closed a connection.
    """
    schedule = _Schedule(targets, slice_seconds, cycles)
    requests = [get_request(target) for target in targets]
    counts = [[0] * len(targets) for _ in range(cycles)]
    errors = 0
    warm_turn = 0

    async def drive_one_connection() -> None:
        nonlocal errors, warm_turn
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                slot = schedule.slot(time.monotonic())
                if slot is None:
                    warm_turn += 1
                    index = warm_turn % len(targets)
                elif slot[0] >= cycles:
                    return
                else:
                    index = slot[1]
                writer.write(requests[index])
                status, _ = await read_response(reader)
                if slot is None:
                    continue
                errors += status != 200
                if schedule.slot(time.monotonic()) == slot:
                    counts[slot[0]][slot[1]] += 1
        finally:
            writer.close()

    schedule.begin(warmup)
    async with asyncio.TaskGroup() as group:
        for _ in range(connections):
            group.create_task(drive_one_connection())
    rps = {
        target: [cycle[index] / slice_seconds for cycle in counts]
        for index, target in enumerate(targets)
    }
    return LoadResult(list(targets), rps, errors)


def main(argv: Sequence[str] | None = None) -> None:
    """Run one load and print its :class:`LoadResult` as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--target",
        action="append",
        required=True,
        help="a request target such as /mw/hello; repeat for several",
    )
    parser.add_argument("--slice-seconds", type=float, default=0.5)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)
    result = asyncio.run(
        generate_load(
            args.host,
            args.port,
            args.target,
            slice_seconds=args.slice_seconds,
            cycles=args.cycles,
            warmup=args.warmup,
            connections=args.connections,
        )
    )
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
