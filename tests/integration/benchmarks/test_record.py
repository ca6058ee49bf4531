"""The performance page and the README quote a recorded ``make bench`` run, not numbers typed by hand."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from benchmarks import record
from tests.support.paths import ROOT


def test_the_performance_table_is_the_recorded_run():
    """docs/performance.md's table is docs/bench.json rendered: every figure there is one a run printed."""
    page = record.PAGE.read_text(encoding="utf-8")
    assert record.block(page) == record.table(record.recorded())


def test_every_recorded_row_met_its_target():
    missed = [row["row"] for row in record.recorded()["rows"] if row["verdict"] == "MISSED"]
    assert missed == []


def test_the_readmes_memory_figure_is_the_recorded_run():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quoted = re.search(r"ten progressive 6000 × 4000 JPEGs in one batch: \+(\d+) MB", readme)
    assert quoted, "the README no longer quotes row 4c"
    row = next(row for row in record.recorded()["rows"] if row["row"].startswith("4c "))
    assert row["measured"].startswith(f"+{quoted.group(1)} MB"), row


def test_recording_a_run_rewrites_the_table_and_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    page, kept = tmp_path / "performance.md", tmp_path / "bench.json"
    shutil.copy(record.PAGE, page)
    monkeypatch.setattr(record, "PAGE", page)
    monkeypatch.setattr(record, "RECORD", kept)
    row = {"row": "2 handler overhead per image", "measured": "99 us", "target": "<= 200 us", "verdict": "met"}
    run = {"rows": [row], "machine": {"python": "3.14.0", "cpus": 8, "date": "2027-01-02"}}

    record.record(run)

    written = page.read_text(encoding="utf-8")
    assert record.block(written) == (
        "Recorded 2027-01-02 on 8 CPUs, Python 3.14.0 (`docs/bench.json`):\n\n"
        "| row | measured (median) | target | |\n|---|---|---|---|\n"
        "| 2 handler overhead per image | 99 us | ≤ 200 us | met |"
    )
    original = record.PAGE.read_text(encoding="utf-8")
    assert written.split(record.START)[0] == original.split(record.START)[0]
    assert written.split(record.END)[1] == original.split(record.END)[1]
    assert json.loads(kept.read_text(encoding="utf-8")) == run
