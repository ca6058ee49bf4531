"""Storage and queueing: the KMS key, the image bucket (with its access-log bucket), the queue and its
dead-letter queue, and the S3 -> SQS notifications for images under the input prefix."""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk.interfaces.aws_s3 import IBucketRef
from constructs import Construct, IDependable

from stacks import definitions
from stacks.config import StackConfig


@jsii.implements(s3.IBucketNotificationDestination)
class EncryptedQueueDestination:
    """S3 -> SQS notification target for a queue encrypted with a customer-managed key.

    Like CDK's ``SqsDestination``, the key policy lets ``s3.amazonaws.com`` use the key with no condition (as
    the S3 User Guide documents it; naming the bucket there would also make a cycle: key policy -> bucket ->
    key), and the queue policy pins the bucket's ARN and the account (queue policy -> bucket is no cycle).
    Statements: ``definitions.py``.
    """

    def __init__(self, queue: sqs.Queue, key: kms.Key) -> None:
        self.queue = queue
        self.key = key
        self._queue_policy: IDependable | None = None

    def bind(self, scope: Construct, bucket: IBucketRef) -> s3.BucketNotificationDestinationConfig:
        if self._queue_policy is None:  # one filter per suffix binds the same destination many times
            self._queue_policy = self._grant(Stack.of(scope).account, bucket)
        return s3.BucketNotificationDestinationConfig(
            arn=self.queue.queue_arn,
            type=s3.BucketNotificationDestinationType.QUEUE,
            # The notification configuration is validated by S3 on write: the queue policy must exist first.
            dependencies=[self._queue_policy],
        )

    def _grant(self, account: str, bucket: IBucketRef) -> IDependable:
        added = self.queue.add_to_resource_policy(
            iam.PolicyStatement.from_json(
                definitions.queue_policy_statement(self.queue.queue_arn, bucket.bucket_ref.bucket_arn, account)
            )
        )
        self.key.add_to_resource_policy(iam.PolicyStatement.from_json(definitions.key_policy_statement()))
        assert added.policy_dependable is not None
        return added.policy_dependable


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
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="images-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
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

        destination = EncryptedQueueDestination(self.queue, self.key)
        for key_filter in definitions.notification_filters(config):
            self.bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                destination,
                s3.NotificationKeyFilter(prefix=key_filter.prefix, suffix=key_filter.suffix),
            )
