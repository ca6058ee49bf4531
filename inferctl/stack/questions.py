"""What the operator tools ask, in SQL over the outcome table: the same questions the scan answers by reading every
document, with the same rules, so that both give the same numbers
(``tests/integration/inferctl/test_table_parity.py`` compares every one).

Where a rule has more than a few cases (which image is selected for reprocessing, which state an image without an
outcome is in) the SQL only narrows the rows down and the scan's own Python decides on them; where the answer is an
aggregate over millions (audit's counts, what-if's totals, drift's shares and Kolmogorov-Smirnov statistics) it is
computed in SQL, by the rule written out below it.

Every statement is in Athena's dialect (``dialect.py`` runs it on DuckDB too); values are quoted by ``literal``, never
pasted in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from inferctl.evaluation import drift, whatif
from inferctl.stack import listing, reprocess
from inferctl.stack.audit import Audit, Settled, audit_row, state_of
from inferctl.stack.engines import INVENTORY
from lambdas.contract import outcome_table
from lambdas.contract.rules import RESULT_SUFFIX
from lambdas.contract.thresholds import NEAR_POINTS, Thresholds

KEYS_PER_QUERY = 1000  # keys named in one IN list (Athena takes 256 KB of SQL text)


class Table(Protocol):
    engine: str

    def query(self, text: str) -> Any: ...

    def stream(self, text: str) -> Iterator[tuple[Any, ...]]: ...


def literal(value: str | float | None) -> str:
    """A value as SQL both engines read: strings quoted (quotes doubled), numbers as Python writes them exactly."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value))
    return "'" + str(value).replace("'", "''") + "'"


def timestamp(moment: datetime) -> str:
    return f"TIMESTAMP {literal(outcome_table.stamp(moment))}"


def threshold_sql(thresholds: Thresholds, name: str = "name") -> str:
    """``thresholds.threshold_for(name)`` as a SQL expression."""
    if not thresholds.per_label:
        return literal(thresholds.min_confidence)
    cases = " ".join(
        f"WHEN {literal(label)} THEN {literal(value)}" for label, value in sorted(thresholds.per_label.items())
    )
    return f"CASE {name} {cases} ELSE {literal(thresholds.min_confidence)} END"


def _under(prefix: str, column: str = "key") -> str:
    return f"starts_with({column}, {literal(prefix)})"


def _pool(columns: str = "key, completed_at") -> str:
    """Each current result's labels and candidates as rows (the scan's ``pool(document)``)."""
    return f"""SELECT {", ".join("r." + c.strip() for c in columns.split(","))}, l.name, l.confidence, l.accepted
  FROM results AS r
  CROSS JOIN UNNEST(r.labels) AS l ({", ".join(outcome_table.LABEL_FIELDS)})"""


# --- results, and the documents of named images --------------------------------------------------------------


def documents_sql(prefix: str, where: str = "") -> str:
    """Every current outcome document under ``prefix``, in the order S3 lists their keys (``<key>.json``)."""
    extra = f" AND {where}" if where else ""
    return f"""SELECT key, document FROM {outcome_table.CURRENT}
WHERE {_under(prefix)}{extra}
ORDER BY key || {literal(RESULT_SUFFIX)}"""


def documents(
    engine: Table, prefix: str, where: str = "", fallback: Callable[[str], dict[str, Any] | None] | None = None
) -> Iterator[dict[str, Any]]:
    """The documents, streamed. A row written without its document (above Firehose's record limit) is read from
    S3 by ``fallback``."""
    for key, text in engine.stream(documents_sql(prefix, where)):
        if text:
            yield json.loads(text)
        elif fallback is not None and (document := fallback(key)) is not None:
            yield document


def documents_for(
    engine: Table, keys: Iterable[str], fallback: Callable[[str], dict[str, Any] | None] | None = None
) -> list[dict[str, Any]]:
    """The current documents of these image keys (a labelled sample, a review), a thousand keys a query."""
    wanted = sorted(set(keys))
    found: list[dict[str, Any]] = []
    for start in range(0, len(wanted), KEYS_PER_QUERY):
        chunk = ", ".join(literal(key) for key in wanted[start : start + KEYS_PER_QUERY])
        found += documents(engine, "", f"key IN ({chunk})", fallback)
    return sorted(found, key=lambda document: str(document["source"]["key"]) + RESULT_SUFFIX)


# --- images (S3 Inventory on AWS, a listing on the embedded stack) -------------------------------------------


@dataclass(frozen=True)
class Images:
    """Which inventory rows are images the pipeline takes: under the prefix, a taken suffix, not a folder."""

    bucket: str
    prefix: str
    suffixes: tuple[str, ...]
    snapshot: str | None = None  # Athena: the inventory's dt partition to read (the latest)

    def base(self) -> str:
        """Every current object under the prefix (images, documents, anything)."""
        conditions = [
            f"bucket = {literal(self.bucket)}",
            _under(self.prefix),
            "coalesce(is_latest, true)",
            "NOT coalesce(is_delete_marker, false)",
        ]
        if self.snapshot:
            conditions.insert(0, f"dt = {literal(self.snapshot)}")
        return " AND ".join(conditions)

    def where(self) -> str:
        suffixes = " OR ".join(_ends_with(suffix.lower(), "lower(key)") for suffix in self.suffixes)
        return f"{self.base()} AND NOT key LIKE '%/' AND ({suffixes})"


def _ends_with(suffix: str, column: str = "key") -> str:
    if _escaped(suffix) == suffix:  # nothing to escape: a plain LIKE, which DuckDB runs as a suffix test
        return f"{column} LIKE {literal('%' + suffix)}"
    return f"{column} LIKE {literal('%' + _escaped(suffix))} ESCAPE '\\'"


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _images_with_outcomes(images: Images) -> str:
    return f"""WITH images AS (
  SELECT key, e_tag AS etag, size, last_modified_date AS last_modified FROM {INVENTORY} WHERE {images.where()}
),
current AS (
  SELECT key, etag, status, error_code, model_id, schema_version, min_confidence, label_overrides, candidate_floor
  FROM {outcome_table.CURRENT} WHERE bucket = {literal(images.bucket)}
),
paired AS (
  SELECT i.key, i.etag, i.size, i.last_modified, c.key IS NOT NULL AS answered, c.etag AS answered_etag, c.status,
    c.error_code, c.model_id, c.schema_version, c.min_confidence, c.label_overrides, c.candidate_floor,
    CASE
      WHEN c.key IS NULL THEN 'none'
      WHEN coalesce(c.etag, '') <> '' AND c.etag <> i.etag THEN 'older'
      WHEN c.status = 'error' THEN 'error'
      ELSE 'ok'
    END AS state
  FROM images AS i LEFT JOIN current AS c ON c.key = i.key
)"""


def _entry(row: dict[str, Any]) -> listing.Entry:
    modified = row["last_modified"]
    if isinstance(modified, str):
        modified = datetime.fromisoformat(modified)
    return listing.Entry(
        key=row["key"],
        etag=row["etag"] or "",
        size=int(row["size"] or 0),
        last_modified=modified if modified.tzinfo else modified.replace(tzinfo=UTC),
        result_key=row["key"] + RESULT_SUFFIX if row["answered"] else None,
    )


def _document(row: dict[str, Any]) -> dict[str, Any] | None:
    """The fields of an image's current document the scan's rules read, from its row."""
    if not row["answered"]:
        return None
    return {
        "status": row["status"],
        "error": {"code": row["error_code"]} if row["error_code"] else None,
        "source": {"etag": row["answered_etag"]},
        "model": {"model_id": row["model_id"]},
        "schema_version": row["schema_version"],
        "thresholds": {
            "min_confidence": row["min_confidence"],
            "label_overrides": json.loads(row["label_overrides"]) if row["label_overrides"] else {},
            "candidate_floor": row["candidate_floor"],
        },
    }


PAIRED_COLUMNS = (
    "key",
    "etag",
    "size",
    "last_modified",
    "answered",
    "answered_etag",
    "status",
    "error_code",
    "model_id",
    "schema_version",
    "min_confidence",
    "label_overrides",
    "candidate_floor",
    "state",
)


def paired(engine: Table, images: Images, where: str = "") -> Iterator[tuple[listing.Entry, dict[str, Any] | None]]:
    """Each image (in S3's order) with the fields of its current document, as the scan pairs them."""
    extra = f"WHERE {where}" if where else ""
    text = f"{_images_with_outcomes(images)}\nSELECT {', '.join(PAIRED_COLUMNS)} FROM paired {extra} ORDER BY key"
    for values in engine.stream(text):
        yield _paired_row(dict(zip(PAIRED_COLUMNS, values, strict=True)))


def _paired_row(row: dict[str, Any]) -> tuple[listing.Entry, dict[str, Any] | None]:
    if isinstance(row["answered"], str):  # Athena's CSV
        row["answered"] = row["answered"] == "true"
    for name in ("min_confidence", "candidate_floor"):
        if isinstance(row[name], str):
            row[name] = float(row[name])
    return _entry(row), _document(row)


# --- audit ---------------------------------------------------------------------------------------------------


def audit(
    engine: Table,
    images: Images,
    settled: Settled,
    write_row: Callable[[dict[str, Any]], None] | None = None,
) -> Audit:
    """``audit.audit``'s counts: images with an outcome counted in SQL, those without one decided by the scan's
    own rule (the dead-letter queue, the waiting window) on the few rows that need it. ``write_row`` (the per-image
    file) asks for every image instead."""
    result = Audit()
    if write_row is not None:
        for entry, document in paired(engine, images):
            state, code, why = state_of(entry, document, settled)
            _count(result, state, code)
            write_row(audit_row(entry, state, code, why))
        return result
    # One pass over the join: images with an outcome grouped by state and code, those without one (or with an
    # older image's) each a group of its own, with its fields (one image per key: ``arbitrary`` is its value).
    alone = "CASE WHEN state IN ('none', 'older') THEN key END"
    names = [name for name in PAIRED_COLUMNS if name not in ("key", "state")]
    fields = ", ".join(f"arbitrary({name})" for name in names)
    for state, code, count, key, *values in engine.stream(
        f"""{_images_with_outcomes(images)}
SELECT state, CASE WHEN state = 'error' THEN error_code END AS code, count(*) AS images, {alone} AS alone, {fields}
FROM paired GROUP BY 1, 2, 4 ORDER BY 4"""
    ):
        if key is None:
            _count(result, state, code, int(count))
            continue
        entry, document = _paired_row({"key": key, "state": state, **dict(zip(names, values, strict=True))})
        state, code, _ = state_of(entry, document, settled)
        _count(result, state, code)
    return result


def _count(result: Audit, state: str, code: str | None, images: int = 1) -> None:
    result.images += images
    result.counts[state] = result.counts.get(state, 0) + images
    if code:
        result.error_codes[code] = result.error_codes.get(code, 0) + images


def missing_from_table(engine: Table, images: Images, written_before: datetime) -> list[str]:
    """Image keys whose outcome document is in the bucket (the inventory lists it) but whose row the table lacks:
    no row at all, or a current row written before the document (a second of slack: S3 keeps whole seconds).
    Documents newer than ``written_before`` are left out: their rows may still be in the stream's buffer."""
    return [
        key
        for (key,) in engine.stream(
            f"""WITH documents AS (
  SELECT substr(key, 1, length(key) - {len(RESULT_SUFFIX)}) AS image_key, last_modified_date AS modified
  FROM {INVENTORY}
  WHERE {images.base()} AND {_ends_with(RESULT_SUFFIX)}
)
SELECT d.image_key FROM documents AS d
LEFT JOIN {outcome_table.CURRENT} AS c ON c.key = d.image_key AND c.bucket = {literal(images.bucket)}
WHERE d.modified < {timestamp(written_before)}
  AND (c.key IS NULL OR c.written_at < d.modified - INTERVAL '1' SECOND)
ORDER BY d.image_key"""
        )
    ]


# --- reprocess -----------------------------------------------------------------------------------------------


def selected(
    engine: Table,
    images: Images,
    selection: reprocess.Selection,
    now: reprocess.Current | None,
    settled: Settled,
) -> Iterator[tuple[listing.Entry, str]]:
    """The images ``reprocess`` would send, and why: SQL narrows the rows to those a rule may pick, the scan's own
    ``reprocess.selected`` decides."""
    conditions = []
    if selection.all:
        conditions.append("true")
    if selection.missing:
        conditions.append("state IN ('none', 'older')")
    if selection.errors:
        codes = ", ".join(literal(code) for code in sorted(selection.codes))
        conditions.append(f"(status = 'error'{f' AND error_code IN ({codes})' if codes else ''})")
    if selection.stale and now is not None:
        overrides = outcome_table.overrides_text(now.thresholds.get("label_overrides") or {})
        conditions.append(
            "(answered AND (coalesce(model_id, '') <> "
            f"{literal(now.model_id or '')} OR coalesce(schema_version, '') <> {literal(now.schema)}"
            f" OR min_confidence IS DISTINCT FROM {literal(now.thresholds.get('min_confidence'))}"
            f" OR candidate_floor IS DISTINCT FROM {literal(now.thresholds.get('candidate_floor'))}"
            f" OR coalesce(label_overrides, '{{}}') <> {literal(overrides)}))"
        )
    if not conditions:
        return
    for entry, document in paired(engine, images, " OR ".join(conditions)):
        reason = reprocess.selected(entry, document, selection, now, settled)
        if reason:
            yield entry, reason


# --- thresholds what-if --------------------------------------------------------------------------------------


def what_if(engine: Table, prefix: str, proposed: Thresholds) -> whatif.WhatIf:
    """``whatif.what_if`` over the current results: totals per label, the changed images with what they gain
    and lose, and the results whose candidate floor is above a proposed threshold."""
    results = (
        f"SELECT key, candidate_floor, labels FROM {outcome_table.CURRENT} WHERE status = 'ok' AND {_under(prefix)}"
    )
    keeps = f"confidence >= {threshold_sql(proposed)}"
    pool = f"WITH results AS ({results}), pool AS ({_pool('key')})"
    # What an image gains or loses of a label is the sum over its labels that flip (kept now and not then: -1, the
    # other way: +1), so only the flipping labels are grouped by image and name, never all of them.
    flips = f"coalesce(accepted, false) <> coalesce({keeps}, false)"
    gained = "sum(CASE WHEN accepted THEN -1 ELSE 1 END)"
    report = whatif.WhatIf()
    ((report.images,),) = engine.query(f"WITH results AS ({results}) SELECT count(*) FROM results").rows
    report.images = int(report.images)
    for name, now, new in engine.query(
        f"{pool} SELECT name, count_if(accepted), count_if({keeps}) FROM pool GROUP BY name"
    ).rows:
        if int(now):
            report.now[name] = int(now)
        if int(new):
            report.proposed[name] = int(new)
    changes: dict[str, tuple[list[str], list[str]]] = {}
    order = f"key || {literal(RESULT_SUFFIX)}"
    for key, name, difference in engine.stream(
        f"{pool} SELECT key, name, {gained} FROM pool WHERE {flips} GROUP BY key, name HAVING {gained} <> 0 "
        f"ORDER BY {order}, name"
    ):
        added, removed = changes.setdefault(key, ([], []))
        (added if int(difference) > 0 else removed).extend([name] * abs(int(difference)))
    report.changes = [whatif.Change(key, tuple(sorted(a)), tuple(sorted(r))) for key, (a, r) in changes.items()]
    report.below_floor = [
        key
        for (key,) in engine.stream(
            f"WITH results AS ({results}) SELECT key FROM results "
            f"WHERE coalesce(candidate_floor, 100.0) > {literal(proposed.lowest())} ORDER BY {order}"
        )
    ]
    return report


# --- drift ---------------------------------------------------------------------------------------------------


@dataclass
class DriftAnswer:
    before: drift.Window
    after: drift.Window
    ks: dict[str, drift.Distributions] = field(default_factory=dict)


def drift_windows(
    engine: Table, prefix: str, thresholds: Thresholds, since: datetime, split: datetime, until: datetime
) -> DriftAnswer:
    """``drift.windows`` and the confidences' statistics, in SQL: per window the results, the images accepting each
    label, those with a candidate within 10 points below its (live) threshold; per label the Kolmogorov-Smirnov D
    over every distinct confidence (the two empirical distributions' largest gap) and each side's median (the
    element at n // 2 of the sorted values, as the scan takes it)."""
    side = f"CASE WHEN completed_at < {timestamp(split)} THEN 'before' ELSE 'after' END"
    window = f"completed_at >= {timestamp(since)} AND completed_at < {timestamp(until)}"
    results = f"""SELECT key, {side} AS side, labels FROM {outcome_table.CURRENT}
  WHERE status = 'ok' AND {_under(prefix)} AND {window}"""
    pool = f"WITH results AS ({results}), pool AS ({_pool('key, side')})"
    answer = DriftAnswer(drift.Window(), drift.Window())
    windows = {"before": answer.before, "after": answer.after}
    for name, count in engine.query(
        f"WITH results AS ({results}) SELECT side, count(*) FROM results GROUP BY side"
    ).rows:
        windows[name].images = int(count)
    near = f"NOT accepted AND confidence >= {threshold_sql(thresholds)} - {literal(NEAR_POINTS)}"
    for name, label, accepted, close in engine.query(
        f"""{pool}
SELECT side, name, count(DISTINCT CASE WHEN accepted THEN key END), count(DISTINCT CASE WHEN {near} THEN key END)
FROM pool GROUP BY side, name"""
    ).rows:
        if int(accepted):
            windows[name].accepted[label] = int(accepted)
        if int(close):
            windows[name].near[label] = int(close)
    # Each side's cumulative count at every distinct confidence gives both statistics: D is the largest gap between
    # the two empirical distributions; the median (the element at n // 2 of the sorted values) is the lowest
    # confidence whose cumulative count passes n // 2, that is 2 * count > n.
    for label, d, size_a, size_b, median_a, median_b in engine.query(
        f"""{pool},
steps AS (
  SELECT name, confidence, count_if(side = 'before') AS da, count_if(side = 'after') AS db
  FROM pool GROUP BY name, confidence
),
cumulative AS (
  SELECT name, confidence,
    sum(da) OVER (PARTITION BY name ORDER BY confidence) AS ca,
    sum(db) OVER (PARTITION BY name ORDER BY confidence) AS cb,
    sum(da) OVER (PARTITION BY name) AS na,
    sum(db) OVER (PARTITION BY name) AS nb
  FROM steps
)
SELECT name, max(abs(CAST(ca AS DOUBLE) / na - CAST(cb AS DOUBLE) / nb)), max(na), max(nb),
  min(CASE WHEN 2 * ca > na THEN confidence END), min(CASE WHEN 2 * cb > nb THEN confidence END)
FROM cumulative WHERE na > 0 AND nb > 0
GROUP BY name"""
    ).rows:
        answer.ks[label] = drift.Distributions(float(d), int(size_a), int(size_b), float(median_a), float(median_b))
    return answer


# --- review ---------------------------------------------------------------------------------------------------


def strata(engine: Table, prefix: str, stratum: Callable[[dict[str, Any]], str]) -> Iterator[tuple[str, str]]:
    """(key, stratum) of every current result, the stratum decided by the scan's own rule on its document."""
    for document in documents(engine, prefix, "status = 'ok'"):
        yield str(document["source"]["key"]), stratum(document)
