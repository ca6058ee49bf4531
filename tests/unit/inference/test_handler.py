"""The Lambda handler with in-memory ports: partial batch responses, concurrency inside a batch, log
attribution per record, configuration errors, and records it has no time left for."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest

from lambdas.contract import errors
from lambdas.contract.errors import TransientError
from lambdas.contract.settings import Settings
from lambdas.contract.values import Label
from lambdas.inference import environment, handler, telemetry
from tests.support.context import Context as LambdaContext
from tests.support.memory import FunctionBackend, MemoryStorage

ARN = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v.2024-01-01T00.00.00/1700000000000"


def s3_body(key: str, etag: str = "e1") -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": "bkt"}, "object": {"key": key, "size": 3, "eTag": etag}},
                }
            ]
        }
    )


def sqs_record(message_id: str, body: str, receive_count: int = 1) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1",
    }


def stored(storage: MemoryStorage, *keys: str, etag: str = "e1") -> MemoryStorage:
    """The images the events name, in storage with the ETag the events carry."""
    for key in keys:
        storage.put("bkt", key, b"image bytes", etag=etag)
    return storage


def install(monkeypatch: Any, backend: FunctionBackend, storage: MemoryStorage, **env: str) -> None:
    settings = Settings.from_env({"REKOGNITION_MODEL_ARN": ARN, "RECORD_CONCURRENCY": "10", **env})
    runtime = environment.build_runtime(settings, backend=backend, storage=storage)
    monkeypatch.setattr(handler, "runtime", lambda: runtime)


def test_partial_batch_response_names_exactly_the_failed_messages(monkeypatch):
    def answer(key: str) -> list[Label]:
        if "throttle" in key:
            raise TransientError(errors.BACKEND_THROTTLED, "slow down")
        return [Label("cat", 99.0)]

    storage, backend = MemoryStorage(), FunctionBackend(answer)
    install(monkeypatch, backend, storage)
    keys = [f"test_images/{'throttle' if i % 3 == 0 else 'ok'}-{i}.jpg" for i in range(10)]
    stored(storage, *keys)
    event = {"Records": [sqs_record(f"m{i}", s3_body(key)) for i, key in enumerate(keys)]}

    response = handler.lambda_handler(event, LambdaContext())

    assert sorted(item["itemIdentifier"] for item in response["batchItemFailures"]) == ["m0", "m3", "m6", "m9"]
    written = {key for _, key in storage.writes}
    assert written == {key + ".json" for key in keys if "ok" in key}


def test_records_of_a_batch_are_processed_concurrently(monkeypatch):
    # Ten calls that each wait for all ten to be in flight: only concurrent processing gets through.
    barrier = threading.Barrier(10, timeout=10)

    def answer(key: str) -> list[Label]:
        barrier.wait()
        return [Label(key.rsplit("/", 1)[-1], 90.0)]

    storage, backend = stored(MemoryStorage(), *(f"test_images/{i}.jpg" for i in range(10))), FunctionBackend(answer)
    install(monkeypatch, backend, storage)
    event = {"Records": [sqs_record(f"m{i}", s3_body(f"test_images/{i}.jpg")) for i in range(10)]}

    response = handler.lambda_handler(event, LambdaContext())

    assert response["batchItemFailures"] == []
    for i in range(10):  # each result holds its own image's label: no cross-talk between threads
        document = storage.document("bkt", f"test_images/{i}.jpg.json")
        assert [label["name"] for label in document["labels"]] == [f"{i}.jpg"]


class Collect(logging.Handler):
    """Formats records with Powertools' own formatter, as they would appear in CloudWatch."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []
        self.setFormatter(telemetry.logger.registered_formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_every_log_line_of_a_record_carries_its_own_message_id(monkeypatch):
    storage, backend = stored(MemoryStorage(), *(f"test_images/{i}.jpg" for i in range(6))), FunctionBackend()
    install(monkeypatch, backend, storage)
    event = {"Records": [sqs_record(f"m{i}", s3_body(f"test_images/{i}.jpg")) for i in range(6)]}
    collect = Collect()
    logging.getLogger(telemetry.logger.name).addHandler(collect)
    try:
        handler.lambda_handler(event, LambdaContext())
    finally:
        logging.getLogger(telemetry.logger.name).removeHandler(collect)

    lines = collect.lines
    written = [line for line in lines if line["message"] == "Result written"]
    assert len(written) == 6
    for line in written:
        index = line["object_key"].rsplit("/", 1)[-1].split(".")[0]
        assert line["message_id"] == f"m{index}"


def test_a_failed_or_unstarted_record_is_logged_with_its_object_key(monkeypatch):
    """Which image failed, said on the record's own line: what an operator searches the logs for, and what the
    Lambda-faithful tests count a neighbour's retries by."""
    context = LambdaContext(timeout_seconds=60)

    def answer(key: str) -> list[Label]:
        if key.endswith("0.jpg"):
            raise TransientError(errors.BACKEND_THROTTLED, "slow down")
        context.started -= 55  # the second record "takes" 55 s: the third gets no time
        return [Label("thing", 90.0)]

    keys = [f"test_images/{i}.jpg" for i in range(3)]
    storage, backend = stored(MemoryStorage(), *keys), FunctionBackend(answer)
    install(monkeypatch, backend, storage, RECORD_CONCURRENCY="1")
    collect = Collect()
    logging.getLogger(telemetry.logger.name).addHandler(collect)
    try:
        handler.lambda_handler({"Records": [sqs_record(f"m{i}", s3_body(k)) for i, k in enumerate(keys)]}, context)
    finally:
        logging.getLogger(telemetry.logger.name).removeHandler(collect)

    named = {
        (line["message"], line["error_code"], tuple(line["object_keys"]))
        for line in collect.lines
        if "object_keys" in line
    }
    assert named == {
        ("Record failed; SQS will redeliver it", errors.BACKEND_THROTTLED, ("test_images/0.jpg",)),
        ("Not enough time left; returning the record for redelivery", errors.OUT_OF_TIME, ("test_images/2.jpg",)),
    }


def test_malformed_and_test_event_messages_are_acknowledged(monkeypatch):
    storage, backend = MemoryStorage(), FunctionBackend()
    install(monkeypatch, backend, storage)
    event = {
        "Records": [
            sqs_record("junk", "definitely not json"),
            sqs_record("wrong", json.dumps({"detail-type": "Object Created"})),
            sqs_record("test", json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "bkt"})),
        ]
    }
    assert handler.lambda_handler(event, LambdaContext())["batchItemFailures"] == []
    assert backend.calls == []
    assert storage.writes == []


def test_an_object_deleted_before_it_was_processed_ends_without_a_document_or_a_model_call(monkeypatch):
    # GIVEN a notification for an image that is gone by the time it is handled (a delete marker is current)
    storage, backend = MemoryStorage(), FunctionBackend()
    install(monkeypatch, backend, storage)

    # WHEN it is handled
    response = handler.lambda_handler({"Records": [sqs_record("m", s3_body("test_images/gone.jpg"))]}, LambdaContext())

    # THEN the message is acknowledged, the model is not called, and nothing is written beside a deleted image
    assert response["batchItemFailures"] == []
    assert backend.calls == []
    assert storage.writes == []


def test_configuration_error_fails_the_whole_batch_naming_the_variable(monkeypatch, caplog):
    environment.reset_runtime()  # the real builder, reading the environment as a new execution environment would
    monkeypatch.setenv("BACKEND", "rekognition")
    monkeypatch.delenv("REKOGNITION_MODEL_ARN", raising=False)
    with caplog.at_level(logging.ERROR), pytest.raises(Exception, match="REKOGNITION_MODEL_ARN: is not set"):
        handler.lambda_handler({"Records": [sqs_record("m", s3_body("test_images/a.jpg"))]}, LambdaContext())
    assert any(getattr(r, "setting", None) == "REKOGNITION_MODEL_ARN" for r in caplog.records)


def test_records_without_time_left_are_returned_not_started(monkeypatch):
    context = LambdaContext(timeout_seconds=60)

    def slow(key: str) -> list[Label]:
        context.started -= 55  # this call "takes" 55 s: 5 s remain, under the 10 s safety margin
        return [Label("thing", 90.0)]

    storage, backend = stored(MemoryStorage(), *(f"test_images/{i}.jpg" for i in range(3))), FunctionBackend(slow)
    install(monkeypatch, backend, storage, RECORD_CONCURRENCY="1")
    event = {"Records": [sqs_record(f"m{i}", s3_body(f"test_images/{i}.jpg")) for i in range(3)]}

    response = handler.lambda_handler(event, context)

    assert sorted(item["itemIdentifier"] for item in response["batchItemFailures"]) == ["m1", "m2"]
    assert backend.calls == ["test_images/0.jpg"]
    assert [key for _, key in storage.writes] == ["test_images/0.jpg.json"]


def test_same_object_notified_twice_is_written_once_and_a_redelivery_costs_no_model_call(monkeypatch):
    storage, backend = stored(MemoryStorage(), "test_images/a.jpg", etag="same"), FunctionBackend()
    install(monkeypatch, backend, storage, RECORD_CONCURRENCY="1")
    body = s3_body("test_images/a.jpg", etag="same")
    first = handler.lambda_handler({"Records": [sqs_record("m", body)]}, LambdaContext())
    written = storage.objects[("bkt", "test_images/a.jpg.json")]
    # S3's own duplicate arrives as a first delivery: the result key is not read first, so the model is asked
    # again, and the refused conditional write settles it as a duplicate (the first result stays).
    duplicate = handler.lambda_handler({"Records": [sqs_record("d", body)]}, LambdaContext())
    assert first["batchItemFailures"] == duplicate["batchItemFailures"] == []
    assert backend.calls == ["test_images/a.jpg"] * 2
    assert storage.writes == [("bkt", "test_images/a.jpg.json")]
    assert storage.objects[("bkt", "test_images/a.jpg.json")] == written
    # SQS redelivering a message (a retry, a function cut short) reads the result key first: no model call.
    handler.lambda_handler({"Records": [sqs_record("m", body, receive_count=2)]}, LambdaContext())
    assert backend.calls == ["test_images/a.jpg"] * 2
    # A new upload (new ETag, unversioned event) is new work.
    stored(storage, "test_images/a.jpg", etag="new")
    handler.lambda_handler({"Records": [sqs_record("n", s3_body("test_images/a.jpg", etag="new"))]}, LambdaContext())
    assert backend.calls == ["test_images/a.jpg"] * 3
    assert len(storage.writes) == 2


class ReadingBackend(FunctionBackend):
    """Reads the whole image when it says it needs the bytes (as SageMaker does), and records how much it got."""

    def __init__(self, needs: bool) -> None:
        super().__init__()
        self.needs = needs
        self.read_sizes: list[int] = []

    def needs_bytes(self, ref: Any) -> bool:
        return self.needs

    def detect(self, image: Any, thresholds: Any) -> Any:
        if self.needs:
            self.read_sizes.append(len(image.read()))
        return super().detect(image, thresholds)


@pytest.mark.parametrize("needs_bytes", [False, True], ids=["by-reference", "bytes"])
def test_one_image_costs_one_get_and_one_put(monkeypatch, needs_bytes):
    """The function's own S3 calls for a first delivery: the current version (header, version, ETag) in one
    GET and the result in one PUT; the result key is not read. A backend that sends bytes gets them from the
    same GET (streamed past the 64 KiB header), not from a second one."""
    storage, backend = MemoryStorage(), ReadingBackend(needs_bytes)
    storage.put("bkt", "test_images/a.jpg", b"x" * 200_000, etag="e1")
    install(monkeypatch, backend, storage, RECORD_CONCURRENCY="1")

    response = handler.lambda_handler(
        {"Records": [sqs_record("m", s3_body("test_images/a.jpg", etag="e1"))]}, LambdaContext()
    )

    assert response["batchItemFailures"] == []
    assert storage.gets == ["test_images/a.jpg"]
    assert storage.writes == [("bkt", "test_images/a.jpg.json")]
    assert backend.read_sizes == ([200_000] if needs_bytes else [])


def test_the_lambda_docs_sqs_event_with_s3_bodies_gets_a_partial_batch_response(monkeypatch):
    # GIVEN Lambda's own SQS event, carrying the S3 User Guide's notification and a body that is not one
    from tests.support.fixtures import s3_event, sqs_envelope

    storage, backend = MemoryStorage(), FunctionBackend()
    storage.put("bkt", "test_images/Happy Face.jpg", b"image", version_id="096fKKXTRTtl3on89fVO.nfljtsv6qko")
    install(monkeypatch, backend, storage)
    event = sqs_envelope(
        json.dumps(s3_event(bucket="bkt", key="test_images/Happy Face.jpg")),
        "Test message.",
    )

    # WHEN the handler runs
    response = handler.lambda_handler(event, LambdaContext())

    # THEN the image has its result (decoded key, the event's version), and the junk body is acknowledged
    assert response == {"batchItemFailures": []}
    document = storage.document("bkt", "test_images/Happy Face.jpg.json")
    assert document["source"]["version_id"] == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    assert backend.calls == ["test_images/Happy Face.jpg"]


def test_an_unexpected_exception_is_logged_at_error_with_its_traceback_and_redelivered(monkeypatch):
    def broken(key: str) -> list[Label]:
        raise ZeroDivisionError("a bug")

    storage, backend = stored(MemoryStorage(), "test_images/a.jpg"), FunctionBackend(broken)
    install(monkeypatch, backend, storage)
    collect = Collect()
    logging.getLogger(telemetry.logger.name).addHandler(collect)
    try:
        response = handler.lambda_handler(
            {"Records": [sqs_record("m1", s3_body("test_images/a.jpg"))]}, LambdaContext()
        )
    finally:
        logging.getLogger(telemetry.logger.name).removeHandler(collect)

    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    (line,) = [line for line in collect.lines if line.get("error_code") == "UNEXPECTED_ERROR"]
    assert line["level"] == "ERROR"
    assert "ZeroDivisionError: a bug" in line["exception"]


def test_each_label_accepted_and_each_label_near_its_threshold_is_a_metric(monkeypatch, capsys):
    # GIVEN thresholds of 50 (cat) and 80 (dog), candidates from 10
    answers = {
        "test_images/a.jpg": [Label("cat", 91.0), Label("dog", 75.0)],  # dog 5 points below its 80: near
        "test_images/b.jpg": [Label("cat", 45.0), Label("dog", 30.0)],  # cat near (5 below 50); dog far below
        "test_images/c.jpg": [Label("dog", 85.0)],
    }
    storage, backend = MemoryStorage(), FunctionBackend(lambda key: answers[key])
    install(monkeypatch, backend, storage, MIN_CONFIDENCE="50", LABEL_THRESHOLDS='{"dog": 80}', CANDIDATE_FLOOR="10")
    stored(storage, *answers)
    capsys.readouterr()

    handler.lambda_handler(
        {"Records": [sqs_record(f"m{i}", s3_body(key)) for i, key in enumerate(answers)]}, LambdaContext()
    )

    # THEN the EMF line counts them per label
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    totals: dict[str, float] = {}
    for line in emf:
        for definition in line["_aws"]["CloudWatchMetrics"]:
            for metric in definition["Metrics"]:
                values = line[metric["Name"]]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(
                    values if isinstance(values, list) else [values]
                )
    assert totals["Accepted_cat"] == 1
    assert totals["Accepted_dog"] == 1
    assert totals["NearThreshold_dog"] == 1
    assert totals["NearThreshold_cat"] == 1
    assert totals["NearThresholdImages"] == 2
    assert totals["ImagesProcessed"] == 3
    # a count is summed over the batch (one value a line: Sum as per image, a fraction of the line and the CPU);
    # a latency keeps a value per image, for its percentiles
    (line,) = [line for line in emf if "ImagesProcessed" in line]
    assert line["ImagesProcessed"] == [3.0]
    assert line["Accepted_cat"] == [1.0]
    assert isinstance(line["BackendLatency"], list)
    assert len(line["BackendLatency"]) == 3
