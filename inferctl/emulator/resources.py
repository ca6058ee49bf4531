"""Create the stack's resources through the AWS APIs, from the same ``StackConfig`` and the same resource
definitions (``stacks/definitions.py``) the CDK constructs use.

Used against the embedded emulator (moto) by ``make demo`` and the end-to-end tests: a KMS key whose
policy lets EventBridge send encrypted messages, a versioned SSE-KMS bucket with its public access blocked, its
access logged to a second bucket and its events sent to EventBridge, the queue and dead-letter queue (same
visibility timeout, redrive policy and retention), their policies, and the same rule and target (pattern,
dead-letter queue, retry policy). S3's events reach the rule in AWS's shape (``s3_events.py``). The one
deliberate difference: no TLS-only statements, because the emulator speaks plain HTTP on 127.0.0.1 (moto
would enforce them), and no statement that only the function writes result documents: moto evaluates a bucket
policy's Deny on object writes but ignores its conditions, so it would deny the function too (and the
embedded stack has no roles to tell apart). The template tests prove that statement; the function's own
checks are proven here.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from inferctl.emulator import s3_atomic, s3_events
from stacks import definitions
from stacks.config import StackConfig

ACCOUNT = "123456789012"  # moto's account
ACCESS_LOG_PREFIX = "images-bucket/"
EMBEDDED_ROWS_PREFIX = "rows/"  # where the emulated stream writes the outcome table's rows, as JSON lines


@dataclass(frozen=True)
class Resources:
    region: str
    bucket: str
    access_log_bucket: str
    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str
    key_arn: str
    input_prefix: str
    rule_arn: str  # the EventBridge rule that routes created images to the queue
    outcome_bucket: str | None = None  # the outcome table's rows (config.outcome_table)
    outcome_stream: str | None = None


def notification_configuration() -> dict[str, Any]:
    """The bucket's notification configuration: every event to EventBridge, where the rule picks the images."""
    return {"EventBridgeConfiguration": {}}


def rule_name(name: str) -> str:
    return f"{name}-image-created"


def _queue_attributes(definition: definitions.QueueDefinition, key_arn: str) -> dict[str, str]:
    return {
        "KmsMasterKeyId": key_arn,
        "KmsDataKeyReusePeriodSeconds": str(definitions.DATA_KEY_REUSE_SECONDS),
        "VisibilityTimeout": str(definition.visibility_timeout_seconds),
        "MessageRetentionPeriod": str(definition.retention_seconds),
    }


def _create_bucket(s3: Any, bucket: str, region: str) -> None:
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


def _bucket_policy(s3: Any, bucket: str, statements: list[dict[str, Any]]) -> None:
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))


def provision(session: Any, config: StackConfig, name: str | None = None) -> Resources:
    """Create the resources; ``session`` is a boto3 Session pointed at the emulator."""
    name = name or f"image-inference-{uuid.uuid4().hex[:8]}"
    kms = session.client("kms")
    s3 = session.client("s3")
    sqs = session.client("sqs")
    region = session.region_name

    key_arn = kms.create_key(Description=f"{name} images, results and queues")["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=key_arn)
    key_policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    key_policy["Statement"].append(definitions.key_policy_statement())
    kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=json.dumps(key_policy))

    access_logs = f"{name}-access-logs"
    _create_bucket(s3, access_logs, region)
    s3.put_bucket_encryption(
        Bucket=access_logs,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    bucket = f"{name}-images"
    log_arn, bucket_arn = f"arn:aws:s3:::{access_logs}", f"arn:aws:s3:::{bucket}"
    _bucket_policy(
        s3,
        access_logs,
        [definitions.access_log_delivery_statement(log_arn, bucket_arn, ACCOUNT, ACCESS_LOG_PREFIX)],
    )
    _create_bucket(s3, bucket, region)
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
    s3.put_bucket_logging(
        Bucket=bucket,
        BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": access_logs, "TargetPrefix": ACCESS_LOG_PREFIX}},
    )

    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq", Attributes=_queue_attributes(definitions.dead_letter_queue(), key_arn)
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    work = definitions.queue(config)
    queue_url = sqs.create_queue(
        QueueName=f"{name}-queue",
        Attributes={
            **_queue_attributes(work, key_arn),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": work.max_receive_count}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3_events.install()
    s3_atomic.install()
    events = session.client("events")
    rule_arn = events.put_rule(
        Name=rule_name(name), EventPattern=json.dumps(definitions.event_pattern(config, bucket)), State="ENABLED"
    )["RuleArn"]
    for url, arn in ((queue_url, queue_arn), (dlq_url, dlq_arn)):
        statement = definitions.queue_policy_statement(arn, rule_arn)
        sqs.set_queue_attributes(
            QueueUrl=url, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})}
        )
    events.put_targets(
        Rule=rule_name(name),
        Targets=[
            {
                "Id": "queue",
                "Arn": queue_arn,
                "DeadLetterConfig": {"Arn": dlq_arn},
                "RetryPolicy": {
                    "MaximumRetryAttempts": definitions.EVENT_RETRY_ATTEMPTS,
                    "MaximumEventAgeInSeconds": definitions.EVENT_MAX_AGE_SECONDS,
                },
            }
        ],
    )
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=notification_configuration())
    outcome_bucket = outcome_stream = None
    if config.outcome_table:
        outcome_bucket, outcome_stream = f"{name}-outcomes", f"{name}-outcomes"
        _create_bucket(s3, outcome_bucket, region)
        s3.put_bucket_encryption(
            Bucket=outcome_bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}}
                ]
            },
        )
        # moto's Firehose writes each PutRecordBatch's records as they came (JSON lines here) under the prefix at
        # once; on AWS the stream converts them to Parquet (stacks/analytics.py). The tool reads either.
        session.client("firehose").create_delivery_stream(
            DeliveryStreamName=outcome_stream,
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/{name}-firehose",
                "BucketARN": f"arn:aws:s3:::{outcome_bucket}",
                "Prefix": EMBEDDED_ROWS_PREFIX,
            },
        )
    return Resources(
        region=region,
        bucket=bucket,
        access_log_bucket=access_logs,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dead_letter_queue_url=dlq_url,
        dead_letter_queue_arn=dlq_arn,
        key_arn=key_arn,
        input_prefix=config.input_prefix,
        rule_arn=rule_arn,
        outcome_bucket=outcome_bucket,
        outcome_stream=outcome_stream,
    )
