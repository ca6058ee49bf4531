"""cdk-nag, cfn-lint and context validation on the synthesized app."""

from __future__ import annotations

import json
import subprocess
import sys

import aws_cdk as cdk
import pytest

from app import build_app
from lambdas.contract.rules import ConfigError
from stacks.config import StackConfig, cdk_json_context, known_context_keys
from tests.infrastructure.synth import synth

MODEL_ARN_FOR_NAG = (
    "arn:aws:rekognition:us-east-1:123456789012:project/bees/version/bees.2025-01-01T00.00.00/1735689600000"
)


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"rekognitionModelArn": "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1700000000000"},
        {"backend": "sagemaker", "sagemakerEndpointName": "detector"},
        {"allowDestroy": True},
        {"tracing": False},
        {"autoMode": True},
        {"autoMode": True, "rekognitionModelArn": MODEL_ARN_FOR_NAG},
        {"backend": "sagemaker", "sagemakerEndpointName": "detector", "sagemakerServerless": True},
        {"challengerBackend": "sagemaker", "challengerSagemakerEndpointName": "detector-v2"},
        {
            "backend": "sagemaker",
            "sagemakerEndpointName": "detector",
            "challengerBackend": "rekognition",
            "challengerRekognitionModelArn": MODEL_ARN_FOR_NAG,
        },
    ],
    ids=[
        "default",
        "model-configured",
        "sagemaker",
        "throwaway",
        "no-tracing",
        "auto",
        "auto-model",
        "serverless",
        "challenger",
        "rekognition-challenger",
    ],
)
def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings_and_each_has_a_reason(context):
    report = synth(**context).nag_report
    (plugin,) = report["pluginReports"]
    assert plugin["pluginName"] == "AwsSolutions"
    assert plugin["violations"] == []
    assert plugin["conclusion"] == "success"
    for suppressed in plugin["suppressedViolations"]:
        # Acknowledgements name the exact finding (rule + resource), never a whole rule.
        assert "[" in suppressed["ruleName"] or suppressed["ruleName"] == "AwsSolutions-S1"
        assert len(suppressed["reason"]) >= 40, suppressed


@pytest.mark.parametrize(
    "context",
    [{}, {"backend": "sagemaker", "sagemakerEndpointName": "detector"}, {"autoMode": True}],
)
def test_cfn_lint_finds_no_errors(context):
    template = synth(**context).template_file
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "json", str(template)],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == []
    # E3004 is the circular-dependency rule; a warning-level cousin would also be a real problem.
    assert not [f for f in findings if f["Rule"]["Id"] == "E3004"]


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("backend", "bedrock", "unknown backend"),
        ("minConfidence", 150, "between 0 and 100"),
        ("minConfidence", "high", "number from 0 to 100"),
        ("labelThresholds", '{"cat": -1}', "between 0 and 100"),
        ("rekognitionModelArn", "arn:aws:s3:::bucket", "model version ARN"),
        ("sagemakerEndpointName", "-bad_name", "letters, digits or hyphens"),
        ("inputPrefix", "test_images", "ending in '/'"),
        ("maxReceiveCount", 0, "between 1 and 1000"),
        ("lambdaTimeoutSeconds", 901, "between 1 and 900"),
        ("batchSize", 50, "maxBatchingWindowSeconds"),
        ("logRetentionDays", 31, "CloudWatch Logs accepts"),
        ("imageSuffixes", [".json"], "result suffix"),
        ("alarmTopicArn", "ops-alerts", "SNS topic ARN"),
        ("alarmEmail", "ops at example", "email address"),
        ("resultWriterArns", "admin", "IAM role ARNs"),
        (
            "resultWriterArns",
            '["arn:aws:sts::123456789012:assumed-role/Admin/alice"]',
            "use arn:aws:iam::123456789012:role/Admin",
        ),
        ("lambdaMemoryMb", "128", "between 256 and 10240"),
        ("tags", "CostCenter=1234", "JSON object"),
        ("tags", {"aws:owner": "me"}, "not starting with 'aws:'"),
        ("permissionsBoundaryArn", "DeveloperBoundary", "IAM policy ARN"),
    ],
)
def test_wrong_context_fails_synthesis_naming_the_key(key, value, fragment):
    context = {**cdk_json_context(), key: value, "aws:cdk:bundling-stacks": []}
    with pytest.raises(ConfigError) as raised:
        build_app(cdk.App(context=context), bundle=False)
    assert str(raised.value).startswith(f"{key}")
    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("minConfidenc", "did you mean minConfidence?"),
        ("MinConfidence", "did you mean minConfidence?"),
        ("lambdaMemoryMB", "did you mean lambdaMemoryMb?"),
        ("sagemakerEndpoint", "did you mean sagemakerEndpointName?"),
        ("frobnicate", "docs/configuration.md lists the keys"),
    ],
)
def test_an_unknown_context_key_is_refused_with_the_nearest_known_one(key, suggestion):
    context = {**cdk_json_context(), key: "80", "aws:cdk:bundling-stacks": []}
    with pytest.raises(ConfigError) as raised:
        build_app(cdk.App(context=context), bundle=False)
    assert str(raised.value) == f"{key}: not a context key this stack reads: {suggestion}"


def test_cdk_own_context_keys_are_left_to_cdk():
    own = {
        "@aws-cdk/core:newStyleStackSynthesis": True,
        "aws:cdk:enable-path-metadata": True,
        "cli-telemetry": False,
        "acknowledged-issue-numbers": [],
        "availability-zones:account=123456789012:region=eu-west-1": ["eu-west-1a"],
    }
    build_app(cdk.App(context={**cdk_json_context(), **own, "aws:cdk:bundling-stacks": []}), bundle=False)


MODEL_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v.2025-01-01T00.00.00/1735689600000"


def test_every_key_the_configuration_reads_is_a_known_one():
    """The known keys are a list apart from the code that reads them: a key read but not listed would be refused
    as unknown. Read every backend's configuration, with a challenger, and record what is asked for."""
    asked: set[str] = set()
    for backend in ("rekognition", "sagemaker"):
        context = {
            **cdk_json_context(),
            "backend": backend,
            "sagemakerEndpointName": "primary",
            "challengerBackend": "sagemaker" if backend == "rekognition" else "rekognition",
            "challengerSagemakerEndpointName": "shadow",
            "challengerRekognitionModelArn": MODEL_ARN,
        }

        def get(key: str, context: dict[str, object] = context) -> object:
            asked.add(key)
            return context.get(key)

        StackConfig.from_context(get)
    assert asked <= known_context_keys(), sorted(asked - known_context_keys())
    assert {key for key in cdk_json_context() if key[0].isalpha() and key.isalnum()} <= known_context_keys()


def test_app_entry_point_reports_bad_context_and_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "app.py"],
        env={
            "PATH": "/usr/bin:/bin",
            "CDK_CONTEXT_JSON": json.dumps({"minConfidence": 101}),
            "CDK_OUTDIR": str(tmp_path),
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Invalid CDK context: minConfidence: must be between 0 and 100" in result.stderr


FOREIGN_MODEL = "arn:aws:rekognition:eu-west-1:123456789012:project/p/version/v/1700000000000"


@pytest.mark.parametrize(
    ("environment", "context", "message"),
    [
        (
            {"CDK_DEFAULT_REGION": "us-east-1"},
            {"rekognitionModelArn": FOREIGN_MODEL},
            "rekognitionModelArn: " + FOREIGN_MODEL + " is in eu-west-1, but the stack deploys to us-east-1",
        ),
        (
            {"CDK_DEFAULT_ACCOUNT": "210987654321"},
            {"rekognitionModelArn": FOREIGN_MODEL},
            "rekognitionModelArn: " + FOREIGN_MODEL + " belongs to account 123456789012",
        ),
        (
            {"CDK_DEFAULT_REGION": "us-east-1"},
            {"alarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:ops"},
            "alarmTopicArn: arn:aws:sns:eu-west-1:123456789012:ops is in eu-west-1",
        ),
    ],
)
def test_an_arn_outside_the_stacks_environment_is_refused_naming_the_key(monkeypatch, environment, context, message):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        build_app(cdk.App(context={**cdk_json_context(), **context, "aws:cdk:bundling-stacks": []}), bundle=False)
    assert str(raised.value).startswith(message)


def test_an_arn_in_the_stacks_environment_or_an_agnostic_stack_is_accepted(monkeypatch):
    context = {**cdk_json_context(), "rekognitionModelArn": FOREIGN_MODEL, "aws:cdk:bundling-stacks": []}
    monkeypatch.delenv("CDK_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("CDK_DEFAULT_ACCOUNT", raising=False)
    build_app(cdk.App(context=context), bundle=False)  # environment-agnostic: nothing to compare with
    monkeypatch.setenv("CDK_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("CDK_DEFAULT_ACCOUNT", "123456789012")
    _, stack = build_app(cdk.App(context=context), bundle=False)
    assert stack.region == "eu-west-1"
