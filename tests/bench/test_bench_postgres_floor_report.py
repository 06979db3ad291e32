"""The commit floor in ``bench.jobs_postgres``'s report: which single
enqueues passed the durable floor, and whether backburner leads the
peers that commit durably."""

from __future__ import annotations

from typing import Any

from bench.jobs import Samples
from bench.jobs_postgres import Sizes, build_report, render_table

FLOORS = [
    {
        "synchronous_commit_on_per_s": 2500.0,
        "synchronous_commit_off_per_s": 7000.0,
    },
    {
        "synchronous_commit_on_per_s": 3000.0,
        "synchronous_commit_off_per_s": 6500.0,
    },
]


def samples(single: dict[str, float]) -> dict[str, Samples]:
    found = {}
    for system, value in single.items():
        found[system] = Samples()
        found[system].add("enqueue_single", value)
    return found


def report(single: dict[str, float], floors: Any = FLOORS) -> dict[str, Any]:
    return build_report(samples(single), Sizes(), 1.0, floors)


def test_floor_is_the_best_measurement_and_names_who_passed_it() -> None:
    floor = report(
        {
            "backburner": 2600.0,
            "pgqueuer": 2400.0,
            "dramatiq": 6000.0,
            "rq": 2900.0,
        }
    )["commit_floor"]
    assert floor["durable_per_s"] == 3000.0
    assert floor["without_flush_wait_per_s"] == 7000.0
    assert floor["single_enqueue_above_durable_floor"] == ["dramatiq"]
    assert floor["single_enqueue_ahead_of_durable_peers"] is True


def test_behind_a_durable_peer_is_reported() -> None:
    floor = report(
        {"backburner": 2000.0, "pgqueuer": 2400.0, "celery": 2900.0}
    )["commit_floor"]
    assert floor["single_enqueue_ahead_of_durable_peers"] is False


def test_redis_peers_alone_leave_the_comparison_open() -> None:
    floor = report({"backburner": 2000.0, "celery": 2900.0})["commit_floor"]
    assert floor["single_enqueue_ahead_of_durable_peers"] is None


def test_table_prints_the_floor_and_omits_it_when_not_measured() -> None:
    single = {"backburner": 2600.0, "dramatiq": 6000.0}
    text = render_table(report(single))
    assert "3,000/s durable" in text
    assert "7,000/s without waiting" in text
    assert "above the durable floor: dramatiq" in text
    unmeasured = report(single, floors=[])
    assert unmeasured["commit_floor"] == {}
    assert "commit floor" not in render_table(unmeasured)
