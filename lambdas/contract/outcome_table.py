"""The table of outcomes: one row for every outcome document the function writes (a result or an error document),
the same in Athena (Parquet written by Amazon Data Firehose, in the Glue Data Catalog) and in DuckDB (the
embedded stack's rows). Its columns, how a document becomes a row, and the queries shipped with it are defined here
once, for the function, the stack and the operator tool.

The stream is append-only and may repeat or reorder a row (a redelivered message sends its row again). The
``current_outcomes`` view keeps, per image, the row S3 holds now: the last one written (``written_at``, stamped
after the conditional write succeeded, so a later row replaced an earlier one), with S3's sequencer rule (right-pad,
compare) between two rows written at the same millisecond.

Pure: no I/O, no AWS. SQL is written once, in the subset both Trino (Athena engine 3) and DuckDB run; a test parses
every statement in both dialects (sqlglot) and runs it on DuckDB.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

TABLE, CURRENT = "outcomes", "current_outcomes"
PARTITION = "day"  # yyyy-MM-dd of the row's delivery (Firehose's timestamp); a date in both engines
SEQUENCER_WIDTH = 40  # S3 sequencers are hexadecimal strings of varying length, right-padded to compare

_BOX = "struct<left:double,top:double,width:double,height:double>"
_LABEL = f"struct<name:string,confidence:double,accepted:boolean,threshold:double,box:{_BOX}>"
_DUCKDB_LABEL = (
    "STRUCT(name VARCHAR, confidence DOUBLE, accepted BOOLEAN, threshold DOUBLE, "
    'box STRUCT("left" DOUBLE, top DOUBLE, width DOUBLE, height DOUBLE))[]'
)
# A label's fields, in order: a query unnests ``labels`` as ``l (name, confidence, accepted, threshold, box)``.
LABEL_FIELDS = ("name", "confidence", "accepted", "threshold", "box")


@dataclass(frozen=True)
class Column:
    name: str
    glue: str  # the Glue Data Catalog type (Hive DDL), which Athena and Firehose's Parquet conversion read
    duckdb: str
    doc: str


COLUMNS: tuple[Column, ...] = (
    Column("bucket", "string", "VARCHAR", "the image's bucket"),
    Column("key", "string", "VARCHAR", "the image's key"),
    Column("version_id", "string", "VARCHAR", "the image version the outcome answers (versioned bucket)"),
    Column("sequencer", "string", "VARCHAR", "S3's sequencer of the notification (absent for re-runs)"),
    Column("etag", "string", "VARCHAR", "the image's ETag"),
    Column("written_at", "timestamp", "TIMESTAMP", "when the outcome document was written (after the write succeeded)"),
    Column("completed_at", "timestamp", "TIMESTAMP", "the document's timing.completed_at (what drift windows use)"),
    Column("status", "string", "VARCHAR", "ok (a result) or error (an error document)"),
    Column("error_code", "string", "VARCHAR", "the error document's code"),
    Column("backend", "string", "VARCHAR", "rekognition or sagemaker"),
    Column("model_id", "string", "VARCHAR", "the model version ARN or endpoint name"),
    Column("min_confidence", "double", "DOUBLE", "the threshold applied to every label without its own"),
    Column("candidate_floor", "double", "DOUBLE", "the lowest confidence recorded as a candidate"),
    Column("label_overrides", "string", "VARCHAR", "the per-label thresholds applied, as JSON sorted by label"),
    Column(
        "labels",
        f"array<{_LABEL}>",
        _DUCKDB_LABEL,
        "every label the result holds, accepted ones and candidates (accepted false), with the threshold applied",
    ),
    Column("rerun", "string", "VARCHAR", "the forced re-run (inferctl reprocess) the document answers, if any"),
    Column("challenger_model_id", "string", "VARCHAR", "the challenger that saw the image too, when one did"),
    Column("challenger_status", "string", "VARCHAR", "the challenger's own status (ok or error), when one ran"),
    Column("challenger_labels", f"array<{_LABEL}>", _DUCKDB_LABEL, "the challenger's labels and candidates"),
    Column("latency_ms", "double", "DOUBLE", "the model call's latency"),
    Column("seconds", "double", "DOUBLE", "from the notification's receipt to the document's write"),
    Column("schema_version", "string", "VARCHAR", "the result document's schema"),
    Column("document", "string", "VARCHAR", "the outcome document itself, as JSON: what the operator tools read"),
)
COLUMN_NAMES = tuple(column.name for column in COLUMNS)


def _labels(found: Any, accepted: bool, thresholds: Mapping[str, Any]) -> list[dict[str, Any]]:
    overrides = thresholds.get("label_overrides") or {}
    default = thresholds.get("min_confidence")
    rows = []
    for label in found or []:
        box = label.get("bounding_box")
        name = str(label.get("name"))
        threshold = overrides.get(name, default)
        rows.append(
            {
                "name": name,
                "confidence": float(label.get("confidence", 0.0)),
                "accepted": accepted,
                "threshold": None if threshold is None else float(threshold),
                "box": None if not box else {k: float(box[k]) for k in ("left", "top", "width", "height")},
            }
        )
    return rows


def _time(text: Any) -> str | None:
    return text if isinstance(text, str) and text else None


def row(document: Mapping[str, Any], written_at: datetime) -> dict[str, Any]:
    """The row of an outcome document the function wrote at ``written_at`` (after its write succeeded)."""
    source = document.get("source") or {}
    model = document.get("model") or {}
    thresholds = document.get("thresholds") or {}
    timing = document.get("timing") or {}
    challenger = document.get("challenger") or {}
    received = _parse(_time(timing.get("received_at")))
    completed = _parse(_time(timing.get("completed_at")))
    seconds = None if received is None else round((written_at - received).total_seconds(), 3)
    labels = _labels(document.get("labels"), True, thresholds) + _labels(document.get("candidates"), False, thresholds)
    shadow = (
        _labels(challenger.get("labels"), True, thresholds) + _labels(challenger.get("candidates"), False, thresholds)
        if challenger
        else []
    )
    return {
        "bucket": source.get("bucket"),
        "key": source.get("key"),
        "version_id": source.get("version_id"),
        "sequencer": source.get("sequencer"),
        "etag": source.get("etag"),
        "written_at": stamp(written_at),
        "completed_at": None if completed is None else stamp(completed),
        "status": document.get("status"),
        "error_code": (document.get("error") or {}).get("code"),
        "backend": model.get("backend"),
        "model_id": model.get("model_id"),
        "min_confidence": thresholds.get("min_confidence"),
        "candidate_floor": thresholds.get("candidate_floor"),
        "label_overrides": overrides_text(thresholds.get("label_overrides") or {}),
        "labels": labels,
        "rerun": (document.get("rerun") or {}).get("run"),
        "challenger_model_id": challenger.get("model_id") if challenger else None,
        "challenger_status": challenger.get("status") if challenger else None,
        "challenger_labels": shadow,
        "latency_ms": timing.get("backend_latency_ms"),
        "seconds": seconds,
        "schema_version": document.get("schema_version"),
        "document": _COMPACT.encode(document),
    }


def overrides_text(overrides: Mapping[str, Any]) -> str:
    """Per-label thresholds as the table holds them: JSON, sorted by label (compared as text)."""
    return _COMPACT.encode(dict(sorted(overrides.items()))) if overrides else "{}"


def stamp(moment: datetime) -> str:
    """A timestamp as both engines read it from JSON and Parquet: UTC, milliseconds, no zone suffix."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


# Compact, UTF-8 as it is, no circularity check (documents are trees): a row is encoded on every outcome.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def encode(row_: Mapping[str, Any]) -> bytes:
    """One record for the stream: a JSON line (Firehose's OpenX JSON SerDe reads it into the Glue schema)."""
    return (_COMPACT.encode(row_) + "\n").encode("utf-8")


# --- SQL: written once, in Athena's (Trino's) dialect; the tool transpiles it for DuckDB -----------------------

# The current outcome per image: the last row written, S3's sequencer rule between rows of one millisecond. Athena
# has no view here (a catalog view cannot be created from the template): the tool, and every named query, carry
# it as a WITH clause (``with_current``).
NEWEST_FIRST = f"""PARTITION BY bucket, key
    ORDER BY written_at DESC, rpad(upper(coalesce(sequencer, '')), {SEQUENCER_WIDTH}, '0') DESC"""
CURRENT_SQL = f"""SELECT {", ".join(COLUMN_NAMES)}, {PARTITION} FROM (
  SELECT o.*, row_number() OVER (
    {NEWEST_FIRST}
  ) AS newest
  FROM {TABLE} AS o
) AS ranked
WHERE newest = 1"""


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str  # may name current_outcomes: ``with_current`` supplies it


NAMED_QUERIES: tuple[NamedQuery, ...] = (
    NamedQuery(
        "outcomes-per-day",
        "Outcomes written per day and status (every row: re-runs and replaced versions count)",
        f"""SELECT CAST(written_at AS DATE) AS day, status, count(*) AS outcomes
FROM {TABLE}
GROUP BY CAST(written_at AS DATE), status
ORDER BY day, status""",
    ),
    NamedQuery(
        "error-codes",
        "Current error documents per code, with an example image each",
        f"""SELECT error_code, count(*) AS images, min(key) AS example
FROM {CURRENT}
WHERE status = 'error'
GROUP BY error_code
ORDER BY images DESC, error_code""",
    ),
    NamedQuery(
        "label-shares-per-day",
        "Per label and day: the share of results that accept it, and the share with a candidate within 10 points "
        "below its threshold (the drift signal)",
        f"""WITH results AS (
  SELECT key, CAST(written_at AS DATE) AS day, labels FROM {CURRENT} WHERE status = 'ok'
),
per_day AS (
  SELECT day, count(*) AS results FROM results GROUP BY day
),
found AS (
  SELECT r.day, r.key, l.name, l.confidence, l.accepted, l.threshold
  FROM results AS r
  CROSS JOIN UNNEST(r.labels) AS l ({", ".join(LABEL_FIELDS)})
)
SELECT f.day, f.name AS label,
  round(CAST(count(DISTINCT CASE WHEN f.accepted THEN f.key END) AS DOUBLE) / max(p.results), 4) AS accepted_share,
  round(CAST(count(DISTINCT CASE WHEN NOT f.accepted AND f.confidence >= f.threshold - 10 THEN f.key END)
    AS DOUBLE) / max(p.results), 4) AS near_threshold_share,
  max(p.results) AS results
FROM found AS f
JOIN per_day AS p ON p.day = f.day
GROUP BY f.day, f.name
ORDER BY f.day, label""",
    ),
    NamedQuery(
        "slowest-images",
        "The 50 current outcomes that took longest from notification to document, with the model's share",
        f"""SELECT key, status, seconds, latency_ms, written_at
FROM {CURRENT}
WHERE seconds IS NOT NULL
ORDER BY seconds DESC, key
LIMIT 50""",
    ),
)


def with_current(sql: str) -> str:
    """One of the table's own queries with ``current_outcomes`` defined as its first WITH clause: plain text, for
    the stack's named queries (at synth, with no SQL parser). The operator tool parses whatever SQL it is given
    (``inferctl/stack/dialect.py``); a test checks that both give the same statement."""
    if not re.search(rf"\b{CURRENT}\b", sql):
        return sql
    head = f"WITH {CURRENT} AS (\n{CURRENT_SQL}\n)"
    stripped = sql.lstrip()
    if stripped[:5].upper() == "WITH ":
        return f"{head},\n{stripped[5:]}"
    return f"{head}\n{stripped}"


def named(name: str) -> NamedQuery:
    for query in NAMED_QUERIES:
        if query.name == name:
            return query
    raise KeyError(name)
