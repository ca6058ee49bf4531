"""Tuning the stack never replaces what holds data. Changing thresholds, the model or backend, batching,
memory or timeout must leave every stateful resource (the key, the bucket, the queues, the log group) with
the same logical ID and the same replacement-triggering properties, so CloudFormation updates the function
and nothing else is rebuilt. Two stacks with different names coexist: no hard-coded physical names."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import build_app
from stacks.config import cdk_json_context

from .synth import synth

MODEL_ARN = (
    "arn:aws:rekognition:us-east-1:123456789012:project/flowers/version/flowers.2024-01-01T00.00.00/1700000000000"
)

# Properties whose change makes CloudFormation replace the resource (its "Update requires: Replacement").
REPLACING = {
    "AWS::KMS::Key": ("KeySpec", "KeyUsage", "MultiRegion"),
    "AWS::S3::Bucket": ("BucketName", "ObjectLockEnabled"),
    "AWS::SQS::Queue": ("QueueName", "FifoQueue"),
    "AWS::Logs::LogGroup": ("LogGroupName",),
}
# Physical names a second stack in the same account would collide on.
NAMED = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::CloudWatch::Alarm": "AlarmName",
}

VARIATIONS: dict[str, dict[str, Any]] = {
    "thresholds": {"minConfidence": 72.5, "labelThresholds": '{"Rose": 90}'},
    "rekognition model": {"rekognitionModelArn": MODEL_ARN},
    "sagemaker backend": {"backend": "sagemaker", "sagemakerEndpointName": "flowers-v2"},
    "batching": {"batchSize": 50, "maxBatchingWindowSeconds": 5, "maxConcurrency": 5},
    "memory and timeout": {"lambdaMemoryMb": 3008, "lambdaTimeoutSeconds": 120},
    "retries and logging": {"maxReceiveCount": 3, "retryMaxAttempts": 5, "tracing": False},
}


def stateful(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any], Any, Any]]:
    """Each stateful resource: its type, replacement-triggering properties and deletion policies."""
    found = {}
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        if kind in REPLACING:
            properties = resource.get("Properties", {})
            replacing = {name: properties.get(name) for name in REPLACING[kind]}
            found[logical_id] = (kind, replacing, resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy"))
    return found


@pytest.mark.parametrize("variation", sorted(VARIATIONS))
def test_a_tuning_change_replaces_no_stateful_resource(variation: str) -> None:
    before = stateful(synth().json)
    after = stateful(synth(**VARIATIONS[variation]).json)

    assert {kind for kind, *_ in before.values()} == set(REPLACING)  # all four kinds are watched
    assert after == before


def test_the_variations_do_change_the_function() -> None:
    """The variations above are real changes: each one alters the function or its trigger."""

    def function_side(template: dict[str, Any]) -> str:
        kinds = ("AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping", "AWS::IAM::Policy")
        return json.dumps([r for r in template["Resources"].values() if r["Type"] in kinds], sort_keys=True)

    default = function_side(synth().json)
    assert all(function_side(synth(**context).json) != default for context in VARIATIONS.values())


def test_two_stacks_with_different_names_coexist_in_one_app(tmp_path) -> None:
    app = cdk.App(outdir=str(tmp_path), context={**cdk_json_context(), "aws:cdk:bundling-stacks": []})
    _, first = build_app(app, bundle=False)
    _, second = build_app(app, bundle=False, overrides={"stackName": "ImageInferenceStaging"})
    app.synth()  # one app, two stacks: no construct or output collides

    assert (first.stack_name, second.stack_name) == ("ImageInference", "ImageInferenceStaging")
    for stack in (first, second):
        template = Template.from_stack(stack).to_json()
        named = [
            f"{logical_id}.{NAMED[r['Type']]}"
            for logical_id, r in template["Resources"].items()
            if r["Type"] in NAMED and NAMED[r["Type"]] in r.get("Properties", {})
        ]
        assert named == [], f"{stack.stack_name} hard-codes physical names: {named}"


BOUNDARY = "arn:aws:iam::123456789012:policy/platform/DeveloperBoundary"


def test_tags_reach_every_taggable_resource_and_the_boundary_every_role() -> None:
    s = synth(tags={"CostCenter": "1234", "Owner": "ml-platform"}, permissionsBoundaryArn=BOUNDARY)
    resources = s.json["Resources"]
    taggable = ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::SQS::Queue", "AWS::Lambda::Function", "AWS::IAM::Role")
    for logical_id, resource in resources.items():
        if resource["Type"] in taggable:
            tags = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
            assert tags.get("CostCenter") == "1234", logical_id
            assert tags.get("Owner") == "ml-platform", logical_id
    roles = {name: r for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    assert roles
    for name, role in roles.items():
        assert role["Properties"].get("PermissionsBoundary") == BOUNDARY, name
    # Neither changes a stateful resource's identity.
    assert stateful(s.json) == stateful(synth().json)


def test_without_the_options_nothing_is_tagged_or_bounded() -> None:
    resources = synth().json["Resources"].values()
    assert not [r for r in resources if r["Type"] == "AWS::IAM::Role" and "PermissionsBoundary" in r["Properties"]]
    assert not [r for r in resources if any(t["Key"] == "CostCenter" for t in r.get("Properties", {}).get("Tags", []))]
