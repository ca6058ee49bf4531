"""Cold start of this project's handler: import it and serve a first one-record batch."""

import time

STARTED = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402

from inferctl.local.emulator.runtime import LambdaContext  # noqa: E402
from lambdas.inference.handler import lambda_handler  # noqa: E402

response = lambda_handler(json.loads(sys.argv[1]), LambdaContext())
assert response == {"batchItemFailures": []}, response
print(json.dumps({"seconds": time.perf_counter() - STARTED}))
