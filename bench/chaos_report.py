"""Write the chaos suite's figures into ``docs/chaos.md``.

``python -m bench.chaos_report [RESULTS_DIR] [DOC]`` reads every JSON
file that ``tests/chaos`` wrote (``bench/results/chaos`` by default) and
replaces the table between the two marker comments of the document.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BEGIN = "<!-- chaos-table:begin -->"
END = "<!-- chaos-table:end -->"
ROOT = Path(__file__).resolve().parent.parent
COLUMNS = (
    "scenario",
    "storage",
    "size",
    "jobs lost",
    "duplicates",
    "errors surfaced",
    "recovery (s)",
    "result",
    "notes",
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list):
        return "; ".join(str(item) for item in value) or "-"
    return str(value).replace("|", "\\|")


def table(results: list[dict[str, Any]]) -> str:
    """The markdown table of the given results, in scenario order."""
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    ordered = sorted(results, key=lambda r: (r["scenario"], r["storage"]))
    for row in ordered:
        cells = (
            row["scenario"],
            row["storage"],
            row["size"],
            row["jobs_lost"],
            row["duplicates"],
            row["errors_surfaced"],
            row["recovery_s"],
            row["result"],
            row["notes"],
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    scales = sorted({str(r["scale"]) for r in results})
    times = sorted(str(r["finished_at"]) for r in results)
    if times:
        lines.append("")
        lines.append(
            f"Scale: {', '.join(scales)}; measured {times[0]} to {times[-1]}."
        )
    return "\n".join(lines)


def rewrite(doc: Path, results_dir: Path) -> int:
    """Replace the table in ``doc``; return how many rows it has.

    Raises:
        ValueError: the document lacks the marker comments.
    """
    results = [
        json.loads(path.read_text())
        for path in sorted(results_dir.glob("*.json"))
    ]
    text = doc.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{doc} lacks the {BEGIN} and {END} markers")
    body = table(results) if results else "No results yet."
    new = f"{text[: start + len(BEGIN)]}\n{body}\n{text[end:]}"
    doc.write_text(new, encoding="utf-8")
    return len(results)


def main(argv: list[str]) -> int:
    """Command-line entry: results directory and document, optional."""
    results_dir = Path(argv[0]) if argv else ROOT / "bench/results/chaos"
    doc = Path(argv[1]) if len(argv) > 1 else ROOT / "docs/chaos.md"
    rows = rewrite(doc, results_dir)
    print(f"{doc}: {rows} scenario rows from {results_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
