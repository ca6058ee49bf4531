"""Uploads one at a time, or several at once as ``aws s3 cp --recursive`` makes them: every image lands with its
bytes, the uploads come back in the items' order, and no more than the number asked for are in flight."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any, cast

import boto3
import pytest
from moto import mock_aws

from inferctl.stack import uploads
from inferctl.stack.target import Target

BUCKET = "uploads"


def a_target() -> tuple[Any, Target]:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    return s3, cast(Target, SimpleNamespace(bucket=BUCKET, input_prefix="test_images/", client={"s3": s3}.__getitem__))


@mock_aws
@pytest.mark.parametrize("concurrency", [1, 10])
def test_every_image_lands_with_its_bytes_and_the_uploads_keep_the_items_order(concurrency: int) -> None:
    s3, target = a_target()
    items = [(f"folder/{n:02d}.jpg", f"image {n}".encode()) for n in range(30)]
    in_flight, most = 0, 0
    lock = threading.Lock()

    def started(**_: Any) -> None:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)

    def ended(**_: Any) -> None:
        nonlocal in_flight
        with lock:
            in_flight -= 1

    s3.meta.events.register("before-call.s3.PutObject", started)
    s3.meta.events.register("after-call.s3.PutObject", ended)

    sent = uploads.upload_many(target, items, progress=False, concurrency=concurrency)

    assert [upload.key for upload in sent] == [f"test_images/{relative}" for relative, _ in items]
    for (_, data), upload in zip(items, sent, strict=True):
        assert upload.size == len(data)
        assert s3.get_object(Bucket=BUCKET, Key=upload.key)["Body"].read() == data
    assert 1 <= most <= concurrency


@mock_aws
def test_ten_at_a_time_has_uploads_in_flight_together() -> None:
    """The first two PUTs wait for each other: one at a time, the first would wait alone and fail."""
    s3, target = a_target()
    both = threading.Barrier(2, timeout=10)
    met: list[bool] = []

    def wait_for_the_other(**_: Any) -> None:
        if len(met) < 2:
            met.append(True)
            both.wait()

    s3.meta.events.register("before-call.s3.PutObject", wait_for_the_other)

    sent = uploads.upload_many(target, [(f"{n}.jpg", b"x") for n in range(12)], progress=False, concurrency=10)

    assert len(sent) == 12
    assert met == [True, True]
