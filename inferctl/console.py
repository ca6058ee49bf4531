"""What the operator tool prints: tables, one-line summaries of results, and progress bars."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO


def labels_text(document: dict[str, Any] | None) -> str:
    """A result document in one line: its accepted labels, or its error."""
    if not document:
        return ""
    if document.get("status") == "error":
        return f"{document['error']['code']}: {document['error']['message']}"[:70]
    return ", ".join(f"{label['name']} {label['confidence']:.0f}%" for label in document.get("labels", [])) or "-"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], max_width: int = 60) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    widths = [min(width, max_width) for width in widths]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(cell)[:w].ljust(w) for cell, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{state}={count}" for state, count in sorted(counts.items()))


class Progress:
    """A one-line progress bar on a terminal, a line per step of 10% elsewhere (CI logs)."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total, self.label = total, label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_decile = -1

    def update(self, done: int, extra: str = "") -> None:
        if self.total == 0:
            return
        fraction = done / self.total
        if self.tty:
            bar = "#" * int(30 * fraction)
            self.stream.write(f"\r{self.label} [{bar:<30}] {done}/{self.total} {extra}  ")
            self.stream.flush()
        elif int(fraction * 10) != self._last_decile:
            self._last_decile = int(fraction * 10)
            self.stream.write(f"{self.label}: {done}/{self.total} {extra}\n")

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def outcome_report(found: Mapping[str, Any], strip_prefix: str = "") -> tuple[str, dict[str, int]]:
    """The table of images and where each ended (``ImageState`` values), and the counts per state."""
    rows = [(key.removeprefix(strip_prefix), labels_text(o.document), o.state) for key, o in found.items()]
    counts: dict[str, int] = {}
    for outcome in found.values():
        counts[outcome.state] = counts.get(outcome.state, 0) + 1
    return table(rows, ("image", "labels (accepted) / error", "outcome")), counts
