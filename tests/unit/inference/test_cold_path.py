"""What the function's cold start builds. A frozen dataclass costs 0.5-1 ms to create (Python compiles each of its
generated methods at import), a NamedTuple about a sixth of that: the types the handler loads are NamedTuples,
except the two whose meaning needs a dataclass (docs/decisions.md, 2026-12-03)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# Header: its layout fields stay out of equality; Runtime: the execution environment's, assigned to.
DATACLASSES_ALLOWED = {"lambdas.inference.images.headers.Header", "lambdas.inference.environment.Runtime"}

PROBE = """
import dataclasses, json, os
made = []
process = dataclasses._process_class
def recording(cls, *args, **kwargs):
    made.append(f"{cls.__module__}.{cls.__qualname__}")
    return process(cls, *args, **kwargs)
dataclasses._process_class = recording
from lambdas.inference import environment, handler  # noqa: F401
from lambdas.contract.settings import Settings
ARN = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v.2024-01-01T00.00.00/1700000000000"
for variables in ({"REKOGNITION_MODEL_ARN": ARN}, {"BACKEND": "sagemaker", "SAGEMAKER_ENDPOINT_NAME": "e"}):
    Settings.from_env(variables)  # each backend's settings type, as a first invoke loads it
print(json.dumps([name for name in made if name.startswith("lambdas.")]))
"""


def test_the_handlers_cold_start_creates_no_dataclass_but_the_two_that_need_one():
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "POWERTOOLS_TRACE_DISABLED": "true"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=environment, capture_output=True, text=True, check=True
    )
    made = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert made == DATACLASSES_ALLOWED, f"new dataclasses on the cold path (make them NamedTuples): {made}"
