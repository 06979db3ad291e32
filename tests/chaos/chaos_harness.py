"""Sizes and results of the chaos scenarios.

Every scenario has two sizes: the one the issue asks for (``make chaos``
sets ``BACKBURNER_CHAOS_SCALE=1``) and a small one that fits in the
default test run. ``BACKBURNER_CHAOS_SCALE`` may also be a fraction
(``0.1``) for a reduced full run; unset, the small sizes apply.

Each scenario writes its figures to one JSON file in
``BACKBURNER_CHAOS_RESULTS`` (a temporary directory when unset), and
``python -m bench.chaos_report`` turns that directory into the table of
``docs/chaos.md``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

SCALE_ENV = "BACKBURNER_CHAOS_SCALE"
RESULTS_ENV = "BACKBURNER_CHAOS_RESULTS"
TESTS = Path(__file__).resolve().parent.parent


def scale() -> float | None:
    """The configured fraction of the full sizes, or None for smoke."""
    raw = os.environ.get(SCALE_ENV, "").strip()
    if not raw:
        return None
    value = float(raw)
    if not 0 < value <= 1:
        raise ValueError(f"{SCALE_ENV} must be in (0, 1], not {raw!r}")
    return value


def size(full: int, smoke: int) -> int:
    """The size of a scenario: ``full`` scaled, never below ``smoke``."""
    fraction = scale()
    if fraction is None:
        return smoke
    return max(smoke, round(full * fraction))


def seconds(full: float, smoke: float) -> float:
    """A duration, scaled like :func:`size`."""
    fraction = scale()
    if fraction is None:
        return smoke
    return max(smoke, full * fraction)


@dataclass
class Figures:
    """What one scenario measured; the report prints these columns.

    ``result`` is filled in from the test's outcome when it ends.
    """

    scenario: str
    storage: str = "-"
    size: str = ""
    jobs_lost: int | None = None
    duplicates: int | None = None
    errors_surfaced: int | None = None
    recovery_s: float | None = None
    notes: list[str] = field(default_factory=list)
    result: str = "not finished"
    scale: str = ""
    finished_at: str = ""

    def note(self, text: str) -> None:
        """Add a remark shown in the table's last column."""
        self.notes.append(text)


Record = Callable[..., Figures]
"""The ``record`` fixture: ``record(scenario, storage=..., size=...)``."""


def results_dir(default: Path) -> Path:
    """Where the JSON files go (created if missing)."""
    raw = os.environ.get(RESULTS_ENV)
    where = Path(raw) if raw else default
    where.mkdir(parents=True, exist_ok=True)
    return where


def save(figures: Figures, where: Path) -> Path:
    """Write one scenario's figures; the file name comes from its name."""
    fraction = scale()
    figures.scale = "smoke" if fraction is None else f"{fraction:g}"
    figures.finished_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    slug = re.sub(r"[^a-z0-9]+", "-", figures.scenario.lower()).strip("-")
    path = where / f"{slug}--{figures.storage}.json"
    path.write_text(json.dumps(asdict(figures), indent=2) + "\n")
    return path
