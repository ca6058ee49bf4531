"""A challenger model in shadow, through the real handler under moto: off, sampled, 100 %; and a challenger that
is throttled, not ready, refuses the image or answers in a shape nobody can read. The primary's result is the
same in every case, the message is acknowledged (never retried or dead-lettered because of the challenger),
and the challenger's findings or failure are in the result's ``challenger`` section."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from inferctl.emulator.resources import Resources, provision
from lambdas.contract import errors
from lambdas.contract.settings import Settings
from lambdas.contract.values import ObjectRef
from lambdas.inference import environment, handler
from lambdas.inference.backends import ClientOptions
from lambdas.inference.backends.rekognition import RekognitionBackend
from lambdas.inference.challenger import build, sampled
from lambdas.inference.storage import S3Storage
from stacks.config import StackConfig
from tests.integration.inference.harness import MODEL_ARN, deliver, read_json, settings_env
from tests.support import pictures
from tests.support.fakes import FakeRekognition, FakeSageMakerRuntime, client_error, custom_label

PRIMARY_LABELS = [custom_label("bee", 91.0, (0.1, 0.1, 0.2, 0.2)), custom_label("flower", 30.0)]
CHALLENGER_ANSWER = {"prediction": [[0.0, 0.55, 0.1, 0.1, 0.3, 0.3], [1.0, 0.2, 0.5, 0.5, 0.6, 0.6]]}


@pytest.fixture
def aws() -> Iterator[tuple[Any, Resources]]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        resources = provision(session, StackConfig.from_cdk_json(), name="shadow")
        session.client("sqs").purge_queue(QueueUrl=resources.queue_url)  # S3's test event
        yield session, resources


def install(monkeypatch: Any, session: Any, env: dict[str, str], respond: Any) -> FakeSageMakerRuntime:
    settings = Settings.from_env(env)
    primary = RekognitionBackend(MODEL_ARN, client=FakeRekognition(session.client("s3"), lambda key: PRIMARY_LABELS))
    runtime_client = FakeSageMakerRuntime(respond)
    challenger = build(settings.challenger, ClientOptions(read_timeout=5), client=runtime_client)
    runtime = environment.build_runtime(
        settings,
        backend=primary,
        storage=S3Storage(session.client("s3"), kms_key_arn=settings.result_kms_key_arn),
        challenger=challenger,
    )
    monkeypatch.setattr(handler, "runtime", lambda: runtime)
    return runtime_client


def challenger_env(resources: Resources, percent: str = "100") -> dict[str, str]:
    return settings_env(
        resources,
        CHALLENGER_BACKEND="sagemaker",
        CHALLENGER_SAGEMAKER_ENDPOINT_NAME="bee-detector-v2",
        CHALLENGER_SAGEMAKER_RESPONSE_FORMAT="object-detection",
        CHALLENGER_SAGEMAKER_CLASS_NAMES='["bee", "flower"]',
        CHALLENGER_SAMPLE_PERCENT=percent,
        CANDIDATE_FLOOR="10",
    )


def run_images(session: Any, resources: Resources, count: int) -> tuple[list[dict[str, Any]], list[str]]:
    s3 = session.client("s3")
    keys = [f"test_images/bees/{index:03d}.jpg" for index in range(count)]
    for key in keys:
        s3.put_object(Bucket=resources.bucket, Key=key, Body=pictures.jpeg(320, 240))
    failed: list[str] = []
    for _ in range(count):
        delivery = deliver(session, resources)
        failed += delivery.failed_ids
        if not delivery.event["Records"]:
            break
    return [read_json(session, resources.bucket, key + ".json") for key in keys], failed


def primary_view(document: dict[str, Any]) -> tuple[Any, ...]:
    return (document["status"], document["labels"], document["candidates"], document["model"]["model_id"])


def test_without_a_challenger_the_section_is_null(aws, monkeypatch):
    session, resources = aws
    fake = install(monkeypatch, session, settings_env(resources), lambda body, content_type: CHALLENGER_ANSWER)
    documents, failed = run_images(session, resources, 3)
    assert failed == []
    assert [d["challenger"] for d in documents] == [None, None, None]
    assert fake.requests == []
    assert documents[0]["schema_version"] == "1.5"


def test_a_challenger_at_100_percent_records_its_own_labels_and_candidates_beside_the_primarys(aws, monkeypatch):
    session, resources = aws
    fake = install(monkeypatch, session, challenger_env(resources), lambda body, content_type: CHALLENGER_ANSWER)
    documents, failed = run_images(session, resources, 3)
    assert failed == []
    assert len(fake.requests) == 3
    for document in documents:
        assert [label["name"] for label in document["labels"]] == ["bee"]  # the primary's, at 91 %
        section = document["challenger"]
        assert section["status"] == "ok"
        assert (section["backend"], section["model_id"]) == ("sagemaker", "bee-detector-v2")
        assert [(label["name"], label["confidence"]) for label in section["labels"]] == [("bee", 55.0)]
        assert [(label["name"], label["confidence"]) for label in section["candidates"]] == [("flower", 20.0)]
        assert section["labels"][0]["bounding_box"] == pytest.approx(
            {"left": 0.1, "top": 0.1, "width": 0.2, "height": 0.2}
        )
        assert section["latency_ms"] >= 0


def test_sampling_is_deterministic_per_object_version_and_near_the_rate():
    refs = [ObjectRef("b", f"test_images/{index}.jpg", version_id=f"v{index}") for index in range(2000)]
    chosen = [ref for ref in refs if sampled(ref, 25.0)]
    assert 400 <= len(chosen) <= 600
    assert chosen == [ref for ref in refs if sampled(ref, 25.0)]
    assert not any(sampled(ref, 0.0) for ref in refs)
    assert all(sampled(ref, 100.0) for ref in refs)


def test_a_sampled_challenger_sees_only_its_share(aws, monkeypatch):
    session, resources = aws
    fake = install(monkeypatch, session, challenger_env(resources, "30"), lambda body, content_type: CHALLENGER_ANSWER)
    documents, failed = run_images(session, resources, 20)
    assert failed == []
    seen = [d for d in documents if d["challenger"] is not None]
    assert 0 < len(seen) < 20
    assert len(fake.requests) == len(seen)
    expected = [
        sampled(ObjectRef(resources.bucket, d["source"]["key"], version_id=d["source"]["version_id"]), 30.0)
        for d in documents
    ]
    assert [d["challenger"] is not None for d in documents] == expected


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (client_error("ThrottlingException", "Rate exceeded", "InvokeEndpoint", 400), errors.BACKEND_THROTTLED),
        (client_error("ModelNotReadyException", "not ready", "InvokeEndpoint", 429), errors.MODEL_NOT_READY),
        (
            client_error("ValidationError", "Endpoint bee-detector-v2 of account 1 not found.", "InvokeEndpoint", 400),
            errors.MODEL_NOT_READY,
        ),
        (
            client_error("ModelError", "refused", "InvokeEndpoint", 424, OriginalStatusCode=400),
            errors.BACKEND_REJECTED_IMAGE,
        ),
        ({"unexpected": "shape"}, errors.RESPONSE_FORMAT_UNKNOWN),
        ({"prediction": [[0.0, float("nan"), 0, 0, 1, 1]]}, errors.MODEL_OUTPUT_INVALID),
    ],
    ids=["throttled", "not-ready", "missing", "rejected", "unparseable", "nan"],
)
def test_a_failing_challenger_changes_nothing_for_the_primary(aws, monkeypatch, answer, code):
    session, resources = aws
    install(monkeypatch, session, challenger_env(resources), lambda body, content_type: answer)
    documents, failed = run_images(session, resources, 2)

    assert failed == []  # acknowledged: no retry, no dead letter because of the challenger
    install(monkeypatch, session, settings_env(resources), lambda body, content_type: CHALLENGER_ANSWER)
    baseline, _ = run_images(session, resources, 2)  # the same images without a challenger (new versions)
    for document, alone in zip(documents, baseline, strict=True):
        assert primary_view(document) == primary_view(alone)
        assert document["challenger"]["status"] == "error"
        assert document["challenger"]["error"]["code"] == code
    assert not session.client("sqs").receive_message(QueueUrl=resources.dead_letter_queue_url).get("Messages")
