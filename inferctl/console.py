"""What the operator tool prints: tables, one-line summaries of results, and progress bars."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO


def labels_text(document: dict[str, Any] | None) -> str:
    """A result document in one line: its accepted labels, or its error."""
    if not document:
        return ""
    if document.get("status") == "error":
        return f"{document['error']['code']}: {document['error']['message']}"
    return ", ".join(f"{label['name']} {label['confidence']:.0f}%" for label in document.get("labels", [])) or "-"


# One colour per label, wherever a label is drawn (annotated images, the HTML report): chosen from its name, so
# "sun" is the same colour in every picture and page without knowing the other labels. Twelve colours that stay
# apart for most colour vision (Kelly's and Tol's lists); two labels may share one, the name is always written.
LABEL_PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#0fa3b1",
    "#f032e6", "#7a8a00", "#9a6324", "#800000", "#000075", "#ffe119",
)  # fmt: skip


def label_colour(name: str) -> str:
    """The label's colour (``#rrggbb``): FNV-1a over its UTF-8 bytes picks from LABEL_PALETTE."""
    digest = 0x811C9DC5
    for byte in name.encode("utf-8"):
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return LABEL_PALETTE[digest % len(LABEL_PALETTE)]


def label_colours(names: Iterable[str]) -> dict[str, str]:
    """Colours for a known set of labels (a model's classes, a report's labels), distinct for up to twelve: in
    sorted order, each takes its own slot (``label_colour``) or, when a name before it took that, the next free
    one; past twelve they repeat."""
    taken: dict[int, str] = {}
    chosen: dict[str, str] = {}
    for name in sorted(set(names)):
        slot = LABEL_PALETTE.index(label_colour(name))
        for step in range(len(LABEL_PALETTE)):
            if (slot + step) % len(LABEL_PALETTE) not in taken:
                slot = (slot + step) % len(LABEL_PALETTE)
                break
        taken[slot] = name
        chosen[name] = LABEL_PALETTE[slot]
    return chosen


def rgb(code: str) -> tuple[int, int, int]:
    return int(code[1:3], 16), int(code[3:5], 16), int(code[5:7], 16)


def number(value: float) -> str:
    """A threshold or confidence as it is, never rounded (87.1235 stays 87.1235; 50.0 is 50)."""
    text = repr(float(value))
    return text.removesuffix(".0")


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], max_width: int = 60) -> str:
    """Columns as wide as their cells, up to ``max_width``: a longer cell wraps between words onto more lines
    (nothing is cut off, and no word is split; a single longer word widens its column)."""
    columns = list(zip(headers, *rows, strict=True)) if rows else [(header,) for header in headers]
    widths = []
    for column in columns:
        texts = [str(cell) for cell in column]
        longest_word = max((len(word) for text in texts for word in text.split()), default=0)
        widths.append(max(min(max(len(text) for text in texts), max_width), longest_word))
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        cells = [_wrap(str(cell), w) for cell, w in zip(row, widths, strict=True)]
        for index in range(max(len(cell) for cell in cells)):
            parts = [(cell[index] if index < len(cell) else "").ljust(w) for cell, w in zip(cells, widths, strict=True)]
            lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _wrap(text: str, width: int) -> list[str]:
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]


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
