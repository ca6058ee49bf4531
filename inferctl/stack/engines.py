"""The outcome table, asked in SQL: Amazon Athena for a deployed stack, DuckDB (in this process) for the embedded
one. Both take the same SQL text, written in Athena's dialect (``dialect.py`` transpiles it for DuckDB), over the same
columns (``lambdas/contract/outcome_table.py``), and answer with an ``Answer``.

- ``LocalTable``: the embedded stack's rows. Its emulated stream writes each batch's rows as JSON lines; ``sync``
  copies the objects not copied before into a folder and compacts them into Parquet partitioned by day, the deployed
  table's layout (``outcomes/day=YYYY-MM-DD/``), merging a day's files when they pile up. The folder outlives the
  stack: ``inferctl query --embedded`` answers after ``make demo`` from what the demo copied last.
- ``AthenaTable``: a deployed stack's table, in the workgroup the stack made (its bytes-scanned limit and its
  encrypted, expiring results location are enforced there, not chosen here).

Both engines also hold ``inventory``: S3 Inventory's daily listing of the bucket (Athena), or a listing taken now
in the same columns (DuckDB), for the questions that need every image, with or without an outcome.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from inferctl.pricing import athena_query_cost
from inferctl.stack import dialect
from inferctl.stack.dialect import QueryError
from inferctl.stack.errors import OperationFailed
from lambdas.contract import outcome_table

INVENTORY = "inventory"
# The listing's columns: the fields the stack's inventory configuration asks S3 for, as its Parquet files (and the
# Glue table over them) name them.
INVENTORY_COLUMNS = (
    ("bucket", "string", "VARCHAR"),
    ("key", "string", "VARCHAR"),
    ("version_id", "string", "VARCHAR"),
    ("is_latest", "boolean", "BOOLEAN"),
    ("is_delete_marker", "boolean", "BOOLEAN"),
    ("size", "bigint", "BIGINT"),
    ("last_modified_date", "timestamp", "TIMESTAMP"),
    ("e_tag", "string", "VARCHAR"),
)
DUCKDB_SETTINGS: dict[str, Any] = {
    # Only what the wheel ships (JSON and Parquet are built in): nothing is installed or loaded from the network.
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "memory_limit": "400MB",  # the bench's peak target is 500 MB for the whole process
    "preserve_insertion_order": False,  # every query orders what it needs: lets DuckDB stream and spill
}


def named_queries() -> tuple[outcome_table.NamedQuery, ...]:
    """The ready-made queries (shipped as Athena named queries too)."""
    return outcome_table.NAMED_QUERIES


def named_query(name: str) -> str:
    """A ready-made query's SQL; KeyError when there is none of that name."""
    return outcome_table.named(name).sql


def columns() -> list[tuple[str, str, str]]:
    """(name, type, what it holds) of every column, the partition last."""
    found = [(column.name, column.glue, column.doc) for column in outcome_table.COLUMNS]
    return [*found, (outcome_table.PARTITION, "string", "the day the stream delivered the row (yyyy-MM-dd, UTC)")]


@dataclass
class Answer:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    engine: str  # "athena" or "duckdb"
    seconds: float  # the query's own time (no process start, no sync)
    scanned_bytes: int | None = None  # Athena's DataScannedInBytes
    cost_usd: float | None = None
    notes: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def summary(self) -> str:
        parts = [f"{len(self.rows)} rows", f"{self.engine} {self.seconds:.2f} s"]
        if self.scanned_bytes is not None:
            parts.append(f"{self.scanned_bytes / 1024**2:,.1f} MB scanned")
        if self.cost_usd is not None:
            parts.append(f"USD {self.cost_usd:.6f}")
        return "; ".join(parts)


def plain(value: Any) -> Any:
    """A value as both engines print it: timestamps as ``YYYY-MM-DD HH:MM:SS.mmm`` (Athena's text), dates ISO, nested
    values as JSON."""
    if isinstance(value, datetime):
        return outcome_table.stamp(value.replace(tzinfo=UTC) if value.tzinfo is None else value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, default=plain, ensure_ascii=False, separators=(",", ":"))
    return value


# --- DuckDB: the embedded stack ---------------------------------------------------------------------------------

MERGE_AT = 16  # a day's Parquet files are merged into one when there are this many
JOURNAL = "journal.json"


@dataclass(frozen=True)
class Synced:
    objects: int  # new objects copied
    rows: int  # rows they held
    seconds: float  # copy and compaction
    compaction_seconds: float
    merged_days: int = 0


class LocalTable:
    """The embedded stack's outcome table in ``folder``: ``parquet/day=.../*.parquet`` and the keys of the stream's
    objects already copied (``synced.txt``)."""

    engine = "duckdb"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.parquet = folder / "parquet"
        self.raw = folder / "raw"
        self.synced_file = folder / "synced.txt"
        self.source_file = folder / "source.json"
        # current_outcomes, materialized after each sync that changed the rows: every question reads it instead of
        # ranking every row again (CURRENT_SQL, the same rule, run once)
        self.current_file = folder / "current.parquet"
        self._listing: Path | None = None
        self.engine_seconds = 0.0  # time spent in DuckDB (executing and fetching), across queries: the bench's
        self._finish_journal()

    # -- copying and compaction ------------------------------------------------------------------------------

    def sync(
        self, s3: Any, bucket: str, prefix: str, source: str, progress: Callable[[int], None] = lambda n: None
    ) -> Synced:
        """Copy the stream's objects under ``prefix`` not copied before and compact them. ``source`` names the stack
        the rows come from: another stack (a new ``make demo``, another ``serve``) starts the folder afresh."""
        started = time.perf_counter()
        self._adopt(source)
        done = self._synced()
        new: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            new += [item["Key"] for item in page.get("Contents", []) if item["Key"] not in done]
        self.raw.mkdir(parents=True, exist_ok=True)
        for count, key in enumerate(new, 1):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                target = self.raw / key[len(prefix) :].lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(body.read())
            finally:
                body.close()
            progress(count)
        compacting = time.perf_counter()
        rows = self._compact(new) if new else 0
        merged = self._merge()
        if new or merged or not self.current_file.exists():
            self.refresh_current()
        ended = time.perf_counter()
        return Synced(len(new), rows, ended - started, ended - compacting, merged)

    def refresh_current(self) -> None:
        """Write current_outcomes to ``current.parquet``: CURRENT_SQL's rule (``table.NEWEST_FIRST``) ranks only the
        columns it orders by, and the winning rows (by file and row number) are then copied whole, so that a
        million rows with their documents never have to be held at once."""
        self.current_file.unlink(missing_ok=True)
        if not self.files():
            return
        temporary = self.current_file.with_suffix(".tmp")
        rows = self._rows_source(", filename=true, file_row_number=true")
        columns = ", ".join(f"o.{_name(name)}" for name in (*outcome_table.COLUMN_NAMES, outcome_table.PARTITION))
        with self._connect() as connection:
            connection.execute(
                f"""COPY (
WITH ranked AS (
  SELECT filename, file_row_number, row_number() OVER ({outcome_table.NEWEST_FIRST}) AS newest
  FROM (SELECT filename, file_row_number, bucket, key, written_at, sequencer FROM {rows})
)
SELECT {columns} FROM {rows} AS o
SEMI JOIN (SELECT filename, file_row_number FROM ranked WHERE newest = 1) AS w
  ON o.filename = w.filename AND o.file_row_number = w.file_row_number
) TO '{_quoted(temporary)}' (FORMAT parquet)"""  # noqa: S608 - our own names and paths
            )
        temporary.replace(self.current_file)

    def _rows_source(self, options: str = "") -> str:
        return (
            f"read_parquet('{_quoted(self.parquet)}/*/*.parquet', hive_partitioning=true, "
            f"hive_types={{'{outcome_table.PARTITION}': 'VARCHAR'}}, union_by_name=true{options})"
        )

    def _adopt(self, source: str) -> None:
        recorded = json.loads(self.source_file.read_text(encoding="utf-8")) if self.source_file.exists() else None
        if recorded == {"source": source}:
            return
        self.clear()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.source_file.write_text(json.dumps({"source": source}), encoding="utf-8")

    def clear(self) -> None:
        for path in (self.parquet, self.raw):
            if path.exists():
                for child in sorted(path.rglob("*"), reverse=True):
                    child.unlink() if child.is_file() else child.rmdir()
                path.rmdir()
        for path in (self.synced_file, self.source_file, self.folder / JOURNAL, self.current_file):
            path.unlink(missing_ok=True)

    def _synced(self) -> set[str]:
        if not self.synced_file.exists():
            return set()
        return {line for line in self.synced_file.read_text(encoding="utf-8").splitlines() if line}

    def _compact(self, keys: list[str]) -> int:
        """The copied JSON lines as Parquet, partitioned by the day the stream delivered them (its object's
        ``YYYY/MM/DD/HH/`` path, as Firehose names objects). A journal makes an interrupted compaction start over
        instead of leaving a batch's rows twice."""
        batch = uuid.uuid4().hex[:12]
        self._write_journal({"compact": batch, "keys": keys})
        with self._connect() as connection:
            files = [str(path) for path in sorted(self.raw.rglob("*")) if path.is_file()]
            columns = "{" + ", ".join(f"'{c.name}': '{c.duckdb}'" for c in outcome_table.COLUMNS) + "}"
            source = (
                f"read_json({_list(files)}, columns={columns}, format='newline_delimited', filename=true, "
                "timestampformat='%Y-%m-%d %H:%M:%S.%g')"
            )
            day = r"regexp_replace(regexp_extract(filename, '(\d{4}/\d{2}/\d{2})/\d{2}/[^/]+$', 1), '/', '-', 'g')"
            (count,) = connection.execute(f"SELECT count(*) FROM {source}").fetchone() or (0,)  # noqa: S608
            connection.execute(
                f"COPY (SELECT * EXCLUDE (filename), {day} AS {outcome_table.PARTITION} FROM {source}) "  # noqa: S608
                f"TO '{_quoted(self.parquet)}' (FORMAT parquet, PARTITION_BY ({outcome_table.PARTITION}), APPEND, "
                f"FILENAME_PATTERN 'part-{batch}-{{uuid}}')"
            )
        with self.synced_file.open("a", encoding="utf-8") as handle:
            handle.writelines(key + "\n" for key in keys)
        (self.folder / JOURNAL).unlink()
        for path in sorted(self.raw.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        return int(count)

    def _merge(self) -> int:
        """A day's files merged into one once there are ``MERGE_AT`` of them (the journal names the files it
        replaces: an interrupted merge is finished, never left with both)."""
        merged = 0
        if not self.parquet.exists():
            return 0
        for day in sorted(path for path in self.parquet.iterdir() if path.is_dir()):
            parts = sorted(day.glob("*.parquet"))
            if len(parts) < MERGE_AT:
                continue
            result = day / f"merged-{uuid.uuid4().hex[:12]}.parquet"
            temporary = result.with_suffix(".tmp")
            with self._connect() as connection:
                connection.execute(
                    f"COPY (SELECT * FROM read_parquet({_list([str(p) for p in parts])})) "  # noqa: S608
                    f"TO '{_quoted(temporary)}' (FORMAT parquet)"
                )
            self._write_journal({"merge": str(result), "temporary": str(temporary), "old": [str(p) for p in parts]})
            self._finish_journal()
            merged += 1
        return merged

    def _write_journal(self, entry: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / JOURNAL).write_text(json.dumps(entry), encoding="utf-8")

    def _finish_journal(self) -> None:
        path = self.folder / JOURNAL
        if not path.exists():
            return
        entry = json.loads(path.read_text(encoding="utf-8"))
        self.current_file.unlink(missing_ok=True)  # written again by the next sync
        if "compact" in entry:  # interrupted before its keys were recorded: its files go, its objects come again
            for part in self.parquet.rglob(f"part-{entry['compact']}-*.parquet"):
                part.unlink()
        else:
            temporary = Path(entry["temporary"])
            if temporary.exists():
                temporary.replace(entry["merge"])
            for old in entry["old"]:
                Path(old).unlink(missing_ok=True)
        path.unlink()

    # -- the listing (the embedded stack's S3 Inventory) ----------------------------------------------------------

    def load_listing(self, entries: Iterable[dict[str, Any]]) -> None:
        """The bucket's listing (``list_objects_v2`` items, with the bucket's name) as the ``inventory`` view."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "listing.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for item in entries:
                record = {
                    "bucket": item["bucket"],
                    "key": item["Key"],
                    "version_id": item.get("VersionId"),
                    "is_latest": True,
                    "is_delete_marker": False,
                    "size": int(item.get("Size", 0)),
                    "last_modified_date": outcome_table.stamp(item["LastModified"]),
                    "e_tag": str(item.get("ETag", "")).strip('"'),
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        listing = self.folder / "listing.parquet"
        columns = "{" + ", ".join(f"'{name}': '{kind}'" for name, _, kind in INVENTORY_COLUMNS) + "}"
        with self._connect() as connection:
            connection.execute(
                f"COPY (SELECT * FROM read_json('{_quoted(path)}', columns={columns}, "  # noqa: S608
                "format='newline_delimited', timestampformat='%Y-%m-%d %H:%M:%S.%g')) "
                f"TO '{_quoted(listing)}' (FORMAT parquet)"
            )
        path.unlink()
        self._listing = listing

    # -- asking --------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Any]:
        import duckdb

        # what does not fit the memory limit spills beside the table, not into the working directory
        spill = {"temp_directory": str(self.folder / "spill")}
        connection = duckdb.connect(":memory:", config={**DUCKDB_SETTINGS, **spill})
        connection.execute("SET enable_progress_bar = false")  # the tools say what they do on stderr themselves
        try:
            yield connection
        finally:
            connection.close()

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """A connection with the views ``outcomes``, ``current_outcomes`` and (with a listing) ``inventory``."""
        with self._connect() as connection:
            parts = sorted(self.parquet.glob("*/*.parquet")) if self.parquet.exists() else []
            if parts:
                columns = ", ".join(outcome_table.COLUMN_NAMES)
                outcomes = f"SELECT {columns}, {outcome_table.PARTITION} FROM {self._rows_source()}"  # noqa: S608
            else:
                nothing = ", ".join(f"CAST(NULL AS {c.duckdb}) AS {_name(c.name)}" for c in outcome_table.COLUMNS)
                outcomes = f"SELECT {nothing}, CAST(NULL AS VARCHAR) AS {outcome_table.PARTITION} WHERE false"
            connection.execute(f"CREATE VIEW {outcome_table.TABLE} AS {outcomes}")
            current = dialect.for_duckdb(outcome_table.CURRENT_SQL)
            if self.current_file.exists():
                current = f"SELECT * FROM read_parquet('{_quoted(self.current_file)}')"  # noqa: S608
            connection.execute(f"CREATE VIEW {outcome_table.CURRENT} AS {current}")
            if self._listing is not None:
                connection.execute(
                    f"CREATE VIEW {INVENTORY} AS SELECT * FROM read_parquet('{_quoted(self._listing)}')"  # noqa: S608
                )
            yield connection

    def query(self, text: str) -> Answer:
        translated = dialect.for_duckdb(text)
        with self.connection() as connection:
            started = time.perf_counter()
            try:
                cursor = connection.execute(translated)
                rows = cursor.fetchall()
            except Exception as exc:  # noqa: BLE001 - duckdb's errors: the engine's message, one line
                raise QueryError(_one_line(str(exc))) from None
            seconds = time.perf_counter() - started
            self.engine_seconds += seconds
            columns = [column[0] for column in cursor.description or []]
        return Answer(columns, [tuple(row) for row in rows], self.engine, seconds)

    def stream(self, text: str, batch: int = 2048) -> Iterator[tuple[Any, ...]]:
        """The rows of a query that may be long, a batch at a time."""
        translated = dialect.for_duckdb(text)
        with self.connection() as connection:
            started = time.perf_counter()
            try:
                cursor = connection.execute(translated)
            except Exception as exc:  # noqa: BLE001
                raise QueryError(_one_line(str(exc))) from None
            while True:
                chunk = cursor.fetchmany(batch)
                self.engine_seconds += time.perf_counter() - started
                if not chunk:
                    break
                yield from (tuple(row) for row in chunk)
                started = time.perf_counter()

    def files(self) -> list[Path]:
        return sorted(self.parquet.glob("*/*.parquet")) if self.parquet.exists() else []


def _list(paths: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{_quoted(path)}'" for path in paths) + "]"


def _quoted(path: Path | str) -> str:
    return str(path).replace("'", "''")


def _name(name: str) -> str:
    return f'"{name}"'


def _one_line(message: str) -> str:
    return " ".join(message.split())


# --- Athena: a deployed stack -----------------------------------------------------------------------------------

POLL_SECONDS = (0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0)
ATHENA_NUMBERS = {"tinyint": int, "smallint": int, "integer": int, "bigint": int, "double": float, "float": float}


@dataclass(frozen=True)
class AthenaPlace:
    """Where a stack's table is (its CloudFormation outputs)."""

    workgroup: str
    database: str
    inventory_location: str | None = None  # s3://bucket/prefix/ of the inventory's hive/dt=... folders

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any]) -> AthenaPlace | None:
        if not outputs.get("OutcomeWorkgroup") or not outputs.get("OutcomeDatabase"):
            return None
        return cls(outputs["OutcomeWorkgroup"], outputs["OutcomeDatabase"], outputs.get("InventoryLocation"))


class AthenaTable:
    engine = "athena"

    def __init__(
        self,
        athena: Any,
        place: AthenaPlace,
        s3: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        progress: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.athena = athena
        self.place = place
        self.s3 = s3
        self._sleep = sleep
        self._progress = progress

    def run(self, text: str) -> dict[str, Any]:
        """Start the query in the stack's workgroup and wait for it; its execution (SUCCEEDED), or QueryError with
        Athena's reason. Ctrl-C stops the query in Athena too."""
        started = self.athena.start_query_execution(
            QueryString=dialect.for_athena(text),
            WorkGroup=self.place.workgroup,
            QueryExecutionContext={"Database": self.place.database},
        )
        execution_id = started["QueryExecutionId"]
        try:
            for attempt in range(1_000_000):
                execution = self.athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
                state = execution["Status"]["State"]
                if state == "SUCCEEDED":
                    return dict(execution)
                if state in ("FAILED", "CANCELLED"):
                    raise QueryError(_athena_reason(execution))
                self._progress(f"Athena {state.lower()} ({execution_id})")
                self._sleep(POLL_SECONDS[min(attempt, len(POLL_SECONDS) - 1)])
        except KeyboardInterrupt:
            with contextlib.suppress(Exception):
                self.athena.stop_query_execution(QueryExecutionId=execution_id)
            raise
        raise OperationFailed(f"Athena query {execution_id} did not finish")

    def query(self, text: str) -> Answer:
        execution = self.run(text)
        statistics = execution.get("Statistics") or {}
        columns: list[str] = []
        kinds: list[str] = []
        rows: list[tuple[Any, ...]] = []
        first = True
        paginator = self.athena.get_paginator("get_query_results")
        for page in paginator.paginate(QueryExecutionId=execution["QueryExecutionId"]):
            result = page["ResultSet"]
            if not columns:
                info = result.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [column["Name"] for column in info]
                kinds = [column.get("Type", "varchar") for column in info]
            data = result.get("Rows", [])
            if first and data and execution.get("StatementType") == "DML":
                data = data[1:]  # a SELECT's first row repeats the column names
            first = False
            rows += [_typed(row.get("Data", []), kinds) for row in data]
        scanned = int(statistics.get("DataScannedInBytes") or 0)
        seconds = float(statistics.get("EngineExecutionTimeInMillis") or 0) / 1000
        return Answer(columns, rows, self.engine, seconds, scanned, athena_query_cost(scanned))

    def stream(self, text: str) -> Iterator[tuple[Any, ...]]:
        """A long answer read from its CSV in the workgroup's results location (every value a string, None for
        an empty field), not a page of 1,000 rows at a time."""
        execution = self.run(text)
        location = execution["ResultConfiguration"]["OutputLocation"]
        bucket, _, key = location.removeprefix("s3://").partition("/")
        if self.s3 is None:
            raise OperationFailed("no S3 client to read the query's results with")
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            reader = csv.reader(io.TextIOWrapper(body, encoding="utf-8", newline=""))
            next(reader, None)
            for record in reader:
                yield tuple(value if value != "" else None for value in record)
        finally:
            body.close()


def _typed(data: list[dict[str, Any]], kinds: list[str]) -> tuple[Any, ...]:
    values: list[Any] = []
    for datum, kind in zip(data, kinds, strict=False):
        text = datum.get("VarCharValue")
        if text is None:
            values.append(None)
        elif kind in ATHENA_NUMBERS:
            values.append(ATHENA_NUMBERS[kind](text))
        elif kind.startswith("decimal"):
            values.append(float(text))
        elif kind == "boolean":
            values.append(text == "true")
        else:
            values.append(text)
    return tuple(values)


def _athena_reason(execution: dict[str, Any]) -> str:
    status = execution.get("Status") or {}
    reason = _one_line(str(status.get("StateChangeReason") or status.get("State", "failed")))
    if "limit" in reason.lower() and "scan" in reason.lower():
        reason += " (the workgroup's per-query limit, athenaScanLimitMb: narrow the query by day or raise the limit)"
    return reason
