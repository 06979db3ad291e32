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

Given the server's process id (Linux only), it also reads the CPU time
the server used in every slice, from ``/proc/<pid>/task/*/schedstat``.
CPU time per request is far less sensitive to other processes on the
machine than requests per second: a server that waits for a core gets
fewer requests done, but each costs the same.

Prints one JSON object: for each target, the requests per second of
each cycle (and the server's CPU microseconds per request, if known),
and the count of responses with a status other than 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.raw_http import get_request, read_response


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load run measured.

    Attributes:
        targets: the request targets, in the order given.
        rps: per target, requests per second in each cycle.
        errors: responses with a status other than 200.
        cpu_us: per target, the server's CPU microseconds per request
            in each cycle; empty without a server process id.
        cpu_us_overall: per target, the server's CPU microseconds per
            request over all its slices together.
    """

    targets: list[str]
    rps: dict[str, list[float]]
    errors: int
    cpu_us: dict[str, list[float]] = field(default_factory=dict)
    cpu_us_overall: dict[str, float] = field(default_factory=dict)


def process_cpu_ns(pid: int) -> int:
    """CPU nanoseconds used so far by all threads of process ``pid``.

    Raises:
        OSError: no such process, or no ``/proc`` (not Linux).
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except FileNotFoundError:
            continue  # the thread ended meanwhile
    return total


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
    server_pid: int | None = None,
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

    cpu_ns = [[0] * len(targets) for _ in range(cycles)]

    async def sample_server_cpu() -> None:
        assert server_pid is not None
        await asyncio.sleep(max(0.0, schedule.start - time.monotonic()))
        before, then = process_cpu_ns(server_pid), time.monotonic()
        for number in range(cycles * len(targets)):
            boundary = schedule.start + (number + 1) * slice_seconds
            await asyncio.sleep(max(0.0, boundary - time.monotonic()))
            now, sampled = process_cpu_ns(server_pid), time.monotonic()
            slot = schedule.slot(boundary - slice_seconds / 2)
            assert slot is not None
            # A busy machine wakes this task late: scale the CPU used to
            # the slice's length, as the request count is.
            used = (now - before) * slice_seconds / (sampled - then)
            cpu_ns[slot[0]][slot[1]] = int(used)
            before, then = now, sampled

    schedule.begin(warmup)
    async with asyncio.TaskGroup() as group:
        for _ in range(connections):
            group.create_task(drive_one_connection())
        if server_pid is not None:
            group.create_task(sample_server_cpu())
    rps = {
        target: [cycle[index] / slice_seconds for cycle in counts]
        for index, target in enumerate(targets)
    }
    cpu_us: dict[str, list[float]] = {}
    overall: dict[str, float] = {}
    if server_pid is not None:
        for index, target in enumerate(targets):
            pairs = [
                (cpu[index], count[index])
                for cpu, count in zip(cpu_ns, counts, strict=True)
                if count[index]
            ]
            cpu_us[target] = [ns / 1000 / n for ns, n in pairs]
            total = sum(n for _, n in pairs)
            if total:
                overall[target] = sum(ns for ns, _ in pairs) / 1000 / total
    return LoadResult(list(targets), rps, errors, cpu_us, overall)


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
    parser.add_argument(
        "--server-pid",
        type=int,
        default=None,
        help="process id of the server, to measure its CPU time (Linux)",
    )
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
            server_pid=args.server_pid,
        )
    )
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
