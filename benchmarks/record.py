"""The performance page quotes one recorded run, not numbers typed by hand.

``make bench ARGS=--record`` copies the run's ``out/bench.json`` to ``docs/bench.json`` and rewrites the table
between the markers in ``docs/performance.md`` from it; ``tests/unit/test_docs.py`` checks that the page's table
is that rendering, so a figure on the page is always one a run printed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "docs" / "bench.json"
PAGE = ROOT / "docs" / "performance.md"
START = "<!-- bench table: make bench ARGS=--record writes it from docs/bench.json -->"
END = "<!-- end of bench table -->"


def table(results: dict[str, Any]) -> str:
    """The rows as a Markdown table, with the run's date and machine."""
    machine = results["machine"]
    lines = [
        f"Recorded {machine.get('date', 'undated')} on {machine['cpus']} CPUs, Python {machine['python']} "
        "(`docs/bench.json`):",
        "",
        "| row | measured (median) | target | |",
        "|---|---|---|---|",
    ]
    for row in results["rows"]:
        cells = (row["row"], row["measured"], row["target"], "" if row["verdict"] == "-" else row["verdict"])
        lines.append("| " + " | ".join(cell.replace("|", "\\|").replace("<=", "≤") for cell in cells) + " |")
    return "\n".join(lines)


def block(page: str) -> str:
    """What sits between the markers on the page."""
    if START not in page or END not in page:
        raise ValueError(f"{PAGE.name} has no bench table markers")
    return page.split(START, 1)[1].split(END, 1)[0].strip()


def record(results: dict[str, Any]) -> None:
    RECORD.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    page = PAGE.read_text(encoding="utf-8")
    before, rest = page.split(START, 1)
    after = rest.split(END, 1)[1]
    PAGE.write_text(f"{before}{START}\n{table(results)}\n{END}{after}", encoding="utf-8")


def recorded() -> dict[str, Any]:
    results: dict[str, Any] = json.loads(RECORD.read_text(encoding="utf-8"))
    return results
