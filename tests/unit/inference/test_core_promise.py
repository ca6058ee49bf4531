"""The pieces of the core promise that need no process or emulator: how a JPEG is coded (its decoding memory),
who wrote what sits at a result key, bounded model answers, the whole-call deadline, late records, and the
pipeline's judgement of versions at write time."""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

import pytest
from botocore.stub import Stubber
from PIL import Image

from lambdas.contract import errors
from lambdas.contract.errors import PermanentError, ProcessingError, TransientError
from lambdas.contract.results import FOREIGN, LEGACY, OURS, PRODUCER, PRODUCER_METADATA, document_kind
from lambdas.contract.thresholds import Thresholds
from lambdas.contract.values import Label, ObjectRef
from lambdas.inference import deadline, images
from lambdas.inference.backends.sagemaker import SageMakerBackend
from lambdas.inference.backends.sagemaker_formats import top_labels
from lambdas.inference.batch import BatchRunner
from lambdas.inference.images import headers
from lambdas.inference.images.decode import describe
from lambdas.inference.pipeline import Pipeline
from lambdas.inference.storage import WriteConflict
from tests.support import corpus, pictures
from tests.support.memory import FunctionBackend, MemoryStorage

# --- how a JPEG is coded ------------------------------------------------------------------------------------


def test_a_progressive_jpeg_needs_its_whole_coefficient_buffer_at_any_scale():
    header = headers.probe(pictures.encode(pictures.picture(6000, 4000), "JPEG", progressive=True, subsampling=0))
    assert header is not None
    assert header.jpeg is not None
    assert (header.jpeg.progressive, header.jpeg.buffered) == (True, True)
    assert header.jpeg.sampling == ((1, 1), (1, 1), (1, 1))
    assert header.jpeg.coefficient_bytes(6000, 4000) == 750 * 500 * 3 * 128  # 144 MB for 300 KB on disk


def test_a_baseline_jpeg_decodes_a_row_at_a_time_unless_its_first_scan_lacks_components():
    picture = pictures.picture(640, 480)
    plain = headers.probe(pictures.encode(picture, "JPEG", subsampling=2))
    multi = headers.probe(corpus.multi_scan_baseline(picture))
    assert plain is not None
    assert plain.jpeg is not None
    assert multi is not None
    assert multi.jpeg is not None
    assert (plain.jpeg.buffered, multi.jpeg.buffered) == (False, True)
    assert plain.jpeg.sampling == ((2, 2), (1, 1), (1, 1))  # 4:2:0: chroma at a quarter
    assert plain.jpeg.decoder_bytes(640, 480) == 0
    assert multi.jpeg.decoder_bytes(640, 480) == 80 * 60 * 3 * 128


def test_a_jpeg_header_cut_before_its_first_scan_counts_as_buffered():
    data = pictures.encode(pictures.picture(640, 480), "JPEG")
    sos = data.index(b"\xff\xda")
    header = headers.probe(data[:sos])
    assert header is not None
    assert header.jpeg is not None
    assert header.jpeg.buffered is None
    assert header.jpeg.decoder_bytes(640, 480) > 0  # not known: reserved as if it were


def test_the_budget_reserves_a_progressive_jpegs_coefficients():
    sagemaker = images.ImageLimits(max_bytes=6 * images.MB, max_side=2048, native_formats=frozenset({"JPEG"}))
    progressive = headers.Header("JPEG", 6000, 4000, "RGB", 1, 1, headers.JpegLayout(True, ((1, 1),) * 3, True))
    baseline = headers.Header("JPEG", 6000, 4000, "RGB", 1, 1, headers.JpegLayout(False, ((1, 1),) * 3, False))
    cost_progressive = images.decode_cost(progressive, 2 * images.MB, sagemaker, verify=True)
    cost_baseline = images.decode_cost(baseline, 2 * images.MB, sagemaker, verify=True)
    assert cost_progressive is not None
    assert cost_baseline is not None
    assert cost_progressive - cost_baseline == 750 * 500 * 3 * 128
    # the 13376 x 13376 one can never fit a 1024 MB function: refused before a byte of it is read
    huge = headers.Header("JPEG", 13376, 13376, "RGB", 1, 1, headers.JpegLayout(True, ((1, 1),) * 3, True))
    cost_huge = images.decode_cost(huge, 2 * images.MB, sagemaker, verify=True)
    assert cost_huge is not None
    assert cost_huge > images.budget_bytes(1024)


@pytest.mark.parametrize(
    ("name", "image", "options"),
    [
        ("lossy", pictures.picture(300, 200), {"quality": 80}),
        ("lossless", pictures.picture(300, 200), {"lossless": True}),
        ("alpha", pictures.picture(300, 200).convert("RGBA"), {"quality": 80}),
    ],
)
def test_a_still_webps_header_is_read_without_pillow_and_agrees_with_it(name, image, options):
    data = pictures.encode(image, "WEBP", **options)
    native = headers.probe(data[:64])  # the first bytes are enough
    assert native == describe(Image.open(io.BytesIO(data)))


def test_a_multi_page_tiffs_frames_are_not_decided_from_its_first_bytes():
    buffer = io.BytesIO()
    pages = [pictures.picture(640, 480), pictures.picture(640, 480, color=(9, 9, 9))]
    pages[0].save(buffer, format="TIFF", save_all=True, append_images=pages[1:])
    data = buffer.getvalue()
    # Not known in the function's process (a bounded child opens a TIFF, the whole file); never IMAGE_UNREADABLE
    assert images.read_header(data[: images.HEADER_BYTES], complete=False) is None
    sagemaker = images.ImageLimits(max_bytes=6 * images.MB, max_side=2048, native_formats=frozenset({"JPEG"}))
    prepared = images.prepare_read(lambda: data, sagemaker, verify=True)
    assert "first_frame_of_2" in prepared.facts.transformations


# --- who wrote what sits at a result key ---------------------------------------------------------------------

KEY = "test_images/a.jpg"
OUR_DOCUMENT = {
    "schema_version": "1.5",
    "producer": PRODUCER,
    "status": "ok",
    "source": {"bucket": "b", "key": KEY},
    "model": {},
    "thresholds": {},
    "timing": {},
    "labels": [],
}
LEGACY_DOCUMENT = {k: v for k, v in OUR_DOCUMENT.items() if k != "producer"} | {"schema_version": "1.4"}


@pytest.mark.parametrize(
    ("document", "metadata", "kind"),
    [
        (OUR_DOCUMENT, {PRODUCER_METADATA: PRODUCER}, OURS),
        (OUR_DOCUMENT, {}, FOREIGN),  # claims the producer, lacks the metadata only the function sets
        (LEGACY_DOCUMENT, {}, LEGACY),  # the function's, from before the mark
        ({"schema_version": "1.4", "source": {"key": KEY}}, {}, FOREIGN),  # a user's JSON with two familiar keys
        ({**OUR_DOCUMENT, "source": {"bucket": "b", "key": "test_images/other.jpg"}}, None, FOREIGN),
        (["not", "an", "object"], None, FOREIGN),
    ],
)
def test_who_wrote_a_result_key(document, metadata, kind):
    assert document_kind(document, KEY, metadata) == kind


# --- bounded answers ----------------------------------------------------------------------------------------


def test_only_the_most_confident_labels_are_kept_in_the_models_order():
    labels = [Label(f"l{n}", float(n % 10)) for n in range(25)]
    kept, dropped = top_labels(iter(labels), 5)
    assert dropped == 20
    assert sorted(label.confidence for label in kept) == [7.0, 8.0, 8.0, 9.0, 9.0]
    assert labels[7] in kept  # of two equal, the first the model sent
    positions = [labels.index(label) for label in kept]
    assert positions == sorted(positions)  # the model's order among the kept


class Source:
    budget = None

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.ref = ObjectRef(bucket="b", key="test_images/x.jpg", size=len(data))

    def read(self) -> bytes:
        return self.data

    def read_head(self, length: int) -> bytes:
        return self.data[:length]


def sagemaker(limit: int = 6 * 1024 * 1024) -> tuple[SageMakerBackend, Stubber]:
    import boto3

    from lambdas.inference.backends import ClientOptions

    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    options = ClientOptions(max_response_bytes=limit, max_labels=2)
    return SageMakerBackend("ep", response_format="object-detection", client=client, options=options), Stubber(client)


def body(payload: Any) -> Any:
    from botocore.response import StreamingBody

    raw = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_an_answer_larger_than_the_limit_is_never_parsed():
    backend, stub = sagemaker(limit=1024)
    rows = [[1.0, 0.5, 0.1, 0.1, 0.2, 0.2]] * 100  # about 3 KB
    stub.add_response("invoke_endpoint", {"Body": body({"prediction": rows}), "ContentType": "application/json"})
    with stub, pytest.raises(PermanentError) as raised:
        backend.detect(Source(pictures.jpeg(200, 200)), Thresholds(50.0))
    assert raised.value.code == errors.MODEL_OUTPUT_TOO_LARGE
    assert "MODEL_RESPONSE_MAX_BYTES" in raised.value.message


def test_labels_beyond_the_limit_are_dropped_least_confident_first():
    backend, stub = sagemaker()
    rows = [[0.0, 0.3, 0, 0, 1, 1], [1.0, 0.9, 0, 0, 1, 1], [2.0, 0.6, 0, 0, 1, 1]]
    stub.add_response("invoke_endpoint", {"Body": body({"prediction": rows}), "ContentType": "application/json"})
    with stub:
        detection = backend.detect(Source(pictures.jpeg(200, 200)), Thresholds(50.0))
    assert [label.confidence for label in detection.labels] == [90.0, 60.0]
    assert detection.dropped_over_limit == 1


@pytest.mark.parametrize(
    "message",
    [
        "Servable not found for request: Latest(flowers)",
        "Could not find any versions of model flowers",
        "Model flowers is not loaded yet",
    ],
)
def test_a_model_still_loading_is_waited_for_not_an_error_document(message):
    backend, stub = sagemaker()
    stub.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message=f'Received client error (404) from primary with message "{message}"',
        http_status_code=424,
        response_meta={"OriginalStatusCode": 404},
    )
    with stub, pytest.raises(TransientError) as raised:
        backend.detect(Source(pictures.jpeg(200, 200)), Thresholds(50.0))
    assert raised.value.code == errors.MODEL_NOT_READY


# --- time ---------------------------------------------------------------------------------------------------


def test_a_call_that_does_not_finish_in_time_is_abandoned_with_backend_timeout():
    release = threading.Event()
    calls = deadline.BoundedCalls(timeout_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(TransientError) as raised:
        calls.run(lambda: release.wait(30), "Model")
    release.set()
    assert raised.value.code == errors.BACKEND_TIMEOUT
    assert time.monotonic() - started < 5


def test_no_call_starts_when_the_invocation_has_no_time_left():
    with deadline.invocation(0.1), pytest.raises(TransientError) as raised:
        deadline.BoundedCalls(30).run(lambda: "never", "Model")
    assert raised.value.code == errors.OUT_OF_TIME


def test_a_call_waits_no_longer_than_the_invocation():
    release = threading.Event()
    with deadline.invocation(1.3), pytest.raises(TransientError) as raised:
        deadline.BoundedCalls(30).run(lambda: release.wait(30), "Model")
    release.set()
    assert "within 1." in raised.value.message or "within 0." in raised.value.message


def test_records_still_running_at_the_end_are_reported_and_the_rest_answered():
    release = threading.Event()
    late: list[str] = []

    def handle(record: Any) -> None:
        if record.message_id == "slow":
            release.wait(30)

    runner = BatchRunner(
        4, expected=(ProcessingError,), on_unexpected=lambda r, e: None, on_late=lambda r: late.append(r.message_id)
    )
    event = {"Records": [{"messageId": m, "body": "{}"} for m in ("a", "slow", "b")]}
    response = runner.process(event, handle, wait_seconds=0.3)
    release.set()
    assert response == {"batchItemFailures": [{"itemIdentifier": "slow"}]}
    assert late == ["slow"]


# --- versions at write time -----------------------------------------------------------------------------------


class Quiet:
    def info(self, *args: Any, **kwargs: Any) -> None: ...
    def warning(self, *args: Any, **kwargs: Any) -> None: ...
    def error(self, *args: Any, **kwargs: Any) -> None: ...


class Counting:
    def __init__(self) -> None:
        self.outcomes: list[tuple[str, str | None]] = []

    def outcome(self, status: str, code: str | None = None) -> None:
        self.outcomes.append((status, code))

    def detection(self, labels_found: int, latency_ms: float) -> None: ...
    def labels(self, accepted: list[str], near: list[str]) -> None: ...
    def challenger(self, section: dict[str, Any]) -> None: ...


def pipeline(storage: MemoryStorage, backend: Any) -> Pipeline:
    return Pipeline(
        input_prefix="test_images/",
        image_suffixes=(".jpg",),
        thresholds=Thresholds(50.0),
        backend=backend,
        storage=storage,
        telemetry=Counting(),
        log=Quiet(),
    )


def event(version: str, sequencer: str | None = None, rerun: str | None = None) -> str:
    record: dict[str, Any] = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "b"}, "object": {"key": KEY, "versionId": version, "sequencer": sequencer}},
    }
    if rerun:
        record["inferenceRerun"] = {"run": rerun}
    return json.dumps({"Records": [record]})


def test_a_message_without_a_sequencer_gives_way_when_another_version_wrote_meanwhile():
    # GIVEN v1's re-run (no sequencer) at the model while v2 is uploaded and its result written
    storage = MemoryStorage()
    storage.put("b", KEY, b"v1", version_id="v1")

    def answer(key: str) -> list[Label]:
        storage.put("b", KEY, b"v2", version_id="v2")  # v2 arrives while v1 is at the model
        pipeline(storage, FunctionBackend(lambda k: [Label("v2", 90.0)])).handle_body(event("v2", "02"))
        return [Label("v1", 90.0)]

    # WHEN v1's write finds v2's document
    outcomes = pipeline(storage, FunctionBackend(answer)).handle_body(event("v1", rerun="run-1"))

    # THEN v1 gives way: v2's result stands
    assert [o.status for o in outcomes] == ["superseded"]
    document = storage.document("b", KEY + ".json")
    assert (document["source"]["version_id"], document["labels"][0]["name"]) == ("v2", "v2")


def test_a_legacy_document_is_replaced_not_trusted():
    storage = MemoryStorage()
    storage.put("b", KEY, b"v1", version_id="v1")
    legacy = {**LEGACY_DOCUMENT, "source": {"bucket": "b", "key": KEY, "version_id": "v1", "sequencer": "F" * 30}}
    storage.put("b", KEY + ".json", json.dumps(legacy).encode())
    backend = FunctionBackend(lambda key: [Label("cat", 80.0)])

    outcomes = pipeline(storage, backend).handle_body(event("v1", "01"))

    assert [o.status for o in outcomes] == ["ok"]  # its huge sequencer is not taken at its word
    assert storage.document("b", KEY + ".json")["producer"] == PRODUCER


def test_a_legacy_document_written_mid_flight_for_a_newer_version_is_not_replaced():
    # GIVEN v1 at the model while v2 is uploaded and the previous function version (schema 1.4, no producer mark)
    # writes v2's result
    storage = MemoryStorage()
    storage.put("b", KEY, b"v1", version_id="v1")
    legacy = {**LEGACY_DOCUMENT, "source": {"bucket": "b", "key": KEY, "version_id": "v2", "sequencer": "02"}}

    def answer(key: str) -> list[Label]:
        storage.put("b", KEY, b"v2", version_id="v2")
        storage.put("b", KEY + ".json", json.dumps(legacy).encode())
        return [Label("v1", 80.0)]

    # WHEN v1's result is written
    outcomes = pipeline(storage, FunctionBackend(answer)).handle_body(event("v1", "01"))

    # THEN v1 gives way to the version that is current: the 1.4 document about v2 stands until v2's own notification
    assert [o.status for o in outcomes] == ["superseded"]
    assert storage.document("b", KEY + ".json")["source"]["version_id"] == "v2"
    # and v2's notification replaces it with the function's own document
    v2 = pipeline(storage, FunctionBackend(lambda key: [Label("v2", 80.0)])).handle_body(event("v2", "02"))
    assert [o.status for o in v2] == ["ok"]
    assert storage.document("b", KEY + ".json")["producer"] == PRODUCER


def test_a_document_that_claims_a_later_event_for_a_version_that_is_gone_is_replaced():
    # v2's result stands, then v2 is deleted (v1 current again) and v1's notification arrives late
    storage = MemoryStorage()
    storage.put("b", KEY, b"v1", version_id="v1")
    ours = {**OUR_DOCUMENT, "source": {"bucket": "b", "key": KEY, "version_id": "v2", "sequencer": "02"}}
    storage.put("b", KEY + ".json", json.dumps(ours).encode(), metadata={PRODUCER_METADATA: PRODUCER})
    outcomes = pipeline(storage, FunctionBackend(lambda key: [Label("cat", 80.0)])).handle_body(event("v1", "01"))
    assert [o.status for o in outcomes] == ["ok"]
    assert storage.document("b", KEY + ".json")["source"]["version_id"] == "v1"


def test_an_oversized_document_at_the_result_key_is_not_read_and_not_replaced():
    storage = MemoryStorage()
    storage.put("b", KEY, b"v1", version_id="v1")
    storage.put("b", KEY + ".json", b" " * (3 * 1024 * 1024))
    backend = FunctionBackend()
    for redelivered in (False, True):
        with pytest.raises(TransientError) as raised:
            pipeline(storage, backend).handle_body(event("v1", "01"), redelivered=redelivered)
        assert raised.value.code == errors.RESULT_KEY_TAKEN
        assert "was not read" in raised.value.message
    assert backend.calls == [KEY]  # the first delivery learns of it from its refused write; a redelivery reads first
    assert len(storage.objects[("b", KEY + ".json")]) == 3 * 1024 * 1024


class LostAnswerStorage(MemoryStorage):
    """S3 took the PUT but its answer was lost: botocore retried, and the retry's If-None-Match found the key
    taken by the first attempt (412), which is all the caller sees."""

    def write_json(self, bucket: str, key: str, document: dict[str, Any], **conditions: Any) -> None:
        super().write_json(bucket, key, document, **conditions)
        raise WriteConflict(f"{key} changed")


def test_a_write_whose_answer_was_lost_is_written_not_a_duplicate():
    storage = LostAnswerStorage()
    storage.put("b", KEY, b"v1", version_id="v1")
    outcomes = pipeline(storage, FunctionBackend(lambda key: [Label("cat", 80.0)])).handle_body(event("v1", "01"))
    assert [o.status for o in outcomes] == ["ok"]
    assert storage.document("b", KEY + ".json")["labels"][0]["name"] == "cat"
    assert len(storage.writes) == 1
