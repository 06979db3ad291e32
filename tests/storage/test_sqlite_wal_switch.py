"""Opening a SQLite file: the switch to WAL mode, once, and patiently."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from backburner.storage.sqlite.storage import _use_wal


def test_a_file_already_in_wal_mode_is_not_switched_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    with sqlite3.connect(path) as first:
        first.execute("PRAGMA journal_mode = WAL")
    conn = sqlite3.connect(path)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)

    _use_wal(conn, 1.0)

    assert statements == ["PRAGMA journal_mode"]
    conn.close()


def test_a_new_file_is_switched_to_wal(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "jobs.db")

    _use_wal(conn, 1.0)

    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


class Busy:
    """A connection whose switch to WAL is refused ``times`` times.

    The refusal SQLite gives without calling its busy handler cannot be
    produced on demand (it takes two processes racing on one file), so
    this stand-in gives it.
    """

    def __init__(self, times: int, error: str = "database is locked") -> None:
        self.times = times
        self.error = error
        self.switches = 0

    def execute(self, statement: str) -> sqlite3.Cursor:
        if statement == "PRAGMA journal_mode":
            return sqlite3.connect(":memory:").execute("SELECT 'delete'")
        self.switches += 1
        if self.switches <= self.times:
            raise sqlite3.OperationalError(self.error)
        return sqlite3.connect(":memory:").execute("SELECT 'wal'")


def test_a_switch_refused_as_locked_is_tried_again() -> None:
    conn = Busy(times=3)

    _use_wal(conn, 5.0)  # type: ignore[arg-type]

    assert conn.switches == 4


def test_a_switch_still_locked_after_the_patience_fails() -> None:
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _use_wal(Busy(times=1000), 0.05)  # type: ignore[arg-type]


def test_other_errors_are_not_retried() -> None:
    conn = Busy(times=1, error="disk I/O error")

    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _use_wal(conn, 5.0)  # type: ignore[arg-type]
    assert conn.switches == 1
