"""The stack's resource definitions as plain data, shared by the CDK constructs (``ingest.py``) and the
embedded stack (``inferctl.local.emulator.resources``): queue attributes, the redrive policy, the notification
filters and the resource policies that let S3 notify an encrypted queue. No CDK imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdas.inference.core.rules import RESULT_SUFFIX
from stacks.config import DLQ_RETENTION_DAYS, QUEUE_RETENTION_DAYS, StackConfig

DAY_SECONDS = 24 * 60 * 60
S3_PRINCIPAL = "s3.amazonaws.com"
QUEUE_POLICY_SID = "AllowImageBucketNotifications"
KEY_POLICY_SID = "AllowS3ToSendEncryptedNotifications"
# What S3 needs of the queue's key to send encrypted notifications.
S3_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
OBJECT_CREATED = "s3:ObjectCreated:*"
# Data keys are reused for this long: fewer KMS calls for S3 and Lambda (cost), same key.
DATA_KEY_REUSE_SECONDS = 3600


@dataclass(frozen=True)
class QueueDefinition:
    visibility_timeout_seconds: int
    retention_seconds: int
    max_receive_count: int | None  # None: no redrive (the DLQ itself)


def queue(config: StackConfig) -> QueueDefinition:
    return QueueDefinition(
        visibility_timeout_seconds=config.visibility_timeout_seconds,
        retention_seconds=QUEUE_RETENTION_DAYS * DAY_SECONDS,
        max_receive_count=config.max_receive_count,
    )


def dead_letter_queue() -> QueueDefinition:
    return QueueDefinition(
        visibility_timeout_seconds=30, retention_seconds=DLQ_RETENTION_DAYS * DAY_SECONDS, max_receive_count=None
    )


@dataclass(frozen=True)
class KeyFilter:
    prefix: str
    suffix: str | None


def notification_filters(config: StackConfig) -> list[KeyFilter]:
    """One ObjectCreated rule: everything under the input prefix goes to the queue, and the function decides
    what is an image (any letter case: ``IMG_0001.Jpg``). S3's suffix filters are case-sensitive, and
    spelling every case of every suffix takes 88 rules for the default list; see docs/decisions.md for the
    options measured. Loop-proof: the function writes only ``<image key>.json``, which it skips."""
    return [KeyFilter(config.input_prefix, None)]


def queue_policy_statement(queue_arn: Any, bucket_arn: Any, account: Any) -> dict[str, Any]:
    """Only the image bucket, in this account, may send to the queue."""
    return {
        "Sid": QUEUE_POLICY_SID,
        "Effect": "Allow",
        "Principal": {"Service": S3_PRINCIPAL},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": bucket_arn}, "StringEquals": {"aws:SourceAccount": account}},
    }


def key_policy_statement() -> dict[str, Any]:
    """S3 may use the key to send encrypted notifications: the statement as the S3 User Guide documents it ("Granting
    permissions to publish event notification messages to a destination") and CDK's ``SqsDestination`` writes it,
    without conditions. Nothing documents that S3 puts ``aws:SourceAccount`` into its KMS requests; a condition on
    it can fail the first deploy ("Unable to validate the following destination configurations"). Which bucket may
    send, from which account, is the queue policy's to say (``queue_policy_statement``): without SendMessage on
    the queue the key is of no use to anyone."""
    return {
        "Sid": KEY_POLICY_SID,
        "Effect": "Allow",
        "Principal": {"Service": S3_PRINCIPAL},
        "Action": list(S3_KEY_ACTIONS),
        "Resource": "*",  # in a key policy, "*" means this key
    }


RESULT_WRITERS_SID = "OnlyTheFunctionWritesResults"


def result_writers_statement(bucket_arn: Any, input_prefix: str, writer_arns: list[Any]) -> dict[str, Any]:
    """Nobody but the function (and the operator's break-glass principals, ``resultWriterArns``) may write a
    result key: a forged ``<image>.json`` could otherwise stand as the image's result or block it for good.
    ``aws:PrincipalArn`` is the role's ARN for any of its sessions."""
    return {
        "Sid": RESULT_WRITERS_SID,
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:PutObject",
        "Resource": f"{bucket_arn}/{input_prefix}*{RESULT_SUFFIX}",
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": writer_arns}},
    }


def access_log_delivery_statement(
    log_bucket_arn: Any, source_bucket_arn: Any, account: Any, prefix: str
) -> dict[str, Any]:
    """S3's log delivery may write the image bucket's access logs (what CDK writes for a logs bucket)."""
    return {
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{log_bucket_arn}/{prefix}*",
        "Condition": {"ArnLike": {"aws:SourceArn": source_bucket_arn}, "StringEquals": {"aws:SourceAccount": account}},
    }
