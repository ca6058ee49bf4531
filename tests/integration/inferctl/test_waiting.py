"""Waiting for outcomes reads only the results that came: a listing of the keys' common prefix says which exist,
instead of a GET per pending image per poll (which, polled every quarter second by the end-to-end tests, took a
core of its own). Where the listing would cost more than the reads (a prefix holding much else), each is read."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace
from typing import Any, cast

import boto3
from moto import mock_aws

from inferctl.stack import uploads
from inferctl.stack.target import Target
from lambdas.contract.events import result_key_for
from lambdas.contract.results import PRODUCER, PRODUCER_METADATA

BUCKET = "waiting-images"


def result(s3: Any, key: str, status: str = "ok") -> None:
    """An outcome document beside the image, marked as the function marks its own."""
    document = {"producer": PRODUCER, "status": status, "source": {"bucket": BUCKET, "key": key}, "labels": []}
    s3.put_object(
        Bucket=BUCKET, Key=result_key_for(key), Body=json.dumps(document), Metadata={PRODUCER_METADATA: PRODUCER}
    )


def stack() -> tuple[Any, Target, Counter[str]]:
    """A bucket and a dead-letter queue, and the S3 calls a wait makes, counted by operation."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="waiting-dlq")["QueueUrl"]
    calls: Counter[str] = Counter()
    s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.update([model.name]))
    clients = {"s3": s3, "sqs": sqs}
    target = SimpleNamespace(bucket=BUCKET, dead_letter_queue_url=dlq, client=clients.__getitem__)
    return s3, cast(Target, target), calls


@mock_aws
def test_a_poll_reads_only_the_results_that_exist() -> None:
    s3, target, calls = stack()
    keys = [f"test_images/batch/{n:03d}.jpg" for n in range(60)]
    for key in keys[:45]:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"image")
        result(s3, key, "error" if key.endswith("7.jpg") else "ok")
    calls.clear()

    states = uploads.wait_for(target, keys, timeout=0, progress=False)

    assert Counter(state.state for state in states.values()) == {"ok": 41, "error": 4, "pending": 15}
    assert calls == {"ListObjectsV2": 1, "GetObject": 45}  # not 60 GETs, 15 of them for nothing


@mock_aws
def test_a_prefix_holding_much_else_is_read_key_by_key() -> None:
    s3, target, calls = stack()
    for n in range(1100):  # more than a page (1,000 keys) under the keys' common prefix
        s3.put_object(Bucket=BUCKET, Key=f"test_images/other/{n:04d}.jpg", Body=b"")
    keys = ["test_images/a.jpg", "test_images/z.jpg"]  # a listing may cost at most 1 request (half of 2 reads)
    result(s3, keys[0])
    calls.clear()

    assert uploads.listed_results(s3, BUCKET, keys) is None
    calls.clear()
    states = uploads.wait_for(target, keys, timeout=0, progress=False)

    assert {key: state.state for key, state in states.items()} == {keys[0]: "ok", keys[1]: "pending"}
    assert calls == {"ListObjectsV2": 1, "GetObject": 2}


def test_the_common_prefix_is_of_characters_not_folders() -> None:
    assert uploads.common_prefix(["test_images/b1.jpg", "test_images/b2.jpg"]) == "test_images/b"
    assert uploads.common_prefix(["a.jpg"]) == "a.jpg"
    assert uploads.common_prefix(["x/1", "y/1"]) == ""
