"""Where every benchmark writes its JSON report."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def save_report(
    report: dict[str, Any], target: Path | None, name: str
) -> Path:
    """Write ``report`` to ``target``, or to a time-stamped file named
    after the benchmark in ``bench/results/``; print and return the path.
    """
    if target is None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        target = RESULTS / f"{name}-{stamp}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nJSON report: {target}")
    return target
