"""S3 delivers at least once and in no particular order. With the fields real S3 sends put back into the
events (``versionId``, ``sequencer``; moto leaves them out), against moto's versioned S3 and its conditional
writes: the outcome document always describes the newest version, duplicates are inferred once, deleted
objects and foreign documents are never written over."""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from inferctl.emulator.resources import Resources, provision
from lambdas.contract.settings import Settings
from lambdas.contract.values import Label
from lambdas.inference import environment, handler
from lambdas.inference.storage import S3Storage
from stacks.config import StackConfig
from tests.integration.inference.harness import MODEL_ARN
from tests.support import pictures
from tests.support.context import Context
from tests.support.fixtures import s3_event, sqs_envelope
from tests.support.memory import FunctionBackend

KEY = "test_images/bee.jpg"
SEQ_V1, SEQ_V2 = "0055AED6DCD90281E5", "0055AED6DCD90281F0"


@pytest.fixture
def aws() -> Iterator[tuple[Any, Resources]]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        yield session, provision(session, StackConfig.from_cdk_json(), name="ordering")


def upload(session: Any, resources: Resources, data: bytes) -> str:
    response = session.client("s3").put_object(Bucket=resources.bucket, Key=KEY, Body=data)
    version: str = response["VersionId"]
    return version


def body(resources: Resources, version: str, sequencer: str) -> str:
    return json.dumps(s3_event(bucket=resources.bucket, key=KEY, versionId=version, sequencer=sequencer, eTag=None))


class Model(FunctionBackend):
    """Labels each image version differently: the label says which bytes the model saw."""

    def __init__(self, session: Any, resources: Resources, gate: threading.Barrier | None = None) -> None:
        self.s3 = session.client("s3")
        self.resources = resources
        self.gate = gate
        super().__init__(self._answer)

    def needs_bytes(self, ref: Any) -> bool:
        return True

    def detect(self, image: Any, thresholds: Any) -> Any:
        self.seen = image.read()
        return super().detect(image, thresholds)

    def _answer(self, key: str) -> list[Label]:
        if self.gate:
            self.gate.wait(timeout=10)
        return [Label(self.seen.decode(errors="replace")[:2], 99.0)]


def install(monkeypatch: Any, session: Any, resources: Resources, model: FunctionBackend) -> environment.Runtime:
    env = {"REKOGNITION_MODEL_ARN": MODEL_ARN, "RESULT_KMS_KEY_ARN": resources.key_arn, "RECORD_CONCURRENCY": "4"}
    runtime = environment.build_runtime(
        Settings.from_env(env), backend=model, storage=S3Storage(session.client("s3"), resources.key_arn)
    )
    monkeypatch.setattr(handler, "runtime", lambda: runtime)
    return runtime


def result(session: Any, resources: Resources) -> dict[str, Any] | None:
    try:
        raw = session.client("s3").get_object(Bucket=resources.bucket, Key=KEY + ".json")["Body"].read()
    except session.client("s3").exceptions.NoSuchKey:
        return None
    document: dict[str, Any] = json.loads(raw)
    return document


def invoke(*bodies: str, receive_count: int = 1) -> dict[str, Any]:
    response: dict[str, Any] = handler.lambda_handler(sqs_envelope(*bodies, receive_count=receive_count), Context())
    return response


def test_a_late_event_for_an_older_version_leaves_the_newer_result(aws, monkeypatch):
    session, resources = aws
    v1 = upload(session, resources, b"v1" + pictures.jpeg())
    v2 = upload(session, resources, b"v2" + pictures.jpeg())
    model = Model(session, resources)
    install(monkeypatch, session, resources, model)

    assert invoke(body(resources, v2, SEQ_V2)) == {"batchItemFailures": []}
    assert invoke(body(resources, v1, SEQ_V1)) == {"batchItemFailures": []}  # S3 delivered v1's event last

    document = result(session, resources)
    assert document is not None
    assert (document["source"]["version_id"], document["source"]["sequencer"]) == (v2, SEQ_V2)
    assert [label["name"] for label in document["labels"]] == ["v2"]
    assert len(model.calls) == 1  # v1 was superseded without a model call


def test_an_older_version_processed_first_is_replaced_by_the_newer(aws, monkeypatch):
    session, resources = aws
    v1 = upload(session, resources, b"v1" + pictures.jpeg())
    model = Model(session, resources)
    install(monkeypatch, session, resources, model)
    invoke(body(resources, v1, SEQ_V1))
    v2 = upload(session, resources, b"v2" + pictures.jpeg())

    invoke(body(resources, v2, SEQ_V2))

    document = result(session, resources)
    assert document is not None
    assert document["source"]["version_id"] == v2


def test_a_purged_older_version_does_not_replace_a_good_result_with_an_error(aws, monkeypatch):
    session, resources = aws
    s3 = session.client("s3")
    v1 = upload(session, resources, b"v1" + pictures.jpeg())
    v2 = upload(session, resources, b"v2" + pictures.jpeg())
    install(monkeypatch, session, resources, Model(session, resources))
    invoke(body(resources, v2, SEQ_V2))
    s3.delete_object(Bucket=resources.bucket, Key=KEY, VersionId=v1)  # v1 purged

    assert invoke(body(resources, v1, SEQ_V1)) == {"batchItemFailures": []}

    document = result(session, resources)
    assert document is not None
    assert (document["status"], document["source"]["version_id"]) == ("ok", v2)


def test_an_image_deleted_before_it_was_processed_gets_no_document(aws, monkeypatch):
    session, resources = aws
    v1 = upload(session, resources, b"v1" + pictures.jpeg())
    session.client("s3").delete_object(Bucket=resources.bucket, Key=KEY)  # a delete marker is current
    model = Model(session, resources)
    install(monkeypatch, session, resources, model)

    assert invoke(body(resources, v1, SEQ_V1)) == {"batchItemFailures": []}

    assert result(session, resources) is None
    assert model.calls == []


def test_the_same_notification_twice_in_one_batch_is_inferred_once(aws, monkeypatch):
    session, resources = aws
    v1 = upload(session, resources, b"v1" + pictures.jpeg())
    model = Model(session, resources)
    install(monkeypatch, session, resources, model)

    response = invoke(body(resources, v1, SEQ_V1), body(resources, v1, SEQ_V1), body(resources, v1, SEQ_V1))

    assert response == {"batchItemFailures": []}
    assert len(model.calls) == 1
    assert result(session, resources) is not None


SEEN_AS: contextvars.ContextVar[str] = contextvars.ContextVar("seen_as", default="")


@pytest.mark.parametrize("newer_writes_first", [True, False])
def test_two_versions_in_two_concurrent_invocations_leave_the_newer(aws, monkeypatch, newer_writes_first):
    # GIVEN v1 and v2, each notified to its own invocation; both read "no result yet" and call the model
    session, resources = aws
    v1 = upload(session, resources, b"v1" + pictures.jpeg())
    v2 = upload(session, resources, b"v2" + pictures.jpeg())
    both_called = threading.Barrier(2)
    order = [threading.Event(), threading.Event()]

    class Racing(Model):
        def _answer(self, key: str) -> list[Label]:
            labels = super()._answer(key)
            both_called.wait(timeout=10)
            first = labels[0].name == ("v2" if newer_writes_first else "v1")
            if not first:
                order[0].wait(timeout=10)  # the other writes first
            return labels

    model = Racing(session, resources)
    runtime = install(monkeypatch, session, resources, model)
    original_write = runtime.pipeline.storage.write_json

    def write_then_signal(*args: Any, **kwargs: Any) -> None:
        try:
            original_write(*args, **kwargs)
        finally:
            order[0].set()

    monkeypatch.setattr(runtime.pipeline.storage, "write_json", write_then_signal)
    # The invocation of v1 believes the current version is v1: its first look was before v2 existed (a look
    # after its write is refused sees what is there).
    real_head = runtime.pipeline.storage.head_current
    looked: list[str] = []

    def head_as_seen(bucket: str, key: str, length: int, *, whole: bool = False) -> Any:
        head = real_head(bucket, key, length, whole=whole)
        stale = SEEN_AS.get() == "v1" and "v1" not in looked
        looked.append(SEEN_AS.get())
        return head._replace(version_id=v1) if stale else head

    monkeypatch.setattr(runtime.pipeline.storage, "head_current", head_as_seen)

    # WHEN both run at once
    results: dict[str, Any] = {}

    def run_as(name: str, message: str) -> None:
        SEEN_AS.set(name)  # records run in a copy of the invoking context: they see it too
        results[name] = invoke(message)

    threads = [
        threading.Thread(target=run_as, args=(n, b), name=n)
        for n, b in (("v1", body(resources, v1, SEQ_V1)), ("v2", body(resources, v2, SEQ_V2)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # THEN both messages are done, and the document is v2's whichever wrote first
    assert results == {"v1": {"batchItemFailures": []}, "v2": {"batchItemFailures": []}}
    assert len(model.calls) == 2
    document = result(session, resources)
    assert document is not None
    assert (document["source"]["version_id"], [label["name"] for label in document["labels"]]) == (v2, ["v2"])


def test_a_users_own_json_beside_the_image_is_never_replaced(aws, monkeypatch):
    session, resources = aws
    s3 = session.client("s3")
    v1 = upload(session, resources, b"v1" + pictures.jpeg())
    s3.put_object(Bucket=resources.bucket, Key=KEY + ".json", Body=b'{"my": "notes about the bee"}')
    model = Model(session, resources)
    install(monkeypatch, session, resources, model)

    response = invoke(body(resources, v1, SEQ_V1))

    assert len(response["batchItemFailures"]) == 1  # back to SQS (and the DLQ), where `inferctl dlq` says why
    # The first delivery finds the key taken only when its write is refused (the key is not read first) ...
    assert len(model.calls) == 1
    # ... every redelivery reads it first: no more billed calls for an image whose result has nowhere to go
    for receive_count in (2, 3):
        assert len(invoke(body(resources, v1, SEQ_V1), receive_count=receive_count)["batchItemFailures"]) == 1
    assert len(model.calls) == 1
    raw = s3.get_object(Bucket=resources.bucket, Key=KEY + ".json")["Body"].read()
    assert json.loads(raw) == {"my": "notes about the bee"}
