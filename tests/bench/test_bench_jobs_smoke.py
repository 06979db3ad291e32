"""``python -m bench.jobs --quick`` runs end to end in seconds.

No timing thresholds: this proves that every row is measured for both
systems (every job ran, every probe started), not how fast this
machine is.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = {
    "enqueue_single": "enqueue, one call per job (jobs/s)",
    "enqueue_bulk": "enqueue, bulk (extra) (jobs/s)",
    "drain_noop": "drain no-op jobs (jobs/s)",
    "drain_sleep": "drain jobs waiting 10 ms, best level (jobs/s)",
    "latency_p50": "enqueue-to-start p50 (ms)",
    "latency_p99": "enqueue-to-start p99 (ms)",
}

pytestmark = pytest.mark.timeout(120)


def _number(cell: str) -> float:
    return float(cell.replace(",", ""))


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    report = tmp_path_factory.mktemp("bench") / "jobs.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.jobs",
            "--quick",
            "--json",
            str(report),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, json.loads(report.read_text())


def test_the_table_has_every_row_with_both_systems(
    bench_run: tuple[str, Any],
) -> None:
    stdout, _ = bench_run
    table = stdout.split("row ", 1)[1]
    for label in ROWS.values():
        line = next(
            (line for line in table.splitlines() if line.startswith(label)),
            None,
        )
        assert line is not None, f"no table row {label!r} in:\n{stdout}"
        backburner, huey, ratio, met = line[len(label) :].split()
        assert _number(backburner) > 0, line
        assert _number(huey) > 0, line
        assert ratio.endswith("x"), line
        assert _number(ratio[:-1]) > 0, line
        assert met in {"yes", "NO"}, line


def test_every_row_is_a_positive_number_for_both_systems(
    bench_run: tuple[str, Any],
) -> None:
    _, report = bench_run
    rows = {row["key"]: row for row in report["rows"]}
    assert set(rows) == set(ROWS)
    for key, row in rows.items():
        for value in (row["backburner"], row["huey"], row["ratio"]):
            assert isinstance(value, float), (key, row)
            assert math.isfinite(value), (key, row)
            assert value > 0, (key, row)
        assert row["target_met"] == (row["ratio"] >= report["target_ratio"])


def test_every_job_ran_and_every_probe_was_measured(
    bench_run: tuple[str, Any],
) -> None:
    _, report = bench_run
    sizes = report["sizes"]
    for system in ("backburner", "huey"):
        (details,) = report["details"][system]
        assert details["drain_noop"]["jobs"] == sizes["noop_jobs"]
        levels = report["setup"]["sleep_concurrency"]
        drains = details["drain_sleep"]
        assert set(drains) == {str(level) for level in levels}
        for drain in drains.values():
            assert drain["jobs"] == sizes["sleep_jobs"]
            # A 10 ms job cannot finish sooner than 10 ms after its
            # consumer started: the drain really waited.
            assert drain["seconds"] > 0.01
        latencies = details["latencies_ms"]
        assert len(latencies) == sizes["probes"]
        assert all(value > 0 for value in latencies), latencies


def test_the_10_ms_row_is_each_systems_best_level(
    bench_run: tuple[str, Any],
) -> None:
    stdout, report = bench_run
    (row,) = (row for row in report["rows"] if row["key"] == "drain_sleep")
    levels = report["sleep_levels"]
    assert [level["concurrency"] for level in levels] == report["setup"][
        "sleep_concurrency"
    ]
    assert len(levels) > 1
    for system in ("backburner", "huey"):
        best = max(levels, key=lambda level: level[system])
        assert row[system] == best[system], (system, row, levels)
        assert row["best_concurrency"][system] == best["concurrency"]
    # Every level is printed for both systems too.
    table = stdout.split("10 ms drain by level", 1)[1]
    for level in levels:
        label = f"{level['concurrency']} concurrent jobs (jobs/s)"
        assert any(line.startswith(label) for line in table.splitlines())
