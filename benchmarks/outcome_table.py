"""Row 10: the outcome table at a million rows (``inferctl query``, ``--engine duckdb|athena``).

The rows are the parity test's generated population (``tests/support/population.py``: duplicates, superseded
versions, errors, challenger rows, re-runs, several days), ``GENERATED`` images delivered as the stream delivers
them, copied and compacted by ``LocalTable.sync`` (that time is the compaction row), then written ``FACTOR`` times
under other folders into one million-row table, one Parquet file per day as compaction leaves it. The questions run
in a child process (its peak RSS is what DuckDB holds, which tracemalloc cannot see): each named query, and
``audit``, ``thresholds what-if`` and ``drift`` as the tools ask them. Beside them, row 9's scan at 100,000.

Athena is not here: what it would scan per named query is the compressed size of the Parquet column chunks the
query reads (Athena reads only the columns a query names; every row group, as no filter here prunes one), priced
at $5 per TB with its 10 MB minimum. Firehose writes its own Parquet (Snappy, its own row groups): the same order
of size, not the same bytes.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GENERATED, FACTOR = 50_000, 20
ROWS_PREFIX = "rows/"


def build(folder: Path, generated: int, factor: int) -> dict[str, Any]:
    """The generated table (synced and compacted, timed) and the scaled one beside it."""
    from inferctl.stack.engines import LocalTable
    from lambdas.contract import outcome_table
    from tests.support.population import bucket_listing, generate

    population = generate(generated)
    pages = population.s3.get_paginator("list_objects_v2").paginate(Bucket=population.outcome_bucket)
    stream_bytes = sum(item["Size"] for page in pages for item in page.get("Contents", []))
    small = LocalTable(folder / "generated")
    started = time.perf_counter()
    synced = small.sync(population.s3, population.outcome_bucket, ROWS_PREFIX, "bench")
    sync_seconds = time.perf_counter() - started
    big = LocalTable(folder / "scaled")
    big.parquet.mkdir(parents=True, exist_ok=True)
    moved = f"replace(key, '{population.prefix}', '{population.prefix}r' || i || '/')"
    with small.connection() as connection:
        days = [
            day for (day,) in connection.execute(f"SELECT DISTINCT {outcome_table.PARTITION} FROM outcomes").fetchall()
        ]
        for day in days:
            target = big.parquet / f"{outcome_table.PARTITION}={day}"
            target.mkdir(parents=True, exist_ok=True)
            connection.execute(
                f"COPY (SELECT * EXCLUDE ({outcome_table.PARTITION}) REPLACE ({moved} AS key) "
                f"FROM outcomes, range({factor}) AS r(i) WHERE {outcome_table.PARTITION} = '{day}') "
                f"TO '{target / 'part-0.parquet'}' (FORMAT parquet, COMPRESSION snappy)"
            )
        total = connection.execute("SELECT count(*) FROM outcomes").fetchone()
    started = time.perf_counter()
    big.refresh_current()  # what a sync does after compaction: current_outcomes materialized once
    current_seconds = time.perf_counter() - started
    entries = bucket_listing(population)
    with (folder / "listing-items.jsonl").open("w", encoding="utf-8") as handle:
        for i in range(factor):  # the bucket's listing, scaled as the rows are
            for item in entries:
                moved_key = item["Key"].replace(population.prefix, f"{population.prefix}r{i}/", 1)
                handle.write(json.dumps(dict(item, Key=moved_key), default=str) + "\n")
    return {
        "generated_images": generated,
        "generated_rows": synced.rows,
        "stream_objects": synced.objects,
        "sync_seconds": sync_seconds,
        "compaction_seconds": synced.compaction_seconds,
        "current_seconds": current_seconds,
        "rows": int(total[0]) * factor if total else 0,
        "row_bytes_mean": stream_bytes / max(1, synced.rows),
        "prefix": population.prefix,
        "bucket": population.bucket,
        "now": population.now.isoformat(),
        "folder": str(big.folder),
        "listing": str(folder / "listing-items.jsonl"),
    }


def ask(built: dict[str, Any]) -> dict[str, Any]:
    """Run in the child: every question once unmeasured (DuckDB's first plan), then timed."""
    from datetime import datetime

    from inferctl.stack import audit, questions
    from inferctl.stack.engines import LocalTable
    from lambdas.contract import outcome_table
    from lambdas.contract.thresholds import Thresholds

    engine = LocalTable(Path(built["folder"]))
    with Path(built["listing"]).open(encoding="utf-8") as handle:
        items = (json.loads(line) for line in handle)
        engine.load_listing(dict(item, LastModified=datetime.fromisoformat(item["LastModified"])) for item in items)
    now = datetime.fromisoformat(built["now"])
    images = questions.Images(built["bucket"], built["prefix"], (".jpg", ".jpeg", ".png"))
    split = now - timedelta(days=2)
    asked: dict[str, Any] = {
        **{f"named {q.name}": (lambda q=q: engine.query(q.sql)) for q in outcome_table.NAMED_QUERIES},
        "audit": lambda: questions.audit(engine, images, audit.Settled(uploaded_before=now)),
        "what-if": lambda: questions.what_if(engine, built["prefix"], Thresholds(min_confidence=60.0)),
        "drift": lambda: questions.drift_windows(
            engine, built["prefix"], Thresholds(min_confidence=50.0), split - timedelta(days=7), split, now
        ),
    }
    seconds: dict[str, float] = {}
    engine_seconds: dict[str, float] = {}
    peaks: dict[str, float] = {}
    for name, question in asked.items():
        question()
        Path("/proc/self/clear_refs").write_text("5")  # the peak RSS from here on (Linux): this question's
        engine.engine_seconds = 0.0
        started = time.perf_counter()
        question()
        seconds[name] = time.perf_counter() - started
        engine_seconds[name] = engine.engine_seconds
        peaks[name] = _peak_mb()
    return {"seconds": seconds, "query_seconds": engine_seconds, "peaks_mb": peaks, "peak_mb": max(peaks.values())}


def _peak_mb() -> float:
    """The process's peak RSS since it was last reset (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def athena_scans(built: dict[str, Any]) -> dict[str, Any]:
    """Per named query: the compressed bytes of the columns it reads, per million rows, and what Athena charges."""
    import duckdb
    import sqlglot
    from sqlglot import exp

    from inferctl.pricing import athena_query_cost
    from lambdas.contract import outcome_table

    files = f"{built['folder']}/parquet/*/*.parquet"
    sizes = dict(
        duckdb.execute(
            f"SELECT path_in_schema, sum(total_compressed_size) FROM parquet_metadata('{files}') GROUP BY 1"
        ).fetchall()
    )
    top = {str(name).split(".")[0].split(", ")[0]: 0 for name in sizes}
    for name, size in sizes.items():
        top[str(name).split(".")[0].split(", ")[0]] += int(size)
    per_million = 1_000_000 / built["rows"]
    scans: dict[str, Any] = {}
    for query in outcome_table.NAMED_QUERIES:
        parsed = sqlglot.parse_one(query.sql, read="trino")
        # what the query names, and what current_outcomes orders by (Athena prunes every other column of the CTE)
        names = {column.name for column in parsed.find_all(exp.Column)} | {"bucket", "key", "written_at", "sequencer"}
        read = sum(size for column, size in top.items() if column in names)
        scanned = int(read * per_million)
        scans[query.name] = {"bytes_per_million": scanned, "usd_per_million": athena_query_cost(scanned)}
    return scans


def costs(built: dict[str, Any]) -> dict[str, float]:
    """What the table adds: per 1,000 images (Firehose ingestion and conversion, its objects' PUTs are per hour),
    and per day whatever the traffic (the buffer's objects, the daily inventory of a million-object bucket, the
    three alarms)."""
    from inferctl.pricing import PRICES, firehose_cost

    objects_per_day = 24 * 3600 / 300  # one object per buffer interval at most (BUFFER 300 s), per partition
    return {
        "per_1000_images_usd": firehose_cost(built["row_bytes_mean"], 1000),
        "per_day_usd": objects_per_day * PRICES.s3_put
        + PRICES.inventory_million_objects  # a million objects listed once a day
        + 3 * 0.10 / 30,  # the outcome-table alarms, $0.10 per alarm-month
    }


def measure(generated: int = GENERATED, factor: int = FACTOR) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        built = build(Path(folder), generated, factor)
        script = "import json, sys; from benchmarks.outcome_table import ask; print(json.dumps(ask(json.loads(sys.argv[1]))))"  # noqa: E501
        done = subprocess.run(
            [sys.executable, "-c", script, json.dumps(built)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        asked = json.loads(done.stdout.strip().splitlines()[-1])
        return {**built, **asked, "athena": athena_scans(built), "costs": costs(built)}


def rows(measured: dict[str, Any], scan: dict[str, Any] | None = None) -> list[tuple[str, str, str, str]]:
    millions = measured["rows"] / 1e6
    out = []
    slowest = max(measured["query_seconds"].values())
    questions_cell = ", ".join(
        f"{name.removeprefix('named ')} {measured['query_seconds'][name]:.2f} ({seconds:.2f})"
        for name, seconds in measured["seconds"].items()
    )
    out.append(
        (
            f"10 DuckDB over {millions:.1f} M outcome rows: query seconds per question (with the tool's own work)",
            f"{questions_cell}; peak {measured['peak_mb']:.0f} MB RSS",
            "<= 1 s each, <= 500 MB",
            "met" if slowest <= 1.0 and measured["peak_mb"] <= 500 else "MISSED",
        )
    )
    audit_scan = (((scan or {}).get("tools") or {}).get("audit") or {}).get("100000")
    if audit_scan:
        per_row_scan = audit_scan["seconds"] / 100_000
        per_row_table = measured["seconds"]["audit"] / measured["rows"]
        speedup = per_row_scan / per_row_table
        out.append(
            (
                "10b audit per image: table vs row 9's scan at 100,000",
                f"{per_row_table * 1e6:.2f} us vs {per_row_scan * 1e6:.0f} us = {speedup:,.0f}x",
                ">= 100x",
                "met" if speedup >= 100 else "MISSED",
            )
        )
    rate = measured["generated_rows"] / measured["sync_seconds"]
    out.append(
        (
            "10c copy and compaction of the stream's objects",
            f"{measured['generated_rows']:,} rows in {measured['stream_objects']:,} objects: "
            f"{measured['sync_seconds']:.1f} s ({rate:,.0f} rows/s), "
            f"compaction {measured['compaction_seconds']:.1f} s; "
            f"current_outcomes of {measured['rows'] / 1e6:.1f} M rows written in {measured['current_seconds']:.1f} s",
            "report",
            "-",
        )
    )
    scans = ", ".join(
        f"{name} {scan['bytes_per_million'] / 1e6:.1f} MB ${scan['usd_per_million']:.5f}"
        for name, scan in measured["athena"].items()
    )
    out.append(("10d Athena per million rows, by named query (scanned, cost)", scans, "report", "-"))
    cost = measured["costs"]
    out.append(
        (
            "10e the table's cost",
            f"${cost['per_1000_images_usd']:.5f} per 1,000 images (rows of {measured['row_bytes_mean']:,.0f} B "
            f"billed as 5 KB), ${cost['per_day_usd']:.4f} a day fixed",
            "report",
            "-",
        )
    )
    return out


if __name__ == "__main__":
    result = measure(int(sys.argv[1]) if len(sys.argv) > 1 else GENERATED)
    for row in rows(result):
        print("  ".join(row))
