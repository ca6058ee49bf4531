"""S3Storage's one GET per image, checked on botocore's Stubber: the streamed rest of the body, and a second GET
(by version) only when that stream breaks off."""

from __future__ import annotations

import io
from typing import Any

import boto3
from botocore.response import StreamingBody
from botocore.stub import Stubber

from lambdas.contract.values import ObjectRef
from lambdas.inference.storage import S3Storage

DATA = bytes(range(256)) * 1024  # 256 KiB


class BreaksOff(io.BytesIO):
    """A socket that delivers ``limit`` bytes, then fails (a connection reset mid-body)."""

    def __init__(self, data: bytes, limit: int) -> None:
        super().__init__(data)
        self.limit = limit

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= self.limit:
            raise ConnectionResetError("reset by peer")
        return super().read(min(size if size and size > 0 else len(DATA), self.limit - self.tell()))


def body(raw: io.BytesIO) -> StreamingBody:
    return StreamingBody(raw, len(DATA))


def client() -> tuple[Any, Stubber]:
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    return s3, Stubber(s3)


def test_the_whole_object_comes_from_one_get():
    s3, stub = client()
    stub.add_response(
        "get_object",
        {"Body": body(io.BytesIO(DATA)), "ContentLength": len(DATA), "VersionId": "v1", "ETag": '"e"'},
        {"Bucket": "b", "Key": "k"},
    )
    with stub:
        storage = S3Storage(s3)
        head = storage.head_current("b", "k", 64 * 1024, whole=True)
        assert (head.version_id, head.etag, head.size, len(head.data)) == ("v1", "e", len(DATA), 64 * 1024)
        assert storage.read_rest(ObjectRef("b", "k", version_id="v1"), head) == DATA
    stub.assert_no_pending_responses()


def test_a_body_that_breaks_off_is_read_again_by_version():
    s3, stub = client()
    stub.add_response(
        "get_object",
        {"Body": body(BreaksOff(DATA, 100_000)), "ContentLength": len(DATA), "VersionId": "v1", "ETag": '"e"'},
        {"Bucket": "b", "Key": "k"},
    )
    stub.add_response(
        "get_object",
        {"Body": body(io.BytesIO(DATA)), "ContentLength": len(DATA)},
        {"Bucket": "b", "Key": "k", "VersionId": "v1"},
    )
    with stub:
        storage = S3Storage(s3)
        head = storage.head_current("b", "k", 64 * 1024, whole=True)
        assert storage.read_rest(ObjectRef("b", "k", version_id="v1"), head) == DATA
    stub.assert_no_pending_responses()


def test_the_header_alone_is_a_ranged_get():
    s3, stub = client()
    stub.add_response(
        "get_object",
        {"Body": body(io.BytesIO(DATA[:65536])), "ContentRange": f"bytes 0-65535/{len(DATA)}", "ETag": '"e"'},
        {"Bucket": "b", "Key": "k", "Range": "bytes=0-65535"},
    )
    with stub:
        head = S3Storage(s3).head_current("b", "k", 64 * 1024)
    assert (head.size, head.rest, head.complete) == (len(DATA), None, False)
