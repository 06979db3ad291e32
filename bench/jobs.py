"""Jobs benchmark: ``python -m bench.jobs`` (``make bench-jobs``).

backburner's SQLite storage side by side with Huey's (``SqliteHuey``),
same machine, same run, same job counts, a fresh SQLite file in a
temporary directory for every measurement of either system. Each system
runs in its recommended setup for the workload (see
``docs/benchmarks.md`` for the method and what is fair about it):

1. **Enqueue, one call per job**: a client process (:mod:`bench.
   jobs_client`) enqueues no-op jobs one call each, as a web application
   does, into an empty file; jobs per second.
2. **Enqueue, bulk**: the same through ``Client.enqueue_many`` (a
   thousand jobs per call) and Huey's ``map``.
3. **Drain no-op jobs**: the queue filled by (1) is drained by the
   consumer, started only then; the rate runs from starting the consumer
   to the last job done, so it includes the consumer's start-up.
4. **Drain 10 ms jobs**: the same with jobs that wait 10 ms
   (backburner: ``await asyncio.sleep``; Huey: ``time.sleep`` in a
   thread), at each level of concurrency of ``Setup.sleep_concurrency``
   (the same levels for both systems); the row shows each system's best
   level, and a second table every level side by side.
5. **Latency**: probe jobs enqueued one at a time into an idle running
   consumer; from just before the enqueue call to the moment the job
   starts (``time.time()`` on both sides, one clock), p50 and p99.

Jobs record when they ran through :mod:`bench.jobs_record`. Each
measurement is repeated ``--repeats`` times, the systems taking turns
within each repeat; the table shows the median. Target: backburner at
least twice as good as Huey on every row.

Prints a table and writes JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import jobs_record
from bench.reports import save_report

ROOT = Path(__file__).resolve().parent.parent
SYSTEMS = ("backburner", "huey")
TARGET = 2.0
# The peers read these (bench.jobs_huey, bench.jobs_backburner); they are
# not imported here, so that this process never opens either storage.
HUEY_DB_ENV = "BENCH_HUEY_DB"
HUEY_NO_FSYNC_ENV = "BENCH_HUEY_NO_FSYNC"
BACKBURNER_DB_ENV = "BENCH_BACKBURNER_DB"
STOP_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work each measurement does."""

    enqueue_jobs: int = 10_000
    bulk_jobs: int = 5_000
    noop_jobs: int = 10_000
    sleep_jobs: int = 2_000
    probes: int = 100
    probe_pause: float = 0.02
    repeats: int = 3


QUICK = Sizes(
    enqueue_jobs=200,
    bulk_jobs=200,
    noop_jobs=200,
    sleep_jobs=200,
    probes=5,
    probe_pause=0.005,
    repeats=1,
)


@dataclass(frozen=True, slots=True)
class Setup:
    """How each system's consumer is run, per workload.

    No-op jobs: two worker processes each (Huey's setup for throughput;
    backburner's processes hold 50 async workers each, so that a fetch
    takes many jobs at once). 10 ms jobs: the same number of concurrent
    jobs for both (Huey: threads; backburner: async workers in one
    process), at each level of ``sleep_concurrency``. ``n`` concurrent
    jobs of 10 ms cannot drain faster than ``100 * n`` jobs/s, so at one
    level alone the row can measure that ceiling rather than the system:
    each system is credited with its best level. Latency: each
    consumer's default worker count.
    """

    huey_noop_workers: int = 2  # processes
    huey_latency_workers: int = 1  # thread: the consumer's default
    bb_noop_processes: int = 2
    bb_noop_concurrency: int = 50
    bb_latency_processes: int = 1
    bb_latency_concurrency: int = 4
    huey_fsync: bool = True  # Huey's default: synchronous=FULL
    sleep_concurrency: tuple[int, ...] = (50, 100, 200)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    extra: bool = False


SLEEP_ROW = Row(
    "drain_sleep", "drain jobs waiting 10 ms, best level", "jobs/s", True
)
ROWS = (
    Row("enqueue_single", "enqueue, one call per job", "jobs/s", True),
    Row("enqueue_bulk", "enqueue, bulk (extra)", "jobs/s", True, True),
    Row("drain_noop", "drain no-op jobs", "jobs/s", True),
    SLEEP_ROW,
    Row("latency_p50", "enqueue-to-start p50", "ms", False),
    Row("latency_p99", "enqueue-to-start p99", "ms", False),
)


@dataclass(slots=True)
class Samples:
    """Every repeat's value of every row, for one system."""

    values: dict[str, list[float]] = field(default_factory=dict)
    details: list[dict[str, Any]] = field(default_factory=list)

    def add(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(value)

    def median(self, key: str) -> float | None:
        found = self.values.get(key)
        return statistics.median(found) if found else None


class Workspace:
    """Fresh files for one measurement of one system."""

    def __init__(
        self, root: Path, system: str, name: str, huey_fsync: bool = True
    ) -> None:
        self.dir = root / f"{system}-{name}"
        self.dir.mkdir()
        self.system = system
        self.huey_fsync = huey_fsync
        self.db = self.dir / "jobs.db"
        self.record = self.dir / "record.txt"
        self.log = self.dir / "consumer.log"

    def env(self) -> dict[str, str]:
        """The environment that points both sides at these files."""
        env = dict(os.environ)
        env.pop(HUEY_NO_FSYNC_ENV, None)
        if self.system == "huey":
            env[HUEY_DB_ENV] = str(self.db)
            if not self.huey_fsync:
                env[HUEY_NO_FSYNC_ENV] = "1"
        else:
            env[BACKBURNER_DB_ENV] = str(self.db)
        env[jobs_record.RECORD_ENV] = str(self.record)
        # Job functions are found from the repository root.
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), env.get("PYTHONPATH")])
        )
        return env


def client(
    space: Workspace, action: str, *args: object, timeout: float = 300
) -> dict[str, Any]:
    """Run one :mod:`bench.jobs_client` action; return its JSON result.

    Raises:
        RuntimeError: the client failed.
    """
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.jobs_client",
            space.system,
            action,
            *map(str, args),
        ],
        cwd=ROOT,
        env=space.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{space.system} client {action} failed:\n{result.stderr}"
        )
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def consumer_argv(
    space: Workspace, workload: str, setup: Setup, concurrency: int = 0
) -> list[str]:
    """The command line of ``space.system``'s consumer for ``workload``.

    ``concurrency`` is the number of concurrent 10 ms jobs (``sleep``
    workload only).
    """
    if space.system == "huey":
        workers = {
            "noop": setup.huey_noop_workers,
            "sleep": concurrency,
            "latency": setup.huey_latency_workers,
        }[workload]
        # Processes for CPU-bound throughput, threads for jobs that
        # wait, as Huey's documentation advises.
        kind = "process" if workload == "noop" else "thread"
        return [
            sys.executable,
            "-m",
            "huey.bin.huey_consumer",
            "bench.jobs_huey.huey",
            "--workers",
            str(workers),
            "--worker-type",
            kind,
        ]
    processes, concurrency = {
        "noop": (setup.bb_noop_processes, setup.bb_noop_concurrency),
        "sleep": (1, concurrency),
        "latency": (setup.bb_latency_processes, setup.bb_latency_concurrency),
    }[workload]
    return [
        sys.executable,
        "-m",
        "backburner",
        "worker",
        "--storage",
        f"sqlite:///{space.db}",
        "--import",
        "bench.jobs_backburner",
        "--processes",
        str(processes),
        "--concurrency",
        str(concurrency),
    ]


@dataclass(frozen=True, slots=True)
class Running:
    """A consumer process: when it was started, and whether it still runs."""

    started: float
    alive: Callable[[], bool]


@contextmanager
def consumer(
    space: Workspace, workload: str, setup: Setup, concurrency: int = 0
) -> Iterator[Running]:
    """Run the consumer; yield when it was started and whether it runs.

    On exit it is stopped gracefully (Huey: SIGINT, backburner: SIGTERM,
    each one's documented graceful signal), killed if it does not stop.

    Raises:
        RuntimeError: the consumer exited before it was stopped.
    """
    argv = consumer_argv(space, workload, setup, concurrency)
    with space.log.open("ab") as log:
        started = time.time()
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=space.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Running(started, lambda: process.poll() is None)
    finally:
        died = process.poll()
        graceful = signal.SIGINT if space.system == "huey" else signal.SIGTERM
        if died is None:
            process.send_signal(graceful)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    # Only a consumer that ended before it was told to is a failure: how
    # it ends when stopped (a server process still starting up when a
    # short drain is over may die of the signal) is not measured here.
    if died is not None:
        raise RuntimeError(
            f"{space.system} consumer exited early with {died}; log: "
            f"{space.log.read_text()[-2000:]}"
        )


def wait_all(
    space: Workspace, count: int, timeout: float, running: Running
) -> list[float]:
    """Wait for ``count`` recorded jobs; return their times, sorted.

    Raises:
        TimeoutError: they did not all run within ``timeout`` seconds,
            or the consumer exited first.
    """
    if not jobs_record.wait_for(space.record, count, timeout, running.alive):
        done = jobs_record.count(space.record)
        raise TimeoutError(
            f"{space.system}: only {done} of {count} jobs ran "
            f"(timeout {timeout:g} s, consumer running: {running.alive()});"
            f" consumer log:\n{space.log.read_text()[-2000:]}"
        )
    return sorted(moment for _, moment in jobs_record.read(space.record))


def drain(
    space: Workspace,
    workload: str,
    count: int,
    setup: Setup,
    concurrency: int = 0,
) -> dict[str, float]:
    """Drain a pre-filled queue of ``count`` jobs; return rates.

    ``rate`` counts from starting the consumer, start-up included;
    ``steady_rate`` from the first job done to the last.
    """
    timeout = 60 + count / 50
    with consumer(space, workload, setup, concurrency) as running:
        moments = wait_all(space, count, timeout, running)
    started = running.started
    total = moments[-1] - started
    steady = moments[-1] - moments[0]
    return {
        "jobs": count,
        "seconds": total,
        "rate": count / total,
        "startup_seconds": moments[0] - started,
        "steady_rate": (count - 1) / steady if steady > 0 else 0.0,
    }


def measure_once(
    root: Path, system: str, repeat: int, sizes: Sizes, setup: Setup
) -> dict[str, Any]:
    """Every row once for ``system``; return the values and details."""

    def space(name: str) -> Workspace:
        return Workspace(
            root, system, f"{name}-{repeat}", huey_fsync=setup.huey_fsync
        )

    found: dict[str, Any] = {}
    # (1) and (3): the queue that the single enqueues fill is the one the
    # no-op drain empties (topped up if it is to drain more), which saves
    # filling another file.
    single = space("single")
    seconds = client(single, "enqueue-single", sizes.enqueue_jobs)["seconds"]
    found["enqueue_single"] = sizes.enqueue_jobs / seconds
    noop = single
    if sizes.noop_jobs < sizes.enqueue_jobs:
        noop = space("noop")
        client(noop, "fill", "noop", sizes.noop_jobs)
    elif sizes.noop_jobs > sizes.enqueue_jobs:
        client(noop, "fill", "noop", sizes.noop_jobs - sizes.enqueue_jobs)
    noop_drain = drain(noop, "noop", sizes.noop_jobs, setup)
    found["drain_noop"] = noop_drain["rate"]

    bulk = space("bulk")
    seconds = client(bulk, "enqueue-bulk", sizes.bulk_jobs)["seconds"]
    found["enqueue_bulk"] = sizes.bulk_jobs / seconds

    sleep_drains: dict[str, dict[str, float]] = {}
    for level in setup.sleep_concurrency:
        sleep = space(f"sleep-{level}")
        client(sleep, "fill", "sleep", sizes.sleep_jobs)
        sleep_drain = drain(sleep, "sleep", sizes.sleep_jobs, setup, level)
        sleep_drains[str(level)] = sleep_drain
        found[level_key(level)] = sleep_drain["rate"]

    probe = space("latency")
    with consumer(probe, "latency", setup):
        latencies = client(
            probe, "probes", sizes.probes, sizes.probe_pause, 30.0
        )["latencies"]
    latencies_ms = sorted(1000 * value for value in latencies)
    found["latency_p50"] = percentile(latencies_ms, 50)
    found["latency_p99"] = percentile(latencies_ms, 99)
    found["details"] = {
        "drain_noop": noop_drain,
        "drain_sleep": sleep_drains,
        "latencies_ms": [round(v, 3) for v in latencies_ms],
    }
    return found


def level_key(concurrency: int) -> str:
    """The samples key of the 10 ms drain at ``concurrency``."""
    return f"drain_sleep_{concurrency}"


def best_level(
    found: Samples, levels: Sequence[int]
) -> tuple[int, float] | None:
    """The level of concurrency with the highest median 10 ms drain rate,
    and that median; ``None`` if none was measured."""
    medians = [
        (median, level)
        for level in levels
        if (median := found.median(level_key(level))) is not None
    ]
    if not medians:
        return None
    median, level = max(medians)
    return level, median


def percentile(ordered: Sequence[float], rank: float) -> float:
    """The ``rank``-th percentile of sorted values (nearest rank)."""
    if not ordered:
        raise ValueError("no values")
    index = max(0, -(-len(ordered) * rank // 100) - 1)
    return ordered[int(index)]


def ratio(row: Row, ours: float | None, theirs: float | None) -> float | None:
    """How many times better backburner is than Huey on ``row``."""
    if not ours or not theirs:
        return None
    return ours / theirs if row.higher_is_better else theirs / ours


def build_report(
    samples: dict[str, Samples],
    sizes: Sizes,
    setup: Setup,
    seconds: float,
) -> dict[str, Any]:
    """Everything measured, as JSON-ready data."""
    rows = []
    # The 10 ms row: each system at its best level of concurrency.
    best = {
        system: best_level(found, setup.sleep_concurrency)
        for system, found in samples.items()
    }
    for row in ROWS:
        key = {system: row.key for system in samples}
        if row is SLEEP_ROW:
            key = {
                system: level_key(found[0]) if found else row.key
                for system, found in best.items()
            }
        ours = samples["backburner"].median(key["backburner"])
        theirs = samples["huey"].median(key["huey"])
        found = ratio(row, ours, theirs)
        entry: dict[str, Any] = {
            "key": row.key,
            "label": row.label,
            "unit": row.unit,
            "higher_is_better": row.higher_is_better,
            "backburner": ours,
            "huey": theirs,
            "ratio": found,
            "target_met": None if found is None else found >= TARGET,
            "backburner_samples": samples["backburner"].values.get(
                key["backburner"], []
            ),
            "huey_samples": samples["huey"].values.get(key["huey"], []),
        }
        if row is SLEEP_ROW:
            entry["best_concurrency"] = {
                system: None if found is None else found[0]
                for system, found in best.items()
            }
        rows.append(entry)
    levels = []
    for level in setup.sleep_concurrency:
        ours = samples["backburner"].median(level_key(level))
        theirs = samples["huey"].median(level_key(level))
        levels.append(
            {
                "concurrency": level,
                "backburner": ours,
                "huey": theirs,
                "ratio": ratio(SLEEP_ROW, ours, theirs),
                "backburner_samples": samples["backburner"].values.get(
                    level_key(level), []
                ),
                "huey_samples": samples["huey"].values.get(
                    level_key(level), []
                ),
            }
        )
    return {
        "benchmark": "jobs",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "target_ratio": TARGET,
        "sizes": asdict(sizes),
        "setup": asdict(setup),
        "environment": environment(),
        "rows": rows,
        "sleep_levels": levels,
        "details": {
            system: found.details for system, found in samples.items()
        },
    }


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if unit == "ms" else f"{value:,.0f}"


def render_table(report: dict[str, Any]) -> str:
    """The table (row, backburner, Huey, ratio, target met), then the
    10 ms drain at every level of concurrency."""
    lines = [("row", "backburner", "Huey", "ratio", f"≥{TARGET:g}x?")]
    for row in report["rows"]:
        found = row["ratio"]
        met = row["target_met"]
        lines.append(
            (
                f"{row['label']} ({row['unit']})",
                _number(row["backburner"], row["unit"]),
                _number(row["huey"], row["unit"]),
                "-" if found is None else f"{found:.2f}x",
                "-" if met is None else ("yes" if met else "NO"),
            )
        )
    levels = [("10 ms drain by level", "backburner", "Huey", "ratio")]
    for level in report["sleep_levels"]:
        found = level["ratio"]
        levels.append(
            (
                f"{level['concurrency']} concurrent jobs (jobs/s)",
                _number(level["backburner"], "jobs/s"),
                _number(level["huey"], "jobs/s"),
                "-" if found is None else f"{found:.2f}x",
            )
        )
    best = next(
        row["best_concurrency"]
        for row in report["rows"]
        if "best_concurrency" in row
    )
    best_levels = ", ".join(
        f"{name} {best[system]}"
        for system, name in (("backburner", "backburner"), ("huey", "Huey"))
        if best[system] is not None
    )
    return "\n".join(
        [
            *_aligned(lines),
            "",
            *_aligned(levels),
            f"best level: {best_levels or '-'}",
        ]
    )


def _aligned(lines: Sequence[tuple[str, ...]]) -> list[str]:
    """``lines`` as columns: the first left-aligned, a rule under it."""
    widths = [
        max(len(line[i]) for line in lines) for i in range(len(lines[0]))
    ]
    out = []
    for index, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])]
        cells += [
            cell.rjust(width)
            for cell, width in zip(line[1:], widths[1:], strict=True)
        ]
        out.append("  ".join(cells))
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    return out


def environment() -> dict[str, Any]:
    """What the numbers depend on."""

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "missing"

    return {
        "python": platform.python_version(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "backburner": version("backburner"),
        "huey": version("huey"),
    }


def run(
    sizes: Sizes,
    setup: Setup,
    systems: Sequence[str] = SYSTEMS,
    progress: Callable[[str], None] = print,
) -> dict[str, Samples]:
    """Measure every row ``sizes.repeats`` times for each system."""
    samples = {system: Samples() for system in SYSTEMS}
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as directory:
        root = Path(directory)
        for repeat in range(1, sizes.repeats + 1):
            for system in systems:
                progress(f"repeat {repeat}/{sizes.repeats}: {system}...")
                found = measure_once(root, system, repeat, sizes, setup)
                samples[system].details.append(found.pop("details"))
                for key, value in found.items():
                    samples[system].add(key, value)
    return samples


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line.

    Raises:
        SystemExit: bad arguments, or ``--help``.
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench.jobs",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes, one repeat: proves it runs, measures little",
    )
    defaults = Sizes()
    for name, help_text in (
        ("enqueue-jobs", "jobs enqueued one call each"),
        ("bulk-jobs", "jobs enqueued in bulk"),
        ("noop-jobs", "no-op jobs drained"),
        ("sleep-jobs", "10 ms jobs drained"),
        ("probes", "latency probes per repeat"),
        ("repeats", "repeats of every measurement"),
    ):
        attribute = name.replace("-", "_")
        parser.add_argument(
            f"--{name}",
            type=_positive_int,
            default=None,
            help=f"{help_text} (default {getattr(defaults, attribute)})",
        )
    parser.add_argument(
        "--huey-no-fsync",
        action="store_true",
        help="run Huey with fsync=False (synchronous=OFF) instead of its "
        "default (FULL)",
    )
    parser.add_argument(
        "--sleep-concurrency",
        type=_levels,
        default=Setup().sleep_concurrency,
        metavar="N,N...",
        help="levels of concurrency of the 10 ms drain, the same for both "
        "systems (default "
        + ",".join(map(str, Setup().sleep_concurrency))
        + "); at most the number of 10 ms jobs",
    )
    parser.add_argument(
        "--only",
        choices=SYSTEMS,
        default=None,
        help="measure one system only (for profiling)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the JSON report "
        "(default bench/results/jobs-<time>.json)",
    )
    return parser.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> Sizes:
    """The sizes the command line asks for."""
    base = QUICK if args.quick else Sizes()
    given = {
        name: getattr(args, name)
        for name in (
            "enqueue_jobs",
            "bulk_jobs",
            "noop_jobs",
            "sleep_jobs",
            "probes",
            "repeats",
        )
        if getattr(args, name) is not None
    }
    return Sizes(**{**asdict(base), **given})


def _levels(text: str) -> tuple[int, ...]:
    try:
        found = tuple(_positive_int(part) for part in text.split(","))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of positive numbers: {text!r}"
        ) from error
    return tuple(sorted(set(found)))


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON report."""
    args = parse_args(argv)
    sizes = sizes_from(args)
    too_many = [
        level for level in args.sleep_concurrency if level > sizes.sleep_jobs
    ]
    if too_many:
        # More workers than jobs: the level would measure the jobs there
        # are, under a label that says otherwise.
        print(
            f"python -m bench.jobs: error: --sleep-concurrency {too_many} "
            f"exceeds the {sizes.sleep_jobs} jobs of the 10 ms drain",
            file=sys.stderr,
        )
        return 2
    setup = Setup(
        huey_fsync=not args.huey_no_fsync,
        sleep_concurrency=args.sleep_concurrency,
    )
    systems = (args.only,) if args.only else SYSTEMS
    print(
        f"jobs benchmark: backburner vs Huey (SqliteHuey), "
        f"{sizes.repeats} repeat(s); sizes {asdict(sizes)}",
        flush=True,
    )
    started = time.monotonic()
    samples = run(sizes, setup, systems, lambda text: print(text, flush=True))
    report = build_report(samples, sizes, setup, time.monotonic() - started)
    print()
    print(render_table(report))
    save_report(report, args.json, "jobs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
