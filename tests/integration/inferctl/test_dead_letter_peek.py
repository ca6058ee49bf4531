"""Peeking at the dead-letter queue sees every message, more than one receive's worth, and consumes none."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws

from inferctl.stack.outcomes import dead_letters


def event_body(key: str) -> str:
    return json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": key}}}]})


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
