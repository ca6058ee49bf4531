"""Where the execution environment's threads run: on one CPU in Lambda up to one vCPU's worth of CPU time, wherever
the kernel likes everywhere else (placement.py)."""

from __future__ import annotations

import json
import os

import pytest

from lambdas.inference.placement import ONE_VCPU_MB, one_cpu
from tests.support.fresh import run_probe

IN_LAMBDA = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}
ARN = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v.1/1700000000000"


@pytest.mark.parametrize(
    ("environ", "allowed", "current", "chosen"),
    [
        ({**IN_LAMBDA, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}, {0, 1}, 1, 1),  # the CPU it started on
        ({**IN_LAMBDA, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}, {0, 1}, None, 0),  # unknown: the first allowed
        ({**IN_LAMBDA, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}, {2, 3}, 0, 2),  # not an allowed one: ditto
        ({**IN_LAMBDA, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(ONE_VCPU_MB)}, {0, 1}, 0, 0),
        ({**IN_LAMBDA, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(ONE_VCPU_MB + 1)}, {0, 1}, 0, None),  # more CPU time
        ({**IN_LAMBDA, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008"}, {0, 1}, 0, None),
        ({**IN_LAMBDA, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}, {0}, 0, None),  # one CPU already
        ({**IN_LAMBDA, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}, {0, 1}, 0, None),
        ({**IN_LAMBDA}, {0, 1}, 0, None),
        ({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}, {0, 1}, 0, None),  # the embedded stack, a test: not Lambda
    ],
)
def test_the_cpu_chosen(environ: dict[str, str], allowed: set[int], current: int | None, chosen: int | None):
    assert one_cpu(environ, allowed, current) == chosen


# The real first invoke's runtime, then a batch of ten on its record threads, each saying where it may run.
PROBE = """
import json, os
from lambdas.inference import environment
before = sorted(os.sched_getaffinity(0))
runner = environment.runtime().runner
seen = []
event = {"Records": [{"messageId": f"m{i}", "body": "{}"} for i in range(10)]}
response = runner.process(event, lambda record: seen.append(sorted(os.sched_getaffinity(0))), wait_seconds=30)
print(json.dumps({"before": before, "main": sorted(os.sched_getaffinity(0)), "records": seen, "response": response}))
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nothing to keep the threads off")
@pytest.mark.parametrize(("variables", "one"), [(IN_LAMBDA, True), ({}, False)], ids=["in-lambda", "elsewhere"])
def test_an_execution_environments_threads_run_on_the_cpu_it_chose(variables: dict[str, str], one: bool):
    seen, lines = run_probe(
        PROBE, {**variables, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", "REKOGNITION_MODEL_ARN": ARN}
    )
    assert seen["response"] == {"batchItemFailures": []}
    assert len(seen["records"]) == 10
    if one:
        assert len(seen["main"]) == 1
        assert seen["main"][0] in seen["before"]
        assert all(cpus == seen["main"] for cpus in seen["records"])
    else:
        assert seen["main"] == seen["before"]
        assert all(cpus == seen["before"] for cpus in seen["records"])
    configured = next(json.loads(line) for line in lines if '"Configured"' in line)
    assert configured.get("cpu") == (seen["main"][0] if one else None)
