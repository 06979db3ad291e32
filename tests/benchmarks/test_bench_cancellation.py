"""``python -m bench.cancellation`` runs end to end on a tiny budget.

No timing thresholds: this proves the benchmark measures what its table
says (every closed request accounted for, clocks that agree), not how
fast this machine is.
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
REQUESTS = 20

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    report = tmp_path_factory.mktemp("bench") / "cancellation.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.cancellation",
            "--requests",
            str(REQUESTS),
            "--cycles",
            "2",
            "--slice-seconds",
            "0.2",
            "--json",
            str(report),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, json.loads(report.read_text())


def test_the_table_has_a_row_per_variant(bench_run: tuple[str, Any]) -> None:
    table, _ = bench_run
    rows = [line.split("  ")[0] for line in table.splitlines()]

    assert "no cancellation" in rows
    assert "backburner CancellationMiddleware" in rows
    assert "polling is_disconnected() every 10 ms" in rows
    assert "fastapi-disconnect and aiofence need Python >= 3.12" in table
    assert "cancel p99, polling / backburner" in table


def test_every_closed_request_is_accounted_for(
    bench_run: tuple[str, Any],
) -> None:
    _, report = bench_run

    for key in ("backburner", "polling"):
        raw = report["raw"][key]
        assert len(raw["latencies_ms"]) + raw["missed"] == REQUESTS
    # The middleware never misses a disconnect.
    assert report["raw"]["backburner"]["missed"] == 0


def test_latencies_are_positive_and_ordered(
    bench_run: tuple[str, Any],
) -> None:
    _, report = bench_run

    for key in ("backburner", "polling"):
        summary = report["variants"][key]
        latencies = report["raw"][key]["latencies_ms"]
        # The server's clock reads after the client's: one clock.
        assert min(latencies) > 0
        assert (
            0
            < summary["latency_p50_ms"]
            <= summary["latency_p99_ms"]
            <= summary["latency_max_ms"]
        )
    assert report["variants"]["baseline"]["latency_p50_ms"] is None


def test_throughput_is_measured_for_every_variant(
    bench_run: tuple[str, Any],
) -> None:
    _, report = bench_run
    variants = report["variants"]

    for key in ("baseline", "backburner", "polling"):
        assert variants[key]["rps_median"] > 0
        assert len(report["raw"][key]["rps"]) == 2
        assert math.isfinite(variants[key]["overhead"])
    assert variants["baseline"]["overhead"] == 0
    assert math.isfinite(report["middleware_cost_us"])


@pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)"
)
def test_the_servers_cpu_time_per_request_is_measured(
    bench_run: tuple[str, Any],
) -> None:
    table, report = bench_run
    variants = report["variants"]

    assert "server CPU/req" in table
    for key in ("baseline", "backburner", "polling"):
        assert variants[key]["cpu_us_per_request"] > 0
    assert variants["baseline"]["cpu_overhead"] == 0
