"""Test-wide environment: no real AWS credentials, no network, no X-Ray, quiet jsii."""

from __future__ import annotations

import os

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
    }
)
for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS"):
    os.environ.pop(variable, None)


def pytest_addoption(parser):
    parser.addoption(
        "--big-photos",
        choices=("slice", "all"),
        default="slice",
        help="the big-photo family through the Lambda-faithful harness: a slice (make test) or every case",
    )
