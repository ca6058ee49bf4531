"""Storage and queueing: the KMS key, the image bucket (with its access-log bucket), the queue and its
dead-letter queue, and the S3 -> EventBridge -> SQS route for images (any letter case of their suffix)."""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk.interfaces.aws_events import IRuleRef
from constructs import Construct

from stacks import definitions
from stacks.config import StackConfig


@jsii.implements(events.IRuleTarget)
class EncryptedQueueTarget:
    """EventBridge -> SQS target for a queue encrypted with a customer-managed key, with a dead-letter queue for
    the events EventBridge cannot deliver.

    Like CDK's ``SqsQueue`` target, but its key grant names the rule in the key policy, which makes a cycle
    (key -> rule -> queue -> key). Here the key policy lets ``events.amazonaws.com`` use the key with no
    condition (as the EventBridge User Guide documents it) and the queue policies pin the rule's ARN (queue
    policy -> rule is no cycle). Statements: ``definitions.py``."""

    def __init__(self, queue: sqs.Queue, dead_letter_queue: sqs.Queue, key: kms.Key) -> None:
        self.queue = queue
        self.dead_letter_queue = dead_letter_queue
        self.key = key

    def bind(self, rule: IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        rule_arn = rule.rule_ref.rule_arn
        for queue in (self.queue, self.dead_letter_queue):
            queue.add_to_resource_policy(
                iam.PolicyStatement.from_json(definitions.queue_policy_statement(queue.queue_arn, rule_arn))
            )
        self.key.add_to_resource_policy(iam.PolicyStatement.from_json(definitions.key_policy_statement()))
        return events.RuleTargetConfig(
            arn=self.queue.queue_arn,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=self.dead_letter_queue.queue_arn),
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_event_age_in_seconds=definitions.EVENT_MAX_AGE_SECONDS,
                maximum_retry_attempts=definitions.EVENT_RETRY_ATTEMPTS,
            ),
        )


class Ingest(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = RemovalPolicy.DESTROY if config.allow_destroy else RemovalPolicy.RETAIN

        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts images, results and queued notifications of the image inference stack",
            enable_key_rotation=True,
            removal_policy=removal,
        )

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            # S3 server access logs can only be delivered to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(365))],
            removal_policy=removal,
            auto_delete_objects=config.allow_destroy,
        )

        self.bucket = s3.Bucket(
            self,
            "Images",
            **private_bucket(self.key, self.access_logs, "images-bucket/"),
            versioned=True,
            event_bridge_enabled=True,  # "Object Created" events go to the default bus; the rule below routes them
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                s3.LifecycleRule(
                    id="expire-smoke-tests",
                    prefix=f"{config.input_prefix}{definitions.SMOKE_FOLDER}",
                    expiration=Duration.days(definitions.SMOKE_EXPIRY_DAYS),
                    noncurrent_version_expiration=Duration.days(definitions.SMOKE_EXPIRY_DAYS),
                ),
            ],
            removal_policy=removal,
            auto_delete_objects=config.allow_destroy,
        )

        dead_letters = definitions.dead_letter_queue()
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            retention_period=Duration.seconds(dead_letters.retention_seconds),
            removal_policy=removal,
        )
        work = definitions.queue(config)
        assert work.max_receive_count is not None
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            data_key_reuse=Duration.seconds(definitions.DATA_KEY_REUSE_SECONDS),
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(work.visibility_timeout_seconds),
            retention_period=Duration.seconds(work.retention_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=work.max_receive_count
            ),
            removal_policy=removal,
        )

        self.rule = events.Rule(
            self,
            "ImageCreated",
            description="Images created in the image bucket (any letter case of the suffix) -> the inference queue",
            event_pattern=events.EventPattern(
                **_pattern_arguments(definitions.event_pattern(config, self.bucket.bucket_name))
            ),
        )
        self.rule.add_target(EncryptedQueueTarget(self.queue, self.dead_letter_queue, self.key))


def _pattern_arguments(pattern: dict[str, Any]) -> dict[str, Any]:
    """``events.EventPattern`` keyword arguments from the pattern as EventBridge writes it."""
    return {"source": pattern["source"], "detail_type": pattern["detail-type"], "detail": pattern["detail"]}


def private_bucket(key: kms.IKey, access_logs: s3.IBucket, logs_prefix: str) -> dict[str, Any]:
    """What every bucket of the stack that holds data has: the stack's key (with S3 Bucket Keys), no public
    access, TLS only, the owner owning every object, and its access logged under ``logs_prefix``."""
    return {
        "encryption": s3.BucketEncryption.KMS,
        "encryption_key": key,
        "bucket_key_enabled": True,
        "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
        "enforce_ssl": True,
        "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        "server_access_logs_bucket": access_logs,
        "server_access_logs_prefix": logs_prefix,
    }
