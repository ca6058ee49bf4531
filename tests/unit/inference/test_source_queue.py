"""A batch at risk: once it is, each finished record's message is deleted as it finishes (and those finished
before, at once), so that a kill afterwards brings back only what had not finished."""

from __future__ import annotations

from typing import Any

from lambdas.inference.batch import SqsRecord
from lambdas.inference.source_queue import Acknowledgements, SourceQueue, at_risk, watching


class FakeSqs:
    def __init__(self, failing: set[str] | None = None) -> None:
        self.deleted: list[str] = []
        self.failing = failing or set()

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        failed = [entry for entry in Entries if entry["ReceiptHandle"] in self.failing]
        self.deleted += [entry["ReceiptHandle"] for entry in Entries if entry not in failed]
        return {"Failed": [{"Id": entry["Id"], "Code": "ReceiptHandleIsInvalid"} for entry in failed]}


class Quiet:
    def info(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None: ...


def record(number: int) -> SqsRecord:
    return SqsRecord(f"m{number}", "{}", 1, f"r{number}", "arn:aws:sqs:us-east-1:123456789012:q")


def test_a_batch_not_at_risk_leaves_deleting_to_the_trigger():
    sqs = FakeSqs()
    acknowledgements = Acknowledgements(SourceQueue("url", 900, sqs), Quiet())
    acknowledgements.finished(record(1))
    assert sqs.deleted == []


def test_once_at_risk_what_finished_is_deleted_and_what_finishes_later_too():
    sqs = FakeSqs()
    acknowledgements = Acknowledgements(SourceQueue("url", 900, sqs), Quiet())
    acknowledgements.finished(record(1))
    acknowledgements.finished(record(2))

    with watching(acknowledgements):
        at_risk("test_images/huge.tif is decoded in a bounded child")  # as the decode says, deep in a record

    assert sqs.deleted == ["r1", "r2"]
    acknowledgements.finished(record(3))
    assert sqs.deleted == ["r1", "r2", "r3"]
    assert acknowledgements.deleted == 3
    assert acknowledgements.reason == "test_images/huge.tif is decoded in a bounded child"


def test_a_delete_sqs_refuses_is_left_to_the_trigger_and_outside_a_batch_nothing_happens():
    sqs = FakeSqs(failing={"r2"})
    acknowledgements = Acknowledgements(SourceQueue("url", 900, sqs), Quiet())
    acknowledgements.at_risk("received before")
    acknowledgements.finished(record(1))
    acknowledgements.finished(record(2))
    assert (sqs.deleted, acknowledgements.deleted) == (["r1"], 1)
    at_risk("no batch is watching")  # a decode outside a batch: nothing to do, no error
