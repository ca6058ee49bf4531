"""Which engine answers an operator tool: the scan (every document read from S3: exact as of now, about 1,500
documents a second), or the outcome table (Athena for a deployed stack, DuckDB for the embedded one: seconds for
millions, as fresh as the stream's buffer). ``auto`` scans a prefix under ``SCAN_BELOW`` objects and asks the table
above it; every tool says which ran and why.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferctl.stack import questions, uploads
from inferctl.stack.engines import AthenaPlace, AthenaTable, LocalTable
from inferctl.stack.errors import OperationFailed, UsageError
from inferctl.stack.outcomes import read_result
from inferctl.stack.target import DEFAULT_STATE, Target

ENGINES = ("auto", "athena", "duckdb", "scan")
SCAN_BELOW = 10_000  # objects under the prefix: below, the scan takes seconds and is exact as of now
DEFAULT_TABLE_FOLDER = DEFAULT_STATE.parent / "outcome-table"  # beside the state file (emulator.stack.TABLE_FOLDER)


@dataclass
class Source:
    """Where a tool reads results from, and why."""

    target: Target
    table: LocalTable | AthenaTable | None  # None: the scan
    reason: str

    @property
    def engine(self) -> str:
        return "scan" if self.table is None else self.table.engine

    def documents(self, prefix: str | None = None) -> Iterator[dict[str, Any]]:
        """Every current outcome document under the prefix, in S3's order of their keys."""
        if self.table is None:
            return uploads.iter_results(self.target, prefix)
        return questions.documents(self.table, prefix or self.target.input_prefix, fallback=self._read)

    def documents_for(self, keys: Iterable[str], prefix: str | None = None) -> list[dict[str, Any]]:
        """The current documents of these images (a labelled or reviewed sample), by key."""
        wanted = set(keys)
        if self.table is None:
            return [d for d in uploads.iter_results(self.target, prefix) if d["source"]["key"] in wanted]
        under = prefix or self.target.input_prefix
        found = questions.documents_for(self.table, wanted, fallback=self._read)
        return [d for d in found if str(d["source"]["key"]).startswith(under)]

    def images(self, suffixes: tuple[str, ...], prefix: str | None = None) -> questions.Images:
        """The table's view of the bucket's images: S3 Inventory's latest listing (Athena), or a listing taken now
        (the embedded stack's DuckDB)."""
        under = prefix or self.target.input_prefix
        if isinstance(self.table, LocalTable):
            s3 = self.target.client("s3")
            items = (
                dict(item, bucket=self.target.bucket)
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.target.bucket, Prefix=under)
                for item in page.get("Contents", [])
            )
            self.table.load_listing(list(items))
            return questions.Images(self.target.bucket, under, suffixes)
        if isinstance(self.table, AthenaTable):
            return questions.Images(self.target.bucket, under, suffixes, latest_inventory(self.target))
        raise OperationFailed("the scan has no inventory: the table's engines do")

    def _read(self, key: str) -> dict[str, Any] | None:
        return read_result(self.target.client("s3"), self.target.bucket, key)


def latest_inventory(target: Target) -> str:
    """The ``dt`` of S3 Inventory's latest delivery (its ``hive/dt=YYYY-MM-DD-HH-MM/`` folders)."""
    location = target.outputs.get("InventoryLocation")
    if not location:
        raise OperationFailed(f"{target.description} has no S3 Inventory (InventoryLocation): deploy with outcomeTable")
    bucket, _, prefix = str(location).removeprefix("s3://").partition("/")
    s3 = target.client("s3")
    snapshots: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        snapshots += [p["Prefix"][len(prefix) :].strip("/") for p in page.get("CommonPrefixes", [])]
    dated = sorted(s.removeprefix("dt=") for s in snapshots if s.startswith("dt="))
    if not dated:
        raise OperationFailed(
            "S3 Inventory has not delivered a listing yet (the first comes within 48 hours of the deploy): "
            "use --engine scan until then"
        )
    return dated[-1]


def open_source(
    target: Target,
    requested: str,
    prefix: str | None = None,
    progress: Callable[[str], None] = lambda text: None,
    folder: Path | None = None,
    table_needed: str | None = None,
) -> Source:
    """The engine ``requested`` (or chosen by ``auto``), ready: the embedded table synced first. ``table_needed``:
    why the work needs the table whatever the size (``auto`` then picks it when the stack has one)."""
    if requested not in ENGINES:
        raise UsageError(f"--engine {requested!r}: choose one of {', '.join(ENGINES)}")
    place = AthenaPlace.from_outputs(target.outputs)
    embedded = bool(target.outputs.get("OutcomeBucketName"))
    if requested == "scan":
        return Source(target, None, "scan: asked for (--engine scan)")
    if requested == "athena" and place is None:
        raise UsageError(
            "--engine athena asks a deployed stack's outcome table: this stack has none "
            "(deploy with outcomeTable true, or use --engine scan)"
        )
    if requested == "duckdb" and not embedded:
        raise UsageError(
            "--engine duckdb asks the embedded stack's rows; a deployed stack's table is asked with --engine athena"
        )
    if requested == "auto" and place is None and not embedded:
        return Source(target, None, "scan: this stack has no outcome table")
    if requested == "auto" and table_needed:
        why = table_needed
    elif requested == "auto":
        listed = count_objects(target, prefix or target.input_prefix, SCAN_BELOW)
        if listed < SCAN_BELOW:
            return Source(target, None, f"scan: {listed:,} objects under the prefix (the table from {SCAN_BELOW:,})")
        why = f"{SCAN_BELOW:,} objects or more under the prefix"
    else:
        why = f"asked for (--engine {requested})"
    if place is not None:
        athena = AthenaTable(target.client("athena"), place, target.client("s3"), progress=progress)
        return Source(
            target, athena, f"athena: {why}; workgroup {place.workgroup} (rows up to the stream's buffer behind)"
        )
    local = sync_embedded(target, folder, progress)
    return Source(target, local, f"duckdb: {why}")


def count_objects(target: Target, prefix: str, up_to: int) -> int:
    """Objects under ``prefix``, counted up to ``up_to`` (a page of 1,000 a request)."""
    counted = 0
    pages = target.client("s3").get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=prefix)
    for page in pages:
        counted += page.get("KeyCount", len(page.get("Contents", [])))
        if counted >= up_to:
            break
    return counted


def table_folder(target: Target) -> Path:
    return Path(target.outputs.get("OutcomeTableFolder") or DEFAULT_TABLE_FOLDER)


def sync_embedded(
    target: Target, folder: Path | None = None, progress: Callable[[str], None] = lambda text: None
) -> LocalTable:
    """The embedded stack's table, with the rows its stream wrote since the last sync copied and compacted."""
    local = LocalTable(folder or table_folder(target))
    bucket = str(target.outputs["OutcomeBucketName"])
    rows_prefix = str(target.outputs.get("OutcomeRowsPrefix") or "rows/")
    # the trigger's id is new with every embedded stack: it tells one from the next at the same address
    stack = target.outputs.get("EventSourceMappingId") or ""
    source = json.dumps({"endpoint": target.endpoint_url, "bucket": bucket, "stack": stack})
    synced = local.sync(target.client("s3"), bucket, rows_prefix, source)
    if synced.objects:
        progress(
            f"copied {synced.rows:,} rows ({synced.objects:,} stream objects) and compacted them to Parquet in "
            f"{synced.seconds:.2f} s ({synced.compaction_seconds:.2f} s compaction)"
        )
    return local


def wait_for_rows(
    target: Target, keys: Iterable[str], timeout: float, folder: Path | None = None, poll: float = 0.2
) -> LocalTable:
    """The embedded table once every one of ``keys`` has its row (the function sends a batch's rows when the batch
    ends, after its documents are written); OperationFailed naming how many are missing after ``timeout``."""
    import time

    wanted = set(keys)
    deadline = time.monotonic() + timeout
    while True:
        local = sync_embedded(target, folder)
        found = {key for (key,) in local.query("SELECT DISTINCT key FROM current_outcomes").rows}
        missing = wanted - found
        if not missing:
            return local
        if time.monotonic() > deadline:
            raise OperationFailed(
                f"{len(missing)} of {len(wanted)} outcomes have no row in the table after {timeout:g} s "
                f"(first: {sorted(missing)[0]})"
            )
        time.sleep(poll)
