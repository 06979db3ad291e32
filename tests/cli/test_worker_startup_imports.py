"""``backburner worker`` starts without importing what it does not run.

Start-up time counts in every drain: a worker process that pulled in the
dashboard, the web layer or SQLAlchemy would start late on every deploy
and every ``--processes`` child. The server is run to its end in a
subprocess, and the modules it imported are checked by name.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_REPORT_MODULES = """
import json, sys
from backburner.cli import main
code = main(["worker", "--storage", sys.argv[1], "--until-empty"])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

# Module name prefixes a worker never needs to start.
_NOT_FOR_THE_WORKER = (
    "backburner.dashboard",
    "backburner.web",
    "backburner.demo",
    "backburner.storage.postgres",
    "backburner.cli.dashboard",
    "backburner.cli.enqueue",
    "backburner.cli.jobs",
    "backburner.cli.migrate",
    "backburner.cli.recurring",
    "backburner.cli.stats",
    # The client side of the job engine: the server shares what it needs
    # of it through smaller modules (queues, states, occurrences).
    "backburner.jobs.client",
    "backburner.jobs.continuations",
    "backburner.jobs.recurring",
    "backburner.jobs.sync",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "uvicorn",
    "pydantic",
    "jinja2",
    "httpx",
    "asyncpg",
    "psycopg",
    "multiprocessing",
    # importlib.resources imports these; the SQLite migrations are found
    # without it.
    "importlib.resources",
    "zipfile",
    "tempfile",
    # Each takes a millisecond or more to import, for values, time zones
    # and retries that a worker may never meet: imported where needed.
    "uuid",
    "decimal",
    "zoneinfo",
    "random",
)


def _modules_of_worker_start(tmp_path: Path) -> list[str]:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    finished = subprocess.run(
        [sys.executable, "-c", _REPORT_MODULES, url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(finished.stdout)
    assert report["code"] == 0, finished.stderr
    modules: list[str] = report["modules"]
    return modules


def _is_under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_worker_starts_without_heavy_modules(tmp_path: Path) -> None:
    modules = _modules_of_worker_start(tmp_path)

    assert "backburner.jobs.server" in modules  # it did run a server
    heavy = sorted(
        module
        for module in modules
        for prefix in _NOT_FOR_THE_WORKER
        if _is_under(module, prefix)
    )
    assert heavy == []
