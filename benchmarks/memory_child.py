"""Peak RSS while one image goes through the handler's pipeline on one backend path (fresh process).

argv: backend (rekognition|sagemaker), path to a JPEG. Prints JSON: idle and peak RSS, bytes read.
"""

import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.fakes import FileStorage, Rekognition, SageMaker, TreePeak, rss_kb
from lambdas.contract.settings import Settings
from lambdas.inference import environment
from lambdas.inference.backends.rekognition import RekognitionBackend
from lambdas.inference.backends.sagemaker import SageMakerBackend

ARN = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v.2024-01-01T00.00.00/1700000000000"


def main() -> None:
    backend_name, path = sys.argv[1], Path(sys.argv[2])
    storage = FileStorage(path)
    if backend_name == "rekognition":
        settings = Settings.from_env({"REKOGNITION_MODEL_ARN": ARN})
        backend: Any = RekognitionBackend(ARN, client=Rekognition())
    else:
        settings = Settings.from_env({"BACKEND": "sagemaker", "SAGEMAKER_ENDPOINT_NAME": "ep"})
        backend = SageMakerBackend("ep", client=SageMaker())
    runtime = environment.build_runtime(settings, backend=backend, storage=storage)
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
    with TreePeak() as tree:
        outcomes = runtime.pipeline.handle_body(body)
    seconds = time.perf_counter() - started
    peak = tree.peak_kb  # the decode helper and its children included, as Lambda counts them
    assert outcomes[0].status == "ok", outcomes
    print(
        json.dumps(
            {"idle_kb": idle, "peak_kb": peak, "bytes_read": storage.bytes_read, "seconds": seconds},
        )
    )


main()
