"""The local SQS trigger behaves like Lambda's event source mapping: batch size, batching window,
partial batch responses, visibility timeout and redrive to the DLQ. Against moto's SQS, in real time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from inferctl.emulator.trigger import BatchReport, SqsTrigger


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def queues(sqs: Any, visibility: int = 1, max_receive_count: int = 2) -> tuple[str, str, str]:
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName="q",
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return queue, arn, dlq


def send(sqs: Any, queue: str, bodies: list[str]) -> None:
    for body in bodies:
        sqs.send_message(QueueUrl=queue, MessageBody=body)


class Recorder:
    """A handler that records batches and fails the bodies it is told to."""

    def __init__(self, fail: set[str] | None = None, raise_error: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.receive_counts: dict[str, list[int]] = {}
        self.fail = fail or set()
        self.raise_error = raise_error
        self.remaining_ms: list[int] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.remaining_ms.append(context.get_remaining_time_in_millis())
        bodies = [record["body"] for record in event["Records"]]
        self.batches.append(bodies)
        for record in event["Records"]:
            count = int(record["attributes"]["ApproximateReceiveCount"])
            self.receive_counts.setdefault(record["body"], []).append(count)
            assert record["eventSource"] == "aws:sqs"
        if self.raise_error:
            raise RuntimeError("function crashed")
        return {
            "batchItemFailures": [
                {"itemIdentifier": record["messageId"]} for record in event["Records"] if record["body"] in self.fail
            ]
        }


def trigger(sqs: Any, queue: str, arn: str, handler: Any, **options: Any) -> SqsTrigger:
    return SqsTrigger(
        sqs, queue_url=queue, queue_arn=arn, region="us-east-1", handler=handler, poll_wait_seconds=0, **options
    )


def depth(sqs: Any, queue: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_batches_never_exceed_the_batch_size_and_everything_is_delivered_once(sqs):
    queue, arn, _ = queues(sqs, visibility=30)
    bodies = [f"m{i}" for i in range(23)]
    send(sqs, queue, bodies)
    handler = Recorder()
    source = trigger(sqs, queue, arn, handler, batch_size=4)
    while source.poll_once():
        pass
    assert all(1 <= len(batch) <= 4 for batch in handler.batches)
    assert sorted(b for batch in handler.batches for b in batch) == sorted(bodies)
    assert depth(sqs, queue) == (0, 0)  # all deleted


def test_batching_window_gathers_beyond_one_receive(sqs):
    queue, arn, _ = queues(sqs, visibility=30)
    send(sqs, queue, [f"m{i}" for i in range(15)])
    handler = Recorder()
    source = trigger(sqs, queue, arn, handler, batch_size=20, batching_window_seconds=1)
    report = source.poll_once()
    assert report is not None
    assert report.received == 15  # more than the 10 one ReceiveMessage returns: the window kept it open
    assert len(handler.batches) == 1


def wait_for_batch(source: SqsTrigger, timeout: float = 30) -> BatchReport | None:
    """Poll (each poll a long poll) until a batch comes, or ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = source.poll_once()
        if report is not None:
            return report
    return None


def test_partial_failure_deletes_the_rest_and_redelivers_only_the_failed_after_visibility(sqs):
    queue, arn, _ = queues(sqs, visibility=1, max_receive_count=5)
    send(sqs, queue, ["good-1", "bad", "good-2"])
    handler = Recorder(fail={"bad"})
    source = trigger(sqs, queue, arn, handler, batch_size=10)

    first = source.poll_once()
    assert first is not None
    assert (first.received, first.succeeded, first.failed) == (3, 2, 1)
    assert depth(sqs, queue) == (0, 1)  # only "bad" is left, invisible for now
    assert source.poll_once() is None  # not yet visible again

    second = wait_for_batch(source)  # visible again once its 1 s visibility timeout has passed
    assert second is not None
    assert handler.batches[-1] == ["bad"]
    assert handler.receive_counts["bad"] == [1, 2]
    assert handler.receive_counts["good-1"] == [1]


def test_redrive_moves_a_message_to_the_dlq_after_max_receive_count(sqs):
    queue, arn, dlq = queues(sqs, visibility=1, max_receive_count=2)
    send(sqs, queue, ["poison"])
    handler = Recorder(fail={"poison"})
    source = trigger(sqs, queue, arn, handler)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and depth(sqs, dlq)[0] == 0:
        source.poll_once()  # a long poll (its wait is the pace of this loop)
    assert handler.receive_counts["poison"] == [1, 2]  # delivered maxReceiveCount times, then dead-lettered
    (letter,) = sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"])["Messages"]
    assert letter["Body"] == "poison"
    assert depth(sqs, queue) == (0, 0)


def test_a_handler_that_raises_fails_the_whole_batch(sqs):
    queue, arn, _ = queues(sqs, visibility=30)
    send(sqs, queue, ["a", "b"])
    source = trigger(sqs, queue, arn, Recorder(raise_error=True))
    report = source.poll_once()
    assert report is not None
    assert report.failed == 2
    assert report.handler_error == "RuntimeError: function crashed"
    assert depth(sqs, queue) == (0, 2)


def test_a_response_naming_unknown_messages_fails_the_whole_batch(sqs):
    queue, arn, _ = queues(sqs, visibility=30)
    send(sqs, queue, ["a", "b"])
    source = trigger(sqs, queue, arn, lambda event, context: {"batchItemFailures": [{"itemIdentifier": "nope"}]})
    report = source.poll_once()
    assert report is not None
    assert report.failed == 2
    assert report.handler_error is not None
    assert "unknown" in report.handler_error


def test_context_counts_down_from_the_function_timeout(sqs):
    queue, arn, _ = queues(sqs, visibility=30)
    send(sqs, queue, ["a"])
    handler = Recorder()
    trigger(sqs, queue, arn, handler, function_timeout_seconds=42).poll_once()
    assert 41_000 < handler.remaining_ms[0] <= 42_000
