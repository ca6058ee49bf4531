"""Create the stack's resources through the AWS APIs, from the same ``StackConfig`` the CDK app uses.

Used against the embedded emulator (moto) by ``make demo`` and the end-to-end tests. It mirrors what
``stacks/`` declares: a KMS key, a versioned SSE-KMS bucket with its public access blocked, the queue and
dead-letter queue (same visibility timeout, redrive policy and retention), and the same S3 notification
filters. Where it can share code with the stack it does (``notification_suffixes``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from stacks.config import DLQ_RETENTION_DAYS, StackConfig, notification_suffixes

DAY = 24 * 60 * 60


@dataclass(frozen=True)
class Resources:
    region: str
    bucket: str
    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str
    key_arn: str
    input_prefix: str


def notification_configuration(config: StackConfig, queue_arn: str) -> dict[str, Any]:
    """The bucket's notification configuration: one ObjectCreated rule per suffix spelling."""
    return {
        "QueueConfigurations": [
            {
                "Id": f"images{suffix.replace('.', '-')}",
                "QueueArn": queue_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {
                    "Key": {
                        "FilterRules": [
                            {"Name": "prefix", "Value": config.input_prefix},
                            {"Name": "suffix", "Value": suffix},
                        ]
                    }
                },
            }
            for suffix in notification_suffixes(config.image_suffixes)
        ]
    }


def provision(session: Any, config: StackConfig, name: str | None = None) -> Resources:
    """Create the resources; ``session`` is a boto3 Session pointed at the emulator."""
    name = name or f"image-inference-{uuid.uuid4().hex[:8]}"
    kms = session.client("kms")
    s3 = session.client("s3")
    sqs = session.client("sqs")
    region = session.region_name

    key_arn = kms.create_key(Description=f"{name} images, results and queues")["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=key_arn)

    bucket = f"{name}-images"
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )

    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq",
        Attributes={"KmsMasterKeyId": key_arn, "MessageRetentionPeriod": str(DLQ_RETENTION_DAYS * DAY)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=f"{name}-queue",
        Attributes={
            "KmsMasterKeyId": key_arn,
            "VisibilityTimeout": str(config.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(4 * DAY),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": config.max_receive_count}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "AllowImageBucketNotifications",
                            "Effect": "Allow",
                            "Principal": {"Service": "s3.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": queue_arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
                        }
                    ],
                }
            )
        },
    )
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration=notification_configuration(config, queue_arn)
    )
    return Resources(
        region=region,
        bucket=bucket,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dead_letter_queue_url=dlq_url,
        dead_letter_queue_arn=dlq_arn,
        key_arn=key_arn,
        input_prefix=config.input_prefix,
    )
