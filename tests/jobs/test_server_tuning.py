"""Server tuning values are checked when the server is made."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from backburner.jobs.server import ServerTuning, _tuning


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"poll_interval": -1}, "poll_interval must be a non-negative number"),
        ({"upkeep_interval": math.nan}, "upkeep_interval must be a non-neg"),
        ({"expire_interval": "60"}, "expire_interval must be a non-negative"),
        ({"retention": timedelta(seconds=-1)}, "retention must be a non-neg"),
        ({"poll_interval": 0}, "poll_interval must be above zero"),
        ({"upkeep_interval": 0}, "upkeep_interval must be above zero"),
        (
            {"heartbeat_interval": 5, "dead_after": 5},
            "dead_after must be longer than heartbeat_interval",
        ),
        ({"maintenance_batch": 0}, "maintenance_batch must be at least 1"),
    ],
)
def test_bad_tuning_is_refused_with_its_name(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _tuning(options)


def test_an_unknown_option_names_the_known_ones() -> None:
    with pytest.raises(TypeError, match=r"unknown server tuning option.*poll"):
        _tuning({"pol_interval": 1})


def test_the_defaults_are_valid() -> None:
    tuning = ServerTuning()
    assert tuning.upkeep_interval == 30.0
    assert tuning.poll_interval == 0.5
