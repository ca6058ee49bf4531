"""The outcome table's rows on the function's side: what a document becomes (the Glue table's columns and types,
as Firehose's OpenX JSON SerDe reads them), how a batch's rows reach Firehose (one PutRecordBatch, split only past
its limits; what it refuses, named), and what a batch does with them (sent once at its end, or before a delete
once at risk; a refused row keeps its message)."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from lambdas.contract import outcome_table
from lambdas.contract.errors import PermanentError
from lambdas.contract.outcome_stream import MAX_RECORDS, OutcomeStream
from lambdas.contract.results import error_document, result_document
from lambdas.contract.thresholds import Thresholds
from lambdas.contract.values import BoundingBox, Detection, ImageFacts, Label, ObjectRef
from lambdas.inference.batch import SqsRecord
from lambdas.inference.source_queue import Acknowledgements, SourceQueue
from tests.unit.inference.test_source_queue import FakeSqs, Quiet, record

THRESHOLDS = Thresholds(50.0, {"bee": 80.0}, 30.0)
REF = ObjectRef("b", "test_images/a b.jpg", "v1", "e1", 1234, "0055AED6DCD90281E5")
WRITTEN = datetime(2026, 11, 24, 9, 30, 1, 234567, tzinfo=UTC)


def result(challenger: dict[str, Any] | None = None) -> dict[str, Any]:
    accepted, candidates, rejected = THRESHOLDS.split(
        [Label("bee", 91.5, BoundingBox(0.1, 0.2, 0.3, 0.4)), Label("bee", 72.25), Label("leaf", 55.0), Label("x", 10)]
    )
    return result_document(
        ref=REF,
        backend="rekognition",
        model_id="arn:model",
        thresholds=THRESHOLDS,
        detection=Detection(tuple(accepted + candidates), ImageFacts("s3_object", "JPEG", 10, 10), 42.0),
        accepted=accepted,
        candidates=candidates,
        rejected_count=rejected,
        received_at=datetime(2026, 11, 24, 9, 30, 0, tzinfo=UTC),
        completed_at=datetime(2026, 11, 24, 9, 30, 1, 200000, tzinfo=UTC),
        challenger=challenger,
    )


def test_a_result_becomes_one_row_of_every_column_its_labels_with_the_threshold_each_met():
    row = outcome_table.row(result(), WRITTEN)
    assert list(row) == list(outcome_table.COLUMN_NAMES)
    assert (row["bucket"], row["key"], row["version_id"], row["etag"], row["sequencer"]) == (
        "b",
        "test_images/a b.jpg",
        "v1",
        "e1",
        "0055AED6DCD90281E5",
    )
    assert (row["written_at"], row["completed_at"]) == ("2026-11-24 09:30:01.234", "2026-11-24 09:30:01.200")
    assert (row["status"], row["error_code"], row["model_id"], row["min_confidence"]) == ("ok", None, "arn:model", 50.0)
    assert row["label_overrides"] == '{"bee":80.0}'
    assert row["labels"] == [
        {
            "name": "bee",
            "confidence": 91.5,
            "accepted": True,
            "threshold": 80.0,
            "box": {"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4},
        },
        {"name": "leaf", "confidence": 55.0, "accepted": True, "threshold": 50.0, "box": None},
        {"name": "bee", "confidence": 72.25, "accepted": False, "threshold": 80.0, "box": None},
    ]
    assert row["seconds"] == 1.235  # from the notification's receipt to the write
    assert json.loads(row["document"]) == result()
    line = outcome_table.encode(row)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1  # one JSON line per record: Firehose's deserializer reads it whole


def test_an_error_document_and_a_challengers_labels_have_their_columns():
    failed = error_document(
        ref=REF,
        backend="rekognition",
        model_id="arn:model",
        thresholds=THRESHOLDS,
        error=PermanentError("IMAGE_TOO_LARGE", "too large"),
        received_at=WRITTEN,
        completed_at=WRITTEN,
    )
    row = outcome_table.row(failed, WRITTEN)
    assert (row["status"], row["error_code"], row["labels"], row["challenger_model_id"]) == (
        "error",
        "IMAGE_TOO_LARGE",
        [],
        None,
    )
    challenger = {
        "backend": "sagemaker",
        "model_id": "v2",
        "status": "ok",
        "labels": [{"name": "bee", "confidence": 88.0, "bounding_box": None}],
        "candidates": [{"name": "leaf", "confidence": 41.0, "bounding_box": None}],
    }
    row = outcome_table.row(result(challenger), WRITTEN)
    assert (row["challenger_model_id"], row["challenger_status"]) == ("v2", "ok")
    assert [(x["name"], x["accepted"]) for x in row["challenger_labels"]] == [("bee", True), ("leaf", False)]


HIVE = re.compile(r"(array|struct)<(.*)>$")


def conforms(value: Any, kind: str) -> bool:
    """A JSON value against a Hive type of the Glue table (what Firehose's conversion takes)."""
    if value is None:
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "double":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "timestamp":  # OpenX JSON SerDe: "yyyy-MM-dd HH:mm:ss[.S...]"
        return isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", value) is not None
    match = HIVE.match(kind)
    assert match, kind
    outer, inner = match.groups()
    if outer == "array":
        return isinstance(value, list) and all(conforms(item, inner) for item in value)
    fields = split_fields(inner)
    return (
        isinstance(value, dict) and set(value) == set(fields) and all(conforms(value[n], t) for n, t in fields.items())
    )


def split_fields(inner: str) -> dict[str, str]:
    fields, depth, start = {}, 0, 0
    for index, char in enumerate(inner + ","):
        depth += {"<": 1, ">": -1}.get(char, 0)
        if char == "," and depth == 0:
            name, _, kind = inner[start:index].partition(":")
            fields[name] = kind
            start = index + 1
    return fields


def test_every_generated_row_conforms_to_the_glue_tables_types():
    from tests.support.population import generate

    population = generate(400, seed=11)
    rows = [
        json.loads(line)
        for stored in population.s3.buckets[population.outcome_bucket].values()
        for line in stored.body.decode().splitlines()
    ]
    types = {column.name: column.glue for column in outcome_table.COLUMNS}
    for row in rows:
        assert set(row) == set(types)
        for name, value in row.items():
            assert conforms(value, types[name]), (name, value)
    assert not conforms({"name": "x"}, types["labels"].removeprefix("array<").removesuffix(">"))


def test_a_row_too_large_for_firehose_goes_without_its_document():
    from types import SimpleNamespace

    from lambdas.inference.pipeline import MAX_ROW_BYTES, Pipeline

    pipeline = SimpleNamespace(rows=True, clock=lambda: WRITTEN)  # what Pipeline._row reads of the pipeline
    document = result()
    small = Pipeline._row(pipeline, document)  # type: ignore[arg-type]
    assert small is not None
    assert json.loads(small)["document"] is not None
    document["labels"] = [{"name": f"l{i}" * 50, "confidence": 60.0, "bounding_box": None} for i in range(4000)]
    large = Pipeline._row(pipeline, document)  # type: ignore[arg-type]
    assert large is not None
    assert len(large) <= MAX_ROW_BYTES < len(outcome_table.encode(outcome_table.row(document, WRITTEN)))
    kept = json.loads(large)
    assert kept["document"] is None  # the tools read this one document from S3
    assert 0 < len(kept["labels"]) < 4000  # the most confident that fit
    assert Pipeline._row(SimpleNamespace(rows=False, clock=lambda: WRITTEN), document) is None  # type: ignore[arg-type]


# --- the stream --------------------------------------------------------------------------------------------


def stubbed() -> tuple[OutcomeStream, Stubber]:
    client = boto3.client("firehose", region_name="us-east-1")
    return OutcomeStream("outcomes", client), Stubber(client)


def test_a_batchs_rows_go_in_one_call_and_only_past_500_records_in_more():
    stream, stubber = stubbed()
    records = [(f"m{i}", b'{"k":1}\n') for i in range(MAX_RECORDS + 3)]
    for size in (MAX_RECORDS, 3):
        stubber.add_response(
            "put_record_batch",
            {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "r"} for _ in range(size)]},
            {"DeliveryStreamName": "outcomes", "Records": ANY},
        )
    with stubber:
        assert stream.send(records) == set()
    stubber.assert_no_pending_responses()


def test_what_firehose_refuses_is_named_by_its_owner_and_a_failed_call_fails_every_row():
    stream, stubber = stubbed()
    records = [("m1", b"a\n"), ("m2", b"b\n"), ("m2", b"c\n"), ("m3", b"d\n")]
    stubber.add_response(
        "put_record_batch",
        {
            "FailedPutCount": 1,
            "RequestResponses": [
                {"RecordId": "1"},
                {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "slow down"},
                {"RecordId": "3"},
                {"RecordId": "4"},
            ],
        },
    )
    stubber.add_client_error("put_record_batch", "ServiceUnavailableException", http_status_code=503)
    with stubber:
        assert stream.send(records) == {"m2"}
        assert stream.send(records) == {"m1", "m2", "m3"}


def test_a_call_unanswered_in_its_time_fails_every_row_and_says_so():
    answer = threading.Event()

    class Hanging:
        def put_record_batch(self, **_: Any) -> dict[str, Any]:
            answer.wait(5)  # the call still runs when send has given up on it
            return {"FailedPutCount": 0, "RequestResponses": []}

    stream = OutcomeStream("outcomes", Hanging())
    assert stream.send([("m1", b"a\n"), ("m2", b"b\n")], seconds=0.05) == {"m1", "m2"}
    assert stream.last_error == "no answer within 0.05 s"
    answer.set()


class FakeStream:
    def __init__(self, refuse: set[str] | None = None) -> None:
        self.calls: list[list[tuple[str, bytes]]] = []
        self.refuse = refuse or set()

    def send(self, records: Any, seconds: float | None = None) -> set[str]:
        self.calls.append(list(records))
        return {owner for owner, _ in records if owner in self.refuse}


def test_a_batch_not_at_risk_sends_its_rows_once_at_its_end_and_names_the_refused():
    stream, sqs = FakeStream(refuse={"m2"}), FakeSqs()
    acknowledgements = Acknowledgements(SourceQueue("url", 900, sqs), Quiet(), ["m1", "m2", "m3"], stream)
    acknowledgements.finished(record(1), [b"r1"])
    acknowledgements.finished(record(2), [b"r2a", b"r2b"])  # a message with two images
    acknowledgements.finished(record(3), [])  # a skip: no row
    assert stream.calls == []
    assert [r.message_id for r in acknowledgements.flush()] == ["m2"]
    assert stream.calls == [[("m1", b"r1"), ("m2", b"r2a"), ("m2", b"r2b")]]
    assert acknowledgements.rows_failed == 2
    assert sqs.deleted == []  # the trigger deletes what the response does not name


def test_a_batch_at_risk_sends_each_row_before_deleting_and_keeps_a_refused_rows_message():
    stream, sqs = FakeStream(refuse={"m2"}), FakeSqs()
    acknowledgements = Acknowledgements(SourceQueue("url", 900, sqs), Quiet(), ["m1", "m2", "m3"], stream)
    acknowledgements.finished(record(1), [b"r1"])
    acknowledgements.at_risk("received before")
    assert (stream.calls, sqs.deleted) == ([[("m1", b"r1")]], ["r1"])
    acknowledgements.finished(record(2), [b"r2"])
    assert sqs.deleted == ["r1"]  # its row was refused: the message stays, and comes back
    acknowledgements.finished(record(3), [b"r3"])
    assert sqs.deleted == ["r1", "r3"]
    assert [r.message_id for r in acknowledgements.flush()] == ["m2"]
    assert len(stream.calls) == 3  # nothing sent twice at the end


@pytest.mark.parametrize("rows", [[], [b"r"]])
def test_without_a_stream_rows_are_not_kept(rows):
    acknowledgements = Acknowledgements(None, Quiet(), ["m1"])
    acknowledgements.finished(SqsRecord("m1", "{}", 1, "r1", "arn:aws:sqs:us-east-1:123456789012:q"), rows)
    assert acknowledgements.flush() == []
