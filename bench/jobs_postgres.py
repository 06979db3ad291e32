"""PostgreSQL jobs benchmark: ``python -m bench.jobs_postgres``
(``make bench-jobs-postgres``).

backburner's PostgreSQL storage side by side with procrastinate and
pgqueuer on the same PostgreSQL server, and with the Redis-based RQ,
arq, Dramatiq and Celery on the machine's Redis, in one run. Each system
lives in ``bench/peers_<system>.py`` (job functions, client, consumer
command line) and runs in its recommended setup; ``docs/benchmarks.md``
describes each one.

Every measurement of every system starts from nothing: a fresh database
(``CREATE DATABASE``, dropped afterwards) for the PostgreSQL systems,
an emptied Redis database (number 11 unless ``BENCH_REDIS_URL`` says
otherwise; the run refuses to start when it holds keys, and empties only
it) for the others. Rows:

1. **Enqueue, one call per job**, from a client process of its own.
2. **Enqueue, bulk**: each system's own batch API.
3. **Drain 10,000 no-op jobs**, from starting the consumer to the last
   job done (start-up included).
4. **Drain 2,000 jobs that each wait 10 ms**, the same way.
5. **Enqueue-to-start latency** of probes sent one at a time into an
   idle consumer, p50 and p99 (``--latency-only``: this row alone, the
   quick way to compare two versions; ``--probes N``: probes per
   measurement, 150 by default).
6. **Drain with 1,000,000 jobs queued** (``--million``): the same no-op
   drain, timed over its first 10,000 jobs, with a million no-op jobs on
   the queue, filled untimed by the system's own bulk enqueue. PostgreSQL
   systems only: it asks how a table-backed queue copes with a deep
   table.

Beside the rows, the run measures two floors of the PostgreSQL server
before the first system and after the last. The **commit floor**
(:func:`commit_floor`): how many trivial one-row INSERTs a second one
connection commits, durably and without waiting for the WAL flush. No
enqueue that commits durably on each call can pass the durable floor;
the report names the peers whose single enqueue did (they keep jobs in
memory only). The **latency floor** (:mod:`bench.latency_floor`): the
enqueue-to-start latency of a bare two-statement queue that commits its
enqueue and its take durably; the report names the systems measured
below it.

Jobs record when they ran through :mod:`bench.jobs_record`. Every loop
is bounded in count and in time. Prints a table and writes JSON to
``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import jobs_record, latency_floor
from bench.jobs import Row, Samples, percentile
from bench.jobs_client import probe_loop
from bench.reports import save_report

ROOT = Path(__file__).resolve().parent.parent
SYSTEMS = (
    "backburner",
    "procrastinate",
    "pgqueuer",
    "rq",
    "arq",
    "dramatiq",
    "celery",
)
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
STOP_TIMEOUT = 30.0
REDIS_SYSTEMS = frozenset({"rq", "arq", "dramatiq", "celery"})
MILLION_RATIO = 0.8
P99_TARGET_MS = 10.0


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work each measurement does."""

    enqueue_jobs: int = 5_000
    bulk_jobs: int = 10_000
    noop_jobs: int = 10_000
    sleep_jobs: int = 2_000
    probes: int = 150
    probe_pause: float = 0.02
    million: int = 0
    drains_only: bool = False
    latency_only: bool = False
    enqueues_only: bool = False
    repeats: int = 1


QUICK = Sizes(
    enqueue_jobs=100,
    bulk_jobs=200,
    noop_jobs=200,
    sleep_jobs=100,
    probes=8,
    probe_pause=0.005,
)

ROWS = (
    Row("enqueue_single", "enqueue, one call per job", "jobs/s", True),
    Row("enqueue_bulk", "enqueue, bulk", "jobs/s", True),
    Row("drain_noop", "drain 10,000 no-op jobs", "jobs/s", True),
    Row("drain_sleep", "drain 2,000 jobs waiting 10 ms", "jobs/s", True),
    Row("latency_p50", "enqueue-to-start p50", "ms", False),
    Row("latency_p99", "enqueue-to-start p99", "ms", False),
    Row("drain_million", "drain, 1,000,000 queued", "jobs/s", True),
)


def peer_module(system: str) -> Any:
    """The ``bench.peers_<system>`` module."""
    return importlib.import_module(f"bench.peers_{system}")


# -- where each measurement runs ----------------------------------------------


def _admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(statement)


def _redis_db() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL)


def check_redis_is_ours() -> None:
    """Refuse to run when the benchmark's Redis database holds keys.

    Raises:
        RuntimeError: the database is not empty (someone else's).
    """
    keys = _redis_db().dbsize()
    if keys:
        raise RuntimeError(
            f"{REDIS_URL} holds {keys} keys; the benchmark empties its "
            "database, so point BENCH_REDIS_URL at an unused one"
        )


class Workspace:
    """Fresh storage and files for one measurement of one system."""

    def __init__(self, root: Path, system: str, name: str) -> None:
        self.system = system
        self.kind: str = peer_module(system).KIND
        self.dir = root / f"{system}-{name}"
        self.dir.mkdir()
        self.record = self.dir / "record.txt"
        self.log = self.dir / "consumer.log"
        self.database = f"bench_{system}_{name}_{os.getpid()}".replace(
            "-", "_"
        )

    @property
    def url(self) -> str:
        """The storage URL the system's both sides use."""
        if self.kind == "redis":
            return REDIS_URL
        parts = urllib.parse.urlsplit(POSTGRES_URL)
        return urllib.parse.urlunsplit(
            parts._replace(path=f"/{self.database}")
        )

    def __enter__(self) -> Workspace:
        if self.kind == "redis":
            _redis_db().flushdb()
        else:
            _admin(f'CREATE DATABASE "{self.database}"')
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.kind == "redis":
            _redis_db().flushdb()
        else:
            _admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def env(self) -> dict[str, str]:
        """The environment that points both sides at this workspace."""
        env = dict(os.environ)
        env["BENCH_PG_URL" if self.kind == "postgres" else "BENCH_REDIS"] = (
            self.url
        )
        env[jobs_record.RECORD_ENV] = str(self.record)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), env.get("PYTHONPATH")])
        )
        return env


def client(
    space: Workspace, action: str, *args: object, timeout: float = 900
) -> dict[str, Any]:
    """Run one client action in a process of its own; return its JSON.

    Raises:
        RuntimeError: the client failed.
    """
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.jobs_postgres",
            "client",
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
            f"{space.system} client {action} failed:\n{result.stderr[-3000:]}"
        )
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


@contextmanager
def consumer(space: Workspace, workload: str) -> Iterator[float]:
    """Run the system's consumer processes; yield when they started.

    On exit each gets SIGTERM (every one of these systems' graceful
    stop), then its whole process group is killed so that no worker
    survives.

    Raises:
        RuntimeError: the consumer exited before it was stopped.
    """
    argvs = peer_module(space.system).consumer_argvs(workload, space.url)
    with space.log.open("ab") as log:
        started = time.time()
        processes = [
            subprocess.Popen(
                argv,
                cwd=ROOT,
                env=space.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for argv in argvs
        ]
    try:
        yield started
    finally:
        died = next(
            (p.returncode for p in processes if p.poll() is not None), None
        )
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            # Worker children (prefork pools...) go with their leader.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if died is not None:
        raise RuntimeError(
            f"{space.system} consumer exited early with {died}; log: "
            f"{space.log.read_text()[-2000:]}"
        )


def drain(
    space: Workspace, workload: str, count: int, *, timeout: float
) -> dict[str, float]:
    """Drain ``count`` queued jobs (or the first ``count`` of a deeper
    queue); rates from starting the consumer, and from the first job.

    A consumer too slow to finish within ``timeout`` seconds still gets
    a rate, over the jobs it did (``jobs`` says how many).

    Raises:
        TimeoutError: not a single job ran within ``timeout`` seconds.
    """
    with consumer(space, workload) as started:
        complete = jobs_record.wait_for(space.record, count, timeout)
        stopped = time.time()
    moments = sorted(m for _, m in jobs_record.read(space.record))[:count]
    if not moments:
        raise TimeoutError(
            f"{space.system}: no job ran in {timeout:g} s; consumer log: "
            f"{space.log}"
        )
    done = len(moments)
    total = (moments[-1] if complete else stopped) - started
    steady = moments[-1] - moments[0]
    return {
        "jobs": done,
        "complete": complete,
        "seconds": total,
        "rate": done / total,
        "startup_seconds": moments[0] - started,
        "steady_rate": (done - 1) / steady if steady > 0 else 0.0,
    }


# -- one repeat of one system -------------------------------------------------


def measure_once(
    root: Path, system: str, repeat: int, sizes: Sizes
) -> dict[str, Any]:
    """Every row once for ``system``; return the values and details."""

    @contextmanager
    def space(name: str) -> Iterator[Workspace]:
        # The schema is installed before any consumer starts.
        with Workspace(root, system, f"{name}{repeat}") as fresh:
            client(fresh, "setup")
            yield fresh

    found: dict[str, Any] = {}
    details: dict[str, Any] = {}
    if sizes.latency_only:
        found.update(_latency(space, sizes, details))
        found["details"] = details
        return found
    drain_timeout = 120 + sizes.noop_jobs / 20
    with space("noop") as noop:
        took = client(noop, "enqueue-single", sizes.enqueue_jobs)["seconds"]
        found["enqueue_single"] = sizes.enqueue_jobs / took
        if not sizes.enqueues_only:
            if sizes.noop_jobs > sizes.enqueue_jobs:
                client(
                    noop, "fill", "noop", sizes.noop_jobs - sizes.enqueue_jobs
                )
            details["drain_noop"] = drain(
                noop, "noop", sizes.noop_jobs, timeout=drain_timeout
            )
            found["drain_noop"] = details["drain_noop"]["rate"]

    if sizes.drains_only:
        # Only what the deep-queue ratio needs: the 10,000-job drain
        # above and the deep one below.
        found.update(_deep(space, system, sizes, drain_timeout, details))
        found["details"] = details
        return found

    with space("bulk") as bulk:
        took = client(bulk, "enqueue-bulk", sizes.bulk_jobs)["seconds"]
        found["enqueue_bulk"] = sizes.bulk_jobs / took
    if sizes.enqueues_only:
        found["details"] = details
        return found

    with space("sleep") as sleep:
        client(sleep, "fill", "sleep", sizes.sleep_jobs)
        details["drain_sleep"] = drain(
            sleep, "sleep", sizes.sleep_jobs, timeout=drain_timeout
        )
        found["drain_sleep"] = details["drain_sleep"]["rate"]

    found.update(_latency(space, sizes, details))
    found.update(_deep(space, system, sizes, drain_timeout, details))
    found["details"] = details
    return found


def _latency(
    space: Callable[[str], Any], sizes: Sizes, details: dict[str, Any]
) -> dict[str, float]:
    """Enqueue-to-start latency of probes into an idle consumer."""
    with space("latency") as probe, consumer(probe, "latency"):
        latencies = client(
            probe, "probes", sizes.probes, sizes.probe_pause, 30.0
        )["latencies"]
    latencies_ms = sorted(1000 * value for value in latencies)
    details["latencies_ms"] = [round(v, 3) for v in latencies_ms]
    return {
        "latency_p50": percentile(latencies_ms, 50),
        "latency_p99": percentile(latencies_ms, 99),
    }


def _deep(
    space: Callable[[str], Any],
    system: str,
    sizes: Sizes,
    timeout: float,
    details: dict[str, Any],
) -> dict[str, float]:
    """The drain with ``sizes.million`` jobs queued, if asked for."""
    if not sizes.million or peer_module(system).KIND != "postgres":
        return {}
    with space("million") as deep:
        filled = client(deep, "fill-timed", "noop", sizes.million)
        details["million_fill_seconds"] = filled["seconds"]
        details["drain_million"] = drain(
            deep, "noop", sizes.noop_jobs, timeout=timeout
        )
    return {"drain_million": details["drain_million"]["rate"]}


# -- the report ---------------------------------------------------------------


def build_report(
    samples: dict[str, Samples],
    sizes: Sizes,
    seconds: float,
    floors: Sequence[dict[str, float]] = (),
    latency_floors: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Everything measured, as JSON-ready data, with the targets.

    ``floors`` are the :func:`commit_floor` results of this run,
    ``latency_floors`` the :func:`bench.latency_floor.measure` ones.
    """
    rows = []
    for row in ROWS:
        values = {
            system: samples[system].median(row.key) for system in samples
        }
        ours = values.get("backburner")
        peers = {
            name: value
            for name, value in values.items()
            if name != "backburner" and value is not None
        }
        best = None
        if peers:
            pick = max if row.higher_is_better else min
            best = pick(peers, key=lambda name: peers[name])
        ahead = None
        if ours is not None and best is not None:
            theirs = peers[best]
            ahead = ours > theirs if row.higher_is_better else ours < theirs
        rows.append(
            {
                "key": row.key,
                "label": row.label,
                "unit": row.unit,
                "higher_is_better": row.higher_is_better,
                "values": values,
                "best_peer": best,
                "ahead_of_every_peer": ahead,
                "samples": {
                    system: samples[system].values.get(row.key, [])
                    for system in samples
                },
            }
        )
    return {
        "benchmark": "jobs-postgres",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "sizes": asdict(sizes),
        "environment": environment(),
        "rows": rows,
        "targets": targets(samples),
        "commit_floor": floor_summary(floors, rows),
        "latency_floor": latency_floor_summary(latency_floors, rows),
        "details": {
            system: found.details for system, found in samples.items()
        },
    }


def targets(samples: dict[str, Samples]) -> dict[str, Any]:
    """backburner's own targets: p99 latency, and the deep-queue drain."""
    ours = samples.get("backburner")
    if ours is None:
        return {}
    p99 = ours.median("latency_p99")
    deep = ours.median("drain_million")
    shallow = ours.median("drain_noop")
    ratio = deep / shallow if deep and shallow else None
    return {
        "latency_p99_ms": p99,
        "latency_p99_under_10_ms": None if p99 is None else p99 < 10,
        "million_to_10000_ratio": ratio,
        "million_at_least_80_percent": (
            None if ratio is None else ratio >= MILLION_RATIO
        ),
    }


def floor_summary(
    floors: Sequence[dict[str, float]], rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The run's commit floors and whose single enqueue passed the
    durable one; empty when the floor was not measured.

    The best of the run's measurements counts, so that a peer is said to
    pass the floor only when it passed every measurement of it.
    """
    if not floors:
        return {}
    durable = max(f["synchronous_commit_on_per_s"] for f in floors)
    unflushed = max(f["synchronous_commit_off_per_s"] for f in floors)
    single = next(r for r in rows if r["key"] == "enqueue_single")
    above = sorted(
        system
        for system, value in single["values"].items()
        if value is not None and value > durable
    )
    durable_peers = [
        value
        for system, value in single["values"].items()
        if system != "backburner"
        and system not in REDIS_SYSTEMS
        and value is not None
    ]
    ours = single["values"].get("backburner")
    return {
        "durable_per_s": durable,
        "without_flush_wait_per_s": unflushed,
        "samples": list(floors),
        "single_enqueue_above_durable_floor": above,
        "single_enqueue_ahead_of_durable_peers": (
            None
            if ours is None or not durable_peers
            else ours > max(durable_peers)
        ),
    }


def latency_floor_summary(
    floors: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The run's latency floor (its lowest measurement) and the systems
    whose p50 went below it; empty when it was not measured."""
    if not floors:
        return {}
    p50 = min(f["p50_ms"] for f in floors)
    p99 = min(f["p99_ms"] for f in floors)
    median = next(r for r in rows if r["key"] == "latency_p50")
    return {
        "p50_ms": p50,
        "p99_ms": p99,
        "samples": [
            {"p50_ms": f["p50_ms"], "p99_ms": f["p99_ms"]} for f in floors
        ],
        "p50_below_floor": sorted(
            system
            for system, value in median["values"].items()
            if value is not None and value < p50
        ),
    }


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if unit == "ms" else f"{value:,.0f}"


def render_table(report: dict[str, Any]) -> str:
    """Rows by systems, plus whether backburner leads every peer."""
    systems = list(report["rows"][0]["values"])
    header = ("row", *systems, "ahead?")
    lines = [header]
    for row in report["rows"]:
        ahead = row["ahead_of_every_peer"]
        lines.append(
            (
                f"{row['label']} ({row['unit']})",
                *(
                    _number(row["values"][system], row["unit"])
                    for system in systems
                ),
                "-" if ahead is None else ("yes" if ahead else "NO"),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
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
    found = report["targets"]
    if found:
        out.append("")
        out.append(
            f"backburner p99 under {P99_TARGET_MS:g} ms: "
            f"{found['latency_p99_under_10_ms']}; drain at 1,000,000 / "
            f"at 10,000: {found['million_to_10000_ratio']}"
        )
    floor = report.get("commit_floor")
    if floor:
        out.append(
            "commit floor, one trivial INSERT per call on one connection: "
            f"{floor['durable_per_s']:,.0f}/s durable, "
            f"{floor['without_flush_wait_per_s']:,.0f}/s without waiting "
            "for the WAL flush"
        )
        above = ", ".join(floor["single_enqueue_above_durable_floor"])
        out.append(
            "single enqueue above the durable floor: "
            f"{above or 'none'}; backburner ahead of the durable peers: "
            f"{floor['single_enqueue_ahead_of_durable_peers']}"
        )
    latency = report.get("latency_floor")
    if latency:
        below = ", ".join(latency["p50_below_floor"])
        out.append(
            "latency floor, a bare queue committing enqueue and take "
            f"durably: p50 {latency['p50_ms']:.1f} ms, p99 "
            f"{latency['p99_ms']:.1f} ms; p50 below it: {below or 'none'}"
        )
    return "\n".join(out)


def environment() -> dict[str, Any]:
    """What the numbers depend on."""

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "missing"

    import psycopg

    with psycopg.connect(POSTGRES_URL) as conn:
        server = conn.execute("SHOW server_version").fetchone()
    return {
        "python": platform.python_version(),
        "postgresql": server[0] if server else "?",
        "redis": _redis_db().info("server").get("redis_version", "?"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        **{
            name: version(name)
            for name in (
                "backburner",
                "procrastinate",
                "pgqueuer",
                "rq",
                "arq",
                "dramatiq",
                "celery",
            )
        },
    }


def run(
    sizes: Sizes,
    systems: Sequence[str],
    progress: Callable[[str], None] = print,
) -> dict[str, Samples]:
    """Measure every row ``sizes.repeats`` times for each system."""
    samples = {system: Samples() for system in systems}
    if any(peer_module(s).KIND == "redis" for s in systems):
        check_redis_is_ours()
    with tempfile.TemporaryDirectory(prefix="bench-jobs-pg-") as directory:
        root = Path(directory)
        for repeat in range(1, sizes.repeats + 1):
            for system in systems:
                progress(f"repeat {repeat}/{sizes.repeats}: {system}...")
                try:
                    found = measure_once(root, system, repeat, sizes)
                except (RuntimeError, TimeoutError) as error:
                    progress(f"  {system} failed: {error}")
                    for log in root.glob(f"{system}-*/consumer.log"):
                        progress(f"  {log}: {log.read_text()[-1500:]}")
                    samples[system].details.append({"error": str(error)})
                    continue
                samples[system].details.append(found.pop("details"))
                for key, value in found.items():
                    samples[system].add(key, value)
                progress(
                    "  " + ", ".join(f"{k}={v:,.1f}" for k, v in found.items())
                )
    return samples


# -- the client process -------------------------------------------------------


def client_main(system: str, action: str, args: Sequence[str]) -> int:
    """``client SYSTEM ACTION [ARGS]``: one action, its result as JSON."""
    peer = peer_module(system).Peer()
    result: dict[str, Any] = {}
    try:
        if action == "setup":
            result = {}
        elif action == "enqueue-single":
            result = {"seconds": peer.enqueue_single(int(args[0]))}
        elif action == "enqueue-bulk":
            result = {"seconds": peer.enqueue_bulk(int(args[0]))}
        elif action in ("fill", "fill-timed"):
            started = time.perf_counter()
            peer.fill(args[0], int(args[1]))
            result = {"seconds": time.perf_counter() - started}
        elif action == "probes":
            path = Path(os.environ[jobs_record.RECORD_ENV])
            count, pause, timeout = (
                int(args[0]),
                float(args[1]),
                float(args[2]),
            )
            result = {
                "latencies": probe_loop(
                    peer.send_probe, count, path, pause, timeout
                )
            }
        else:
            raise ValueError(f"unknown action {action!r}")
    finally:
        peer.close()
    print(json.dumps(result))
    return 0


# -- command line -------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line.

    Raises:
        SystemExit: bad arguments, or ``--help``.
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench.jobs_postgres",
        description="backburner on PostgreSQL vs procrastinate, pgqueuer, "
        "RQ, arq, Dramatiq and Celery",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes")
    parser.add_argument(
        "--million",
        type=int,
        nargs="?",
        const=1_000_000,
        default=0,
        help="also drain with this many jobs queued (default 1,000,000; "
        "PostgreSQL systems; takes minutes)",
    )
    parser.add_argument(
        "--drains-only",
        action="store_true",
        help="measure only the 10,000-job drain and, with --million, "
        "the deep one (their ratio)",
    )
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="measure only the enqueue-to-start latency",
    )
    parser.add_argument(
        "--probes",
        type=int,
        default=None,
        help="latency probes per measurement (default 150)",
    )
    parser.add_argument(
        "--enqueues-only",
        action="store_true",
        help="measure only the two enqueue rows (single and bulk)",
    )
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--only",
        action="append",
        choices=SYSTEMS,
        help="measure only these systems (repeatable)",
    )
    parser.add_argument("--json", type=Path, default=None)
    return parser.parse_args(argv)


def storage_loop(jobs: int, batch: int = 50) -> dict[str, float]:
    """The storage's own share of a drain, without a server around it.

    One process creates ``jobs`` jobs on a schema of its own, then loops
    ``apply_changes_and_fetch`` (a batch of successes, then the next
    batch) until the queue is empty, as a server's outcome writer does.
    Returns jobs per second and, per batch, the wall time and this
    process's CPU time (the client's cost: psycopg, statement building).
    """
    import psycopg
    from psycopg import sql

    from backburner.storage import (
        JobState,
        NewJob,
        ServerInfo,
        StateChange,
        open_storage,
    )

    schema = f"bench_loop_{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    job = NewJob(
        function="bench.peers_backburner:noop",
        arguments='{"args":[],"kwargs":{}}',
        queue="default",
        state=JobState.ENQUEUED,
        reason="enqueued",
        created_at=now,
    )

    def succeeded(job_id: int, version: int) -> StateChange:
        return StateChange(
            job_id=job_id,
            to_state=JobState.SUCCEEDED,
            from_states=frozenset({JobState.PROCESSING}),
            reason="succeeded",
            at=now,
            data={"server": "bench:1", "duration": 0.001},
            expected_version=version,
            expires_at=now,
            from_worker=True,
        )

    async def drain() -> dict[str, float]:
        storage = open_storage(f"{POSTGRES_URL}?schema={schema}")
        try:
            await storage.migrate()
            for start in range(0, jobs, 1000):
                await storage.create_jobs([job] * min(1000, jobs - start))
            server = ServerInfo("bench:1", ("default",), batch, now, now)
            await storage.announce_server(server)
            wall, cpu = time.perf_counter(), time.process_time()
            taken = await storage.fetch("bench:1", ["default"], batch, now)
            done = batches = 0
            while taken:
                changes = [succeeded(r.id, r.version) for r in taken]
                done, batches = done + len(taken), batches + 1
                _, taken = await storage.apply_changes_and_fetch(
                    changes, "bench:1", ["default"], batch, now
                )
            wall = time.perf_counter() - wall
            cpu = time.process_time() - cpu
        finally:
            await storage.close()
        return {
            "jobs_per_s": done / wall,
            "wall_ms_per_batch": wall / batches * 1000,
            "cpu_ms_per_batch": cpu / batches * 1000,
        }

    try:
        return asyncio.run(drain())
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(schema)
                )
            )


def commit_floor(count: int) -> dict[str, float]:
    """What one durable commit per call can reach on this server.

    A sequential loop of ``count`` trivial one-row INSERTs with psycopg,
    each its own autocommit transaction, into a table of a schema of its
    own (dropped at the end): first with ``synchronous_commit`` on (the
    default, a WAL flush per commit, as every PostgreSQL system of the
    table enqueues), then off for this session only (no wait for the
    flush). Returns inserts per second for both.
    """
    import psycopg
    from psycopg import sql

    schema = sql.Identifier(f"bench_floor_{uuid.uuid4().hex[:10]}")
    rates: dict[str, float] = {}
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {}.rows (id bigint GENERATED ALWAYS AS"
                    " IDENTITY PRIMARY KEY, value text NOT NULL)"
                ).format(schema)
            )
            insert = sql.SQL("INSERT INTO {}.rows (value) VALUES (%s)").format(
                schema
            )
            for setting in ("on", "off"):
                conn.execute(
                    sql.SQL("SET synchronous_commit = {}").format(
                        sql.SQL(setting)
                    )
                )
                started = time.perf_counter()
                for _ in range(count):
                    conn.execute(insert, ("x",))
                took = time.perf_counter() - started
                rates[f"synchronous_commit_{setting}_per_s"] = count / took
        finally:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema)
            )
    return rates


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, as ``client ...``, one client action; as
    ``storage-loop [JOBS]``, :func:`storage_loop`; as ``commit-floor
    [COUNT]``, :func:`commit_floor`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["client"]:
        return client_main(argv[1], argv[2], argv[3:])
    if argv[:1] == ["storage-loop"]:
        jobs = int(argv[1]) if len(argv) > 1 else 5000
        print(json.dumps(storage_loop(jobs)))
        return 0
    if argv[:1] == ["commit-floor"]:
        count = int(argv[1]) if len(argv) > 1 else 5000
        print(json.dumps(commit_floor(count)))
        return 0
    args = parse_args(argv)
    base = QUICK if args.quick else Sizes()
    sizes = Sizes(
        **{
            **asdict(base),
            "million": args.million,
            "drains_only": args.drains_only,
            "latency_only": args.latency_only,
            **({"probes": args.probes} if args.probes else {}),
            "enqueues_only": args.enqueues_only,
            **({"repeats": args.repeats} if args.repeats else {}),
        }
    )
    systems = tuple(args.only) if args.only else SYSTEMS
    print(f"jobs benchmark on PostgreSQL: {', '.join(systems)}; {sizes}")
    started = time.monotonic()
    floors: list[dict[str, float]] = []
    latency_floors: list[dict[str, Any]] = []

    def measure_floors() -> None:
        if not sizes.drains_only:
            floors.append(commit_floor(sizes.enqueue_jobs))
            latency_floors.append(
                latency_floor.measure(
                    sizes.probes, sizes.probe_pause, POSTGRES_URL
                )
            )

    measure_floors()
    samples = run(sizes, systems, lambda text: print(text, flush=True))
    measure_floors()
    report = build_report(
        samples, sizes, time.monotonic() - started, floors, latency_floors
    )
    print()
    print(render_table(report))
    save_report(report, args.json, "jobs-postgres")
    return 0


if __name__ == "__main__":
    sys.exit(main())
