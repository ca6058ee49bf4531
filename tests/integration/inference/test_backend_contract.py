"""The backend port's contract, for every registered backend and for the in-memory fake the other tests use.

Each registered backend runs its real adapter with a real boto3 client against its own emulation on the
local services server (``inferctl.emulator.models``), so a new backend module is held to the same
contract by registering it: the image reaches the model, the model's findings come back in the shared
shape (percent confidences, boxes as ratios), the service's faults become the project's error kinds, and the
pipeline writes the documented result document.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from PIL import Image

from inferctl.emulator.models import emulation as emulation_of
from inferctl.emulator.models.base import ModelFault, Prediction
from inferctl.emulator.services import LocalModels, local_services
from lambdas.contract import errors
from lambdas.contract.errors import PermanentError, TransientError
from lambdas.contract.settings import Settings
from lambdas.contract.thresholds import Thresholds
from lambdas.contract.values import ObjectRef
from lambdas.inference.backends import REGISTERED, ClientOptions, InferenceBackend, adapter
from lambdas.inference.pipeline import Pipeline
from tests.support import pictures
from tests.support.memory import FunctionBackend, MemoryStorage

IMAGE = pictures.jpeg(320, 240)
KEY = "test_images/contract.jpg"
PREDICTIONS = [
    Prediction(0, "sun", 0.93, (0.1, 0.2, 0.4, 0.6)),
    Prediction(1, "tree", 0.41, (0.5, 0.5, 0.9, 1.0)),
]
FAULTS = {
    "throttled": (TransientError, errors.BACKEND_THROTTLED),
    "not_ready": (TransientError, errors.MODEL_NOT_READY),
    "rejected": (PermanentError, errors.BACKEND_REJECTED_IMAGE),
    "internal": (TransientError, errors.BACKEND_UNAVAILABLE),
}


class ScriptedModel:
    """Records what it was sent; answers the predictions, or raises the fault it is told to."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.fault: str | None = None

    def __call__(self, body: bytes, content_type: str) -> list[Prediction]:
        self.received.append(body)
        if self.fault:
            raise ModelFault(self.fault, f"scripted {self.fault}")
        return list(PREDICTIONS)


class Source:
    def __init__(self, storage: MemoryStorage) -> None:
        self.ref = ObjectRef(bucket="bkt", key=KEY, version_id="v1", etag="e1", size=len(IMAGE))
        self._storage = storage
        self.budget = None

    def read(self) -> bytes:
        return IMAGE

    def read_head(self, length: int) -> bytes:
        return IMAGE[:length]


Harness = tuple[InferenceBackend, ScriptedModel, MemoryStorage]


@pytest.fixture(params=[*REGISTERED, "in-memory fake"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    model, storage = ScriptedModel(), MemoryStorage()
    storage.put("bkt", KEY, IMAGE)
    if request.param == "in-memory fake":
        yield FakeAdapter(model), model, storage
        return
    create = adapter(request.param)
    emulation = emulation_of(request.param)

    def fetch(bucket: str, key: str, version: str | None) -> bytes:
        return storage.read(ObjectRef(bucket, key))

    with local_services(LocalModels({emulation.stand_in_id: model}, fetch)) as url:
        context = emulation.demo_context(emulation.stand_in_id, ["sun", "tree"])
        settings = Settings.from_context(context.get)
        service: Any = _service_of(emulation.endpoint_variable)
        client = boto3.client(service, endpoint_url=url, region_name="us-east-1")
        yield create(settings.model, ClientOptions(read_timeout=5), client), model, storage


def _service_of(endpoint_variable: str) -> str:
    """boto3's service name from its endpoint variable (AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME -> sagemaker-runtime)."""
    return endpoint_variable.removeprefix("AWS_ENDPOINT_URL_").lower().replace("_", "-")


class FakeAdapter:
    """The in-memory fake (tests/support/memory.py) wrapped so that it answers the scripted model."""

    def __init__(self, model: ScriptedModel) -> None:
        self.model = model
        self.name, self.model_id = "fake", "fake-model"

    def needs_bytes(self, ref: Any) -> bool:
        return True

    def detect(self, image: Any, thresholds: Thresholds) -> Any:
        def answer(key: str) -> list[Any]:
            from lambdas.contract.values import BoundingBox, Label

            try:
                found = self.model(image.read(), "image/jpeg")
            except ModelFault as fault:
                kind, code = FAULTS[fault.kind]
                raise kind(code, fault.message) from None
            return [Label(p.name, p.score * 100, BoundingBox.from_corners(*(p.corners or (0, 0, 1, 1)))) for p in found]

        return FunctionBackend(answer).detect(image, thresholds)


def test_the_image_reaches_the_model_and_findings_come_back_in_the_shared_shape(harness: Harness):
    backend, model, storage = harness
    detection = backend.detect(Source(storage), Thresholds(0.0))

    (sent,) = model.received
    assert Image.open(io.BytesIO(sent)).size == (320, 240)  # this image, as bytes or read by reference
    found = sorted((label.name, round(label.confidence, 3), label.box) for label in detection.labels)
    assert [(name, confidence) for name, confidence, _ in found] == [("sun", 93.0), ("tree", 41.0)]
    sun_box = found[0][2]
    assert sun_box is not None
    assert (sun_box.left, sun_box.top) == pytest.approx((0.1, 0.2))
    assert (sun_box.width, sun_box.height) == pytest.approx((0.3, 0.4))


@pytest.mark.parametrize("fault", list(FAULTS))
def test_service_faults_become_the_project_error_kinds(harness: Harness, fault: str):
    backend, model, storage = harness
    model.fault = fault
    kind, code = FAULTS[fault]
    with pytest.raises(kind) as raised:
        backend.detect(Source(storage), Thresholds(50.0))
    assert type(raised.value) is kind or isinstance(raised.value, kind)
    assert raised.value.code == code


def test_the_pipeline_writes_the_documented_result_document(harness: Harness):
    backend, _, storage = harness
    telemetry: list[tuple[str, str | None]] = []

    class Telemetry:
        def outcome(self, status: str, code: str | None = None) -> None:
            telemetry.append((status, code))

        def detection(self, labels_found: int, latency_ms: float) -> None:
            pass

        def labels(self, accepted: list[str], near: list[str]) -> None:
            pass

        def challenger(self, section: dict[str, object]) -> None:
            pass

    pipeline = Pipeline(
        input_prefix="test_images/",
        image_suffixes=(".jpg",),
        thresholds=Thresholds(50.0),
        backend=backend,
        storage=storage,
        telemetry=Telemetry(),
        log=_Quiet(),
    )
    body = (
        '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "bkt"},'
        f' "object": {{"key": "{KEY}", "size": {len(IMAGE)}, "eTag": "e1", "versionId": "v1"}}}}}}]}}'
    )
    pipeline.handle_body(body)

    document = storage.document("bkt", KEY + ".json")
    assert document["status"] == "ok"
    assert document["model"]["backend"] == backend.name
    assert document["model"]["model_id"] == backend.model_id
    assert [label["name"] for label in document["labels"]] == ["sun"]
    # (whether "tree" was returned and rejected depends on the service's own minimum: not part of the contract)
    assert document["source"]["version_id"] == "v1"
    assert telemetry == [("ok", None)]


class _Quiet:
    def info(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
    def error(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
