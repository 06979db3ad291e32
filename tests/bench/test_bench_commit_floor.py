"""``python -m bench.jobs_postgres commit-floor``: the durable-commit floor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


def schemas(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {
            name
            for (name,) in conn.execute(
                "SELECT nspname FROM pg_namespace"
                " WHERE nspname LIKE 'bench_floor_%%'"
            )
        }


def test_commit_floor_measures_both_settings_and_drops_its_schema(
    postgres_url: str,
) -> None:
    before = schemas(postgres_url)

    done = subprocess.run(
        [sys.executable, "-m", "bench.jobs_postgres", "commit-floor", "20"],
        cwd=ROOT,
        env={**os.environ, "BENCH_POSTGRES_URL": postgres_url},
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    rates = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(rates) == {
        "synchronous_commit_on_per_s",
        "synchronous_commit_off_per_s",
    }
    assert all(rate > 0 for rate in rates.values()), rates
    assert schemas(postgres_url) == before
