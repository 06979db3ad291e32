"""Fixtures of the chaos suite: figures recorded whatever the outcome."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
# The server children and helpers of the job tests, and the private
# PostgreSQL cluster, are reused as they are.
for _path in (_HERE.parent / "jobs", _HERE.parent, _HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from chaos_harness import Figures, Record, results_dir, save  # noqa: E402

from pg_cluster import PrivateCluster, find_bin  # noqa: E402


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" or report.failed:
        outcome = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "failed" if report.skipped else "passed"
        item.stash.setdefault(_OUTCOME, []).append(outcome)
    return report


_OUTCOME = pytest.StashKey[list[str]]()


@pytest.fixture
def record(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Record]:
    """Make the test's figures; saved at teardown with its outcome."""
    made: list[Figures] = []

    def make(scenario: str, **fields: object) -> Figures:
        figures = Figures(scenario, **fields)  # type: ignore[arg-type]
        made.append(figures)
        return figures

    yield make
    outcomes = request.node.stash.get(_OUTCOME, [])
    where = results_dir(tmp_path_factory.getbasetemp() / "chaos-results")
    for figures in made:
        if "failed" in outcomes:
            figures.result = "FAILED"
        elif outcomes == ["passed"]:
            figures.result = "passed"
        save(figures, where)


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    """A PostgreSQL cluster of the test's own, which it may restart."""
    bin_dir = find_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb) not found")
    cluster = PrivateCluster(bin_dir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """A fresh storage URL: a SQLite file, or a PostgreSQL schema.

    The PostgreSQL schema lives on the shared server and is dropped at
    the end; scenarios that restart the database use
    :func:`private_cluster` instead.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
        return
    postgres_url = request.getfixturevalue("postgres_url")
    import psycopg
    from psycopg import sql

    schema = f"chaos_{uuid.uuid4().hex[:10]}"
    yield f"{postgres_url}?schema={schema}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(schema)
            )
        )
