"""The embedded stack's resources agree with the CDK stack's, property by property: both are built from
``stacks/definitions.py``, and this test reads each side back (the synthesized template; moto's resources)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from inferctl.emulator.resources import ACCESS_LOG_PREFIX, ACCOUNT, Resources, provision
from stacks.config import StackConfig
from stacks.definitions import KEY_POLICY_SID
from tests.infrastructure.synth import Synthesized, synth

CONTEXT: dict[str, Any] = {"maxReceiveCount": 4, "lambdaTimeoutSeconds": 30, "inputPrefix": "incoming/"}


@pytest.fixture(scope="module")
def template() -> Synthesized:
    return synth(False, **CONTEXT)


@pytest.fixture(scope="module")
def embedded() -> Iterator[tuple[Any, Resources]]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        yield session, provision(session, StackConfig.from_cdk_json(CONTEXT), name="parity")


def props(s: Synthesized, construct: Any) -> dict[str, Any]:
    properties: dict[str, Any] = s.json["Resources"][s.logical_id(construct)]["Properties"]
    return properties


def test_queue_attributes_and_redrive_agree(template, embedded):
    session, resources = embedded
    sqs = session.client("sqs")
    live = sqs.get_queue_attributes(QueueUrl=resources.queue_url, AttributeNames=["All"])["Attributes"]
    declared = props(template, template.stack.ingest.queue)
    assert int(live["VisibilityTimeout"]) == declared["VisibilityTimeout"] == 180
    assert int(live["MessageRetentionPeriod"]) == declared["MessageRetentionPeriod"]
    assert int(live["KmsDataKeyReusePeriodSeconds"]) == declared["KmsDataKeyReusePeriodSeconds"]
    assert json.loads(live["RedrivePolicy"])["maxReceiveCount"] == declared["RedrivePolicy"]["maxReceiveCount"] == 4
    assert json.loads(live["RedrivePolicy"])["deadLetterTargetArn"] == resources.dead_letter_queue_arn
    assert live["KmsMasterKeyId"] == resources.key_arn  # declared: the stack's key (Fn::GetAtt)
    dlq = sqs.get_queue_attributes(QueueUrl=resources.dead_letter_queue_url, AttributeNames=["All"])["Attributes"]
    declared_dlq = props(template, template.stack.ingest.dead_letter_queue)
    assert int(dlq["MessageRetentionPeriod"]) == declared_dlq["MessageRetentionPeriod"]
    assert dlq["KmsMasterKeyId"] == resources.key_arn


def _allow_statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [statement for statement in policy["Statement"] if statement["Effect"] == "Allow"]


def test_queue_policies_agree(template, embedded):
    session, resources = embedded
    for url, queue in (
        (resources.queue_url, template.stack.ingest.queue),
        (resources.dead_letter_queue_url, template.stack.ingest.dead_letter_queue),
    ):
        live = json.loads(
            session.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]
        )
        queue_id = template.logical_id(queue)
        (declared,) = [
            statement
            for policy in template.resources("AWS::SQS::QueuePolicy").values()
            if {"Ref": queue_id} in policy["Properties"]["Queues"]
            for statement in _allow_statements(policy["Properties"]["PolicyDocument"])
        ]
        (statement,) = _allow_statements(live)
        assert statement["Principal"] == declared["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Action"] == declared["Action"]
        assert statement["Sid"] == declared["Sid"]
        assert set(statement["Condition"]) == set(declared["Condition"])
        assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == resources.rule_arn


def test_key_policy_lets_eventbridge_send_in_both(template, embedded):
    session, resources = embedded
    live = json.loads(session.client("kms").get_key_policy(KeyId=resources.key_arn, PolicyName="default")["Policy"])
    (statement,) = [s for s in live["Statement"] if s.get("Sid") == KEY_POLICY_SID]
    _, key = template.one("AWS::KMS::Key")
    (declared,) = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == KEY_POLICY_SID]
    assert sorted(statement["Action"]) == sorted(declared["Action"])
    assert statement["Principal"] == declared["Principal"]
    assert "Condition" not in statement
    assert "Condition" not in declared
    rotation = session.client("kms").get_key_rotation_status(KeyId=resources.key_arn)["KeyRotationEnabled"]
    assert rotation is key["Properties"]["EnableKeyRotation"] is True


def test_events_route_agrees(template, embedded):
    session, resources = embedded
    live = session.client("s3").get_bucket_notification_configuration(Bucket=resources.bucket)
    _, notifications = template.one("Custom::S3BucketNotifications")
    declared = notifications["Properties"]["NotificationConfiguration"]
    assert declared == {"EventBridgeConfiguration": {}}
    # moto does not echo EventBridgeConfiguration in GetBucketNotificationConfiguration; its model holds it
    from moto.s3.models import s3_backends

    configuration = s3_backends[ACCOUNT]["aws"].buckets[resources.bucket].notification_configuration
    assert configuration is not None
    assert configuration.event_bridge is not None
    assert "QueueConfigurations" not in live
    events = session.client("events")
    name = resources.rule_arn.rsplit("/", 1)[1]
    rule = events.describe_rule(Name=name)
    declared_rule = props(template, template.stack.ingest.rule)
    live_pattern = json.loads(rule["EventPattern"])
    assert live_pattern["detail"]["object"] == declared_rule["EventPattern"]["detail"]["object"]
    assert live_pattern["detail"]["bucket"] == {"name": [resources.bucket]}  # declared: {"Ref": the bucket}
    assert {k: v for k, v in live_pattern.items() if k != "detail"} == {
        k: v for k, v in declared_rule["EventPattern"].items() if k != "detail"
    }
    (target,) = events.list_targets_by_rule(Rule=name)["Targets"]
    (declared_target,) = declared_rule["Targets"]
    assert target["Arn"] == resources.queue_arn
    assert target["DeadLetterConfig"]["Arn"] == resources.dead_letter_queue_arn
    assert target["RetryPolicy"] == declared_target["RetryPolicy"]


def test_bucket_versioning_encryption_public_access_and_logging_agree(template, embedded):
    session, resources = embedded
    s3 = session.client("s3")
    declared = props(template, template.stack.ingest.bucket)
    assert s3.get_bucket_versioning(Bucket=resources.bucket)["Status"] == declared["VersioningConfiguration"]["Status"]
    (rule,) = s3.get_bucket_encryption(Bucket=resources.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    (declared_rule,) = declared["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert declared_rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["BucketKeyEnabled"] is declared_rule["BucketKeyEnabled"] is True
    block = s3.get_public_access_block(Bucket=resources.bucket)["PublicAccessBlockConfiguration"]
    assert block == declared["PublicAccessBlockConfiguration"]
    logging = s3.get_bucket_logging(Bucket=resources.bucket)["LoggingEnabled"]
    assert logging["TargetPrefix"] == declared["LoggingConfiguration"]["LogFilePrefix"] == ACCESS_LOG_PREFIX
    assert logging["TargetBucket"] == resources.access_log_bucket
