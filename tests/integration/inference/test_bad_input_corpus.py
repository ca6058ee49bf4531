"""The bad-input corpus, end to end under moto with the Rekognition adapter: each input with its expected
outcome, read back from S3 (result or error document) or from SQS (retried / acknowledged)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from inferctl.emulator.resources import Resources, provision
from lambdas.inference.backends.rekognition import RekognitionBackend
from stacks.config import StackConfig
from tests.integration.inference.harness import (
    MODEL_ARN,
    deliver,
    install_runtime,
    read_json,
    receive_all,
    settings_env,
)
from tests.support import pictures
from tests.support.fakes import FakeRekognition

LONG_NAME = "test_images/" + "ü" * 100 + "x" * 806 + ".jpg"  # 1022 bytes: the image fits, <key>.json does not

CORPUS: dict[str, tuple[bytes, str, str | None]] = {
    # key: (bytes, expected status, expected error code)
    "test_images/truncated.jpg": (pictures.jpeg(640, 480)[:5000], "error", "IMAGE_UNREADABLE"),
    "test_images/zero.jpg": (b"", "error", "IMAGE_EMPTY"),
    "test_images/text.jpg": (b"hello, I am a text file\n", "error", "IMAGE_UNREADABLE"),
    "test_images/dot.png": (pictures.png(1, 1), "error", "IMAGE_TOO_SMALL"),
    "test_images/bomb.png": (pictures.png_header_only(30000, 30000), "error", "IMAGE_TOO_LARGE"),
    "test_images/cmyk.jpg": (pictures.encode(pictures.picture().convert("CMYK"), "JPEG"), "ok", None),
    "test_images/sixteen.png": (
        pictures.encode(pictures.picture(128, 128, mode="I;16", color=4000), "PNG"),
        "ok",
        None,
    ),
    "test_images/alpha.png": (pictures.png(200, 200, mode="RGBA"), "ok", None),
    "test_images/rotated.jpg": (pictures.exif_rotated_jpeg(320, 200, orientation=6), "ok", None),
    "test_images/animated.gif": (pictures.animated_gif(), "ok", None),
    "test_images/photo.webp": (pictures.encode(pictures.picture(), "WEBP"), "ok", None),
    "test_images/with space + plus 100%.jpg": (pictures.jpeg(), "ok", None),
    "test_images/日本語/写真 ünïcødé.jpeg": (pictures.jpeg(), "ok", None),
}


@pytest.fixture
def aws() -> Iterator[tuple[Any, Resources]]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        yield session, provision(session, StackConfig.from_cdk_json(), name="corpus")


def test_every_corpus_item_ends_as_its_expected_outcome(aws, monkeypatch):
    session, resources = aws
    s3 = session.client("s3")
    fake = FakeRekognition(s3)
    install_runtime(monkeypatch, session, settings_env(resources), RekognitionBackend(MODEL_ARN, client=fake))
    deliver(session, resources)  # the S3 test event
    for key, (data, _, _) in CORPUS.items():
        s3.put_object(Bucket=resources.bucket, Key=key, Body=data)

    delivery = deliver(session, resources, max_messages=len(CORPUS))

    assert len(delivery.event["Records"]) == len(CORPUS)
    assert delivery.failed_ids == []
    for key, (_, status, code) in CORPUS.items():
        document = read_json(session, resources.bucket, key + ".json")
        assert (key, document["status"]) == (key, status)
        assert (key, (document["error"] or {}).get("code")) == (key, code)
    rotated = read_json(session, resources.bucket, "test_images/rotated.jpg.json")
    assert "exif_orientation_6_applied" in rotated["image"]["transformations"]
    assert (rotated["image"]["sent_width"], rotated["image"]["sent_height"]) == (200, 320)
    assert (
        "first_frame_of_3"
        in read_json(session, resources.bucket, "test_images/animated.gif.json")["image"]["transformations"]
    )
    # Images the header ruled out never reached the (billed) model.
    asked = {r["Image"]["S3Object"]["Name"] for r in fake.requests if "S3Object" in r["Image"]}
    assert not asked & {"test_images/text.jpg", "test_images/dot.png", "test_images/bomb.png", "test_images/zero.jpg"}


def test_messages_that_are_not_s3_events_are_acknowledged_without_work(aws, monkeypatch):
    session, resources = aws
    fake = FakeRekognition(session.client("s3"))
    install_runtime(monkeypatch, session, settings_env(resources), RekognitionBackend(MODEL_ARN, client=fake))
    deliver(session, resources)  # the S3 test event
    sqs = session.client("sqs")
    sqs.send_message(QueueUrl=resources.queue_url, MessageBody="this is not JSON")
    sqs.send_message(QueueUrl=resources.queue_url, MessageBody=json.dumps({"source": "aws.events", "detail": {}}))

    delivery = deliver(session, resources)

    assert len(delivery.event["Records"]) == 2
    assert delivery.failed_ids == []
    assert fake.requests == []
    assert receive_all(session, resources) == []


def test_object_deleted_before_it_was_read_ends_without_a_document(aws, monkeypatch):
    session, resources = aws
    s3 = session.client("s3")
    install_runtime(
        monkeypatch, session, settings_env(resources), RekognitionBackend(MODEL_ARN, client=FakeRekognition(s3))
    )
    deliver(session, resources)
    s3.put_object(Bucket=resources.bucket, Key="test_images/gone.jpg", Body=pictures.jpeg())
    s3.delete_object(Bucket=resources.bucket, Key="test_images/gone.jpg")

    assert deliver(session, resources).failed_ids == []

    listed = s3.list_objects_v2(Bucket=resources.bucket, Prefix="test_images/gone.jpg.json").get("Contents", [])
    assert listed == []  # nothing written beside a deleted image, and the message was acknowledged


def test_a_key_too_long_for_its_result_is_retried_towards_the_dlq_without_calling_the_model(aws, monkeypatch):
    session, resources = aws
    s3 = session.client("s3")
    fake = FakeRekognition(s3)
    install_runtime(monkeypatch, session, settings_env(resources), RekognitionBackend(MODEL_ARN, client=fake))
    deliver(session, resources)
    assert len(LONG_NAME.encode()) <= 1024 < len((LONG_NAME + ".json").encode())
    s3.put_object(Bucket=resources.bucket, Key=LONG_NAME, Body=pictures.jpeg())

    delivery = deliver(session, resources)

    assert len(delivery.failed_ids) == 1
    assert fake.requests == []
