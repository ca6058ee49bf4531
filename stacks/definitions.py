"""The stack's resource definitions as plain data, shared by the CDK constructs (``ingest.py``) and the
embedded stack (``inferctl.emulator.resources``): queue attributes, the redrive policy, the EventBridge
rule that routes S3's "Object Created" events for images to the queue, and the resource policies that let
EventBridge send to an encrypted queue. No CDK imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdas.contract.rules import RESULT_SUFFIX
from stacks.config import DLQ_RETENTION_DAYS, QUEUE_RETENTION_DAYS, StackConfig

DAY_SECONDS = 24 * 60 * 60
EVENTS_PRINCIPAL = "events.amazonaws.com"
QUEUE_POLICY_SID = "AllowImageEventsRule"
KEY_POLICY_SID = "AllowEventBridgeToSendEncryptedMessages"
# What EventBridge needs of an encrypted queue's key to send to it (EventBridge User Guide, "Permissions for
# Amazon SQS targets encrypted with a customer managed key").
EVENTS_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
# S3 -> EventBridge: how long and how often EventBridge retries a target it cannot reach before the event
# goes to the dead-letter queue (its defaults: 24 hours, 185 attempts).
EVENT_MAX_AGE_SECONDS = 24 * 60 * 60
EVENT_RETRY_ATTEMPTS = 185
# Data keys are reused for this long: fewer KMS calls for S3 and Lambda (cost), same key.
DATA_KEY_REUSE_SECONDS = 3600
# Where ``inferctl smoke`` uploads its image (under the input prefix). It deletes its image; the result is not
# its to delete (``result_writers_statement``), so the bucket expires what is under this folder after a day.
SMOKE_FOLDER = "_smoke/"
SMOKE_EXPIRY_DAYS = 1


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


def event_pattern(config: StackConfig, bucket_name: Any) -> dict[str, Any]:
    """S3's "Object Created" events for keys that end in an image suffix, in any letter case (``IMG_0001.Jpg``):
    EventBridge's ``suffix`` with ``equals-ignore-case``. The result documents (``.json``) never match, so each
    image costs one message, not two. A key field takes one list of alternatives (OR), so the input prefix is
    the function's to check (an image elsewhere in the bucket costs a message that is skipped). See
    docs/decisions.md for the options measured."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [bucket_name]},
            "object": {"key": [{"suffix": {"equals-ignore-case": suffix}} for suffix in config.image_suffixes]},
        },
    }


def queue_policy_statement(queue_arn: Any, rule_arn: Any) -> dict[str, Any]:
    """Only the stack's rule may send to the queue (and to the dead-letter queue, where it puts the events it
    could not deliver)."""
    return {
        "Sid": QUEUE_POLICY_SID,
        "Effect": "Allow",
        "Principal": {"Service": EVENTS_PRINCIPAL},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
    }


def key_policy_statement() -> dict[str, Any]:
    """EventBridge may use the key to send encrypted messages: the statement as the EventBridge User Guide
    documents it, without conditions (naming the rule would make a cycle: key -> rule -> queue -> key). Which
    rule may send is the queue policy's to say (``queue_policy_statement``): without SendMessage on the queue
    the key is of no use to anyone."""
    return {
        "Sid": KEY_POLICY_SID,
        "Effect": "Allow",
        "Principal": {"Service": EVENTS_PRINCIPAL},
        "Action": list(EVENTS_KEY_ACTIONS),
        "Resource": "*",  # in a key policy, "*" means this key
    }


RESULT_WRITERS_SID = "OnlyTheFunctionChangesResults"
# Every action that changes which document stands at a result key, checked against the S3 actions list:
# PutObject (also CopyObject and a multipart upload's parts and completion), DeleteObject (a delete marker: the
# image left without an outcome), DeleteObjectVersion (the newest version removed: an older version's result
# current again), and replication writing a replica or a delete marker over it. Left out, because they change
# nothing a reader of the key sees or cannot apply here: PutObjectAcl (ACLs are disabled, BucketOwnerEnforced),
# PutObjectTagging, RestoreObject (a temporary copy of an archived version beside the current one),
# PutObjectRetention / PutObjectLegalHold / BypassGovernanceRetention (no Object Lock), RenameObject (directory
# buckets only). Lifecycle expiration is S3's own and no bucket policy applies to it.
RESULT_KEY_ACTIONS = (
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:ReplicateObject",
    "s3:ReplicateDelete",
)


def result_writers_statement(bucket_arn: Any, input_prefix: str, writer_arns: list[Any]) -> dict[str, Any]:
    """Nobody but the function (the operator's break-glass principals, ``resultWriterArns``, and with
    ``allowDestroy`` the stack's own auto-delete) may change a result key: a forged ``<image>.json`` could stand as
    the image's result or block it for good, a deleted one leave the image without an outcome or bring an older
    version's back. ``aws:PrincipalArn`` is the role's ARN for any of its sessions. The bucket owner's root user can
    still delete: ``inferctl audit`` finds what that leaves, and ``reprocess --missing`` repairs it."""
    return {
        "Sid": RESULT_WRITERS_SID,
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": list(RESULT_KEY_ACTIONS),
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
