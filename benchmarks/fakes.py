"""What the benchmark children share: RSS readings, file-backed storage, and model clients that answer at once."""

import json
import os
import threading
from pathlib import Path
from typing import Any

from lambdas.contract.values import ObjectRef
from lambdas.inference.storage import Head


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


class TreePeak:
    """The peak resident memory of this process and the processes it started (the decode helper and its children),
    sampled every few milliseconds while the block runs, as the Lambda-faithful harness counts it; this process's own
    peak (VmHWM) is taken too, so nothing between two samples escapes."""

    def __init__(self, every: float = 0.005) -> None:
        from inferctl.emulator.isolation import ProcessTree

        self._tree = ProcessTree(os.getpid())
        self._every = every
        self._stop = threading.Event()
        self.peak_kb = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self._tree.resident_kb())
            self._stop.wait(self._every)

    def __enter__(self) -> "TreePeak":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, rss_kb("VmHWM"))


class FileStorage:
    """S3 stand-in backed by a file: bytes exist in memory only once read, as after a GetObject."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bytes_read = 0
        self.documents: dict[str, dict[str, Any]] = {}

    def read(self, ref: ObjectRef) -> bytes:
        data = self.path.read_bytes()
        self.bytes_read += len(data)
        return data

    def read_head(self, ref: ObjectRef, length: int) -> bytes:
        with self.path.open("rb") as file:
            data = file.read(length)
        self.bytes_read += len(data)
        return data

    def head_current(self, bucket: str, key: str, length: int, *, whole: bool = False) -> Head:
        return Head(self.read_head(ObjectRef(bucket, key), length), None, None, self.path.stat().st_size)

    def read_rest(self, ref: ObjectRef, head: Head) -> bytes:
        return head.data if head.complete else self.read(ref)

    def read_result(self, bucket: str, key: str) -> None:
        return None

    def write_json(self, bucket: str, key: str, document: dict[str, Any], **conditions: Any) -> None:
        json.dumps(document)
        self.documents[key] = document


class Rekognition:
    def detect_custom_labels(self, **request: Any) -> dict[str, Any]:
        return {"CustomLabels": [{"Name": "x", "Confidence": 90.0}]}


class Body:
    def read(self, amount: int | None = None) -> bytes:
        return b'{"prediction": [[0.0, 0.9, 0.1, 0.1, 0.5, 0.5]]}'


class SageMaker:
    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        return {"Body": Body()}
