"""Peak RSS (this process and the decode processes it starts) while one batch of ten large images goes through the
real handler (fresh process).

argv: path to the image (each of the ten records points at it), the function's memory in MB. The SageMaker
backend answers at once; storage reads the file, as after a GetObject. Prints JSON: idle and peak RSS,
outcomes, the budget's own peak, seconds.
"""

import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.fakes import FileStorage, SageMaker, TreePeak, rss_kb
from inferctl.emulator.runtime import LambdaContext
from lambdas.contract.settings import Settings
from lambdas.inference import environment, handler, telemetry
from lambdas.inference.backends.sagemaker import SageMakerBackend


def main() -> None:
    path, memory_mb = Path(sys.argv[1]), sys.argv[2]
    env = {
        "BACKEND": "sagemaker",
        "SAGEMAKER_ENDPOINT_NAME": "ep",
        "RECORD_CONCURRENCY": "10",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": memory_mb,
    }
    settings = Settings.from_env(env)
    storage = FileStorage(path)
    runtime = environment.build_runtime(settings, backend=SageMakerBackend("ep", client=SageMaker()), storage=storage)
    import PIL.Image  # noqa: F401 - part of the idle process, so only the work is measured

    size = path.stat().st_size

    def record(index: int) -> dict[str, Any]:
        obj = {"key": f"test_images/large-{index}{path.suffix}", "size": size, "eTag": f"e{index}"}
        body = {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": "b"}, "object": obj},
                }
            ]
        }
        return {"messageId": f"m{index}", "receiptHandle": "r", "body": json.dumps(body), "attributes": {}}

    event = {"Records": [record(index) for index in range(10)]}
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    idle = rss_kb("VmRSS")
    started = time.perf_counter()
    with (
        TreePeak() as tree,
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(io.StringIO()),
        environment.bound(runtime),
    ):
        telemetry.logger.registered_handler.setStream(devnull)  # type: ignore[attr-defined]
        response = handler.lambda_handler(event, LambdaContext(memory_limit_in_mb=int(memory_mb), timeout_seconds=900))
    seconds = time.perf_counter() - started
    peak = tree.peak_kb  # the decode helper and its children included, as Lambda counts them
    statuses = [storage.documents.get(f"test_images/large-{i}{path.suffix}.json", {}).get("status") for i in range(10)]
    print(
        json.dumps(
            {
                "idle_kb": idle,
                "peak_kb": peak,
                "failed": len(response["batchItemFailures"]),
                "statuses": statuses,
                "budget_peak_mb": runtime.pipeline.budget.peak / 2**20 if runtime.pipeline.budget else None,
                "seconds": seconds,
            }
        )
    )


main()
