"""Test-wide environment: no real AWS credentials, no network, no X-Ray, quiet jsii."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

# Set before anything imports boto3 or Powertools. Real credentials on a developer's machine must never
# be used by tests, so these override rather than default.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "image-inference-test",
        "POWERTOOLS_METRICS_NAMESPACE": "ImageInferenceTest",
        "POWERTOOLS_DEV": "false",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        # The CDK's built-in "CloudFormation Validate" plugin costs about 7 s of CPU per synthesis here (an empty
        # stack's too), and the template tests synthesize dozens of contexts in-process for their contracts, cdk-nag
        # and cfn-lint. The README's deploy lines (test_readme_deploy.py) run the CLI without this variable, as a user
        # does: every documented context passes it there, with cdk.json making its errors fail the synthesis.
        "CDK_VALIDATION": "false",
    }
)
for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS"):
    os.environ.pop(variable, None)

# pytest rewrites each test module's asserts and keeps the result beside it (``-pytest-*.pyc``) unless bytecode is not
# to be written: with PYTHONDONTWRITEBYTECODE set (as on this project's machines) every worker rewrote every module at
# every run, about 3.7 s of CPU a worker. This process writes them (into the tests' own, ignored ``__pycache__``, as
# ``make bytecode`` does for the sources); the processes the tests start keep the variable as it is.
sys.dont_write_bytecode = False


def pytest_configure(config):
    # A test process holds large heaps that live for the whole session (the emulator's state, botocore's models, the
    # jsii kernel's objects), and every full collection scans them all again to free nothing: a full collection a
    # tenth as often (young ones as before) took a fifth of the CPU off an end-to-end test (docs/decisions.md).
    young, middle, _full = gc.get_threshold()
    gc.set_threshold(young, middle, 100)


def pytest_addoption(parser):
    parser.addoption(
        "--big-photos",
        choices=("slice", "all"),
        default="slice",
        help="the big-photo family through the Lambda-faithful harness: a slice (make test) or every case",
    )


# Longest first: with --no-loadscope-reorder (pyproject.toml), xdist hands modules to its workers in this order, two
# at a time and then one as each finishes. The end-to-end modules wait on emulated time and rate limits (a burst at
# 5 calls a second is a minute whatever the machine), so they start first and the many short unit modules fill in
# at the end, instead of a one-test module that waits a minute starting last (xdist's default order: most tests first).
FIRST_TO_LAST = ("e2e", "infrastructure", "integration", "unit")


def pytest_collection_modifyitems(items):
    def rank(item):
        folder = item.path.relative_to(Path(__file__).parent).parts[0]
        return FIRST_TO_LAST.index(folder) if folder in FIRST_TO_LAST else len(FIRST_TO_LAST)

    items.sort(key=rank)  # stable: a module's tests keep their order
