"""Fixtures for the command-line tests: a real SQLite file per test."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from backburner.cli import main
from backburner.jobs import SyncClient

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = "tests.jobs.job_samples"


@dataclass(frozen=True)
class Result:
    """What one run of the command left behind."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Run = Callable[..., Result]


@pytest.fixture
def storage_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def cli(
    storage_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Run:
    """Run ``main(argv)`` in-process against the test's storage."""
    monkeypatch.setenv("BACKBURNER_STORAGE", storage_url)
    # Job samples import as tests.jobs.*; syspath_prepend also restores
    # sys.path afterwards, undoing the working directory main() adds.
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    monkeypatch.chdir(REPO_ROOT)

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def client(storage_url: str) -> Iterator[SyncClient]:
    """A client on the same storage, to arrange and check jobs."""
    with SyncClient(storage_url) as sync_client:
        yield sync_client


def one_error_line(result: Result) -> str:
    """The single ``backburner: error: ...`` line a mistake prints."""
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("backburner: error: "), lines[0]
    return lines[0]


@pytest.fixture
def samples(cli: Run) -> ModuleType:
    """``tests.jobs.job_samples``, importable once ``cli`` set the path."""
    return importlib.import_module(SAMPLES)
