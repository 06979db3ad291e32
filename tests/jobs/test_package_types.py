"""The type checker still knows the package's names.

``backburner`` and ``backburner.jobs`` resolve their names on first use
through a module ``__getattr__``; a type checker that sees that function
would type every misspelt name as ``Any`` and report nothing. These
tests run mypy on a user's module to prove that a typo is still caught.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_TYPOS = {
    "from_package": "from backburner import CancelationToken\n",
    "from_jobs": "from backburner.jobs import SyncClinet\n",
    "attribute": "import backburner.jobs\n\nbackburner.jobs.Sever\n",
}


@pytest.mark.parametrize("source", sorted(_TYPOS))
def test_a_misspelt_name_is_a_type_error(tmp_path: Path, source: str) -> None:
    module = tmp_path / "user_module.py"
    module.write_text(_TYPOS[source], encoding="utf-8")

    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(module),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert checked.returncode == 1, checked.stdout
    assert "[attr-defined]" in checked.stdout
