"""``python -m bench.jobs_postgres --quick`` runs end to end.

Slow (a minute or more: every measurement creates a database and starts
consumers) and needs the machine's PostgreSQL. No timing thresholds:
this proves that backburner and one PostgreSQL peer get every row
measured (every job ran, every probe started) and that each measurement
dropped the database it created.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
MEASURED = (
    "enqueue_single",
    "enqueue_bulk",
    "drain_noop",
    "drain_sleep",
    "latency_p50",
    "latency_p99",
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(600)]


def test_quick_run_measures_every_row_and_leaves_no_database(
    postgres_url: str, tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.jobs_postgres",
            "--quick",
            "--only",
            "backburner",
            "--only",
            "pgqueuer",
            "--json",
            str(report_path),
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "BENCH_POSTGRES_URL": postgres_url,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, _ = run.communicate(timeout=580)
    assert run.returncode == 0, output
    report = json.loads(report_path.read_text())
    rows = {row["key"]: row for row in report["rows"]}
    for key in MEASURED:
        for system in ("backburner", "pgqueuer"):
            value = rows[key]["values"][system]
            assert value is not None, (key, system)
            assert value > 0, (key, system)
    assert rows["drain_million"]["values"]["backburner"] is None
    floor = report["commit_floor"]
    assert len(floor["samples"]) == 2  # before the first system, after
    assert floor["durable_per_s"] > 0
    assert floor["without_flush_wait_per_s"] > 0
    assert floor["single_enqueue_ahead_of_durable_peers"] in (True, False)
    latency = report["latency_floor"]
    assert len(latency["samples"]) == 2
    assert 0 < latency["p50_ms"] <= latency["p99_ms"]
    # Its databases end with its pid; other runs may be going on.
    assert not {
        name
        for name in bench_databases(postgres_url)
        if name.endswith(f"_{run.pid}")
    }


def test_enqueues_only_measures_the_two_enqueue_rows(
    postgres_url: str, tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    before = bench_databases(postgres_url)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.jobs_postgres",
            "--quick",
            "--enqueues-only",
            "--only",
            "backburner",
            "--json",
            str(report_path),
        ],
        cwd=ROOT,
        env={**os.environ, "BENCH_POSTGRES_URL": postgres_url},
        capture_output=True,
        text=True,
        timeout=580,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    values = {
        row["key"]: row["values"]["backburner"] for row in report["rows"]
    }
    assert values["enqueue_single"] > 0
    assert values["enqueue_bulk"] > 0
    assert values["drain_noop"] is None
    assert values["latency_p50"] is None
    assert bench_databases(postgres_url) <= before


def bench_databases(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'bench%'"
        ).fetchall()
    return {name for (name,) in rows}
