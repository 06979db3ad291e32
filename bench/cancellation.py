"""Request cancellation benchmark: ``python -m bench.cancellation``.

Measures, in one run and against one server process
(:mod:`bench.cancellation_server`, uvicorn with h11):

1. **Latency**: from the client closing its socket to the handler being
   cancelled, over ``--requests`` requests per variant. The client reads
   ``time.monotonic()`` just before ``close()``; the server reads it in
   the handler's ``except CancelledError``. On Linux both are
   ``CLOCK_MONOTONIC``, one clock for all processes.
   The client waits a random time below the polling interval before it
   closes, so that closes fall at every phase of the polling loop, as
   they do in real traffic.
2. **Overhead**: requests per second of a hello-world route, from a load
   generator in its own process (:mod:`bench.load`). The variants take
   turns in short slices, a cycle giving each one slice, so drift on a
   shared machine hits them alike; the overhead is the median over
   cycles of ``1 - variant / baseline`` within the cycle. On Linux the
   server's CPU time per request is measured in the same slices; it is
   the steadier number when other processes compete for the cores.

Variants: no cancellation (baseline), backburner's
``CancellationMiddleware``, and the polling recipe (a loop calling
Starlette's ``request.is_disconnected()`` every ``--poll-ms``).

Prints a table and writes JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.asgi_cost import middleware_cost_us
from bench.raw_http import BlockingConnection
from bench.reports import save_report

ROOT = Path(__file__).resolve().parent.parent

LATENCY_TARGET_P99_MS = 20.0
OVERHEAD_TARGET = 0.05

NOT_MEASURED = (
    "fastapi-disconnect and aiofence need Python >= 3.12, so they are not "
    "measured on this Python"
)


@dataclass(frozen=True, slots=True)
class Variant:
    """One way of handling disconnects, as served by the bench server."""

    key: str
    label: str
    hello: str
    block: str | None


@dataclass(slots=True)
class VariantResult:
    """Everything measured for one variant."""

    label: str
    latencies_ms: list[float] = field(default_factory=list)
    missed: int = 0
    rps: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    cpu_ratios: list[float] = field(default_factory=list)
    cpu_us_overall: float | None = None
    cpu_overhead: float | None = None

    def summary(self) -> dict[str, Any]:
        """Percentiles, medians and the overhead against the baseline."""
        latency = self.latencies_ms
        ratio = _median(self.ratios)
        cpu_ratio = _median(self.cpu_ratios)
        return {
            "label": self.label,
            "cancelled": len(latency),
            "missed": self.missed,
            "latency_p50_ms": percentile(latency, 50),
            "latency_p99_ms": percentile(latency, 99),
            "latency_max_ms": max(latency) if latency else None,
            "rps_median": _median(self.rps),
            "overhead": None if ratio is None else 1 - ratio,
            "cpu_us_per_request": self.cpu_us_overall,
            "cpu_overhead": self.cpu_overhead,
            "cpu_overhead_cycle_median": (
                None if cpu_ratio is None else cpu_ratio - 1
            ),
        }


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass(frozen=True, slots=True)
class Throughput:
    """What the load run measured for one variant."""

    rps: list[float]
    ratios: list[float]
    cpu_us: list[float]
    cpu_ratios: list[float]
    cpu_us_overall: float | None


def variants(poll_ms: float) -> list[Variant]:
    """The baseline, backburner, and the polling recipe."""
    return [
        Variant("baseline", "no cancellation", "/plain/hello", None),
        Variant(
            "backburner",
            "backburner CancellationMiddleware",
            "/mw/hello",
            "/mw/block",
        ),
        Variant(
            "polling",
            f"polling is_disconnected() every {poll_ms:g} ms",
            "/plain/poll/hello",
            "/plain/poll/block",
        ),
    ]


def percentile(values: Sequence[float], rank: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
    return ordered[index]


# -- the server -----------------------------------------------------------


@contextmanager
def bench_server(poll_ms: float) -> Iterator[tuple[str, int, int]]:
    """Run :mod:`bench.cancellation_server`; yield host, port and pid.

    Raises:
        RuntimeError: the server did not start.
    """
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.cancellation_server",
            "--poll-ms",
            str(poll_ms),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        if len(line) != 3 or line[0] != "listening":
            raise RuntimeError(f"bench server did not start: {line!r}")
        yield line[1], int(line[2]), process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- latency --------------------------------------------------------------


def measure_close_to_cancel(
    host: str,
    port: int,
    control: BlockingConnection,
    path: str,
    key: str,
    delay: float,
) -> float | None:
    """Milliseconds from closing a blocked request to its cancellation.

    The request is closed ``delay`` seconds after its handler started.
    None if the server did not see the cancellation within 10 s.

    Raises:
        OSError: a connection failed.
    """
    victim = BlockingConnection(host, port)
    victim.send_get(f"{path}?key={key}")
    status, _ = control.get(f"/plain/entered?key={key}")
    if status != 200:
        raise RuntimeError(f"handler for {key} never started ({status})")
    time.sleep(delay)
    closed_at = time.monotonic()
    victim.close()
    _, body = control.get(f"/plain/cancelled?key={key}")
    cancelled_at = json.loads(body)["at"]
    if cancelled_at is None:
        return None
    return (float(cancelled_at) - closed_at) * 1000


def measure_latency(
    host: str,
    port: int,
    chosen: list[Variant],
    requests: int,
    max_delay: float,
) -> dict[str, tuple[list[float], int]]:
    """Close-to-cancel latencies per variant, variants alternating.

    Each close waits a random time below ``max_delay`` (fixed seed).
    """
    delays = random.Random(1).uniform
    found: dict[str, tuple[list[float], int]] = {
        v.key: ([], 0) for v in chosen
    }
    control = BlockingConnection(host, port)
    try:
        for number in range(requests):
            # Alternate the order so neither variant always goes first.
            order = chosen if number % 2 == 0 else chosen[::-1]
            for variant in order:
                assert variant.block is not None
                ms = measure_close_to_cancel(
                    host,
                    port,
                    control,
                    variant.block,
                    f"{variant.key}-{number}",
                    delays(0, max_delay),
                )
                latencies, missed = found[variant.key]
                if ms is None:
                    found[variant.key] = (latencies, missed + 1)
                else:
                    latencies.append(ms)
    finally:
        control.close()
    return found


# -- throughput -----------------------------------------------------------


def measure_throughput(
    host: str,
    port: int,
    chosen: list[Variant],
    *,
    cycles: int,
    slice_seconds: float,
    connections: int,
    server_pid: int | None,
) -> dict[str, Throughput]:
    """Per variant: rps and server CPU per request, cycle by cycle and
    as ratios to the baseline of the same cycle.

    Raises:
        RuntimeError: the load generator failed or saw errors.
    """
    command = [
        sys.executable,
        "-m",
        "bench.load",
        "--host",
        host,
        "--port",
        str(port),
        "--slice-seconds",
        str(slice_seconds),
        "--cycles",
        str(cycles),
        "--connections",
        str(connections),
    ]
    for variant in chosen:
        command += ["--target", variant.hello]
    if server_pid is not None:
        command += ["--server-pid", str(server_pid)]
    budget = 60 + 2 * cycles * len(chosen) * slice_seconds
    result = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=budget,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"load generator failed: {result.stderr}")
    load = json.loads(result.stdout)
    if load["errors"]:
        raise RuntimeError(f"{load['errors']} error responses")
    baseline = chosen[0].hello
    overall = load["cpu_us_overall"]
    found = {}
    for variant in chosen:
        rps = load["rps"][variant.hello]
        cpu = load["cpu_us"].get(variant.hello, [])
        cpu_overall = overall.get(variant.hello)
        found[variant.key] = Throughput(
            rps=rps,
            ratios=_ratios(rps, load["rps"][baseline]),
            cpu_us=cpu,
            cpu_ratios=_ratios(cpu, load["cpu_us"].get(baseline, [])),
            cpu_us_overall=cpu_overall,
        )
    return found


def _ratios(values: list[float], baseline: list[float]) -> list[float]:
    if len(values) != len(baseline):
        # A cycle without a single request for some target has no CPU
        # figure; pairing would then be off, so no ratios at all.
        return []
    return [
        value / base
        for value, base in zip(values, baseline, strict=True)
        if base > 0
    ]


# -- report ---------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} us"


def _rps(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def render_table(report: dict[str, Any]) -> str:
    """The human-readable table of a report."""
    rows = [
        (
            "variant",
            "cancel p50",
            "cancel p99",
            "max",
            "hello req/s",
            "overhead",
            "server CPU/req",
            "CPU overhead",
        ),
    ]
    for key, summary in report["variants"].items():
        baseline = key == "baseline"
        rows.append(
            (
                summary["label"],
                _ms(summary["latency_p50_ms"]),
                _ms(summary["latency_p99_ms"]),
                _ms(summary["latency_max_ms"]),
                _rps(summary["rps_median"]),
                "baseline" if baseline else _percent(summary["overhead"]),
                _us(summary["cpu_us_per_request"]),
                "baseline" if baseline else _percent(summary["cpu_overhead"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(
                zip(row, widths, strict=True)
            )
        ]
        lines.append("  ".join(cells))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines.append("")
    lines.extend(f"{name}: {text}" for name, text in report["ratios"].items())
    lines.extend(f"target: {text}" for text in report["targets"])
    lines.extend(f"note: {text}" for text in report["notes"])
    return "\n".join(lines)


def build_report(
    args: argparse.Namespace,
    results: dict[str, VariantResult],
    cost_us: float,
) -> dict[str, Any]:
    """The JSON report: settings, environment, summaries, ratios."""
    summaries = {key: result.summary() for key, result in results.items()}
    ours, poll = summaries["backburner"], summaries["polling"]
    ratios = {}
    for rank in ("p50", "p99"):
        name = f"latency_{rank}_ms"
        if ours[name] and poll[name] is not None:
            ratios[f"cancel {rank}, polling / backburner"] = (
                f"{poll[name] / ours[name]:.1f}x"
            )
    for key in ("backburner", "polling"):
        rps = summaries[key]["rps_median"]
        base = summaries["baseline"]["rps_median"]
        if rps and base:
            ratios[f"req/s, {key} / no cancellation"] = f"{rps / base:.3f}"
    ratios["backburner cost per request, in process (no server)"] = (
        f"{cost_us:.1f} us"
    )
    p99 = ours["latency_p99_ms"]
    targets = [
        f"backburner cancel p99 under {LATENCY_TARGET_P99_MS:g} ms: "
        + _verdict(p99, LATENCY_TARGET_P99_MS),
        f"backburner req/s overhead under {OVERHEAD_TARGET:.0%}: "
        + _verdict(ours["overhead"], OVERHEAD_TARGET),
        f"backburner server CPU overhead under {OVERHEAD_TARGET:.0%}: "
        + _verdict(ours["cpu_overhead"], OVERHEAD_TARGET),
    ]
    return {
        "benchmark": "cancellation",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "requests": args.requests,
            "cycles": args.cycles,
            "slice_seconds": args.slice_seconds,
            "connections": args.connections,
            "poll_ms": args.poll_ms,
        },
        "environment": environment(),
        "variants": summaries,
        "raw": {key: asdict(result) for key, result in results.items()},
        "middleware_cost_us": cost_us,
        "ratios": ratios,
        "targets": targets,
        "notes": [
            NOT_MEASURED,
            "load generator: bench.load (asyncio, raw sockets, keep-alive, "
            f"{args.connections} connections, own process); wrk "
            "not used",
            "server: one uvicorn process (h11, asyncio loop) serving all "
            "variants; FastAPI hello-world route",
            "overhead: median over cycles of 1 - (variant req/s / "
            "baseline req/s in the same cycle); below 0 means noise",
            "server CPU/req: the server process's CPU time (all threads, "
            "/proc schedstat) over its requests, all cycles together; CPU "
            "overhead compares it with the baseline's",
            "latency: closes wait a random 0 to poll-interval after the "
            "handler started",
        ],
    }


def _verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "not measured"
    return "met" if value < limit else "NOT met"


def environment() -> dict[str, Any]:
    """What the numbers depend on."""

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "missing"

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "uvicorn": version("uvicorn"),
        "fastapi": version("fastapi"),
        "starlette": version("starlette"),
        "backburner": version("backburner"),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line.

    Raises:
        SystemExit: bad arguments, or ``--help``.
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench.cancellation",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--requests",
        type=_positive_int,
        default=1000,
        help="closed requests per variant for the latency (default 1000)",
    )
    parser.add_argument(
        "--cycles",
        type=_positive_int,
        default=30,
        help="throughput cycles, one slice per variant each (default 30)",
    )
    parser.add_argument(
        "--slice-seconds",
        type=float,
        default=0.5,
        help="seconds of load per slice (default 0.5)",
    )
    parser.add_argument(
        "--connections",
        type=_positive_int,
        default=8,
        help="connections of the load generator (default 8)",
    )
    parser.add_argument(
        "--poll-ms",
        type=float,
        default=10.0,
        help="polling interval of the is_disconnected() recipe (default 10)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the JSON report "
        "(default bench/results/cancellation-<time>.json)",
    )
    args = parser.parse_args(argv)
    if args.slice_seconds <= 0 or args.poll_ms <= 0:
        parser.error("--slice-seconds and --poll-ms must be positive")
    return args


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON report."""
    args = parse_args(argv)
    chosen = variants(args.poll_ms)
    results = {v.key: VariantResult(v.label) for v in chosen}
    print(
        f"request cancellation benchmark: {args.requests} closed requests "
        f"per variant, {args.cycles} cycles of {args.slice_seconds:g} s "
        "load slices",
        flush=True,
    )
    with bench_server(args.poll_ms) as (host, port, pid):
        print("measuring close-to-cancel latency...", flush=True)
        blocking = [v for v in chosen if v.block is not None]
        for key, (ms, missed) in measure_latency(
            host, port, blocking, args.requests, args.poll_ms / 1000
        ).items():
            results[key].latencies_ms, results[key].missed = ms, missed
        print("measuring hello-world requests per second...", flush=True)
        measured = measure_throughput(
            host,
            port,
            chosen,
            cycles=args.cycles,
            slice_seconds=args.slice_seconds,
            connections=args.connections,
            server_pid=pid if Path(f"/proc/{pid}/task").is_dir() else None,
        )
        for key, found in measured.items():
            result = results[key]
            result.rps, result.ratios = found.rps, found.ratios
            result.cpu_us, result.cpu_ratios = found.cpu_us, found.cpu_ratios
            result.cpu_us_overall = found.cpu_us_overall
        base_cpu = results[chosen[0].key].cpu_us_overall
        for result in results.values():
            if result.cpu_us_overall and base_cpu:
                result.cpu_overhead = result.cpu_us_overall / base_cpu - 1

    print("measuring the middleware's cost in process...", flush=True)
    cost_us = middleware_cost_us(batches=max(2, min(20, args.cycles)))
    report = build_report(args, results, cost_us)
    print()
    print(render_table(report))
    save_report(report, args.json, "cancellation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
