"""The ``storage`` fixture: every conformance test runs on each backend.

Adding a backend is one entry in ``_BACKENDS`` plus its name in the
fixture's ``params``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from backburner.storage import Storage, open_storage


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return open_storage(f"sqlite:///{tmp_path / 'jobs.db'}")


_BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Storage]] = {
    "sqlite": _sqlite,
}


@pytest.fixture(params=["sqlite"])
async def storage(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Storage]:
    """A fresh, migrated, empty storage of each backend."""
    opened = _BACKENDS[request.param](request, tmp_path)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()
