"""The controller's refresh of waiting messages, against moto's SQS: every message sent again (same body and
attributes, held back for a while), the original deleted, its receives not counted towards the dead-letter
queue, and a sweep that stops half-way finished by the next run without sending anything twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.controller.queue import REFRESH_MARK, refresh_queue


@pytest.fixture
def queue() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(
            QueueName="work",
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})},
        )["QueueUrl"]
        yield sqs, url


def everything(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message (delays and visibility ignored: moto's internal state)."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends["123456789012"]["us-east-1"].queues["work"]
    return [
        {"body": m.body, "receives": m.approximate_receive_count, "attributes": m.message_attributes}
        for m in queue._messages
    ]


def test_every_waiting_message_is_sent_again_once(queue):
    sqs, url = queue
    bodies = [json.dumps({"Records": [{"n": n}]}) for n in range(23)]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    # one was already received once (a failed attempt): its count must not carry over
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=0)

    refreshed, complete = refresh_queue(sqs, url, "sweep-1")

    assert (refreshed, complete) == (23, True)
    left = everything(sqs, url)
    assert sorted(m["body"] for m in left) == sorted(bodies)  # each once, none lost
    assert {m["receives"] for m in left} == {0}
    assert all(m["attributes"][REFRESH_MARK]["StringValue"] == "sweep-1" for m in left)


def test_a_sweep_stopped_half_way_is_finished_without_doubles(queue):
    sqs, url = queue
    for n in range(30):
        sqs.send_message(
            QueueUrl=url, MessageBody=f"m{n}", MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}}
        )

    first, complete = refresh_queue(sqs, url, "sweep-2", batches=1)
    assert (first, complete) == (10, False)
    second, complete = refresh_queue(sqs, url, "sweep-2")
    assert complete is True
    assert first + second == 30
    left = everything(sqs, url)
    assert sorted(m["body"] for m in left) == sorted(f"m{n}" for n in range(30))
    assert all(m["attributes"]["k"]["StringValue"] == "v" for m in left)  # the message's own attributes kept
