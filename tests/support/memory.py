"""In-memory stand-ins for the pipeline's ports (storage and backend), for tests without AWS."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Callable
from typing import Any

from lambdas.contract import errors
from lambdas.contract.errors import PermanentError
from lambdas.contract.results import MAX_RESULT_DOCUMENT_BYTES, PRODUCER, PRODUCER_METADATA, image_key_of
from lambdas.contract.thresholds import Thresholds
from lambdas.contract.values import Detection, ImageFacts, Label, ObjectRef
from lambdas.inference.backends import ImageSource
from lambdas.inference.storage import (
    Existing,
    Head,
    ObjectGone,
    WriteConflict,
    existing,
    too_large,
)


class MemoryStorage:
    """S3 in a dictionary: current objects with their version and ETag, conditional writes like S3's."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.versions: dict[tuple[str, str], str | None] = {}
        self.etags: dict[tuple[str, str], str] = {}
        self.metadata: dict[tuple[str, str], dict[str, str]] = {}
        self.writes: list[tuple[str, str]] = []
        self.gets: list[str] = []  # the key of every GET, as S3 would bill them
        self._lock = threading.Lock()

    def put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        version_id: str | None = None,
        etag: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str:
        """Store an object as the current version; its ETag (``etag``, or S3's MD5) is returned."""
        self.objects[(bucket, key)] = data
        self.metadata[(bucket, key)] = dict(metadata or {})
        self.versions[(bucket, key)] = version_id
        self.etags[(bucket, key)] = etag or self.etag(data)
        return self.etags[(bucket, key)]

    def delete(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)

    @staticmethod
    def etag(data: bytes) -> str:
        return hashlib.md5(data).hexdigest()

    def read(self, ref: ObjectRef) -> bytes:
        self.gets.append(ref.key)
        try:
            return self.objects[(ref.bucket, ref.key)]
        except KeyError:
            raise PermanentError(errors.OBJECT_NOT_FOUND, f"no {ref.key}") from None

    def read_head(self, ref: ObjectRef, length: int) -> bytes:
        return self.read(ref)[:length]  # counted once, as one ranged GET

    def head_current(self, bucket: str, key: str, length: int, *, whole: bool = False) -> Head:
        self.gets.append(key)
        data = self.objects.get((bucket, key))
        if data is None:
            raise ObjectGone(f"no {key}")
        rest = io.BytesIO(data[length:]) if whole and len(data) > length else None
        return Head(data[:length], self.versions.get((bucket, key)), self.etags[(bucket, key)], len(data), rest)

    def read_rest(self, ref: ObjectRef, head: Head) -> bytes:
        if head.complete:
            return head.data
        if head.rest is None:
            return self.read(ref)
        try:
            return head.data + bytes(head.rest.read())
        finally:
            head.close()

    def read_result(self, bucket: str, key: str) -> Existing | None:
        self.gets.append(key)
        data = self.objects.get((bucket, key))
        if data is None:
            return None
        if len(data) > MAX_RESULT_DOCUMENT_BYTES:
            return too_large(len(data), self.etag(data))
        return existing(data, self.etag(data), image_key_of(key), self.metadata.get((bucket, key), {}))

    def write_json(
        self,
        bucket: str,
        key: str,
        document: dict[str, Any],
        *,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> None:
        with self._lock:
            current = self.objects.get((bucket, key))
            if (if_absent and current is not None) or (
                if_match is not None and (current is None or self.etag(current) != if_match)
            ):
                raise WriteConflict(f"{key} changed")
            self.objects[(bucket, key)] = json.dumps(document).encode()
            self.metadata[(bucket, key)] = {PRODUCER_METADATA: PRODUCER}
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

    def needs_bytes(self, ref: ObjectRef) -> bool:
        return False

    def detect(self, image: ImageSource, thresholds: Thresholds) -> Detection:
        with self._lock:
            self.calls.append(image.ref.key)
        labels = self.answer(image.ref.key)
        return Detection(labels=tuple(labels), image=ImageFacts(sent_as="s3_object"), latency_ms=1.0)
