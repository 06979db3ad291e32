"""The floors in ``bench.jobs_postgres``'s report: which single
enqueues passed the durable commit floor, whether backburner leads the
peers that commit durably, and whose p50 went below the latency floor."""

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


LATENCY_FLOORS = [
    {"p50_ms": 1.4, "p99_ms": 3.0},
    {"p50_ms": 1.2, "p99_ms": 4.0},
]


def samples(
    single: dict[str, float], p50: dict[str, float] | None = None
) -> dict[str, Samples]:
    found = {}
    for system, value in single.items():
        found[system] = Samples()
        found[system].add("enqueue_single", value)
        if p50 is not None:
            found[system].add("latency_p50", p50[system])
    return found


def report(
    single: dict[str, float],
    floors: Any = FLOORS,
    p50: dict[str, float] | None = None,
    latency_floors: Any = LATENCY_FLOORS,
) -> dict[str, Any]:
    return build_report(
        samples(single, p50), Sizes(), 1.0, floors, latency_floors
    )


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


def test_latency_floor_is_the_lowest_measurement_and_names_who_beat_it() -> (
    None
):
    single = {"backburner": 2000.0, "celery": 2900.0, "pgqueuer": 2400.0}
    p50 = {"backburner": 2.5, "celery": 1.1, "pgqueuer": 1.2}
    found = report(single, p50=p50)["latency_floor"]
    assert (found["p50_ms"], found["p99_ms"]) == (1.2, 3.0)
    assert found["p50_below_floor"] == ["celery"]
    text = render_table(report(single, p50=p50))
    assert "p50 1.2 ms, p99 3.0 ms; p50 below it: celery" in text
    assert report(single, p50=p50, latency_floors=[])["latency_floor"] == {}
