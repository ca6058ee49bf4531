"""The real handler end to end under moto: S3 -> SQS notifications produced by moto itself, the handler
invoked with the SQS event Lambda would build, results read back from S3 field by field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from inferctl.emulator.resources import Resources, provision
from lambdas.contract.settings import Settings
from lambdas.inference import environment, handler
from lambdas.inference.backends.rekognition import RekognitionBackend
from lambdas.inference.backends.sagemaker import SageMakerBackend
from lambdas.inference.storage import S3Storage
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
from tests.support.fakes import FakeRekognition, FakeSageMakerRuntime, custom_label
from tests.support.fixtures import load

TRICKY_KEYS = [
    "test_images/red flower.jpg",
    "test_images/a+b=c.png",
    "test_images/100% real.jpeg",
    "test_images/ünïcødé/猫 の写真.JPG",
    "test_images/nested/deeper/photo.PNG",
]


@pytest.fixture
def aws() -> Iterator[tuple[Any, Resources]]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        resources = provision(session, StackConfig.from_cdk_json(), name="e2e")
        yield session, resources


def upload(session: Any, resources: Resources, key: str, data: bytes) -> dict[str, Any]:
    s3 = session.client("s3")
    s3.put_object(Bucket=resources.bucket, Key=key, Body=data)
    head: dict[str, Any] = s3.head_object(Bucket=resources.bucket, Key=key)
    return head


def drain_test_event(session: Any, resources: Resources, monkeypatch: Any) -> None:
    """A new route sends nothing until an object is created: S3 -> EventBridge has no ``s3:TestEvent`` (a
    bucket notification to SQS would send one)."""
    fake = FakeRekognition(session.client("s3"))
    install_runtime(monkeypatch, session, settings_env(resources), RekognitionBackend(MODEL_ARN, client=fake))
    assert receive_all(session, resources) == []


def test_s3_test_event_is_acknowledged_and_starts_no_inference(aws, monkeypatch):
    # A bucket notification configured by hand beside the stack's route sends S3's test event: acknowledged.
    session, resources = aws
    drain_test_event(session, resources, monkeypatch)
    sqs = session.client("sqs")
    sqs.send_message(QueueUrl=resources.queue_url, MessageBody=json.dumps(load("events/s3_test_event.json")))
    fake = FakeRekognition(session.client("s3"))
    install_runtime(monkeypatch, session, settings_env(resources), RekognitionBackend(MODEL_ARN, client=fake))
    delivery = deliver(session, resources)
    assert [body.get("Event") for body in delivery.bodies()] == ["s3:TestEvent"]
    assert delivery.failed_ids == []
    assert fake.requests == []
    assert receive_all(session, resources) == []


def test_tricky_keys_get_results_beside_them_read_back_field_by_field(aws, monkeypatch):
    # GIVEN S3's own events (through the stack's EventBridge rule) for five images with awkward keys
    session, resources = aws
    drain_test_event(session, resources, monkeypatch)
    heads = {
        key: upload(session, resources, key, pictures.jpeg() if "jp" in key.lower() else pictures.png())
        for key in TRICKY_KEYS
    }
    seen = {
        "test_images/red flower.jpg": [custom_label("flower", 97.5, (0.1, 0.2, 0.3, 0.4)), custom_label("leaf", 20.0)],
    }
    fake = FakeRekognition(session.client("s3"), labels=lambda key: seen.get(key, [custom_label("thing", 75.0)]))
    install_runtime(monkeypatch, session, settings_env(resources), RekognitionBackend(MODEL_ARN, client=fake))

    # WHEN the trigger delivers them
    delivery = deliver(session, resources)

    # THEN every message succeeds, and Rekognition was asked by reference with the key as stored (EventBridge
    # does not URL-encode it) and the event's version
    assert len(delivery.event["Records"]) == len(TRICKY_KEYS)
    assert delivery.failed_ids == []
    versions = {key: head["VersionId"] for key, head in heads.items()}
    sequencers = {}
    for body in delivery.bodies():
        obj = body["detail"]["object"]
        assert obj["key"] in TRICKY_KEYS  # as stored: spaces, '+', '%' and non-ASCII untouched
        assert obj["version-id"] == versions[obj["key"]]
        sequencers[obj["key"]] = obj["sequencer"]
    sent = {request["Image"]["S3Object"]["Name"]: request for request in fake.requests}
    assert set(sent) == set(TRICKY_KEYS)
    for key, request in sent.items():
        assert request["ProjectVersionArn"] == MODEL_ARN
        expected = {"Bucket": resources.bucket, "Name": key}
        if versions[key]:
            expected["Version"] = versions[key]
        assert request["Image"]["S3Object"] == expected
        assert request["MinConfidence"] == 9.0  # just below the candidate floor (10), the lowest cut

    # AND each result sits at <key>.json, encrypted with the stack's key, with the documented fields
    s3 = session.client("s3")
    for key, head in heads.items():
        result_head = s3.head_object(Bucket=resources.bucket, Key=key + ".json")
        assert result_head["ServerSideEncryption"] == "aws:kms"
        assert result_head["SSEKMSKeyId"] == resources.key_arn
        assert result_head["ContentType"].startswith("application/json")
        document = read_json(session, resources.bucket, key + ".json")
        assert document["schema_version"] == "1.5"
        assert document["producer"] == "image-inference"
        assert document["status"] == "ok"
        assert document["challenger"] is None  # no challenger configured
        assert document["source"] == {
            "bucket": resources.bucket,
            "key": key,
            "version_id": versions[key],
            "etag": head["ETag"].strip('"'),
            "size_bytes": head["ContentLength"],
            "sequencer": sequencers[key],
        }
        assert document["model"] == {"backend": "rekognition", "model_id": MODEL_ARN, "response_format": None}
        assert document["thresholds"] == {
            "min_confidence": 50.0,
            "label_overrides": {},
            "candidate_floor": 10.0,
            "inclusive": True,
        }
        assert document["image"]["sent_as"] == "s3_object"
        assert document["error"] is None
        assert document["timing"]["received_at"] <= document["timing"]["completed_at"]
        assert document["timing"]["backend_latency_ms"] >= 0
        assert document["backend_request_id"].startswith("rk-")

    flower = read_json(session, resources.bucket, "test_images/red flower.jpg.json")
    assert flower["labels"] == [
        {"name": "flower", "confidence": 97.5, "bounding_box": {"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4}}
    ]
    assert flower["candidates"] == [{"name": "leaf", "confidence": 20.0, "bounding_box": None}]
    assert flower["rejected_label_count"] == 1  # below its threshold, kept as a candidate

    # AND writing the results sent nothing to the queue: the rule matches image suffixes only
    assert receive_all(session, resources) == []
    assert len(fake.requests) == len(TRICKY_KEYS)


def test_thresholds_at_the_boundary_are_inclusive_and_overrides_win(aws, monkeypatch):
    session, resources = aws
    drain_test_event(session, resources, monkeypatch)
    upload(session, resources, "test_images/boundary.jpg", pictures.jpeg())
    labels = [
        custom_label("below", 49.999),
        custom_label("exact", 50.0),
        custom_label("above", 50.001),
        custom_label("cat", 89.99),
        custom_label("dog", 30.0),
    ]
    fake = FakeRekognition(session.client("s3"), labels=lambda key: labels)
    env = settings_env(resources, LABEL_THRESHOLDS='{"cat": 90, "dog": 30}')
    install_runtime(monkeypatch, session, env, RekognitionBackend(MODEL_ARN, client=fake))

    assert deliver(session, resources).failed_ids == []

    document = read_json(session, resources.bucket, "test_images/boundary.jpg.json")
    assert [(label["name"], label["confidence"]) for label in document["labels"]] == [
        ("above", 50.001),
        ("exact", 50.0),
        ("dog", 30.0),
    ]
    assert document["rejected_label_count"] == 2  # below (49.999 < 50) and cat (89.99 < 90)
    assert document["thresholds"]["label_overrides"] == {"cat": 90.0, "dog": 30.0}
    assert fake.requests[0]["MinConfidence"] == 9.0  # asks below the lowest cut (the floor), cuts in the Lambda
    assert [(label["name"], label["confidence"]) for label in document["candidates"]] == [
        ("cat", 89.99),
        ("below", 49.999),
    ]


def test_transient_failure_returns_only_that_message_and_permanent_failure_writes_an_error(aws, monkeypatch):
    # GIVEN a throttled image, a text file named .jpg, and a good image
    session, resources = aws
    drain_test_event(session, resources, monkeypatch)
    upload(session, resources, "test_images/throttled.jpg", pictures.jpeg())
    upload(session, resources, "test_images/notes.jpg", b"this is not an image\n")
    upload(session, resources, "test_images/good.png", pictures.png())
    fake = FakeRekognition(
        session.client("s3"), fail=lambda key: "ThrottlingException" if key.endswith("throttled.jpg") else None
    )
    install_runtime(monkeypatch, session, settings_env(resources), RekognitionBackend(MODEL_ARN, client=fake))

    # WHEN delivered
    delivery = deliver(session, resources)

    # THEN only the throttled message goes back to SQS
    by_key = {
        body["detail"]["object"]["key"]: record["messageId"]
        for body, record in zip(delivery.bodies(), delivery.event["Records"], strict=True)
    }
    assert delivery.failed_ids == [by_key["test_images/throttled.jpg"]]
    s3 = session.client("s3")
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=resources.bucket, Prefix="test_images/")["Contents"]}
    assert "test_images/throttled.jpg.json" not in listed

    # AND the text file has an error document with a stable code
    error = read_json(session, resources.bucket, "test_images/notes.jpg.json")
    assert error["status"] == "error"
    assert error["labels"] == []
    assert error["error"]["code"] == "IMAGE_UNREADABLE"
    assert error["error"]["retryable"] is False
    assert read_json(session, resources.bucket, "test_images/good.png.json")["status"] == "ok"

    # AND the throttled message is still invisible (its visibility timeout has not passed), and nothing else is
    # queued: the two documents just written sent no events
    sqs = session.client("sqs")
    assert receive_all(session, resources) == []
    assert (
        sqs.get_queue_attributes(
            QueueUrl=resources.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]["ApproximateNumberOfMessagesNotVisible"]
        == "1"
    )


def test_formats_rekognition_cannot_take_are_converted_and_sent_as_bytes(aws, monkeypatch):
    session, resources = aws
    drain_test_event(session, resources, monkeypatch)
    upload(session, resources, "test_images/picture.webp", pictures.encode(pictures.picture(400, 300), "WEBP"))
    fake = FakeRekognition(session.client("s3"), labels=lambda key: [custom_label("cat", 88.0, (0.5, 0.5, 0.25, 0.25))])
    install_runtime(monkeypatch, session, settings_env(resources), RekognitionBackend(MODEL_ARN, client=fake))

    assert deliver(session, resources).failed_ids == []

    assert len(fake.requests) == 1
    assert "Bytes" in fake.requests[0]["Image"]
    document = read_json(session, resources.bucket, "test_images/picture.webp.json")
    assert document["image"]["sent_as"] == "bytes"
    assert document["image"]["format"] == "WEBP"
    assert (document["image"]["width"], document["image"]["height"]) == (400, 300)
    assert document["image"]["transformations"] == ["converted_WEBP_to_JPEG"]
    assert document["labels"][0]["bounding_box"] == {"left": 0.5, "top": 0.5, "width": 0.25, "height": 0.25}


def test_sagemaker_backend_end_to_end(aws, monkeypatch):
    session, resources = aws
    drain_test_event(session, resources, monkeypatch)
    upload(session, resources, "test_images/street.jpg", pictures.jpeg(640, 480))
    fake = FakeSageMakerRuntime(
        lambda body, content_type: {"prediction": [[1.0, 0.93, 0.1, 0.2, 0.5, 0.6], [0.0, 0.2, 0.0, 0.0, 1.0, 1.0]]}
    )
    backend = SageMakerBackend("street-detector", class_names={0: "car", 1: "person"}, client=fake)
    env = settings_env(resources, BACKEND="sagemaker", SAGEMAKER_ENDPOINT_NAME="street-detector")
    install_runtime(monkeypatch, session, env, backend)

    assert deliver(session, resources).failed_ids == []

    request = fake.requests[0]
    assert request["EndpointName"] == "street-detector"
    assert request["ContentType"] == "image/jpeg"
    assert (
        request["Body"]
        == session.client("s3").get_object(Bucket=resources.bucket, Key="test_images/street.jpg")["Body"].read()
    )
    document = read_json(session, resources.bucket, "test_images/street.jpg.json")
    assert document["model"] == {
        "backend": "sagemaker",
        "model_id": "street-detector",
        "response_format": "object-detection",
    }
    assert document["labels"] == [
        {"name": "person", "confidence": 93.0, "bounding_box": {"left": 0.1, "top": 0.2, "width": 0.4, "height": 0.4}}
    ]
    assert document["rejected_label_count"] == 1
    assert (document["image"]["width"], document["image"]["height"]) == (640, 480)


def test_redelivered_notification_does_not_call_the_backend_again(aws, monkeypatch):
    session, resources = aws
    drain_test_event(session, resources, monkeypatch)
    upload(session, resources, "test_images/once.jpg", pictures.jpeg())
    messages = receive_all(session, resources)
    fake = FakeRekognition(session.client("s3"))
    install_runtime(monkeypatch, session, settings_env(resources), RekognitionBackend(MODEL_ARN, client=fake))
    from inferctl.emulator.runtime import LambdaContext, sqs_event
    from lambdas.inference import handler

    event = sqs_event(messages, resources.queue_arn, resources.region)
    first = handler.lambda_handler(event, LambdaContext())
    for record in event["Records"]:  # at-least-once: SQS delivers the same message again
        record["attributes"]["ApproximateReceiveCount"] = "2"
    second = handler.lambda_handler(event, LambdaContext())

    assert first["batchItemFailures"] == second["batchItemFailures"] == []
    assert len(fake.requests) == 1


def noisy_jpeg(width: int, height: int) -> bytes:
    """A JPEG that does not compress to less than its 64 KiB header probe."""
    import io
    import random

    from PIL import Image

    rng = random.Random(7)
    image = Image.frombytes("RGB", (width, height), bytes(rng.getrandbits(8) for _ in range(width * height * 3)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


@pytest.mark.parametrize("backend_name", ["rekognition", "sagemaker"])
def test_the_function_makes_one_get_and_one_put_per_image(aws, monkeypatch, backend_name):
    """Counted on the wire (botocore's before-call on the function's S3 client): a first delivery costs one GET
    of the image's current version and one PUT of its result. SageMaker's bytes come from that same GET."""
    session, resources = aws
    drain_test_event(session, resources, monkeypatch)
    data = noisy_jpeg(400, 300)
    assert len(data) > 64 * 1024
    upload(session, resources, "test_images/photo.jpg", data)
    s3 = session.client("s3")
    calls: list[str] = []
    s3.meta.events.register("before-call.s3", lambda model, **kwargs: calls.append(model.name))
    if backend_name == "sagemaker":
        fake: Any = FakeSageMakerRuntime(lambda body, content_type: {"prediction": [[0.0, 0.9, 0.1, 0.1, 0.5, 0.5]]})
        backend: Any = SageMakerBackend("e", class_names={0: "car"}, client=fake)
        env = settings_env(resources, BACKEND="sagemaker", SAGEMAKER_ENDPOINT_NAME="e")
    else:
        fake = FakeRekognition(session.client("s3"))
        backend = RekognitionBackend(MODEL_ARN, client=fake)
        env = settings_env(resources)
    settings = Settings.from_env(env)
    runtime = environment.build_runtime(settings, backend=backend, storage=S3Storage(s3, settings.result_kms_key_arn))
    monkeypatch.setattr(handler, "runtime", lambda: runtime)

    assert deliver(session, resources).failed_ids == []

    assert sorted(calls) == ["GetObject", "PutObject"]
    assert read_json(session, resources.bucket, "test_images/photo.jpg.json")["status"] == "ok"
    if backend_name == "sagemaker":
        assert fake.requests[0]["Body"] == data  # every byte, from the one streamed GET
