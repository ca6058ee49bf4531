"""In-memory stand-ins for the pipeline's ports (storage and backend), for tests without AWS."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from lambdas.inference import errors
from lambdas.inference.backends import ImageSource
from lambdas.inference.errors import PermanentError
from lambdas.inference.model import Detection, ImageFacts, Label, ObjectRef
from lambdas.inference.thresholds import Thresholds


class MemoryStorage:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.writes: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.objects[(bucket, key)] = data

    def read(self, ref: ObjectRef) -> bytes:
        try:
            return self.objects[(ref.bucket, ref.key)]
        except KeyError:
            raise PermanentError(errors.OBJECT_NOT_FOUND, f"no {ref.key}") from None

    def read_head(self, ref: ObjectRef, length: int) -> bytes:
        return self.read(ref)[:length]

    def read_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        data = self.objects.get((bucket, key))
        return json.loads(data) if data else None

    def write_json(self, bucket: str, key: str, document: dict[str, Any]) -> None:
        with self._lock:
            self.objects[(bucket, key)] = json.dumps(document).encode()
            self.writes.append((bucket, key))

    def document(self, bucket: str, key: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.objects[(bucket, key)])
        return document


class FunctionBackend:
    """A backend whose answer is a function of the image's key (may sleep, wait or raise)."""

    name = "fake"
    model_id = "fake-model"

    def __init__(self, answer: Callable[[str], list[Label]] | None = None) -> None:
        self.answer = answer or (lambda key: [Label("thing", 80.0)])
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def detect(self, image: ImageSource, thresholds: Thresholds) -> Detection:
        with self._lock:
            self.calls.append(image.ref.key)
        labels = self.answer(image.ref.key)
        return Detection(labels=tuple(labels), image=ImageFacts(sent_as="s3_object"), latency_ms=1.0)
