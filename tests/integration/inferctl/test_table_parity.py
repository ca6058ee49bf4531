"""Two paths to one answer: every operator tool's numbers from the scan (each document read from S3) and from the
outcome table (SQL on DuckDB over the rows the stream delivered) are the same, on 5,200 generated images with
repeated and reordered rows, superseded versions, re-runs, errors, challengers, stale thresholds, images without an
outcome and six days. Every statement the tools send is also parsed in Athena's dialect, as it would go to Athena.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from inferctl.evaluation import drift, sampling, whatif
from inferctl.stack import audit, dialect, listing, questions, reconcile, reprocess, uploads
from inferctl.stack.engines import LocalTable
from inferctl.stack.tables import Source
from inferctl.stack.target import Target
from lambdas.contract import outcome_table
from lambdas.contract.results import SCHEMA_VERSION
from lambdas.contract.thresholds import Thresholds
from tests.support.population import MODEL, ROWS_PREFIX, THRESHOLDS, Population, bucket_listing, generate

SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class MemoryTarget(Target):
    s3: Any = None
    firehose: Any = None

    def client(self, service: str) -> Any:
        return {"s3": self.s3, "firehose": self.firehose}[service]


class Recorded:
    """The table, with every statement the tools send kept (to parse them in Athena's dialect)."""

    engine = "duckdb"

    def __init__(self, table: LocalTable) -> None:
        self.table = table
        self.sent: list[str] = []

    def query(self, text: str) -> Any:
        self.sent.append(text)
        return self.table.query(text)

    def stream(self, text: str) -> Iterator[tuple[Any, ...]]:
        self.sent.append(text)
        return self.table.stream(text)


def target_of(population: Population, firehose: Any = None) -> MemoryTarget:
    return MemoryTarget(
        session=None,
        bucket=population.bucket,
        input_prefix=population.prefix,
        queue_url="",
        dead_letter_queue_url="",
        log_group=None,
        s3=population.s3,
        firehose=firehose,
        outputs={"OutcomeStreamName": "outcomes"},
    )


@pytest.fixture(scope="module")
def population() -> Population:
    return generate(5200)


@pytest.fixture(scope="module")
def table(population: Population, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    local = LocalTable(tmp_path_factory.mktemp("table"))
    synced = local.sync(population.s3, population.outcome_bucket, ROWS_PREFIX, "generated")
    assert synced.rows == population.rows  # every delivered row, repeats included
    local.load_listing(bucket_listing(population))
    return Recorded(local)


@pytest.fixture(scope="module")
def target(population: Population) -> MemoryTarget:
    return target_of(population)


def scan_pairs(target: Target) -> Iterator[tuple[listing.Entry, dict[str, Any] | None]]:
    s3 = target.client("s3")
    return listing.with_documents(target, listing.listing(s3, target.bucket, target.input_prefix, SUFFIXES))


def images(population: Population) -> questions.Images:
    return questions.Images(population.bucket, population.prefix, SUFFIXES)


def test_the_generated_population_holds_every_case(population, target):
    documents = list(uploads.iter_results(target))
    assert len(documents) >= 5000
    statuses = Counter(d["status"] for d in documents)
    assert statuses["error"] > 300
    assert statuses["ok"] > 4000
    assert sum(1 for d in documents if d.get("challenger")) > 400
    assert sum(1 for d in documents if d.get("rerun")) > 50
    assert sum(1 for d in documents if d["model"]["model_id"] != MODEL) > 200
    assert population.rows > len(documents)  # repeats and superseded versions' rows
    days = {d["timing"]["completed_at"][:10] for d in documents}
    assert len(days) == 6
    assert population.dead_letters


def test_audit_counts_and_each_images_state_are_the_scans(population, target, table):
    settled = audit.Settled(frozenset(population.dead_letters), population.now - timedelta(hours=1))
    scanned, rows = audit.Audit(), []
    for entry, document in scan_pairs(target):
        state, code, why = audit.state_of(entry, document, settled)
        scanned.images += 1
        scanned.counts[state] = scanned.counts.get(state, 0) + 1
        if code:
            scanned.error_codes[code] = scanned.error_codes.get(code, 0) + 1
        rows.append(audit.audit_row(entry, state, code, why))
    assert questions.audit(table, images(population), settled).as_dict() == scanned.as_dict()
    written: list[dict[str, Any]] = []
    assert questions.audit(table, images(population), settled, written.append).as_dict() == scanned.as_dict()
    assert sorted(written, key=lambda row: row["key"]) == sorted(rows, key=lambda row: row["key"])
    assert {"ok", "error", "waiting", "dead_letter", "missing"} <= set(scanned.counts)


def test_results_are_the_same_documents_in_the_same_order(target, table):
    from_table = Source(target, table.table, "test").documents()
    assert list(from_table) == list(uploads.iter_results(target))


@pytest.mark.parametrize(
    "proposed",
    [Thresholds(60.0, {"bee": 75.0}, 30.0), Thresholds(40.0, {}, 30.0), Thresholds(25.0, {"car": 90.0}, 25.0)],
    ids=["stricter", "looser", "below-the-floor"],
)
def test_what_if_is_the_scans_to_every_changed_image(target, table, proposed):
    scanned = whatif.what_if(uploads.iter_results(target), proposed)
    answered = questions.what_if(table, target.input_prefix, proposed)
    assert answered.as_dict() == scanned.as_dict()
    assert scanned.changes  # the proposal changes something


def test_drift_windows_statistics_and_findings_are_the_scans(population, target, table):
    for split_days, width in ((3.0, 3.0), (1.0, 1.0)):
        since, middle, until = drift.bounds(population.now - timedelta(days=split_days), width, population.now)
        before, after = drift.windows(uploads.iter_results(target), middle, THRESHOLDS, since, until)
        moments = [datetime.fromisoformat(text.replace("Z", "+00:00")) for text in (since, middle, until)]
        answer = questions.drift_windows(table, target.input_prefix, THRESHOLDS, *moments)
        assert answer.before.images == before.images
        assert answer.after.images == after.images
        assert (answer.before.accepted, answer.before.near) == (before.accepted, before.near)
        assert (answer.after.accepted, answer.after.near) == (after.accepted, after.near)
        assert answer.ks == drift.distributions(before, after)
        assert drift.compare(answer.before, answer.after, answer.ks) == drift.compare(before, after)


def test_the_review_sample_and_labelled_documents_are_the_scans(population, target, table):
    scanned = [
        (str(d["source"]["key"]), sampling.stratum(d, THRESHOLDS))
        for d in uploads.iter_results(target)
        if d.get("status") == "ok"
    ]
    answered = list(questions.strata(table, target.input_prefix, lambda d: sampling.stratum(d, THRESHOLDS)))
    assert answered == scanned
    assert sampling.draw(answered, 60, seed=3).as_dict() == sampling.draw(scanned, 60, seed=3).as_dict()
    wanted = {key for key, _ in scanned[::37]} | {population.prefix + "gen/no-such-image.jpg"}
    source = Source(target, table.table, "test")
    by_scan = [d for d in uploads.iter_results(target) if d["source"]["key"] in wanted]
    assert source.documents_for(wanted) == by_scan


@pytest.mark.parametrize(
    "selection",
    [
        reprocess.Selection(missing=True),
        reprocess.Selection(errors=True),
        reprocess.Selection(errors=True, codes=frozenset({"MODEL_ERROR"})),
        reprocess.Selection(stale=True),
        reprocess.Selection(all=True),
    ],
    ids=["missing", "errors", "one-code", "stale", "all"],
)
def test_reprocess_selects_the_same_images_for_the_same_reasons(population, target, table, selection):
    settled = audit.Settled(frozenset(population.dead_letters), population.now - timedelta(hours=1))
    now = reprocess.Current(
        MODEL,
        {
            "min_confidence": THRESHOLDS.min_confidence,
            "label_overrides": dict(sorted(THRESHOLDS.per_label.items())),
            "candidate_floor": THRESHOLDS.candidate_floor,
        },
        SCHEMA_VERSION,
    )
    scanned = sorted(
        (entry.key, reason)
        for entry, document in scan_pairs(target)
        if (reason := reprocess.selected(entry, document, selection, now, settled))
    )
    answered = sorted(
        (entry.key, reason) for entry, reason in questions.selected(table, images(population), selection, now, settled)
    )
    assert answered == scanned
    assert scanned


def delivered(population: Population) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for stored in population.s3.buckets[population.outcome_bucket].values()
        for line in stored.body.decode().splitlines()
    ]


def newest(population: Population) -> dict[str, dict[str, Any]]:
    """The current row of each image, by the rule written out: the last written, then the greater sequencer."""

    def rank(row: dict[str, Any]) -> tuple[str, str]:
        return row["written_at"], (row["sequencer"] or "").upper().ljust(outcome_table.SEQUENCER_WIDTH, "0")

    kept: dict[str, dict[str, Any]] = {}
    for row in delivered(population):
        if row["key"] not in kept or rank(row) > rank(kept[row["key"]]):
            kept[row["key"]] = row
    return kept


def test_current_outcomes_keeps_the_last_written_row_of_each_image(population, table):
    answer = table.query("SELECT key, document FROM current_outcomes")
    assert dict(answer.rows) == {key: row["document"] for key, row in newest(population).items()}


def test_the_named_queries_count_what_the_documents_and_rows_say(population, target, table):
    documents = list(uploads.iter_results(target))
    errors = Counter(d["error"]["code"] for d in documents if d["status"] == "error")
    answer = table.query(outcome_table.named("error-codes").sql)
    assert {code: count for code, count, _ in answer.rows} == dict(errors)
    per_day = Counter((row["written_at"][:10], row["status"]) for row in delivered(population))
    answer = table.query(outcome_table.named("outcomes-per-day").sql)
    assert {(str(day), status): count for day, status, count in answer.rows} == dict(per_day)
    current = dict(table.query("SELECT key, seconds FROM current_outcomes WHERE seconds IS NOT NULL").rows)
    slowest = table.query(outcome_table.named("slowest-images").sql)
    assert [row[0] for row in slowest.rows] == sorted(current, key=lambda key: (-current[key], key))[:50]
    results: Counter[str] = Counter()
    accepted: dict[tuple[str, str], set[str]] = {}
    near: dict[tuple[str, str], set[str]] = {}
    for key, row in newest(population).items():
        if row["status"] != "ok":
            continue
        day = row["written_at"][:10]
        results[day] += 1
        for label in row["labels"]:
            accepted.setdefault((day, label["name"]), set())
            near.setdefault((day, label["name"]), set())
            if label["accepted"]:
                accepted[(day, label["name"])].add(key)
            elif label["confidence"] >= label["threshold"] - 10:
                near[(day, label["name"])].add(key)
    expected = {
        (day, name): (
            round(len(accepted[(day, name)]) / results[day], 4),
            round(len(near[(day, name)]) / results[day], 4),
        )
        for day, name in accepted
    }
    shares = table.query(outcome_table.named("label-shares-per-day").sql)
    assert {(str(day), name): (a, n) for day, name, a, n, _ in shares.rows} == expected


def test_every_statement_the_tools_sent_is_athenas_dialect(table):
    assert len(table.sent) > 20
    for text in table.sent:
        athena = dialect.for_athena(text)
        dialect.parse(athena)  # what Athena would receive reads again in its dialect
    named = [query.sql for query in outcome_table.NAMED_QUERIES]
    for text in named:  # the stack's named queries (plain text at synth) are the tool's statements
        assert dialect.parse(outcome_table.with_current(text)) == dialect.parse(dialect.for_athena(text))


def test_reconcile_finds_documents_without_a_row_and_sends_exactly_theirs(tmp_path):
    population = generate(1500, unsent_share=0.03, seed=5)
    assert population.unsent
    local = LocalTable(tmp_path / "table")
    local.sync(population.s3, population.outcome_bucket, ROWS_PREFIX, "generated")
    local.load_listing(bucket_listing(population))
    sent: list[bytes] = []

    class Firehose:
        def put_record_batch(self, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:
            assert DeliveryStreamName == "outcomes"
            sent.extend(record["Data"] for record in Records)
            return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "r"} for _ in Records]}

    target = target_of(population, Firehose())
    resent = reconcile.resend(target, local, images(population), now=population.now + timedelta(days=1))
    assert (resent.missing, resent.sent, resent.failed) == (len(set(population.unsent)), len(set(population.unsent)), 0)
    assert sorted(json.loads(row)["key"] for row in sent) == sorted(set(population.unsent))
    # once the stream delivers them, the table answers as the scan does
    population.s3.put(
        population.outcome_bucket,
        f"{ROWS_PREFIX}2030/01/01/00/outcomes-1-reconciled",
        population.s3.buckets[population.outcome_bucket][
            next(iter(population.s3.buckets[population.outcome_bucket]))
        ].__class__(b"".join(sent), "x", population.now),
    )
    local.sync(population.s3, population.outcome_bucket, ROWS_PREFIX, "generated")
    assert questions.missing_from_table(local, images(population), population.now + timedelta(days=1)) == []
    proposed = Thresholds(60.0, {}, 30.0)
    assert (
        questions.what_if(local, population.prefix, proposed).as_dict()
        == whatif.what_if(uploads.iter_results(target), proposed).as_dict()
    )
