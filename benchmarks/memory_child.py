"""Peak RSS while one image goes through the handler's pipeline on one backend path (fresh process).

argv: backend (rekognition|sagemaker), path to a JPEG. Prints JSON: idle and peak RSS, bytes read.
"""

import json
import sys
import time
from pathlib import Path
from typing import Any

from lambdas.inference import handler
from lambdas.inference.backends.rekognition import RekognitionBackend
from lambdas.inference.backends.sagemaker import SageMakerBackend
from lambdas.inference.model import ObjectRef
from lambdas.inference.settings import Settings

ARN = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v.2024-01-01T00.00.00/1700000000000"


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


class FileStorage:
    """S3 stand-in backed by a file: bytes exist in memory only once read, as after a GetObject."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bytes_read = 0

    def read(self, ref: ObjectRef) -> bytes:
        data = self.path.read_bytes()
        self.bytes_read += len(data)
        return data

    def read_head(self, ref: ObjectRef, length: int) -> bytes:
        with self.path.open("rb") as file:
            data = file.read(length)
        self.bytes_read += len(data)
        return data

    def read_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        return None

    def write_json(self, bucket: str, key: str, document: dict[str, Any]) -> None:
        json.dumps(document)


class Rekognition:
    def detect_custom_labels(self, **request: Any) -> dict[str, Any]:
        return {"CustomLabels": [{"Name": "x", "Confidence": 90.0}]}


class Body:
    def read(self) -> bytes:
        return b'{"prediction": [[0.0, 0.9, 0.1, 0.1, 0.5, 0.5]]}'


class SageMaker:
    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        return {"Body": Body()}


def main() -> None:
    backend_name, path = sys.argv[1], Path(sys.argv[2])
    storage = FileStorage(path)
    if backend_name == "rekognition":
        settings = Settings.from_env({"REKOGNITION_MODEL_ARN": ARN})
        backend: Any = RekognitionBackend(ARN, client=Rekognition())
    else:
        settings = Settings.from_env({"BACKEND": "sagemaker", "SAGEMAKER_ENDPOINT_NAME": "ep"})
        backend = SageMakerBackend("ep", client=SageMaker())
    runtime = handler.build_runtime(settings, backend=backend, storage=storage)
    import PIL.Image  # noqa: F401 - part of the idle process on both paths, so only the work is measured

    body = json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": "b"},
                        "object": {"key": "test_images/big.jpg", "size": path.stat().st_size, "eTag": "e"},
                    },
                }
            ]
        }
    )
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    idle = rss_kb("VmRSS")
    started = time.perf_counter()
    outcomes = runtime.pipeline.handle_body(body)
    seconds = time.perf_counter() - started
    peak = rss_kb("VmHWM")
    assert outcomes[0].status == "ok", outcomes
    print(
        json.dumps(
            {"idle_kb": idle, "peak_kb": peak, "bytes_read": storage.bytes_read, "seconds": seconds},
        )
    )


main()
