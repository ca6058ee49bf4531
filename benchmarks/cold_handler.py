"""Cold start of this project's handler: import it and serve a first one-record batch.

The context is Lambda's as the runtime passes it, built here from the standard library: importing the
embedded stack's own context class would charge the emulator's imports to the handler."""

import time

STARTED = time.perf_counter()
STARTED_CPU = time.process_time()

import json  # noqa: E402
import sys  # noqa: E402

from lambdas.inference.handler import lambda_handler  # noqa: E402


class Context:
    function_name = "image-inference"
    memory_limit_in_mb = 1024
    aws_request_id = "cold-start"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:image-inference"
    log_stream_name = "local"
    deadline = time.monotonic() + 60

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


response = lambda_handler(json.loads(sys.argv[1]), Context())
assert response == {"batchItemFailures": []}, response
print(json.dumps({"seconds": time.perf_counter() - STARTED, "cpu_seconds": time.process_time() - STARTED_CPU}))
