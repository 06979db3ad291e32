"""``backburner.jobs`` imports its names on first use; each is the same.

The package resolves its names lazily (a worker would otherwise import
the whole client at every start): these tests check that every listed
name resolves to the object its own module defines, and that the two
names shared with submodules stay the decorators.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import backburner.jobs


@pytest.mark.parametrize("name", backburner.jobs.__all__)
def test_every_listed_name_resolves_to_its_home_modules_object(
    name: str,
) -> None:
    value = getattr(backburner.jobs, name)

    home = backburner.jobs._HOMES.get(name)
    if home is not None:
        assert getattr(importlib.import_module(home), name) is value


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        _ = backburner.jobs.Nothing  # type: ignore[attr-defined]


_FRESH_IMPORTS = """
import json
import backburner.jobs.mutex, backburner.jobs.retry, backburner.jobs.server
import backburner.jobs as package
unlisted = sorted(set(package.__all__) - set(dir(package)))
from backburner.jobs import Client, mutex, retry
print(json.dumps({
    "unlisted": unlisted,
    "mutex": [type(mutex).__name__, mutex.__module__],
    "retry": [type(retry).__name__, retry.__module__],
    "Client": Client.__module__,
}))
"""


def _fresh_imports() -> dict[str, object]:
    # In a fresh interpreter: in this one, what is imported already and
    # in which order is set by the tests that ran before.
    done = subprocess.run(
        [sys.executable, "-c", _FRESH_IMPORTS],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report: dict[str, object] = json.loads(done.stdout)
    return report


def test_the_decorators_win_over_submodules_imported_first() -> None:
    report = _fresh_imports()

    assert report["mutex"] == ["function", "backburner.jobs.mutex"]
    assert report["retry"] == ["function", "backburner.jobs.retry"]
    assert report["Client"] == "backburner.jobs.client"


def test_dir_lists_the_names_not_yet_imported() -> None:
    assert _fresh_imports()["unlisted"] == []


_SUBMODULES_BY_ATTRIBUTE = """
import json
import backburner
import backburner.jobs
found = [
    backburner.cancellation.__name__,
    backburner.storage.__name__,
    backburner.jobs.client.__name__,
    backburner.jobs.cron.__name__,
]
try:
    backburner.nothing_here
except AttributeError as error:
    found.append(str(error))
print(json.dumps(found))
"""


def test_submodules_are_attributes_of_their_package_as_when_imported() -> None:
    # In a fresh interpreter: here earlier tests imported them already.
    done = subprocess.run(
        [sys.executable, "-c", _SUBMODULES_BY_ATTRIBUTE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert json.loads(done.stdout) == [
        "backburner.cancellation",
        "backburner.storage",
        "backburner.jobs.client",
        "backburner.jobs.cron",
        "module 'backburner' has no attribute 'nothing_here'",
    ]
