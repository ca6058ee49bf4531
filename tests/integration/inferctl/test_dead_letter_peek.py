"""Peeking at the dead-letter queue sees every message, more than one receive's worth, and consumes none."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws

from inferctl.stack.deadletters import dead_letters
from tests.support.fixtures import load


def event_body(key: str) -> str:
    """S3's notification shape (what `inferctl reprocess` enqueues): the key URL-encoded."""
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "b"}, "object": {"key": key}},
    }
    return json.dumps({"Records": [record]})


def eventbridge_body(key: str) -> str:
    """The S3 User Guide's EventBridge event (the stack's route): the key as stored."""
    event = load("events/s3_eventbridge_object_created_user_guide.json")
    event["detail"]["object"]["key"] = key
    return json.dumps(event)


@mock_aws
def test_peek_names_the_images_of_both_message_shapes() -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=eventbridge_body("test_images/a+b (1).jpg"))
    sqs.send_message(QueueUrl=url, MessageBody=event_body("test_images/c+%281%29.jpg"))
    keys = sorted(key for letter in dead_letters(sqs, url) for key in letter.keys)
    assert keys == ["test_images/a+b (1).jpg", "test_images/c (1).jpg"]


@mock_aws
def test_peek_sees_all_fifty_and_leaves_them_visible() -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    for i in range(50):
        sqs.send_message(QueueUrl=url, MessageBody=event_body(f"test_images/poison/{i:03d}+%281%29.jpg"))

    first = dead_letters(sqs, url)
    second = dead_letters(sqs, url)

    assert len(first) == 50
    assert {letter.message_id for letter in first} == {letter.message_id for letter in second}
    assert sorted(key for letter in first for key in letter.keys) == sorted(
        f"test_images/poison/{i:03d} (1).jpg" for i in range(50)
    )
    visible = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert visible["Attributes"]["ApproximateNumberOfMessages"] == "50"


@mock_aws
def test_peek_honours_its_limit_and_still_releases_what_it_held() -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    for i in range(25):
        sqs.send_message(QueueUrl=url, MessageBody=event_body(f"test_images/{i}.jpg"))

    assert len(dead_letters(sqs, url, limit=10)) == 10
    visible = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert visible["Attributes"]["ApproximateNumberOfMessages"] == "25"
