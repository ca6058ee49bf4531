"""The outcome table's resources as plain data, shared by the CDK construct (``analytics.py``), the embedded stack
and the tests: where Firehose writes, the Glue tables' columns and partition projection, the S3 Inventory, and the
re-send state machine (Amazon States Language, JSONata). No CDK imports.

Layout of the analytics bucket:
- ``rows/day=YYYY-MM-DD/``: the table's Parquet files, written by Firehose (partition projection on ``day``);
- ``errors/``: what Firehose could not convert (kept as long as the rows);
- ``inventory/<image bucket>/images/``: S3 Inventory's daily listing of the input prefix (Parquet);
- ``athena-results/``: query results (encrypted, expiring after ``athenaResultsDays``);
- ``resend/``: the lists of images ``inferctl reprocess --engine athena`` hands to the state machine.
"""

from __future__ import annotations

import math
from typing import Any

from lambdas.contract import outcome_table

ROWS_PREFIX = "rows/"
ERRORS_PREFIX = "errors/"
INVENTORY_PREFIX = "inventory"
INVENTORY_ID = "images"
RESULTS_PREFIX = "athena-results/"
RESEND_PREFIX = "resend/"
RESEND_EXPIRY_DAYS = 30
INVENTORY_EXPIRY_DAYS = 14  # a day's listing is read once; two weeks for looking back
# Firehose: the most it holds a row before writing (seconds) and the largest file (MB). With format conversion the
# size is at least 64 MB; the interval sets how fresh the table is and how many files a quiet day makes.
BUFFER_SECONDS = 300
BUFFER_MB = 128
# The re-send state machine sends this many images per SendMessageBatch (SQS's maximum) and waits this long after
# each batch: ``concurrency`` batches in flight make about ``concurrency`` messages a second, the model's capacity.
RESEND_BATCH = 10
RESEND_WAIT_SECONDS = 10
RESEND_CONCURRENCY_UNKNOWN = 10  # batches in flight when the model's capacity is not known (10 images a second)


def resend_concurrency(capacity: float | None) -> int:
    """Batches in flight: about the model's capacity in images a second (Distributed Map takes up to 10,000)."""
    if capacity is None:
        return RESEND_CONCURRENCY_UNKNOWN
    return max(1, min(10_000, math.ceil(capacity * RESEND_WAIT_SECONDS / RESEND_BATCH)))


RESEND_COLUMNS = ("key", "size", "etag")
INVENTORY_FIELDS = ("Size", "LastModifiedDate", "ETag")
# The inventory's Parquet columns (S3 User Guide, "Querying Amazon S3 Inventory with Amazon Athena"): a listing of
# current versions has no is_latest / is_delete_marker, which read as NULL, and the queries take NULL as current.
INVENTORY_COLUMNS = (
    ("bucket", "string"),
    ("key", "string"),
    ("version_id", "string"),
    ("is_latest", "boolean"),
    ("is_delete_marker", "boolean"),
    ("size", "bigint"),
    ("last_modified_date", "timestamp"),
    ("e_tag", "string"),
)


def rows_prefix() -> str:
    """Firehose's prefix: one folder per day of delivery (UTC), the partition the table projects."""
    return f"{ROWS_PREFIX}{outcome_table.PARTITION}=!{{timestamp:yyyy-MM-dd}}/"


def errors_prefix() -> str:
    return f"{ERRORS_PREFIX}!{{firehose:error-output-type}}/{outcome_table.PARTITION}=!{{timestamp:yyyy-MM-dd}}/"


def outcome_columns() -> list[dict[str, str]]:
    return [{"name": column.name, "type": column.glue, "comment": column.doc} for column in outcome_table.COLUMNS]


def outcome_projection(retention_days: int) -> dict[str, str]:
    """The table's parameters: Parquet, partition projection on ``day`` over the retention (no crawler, no
    partitions to add). The construct adds where a day's files are (``storage.location.template``)."""
    return {
        "classification": "parquet",
        "projection.enabled": "true",
        f"projection.{outcome_table.PARTITION}.type": "date",
        f"projection.{outcome_table.PARTITION}.format": "yyyy-MM-dd",
        f"projection.{outcome_table.PARTITION}.range": f"NOW-{retention_days}DAYS,NOW",
        f"projection.{outcome_table.PARTITION}.interval": "1",
        f"projection.{outcome_table.PARTITION}.interval.unit": "DAYS",
    }


def inventory_projection(days: int) -> dict[str, str]:
    """The inventory table's ``dt`` (``YYYY-MM-DD-HH-MM`` of each delivery), projected hour by hour."""
    return {
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd-HH-mm",
        "projection.dt.range": f"NOW-{days}DAYS,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "HOURS",
    }


# What each batch of the re-send sends: S3's "Object Created" event as EventBridge delivers it (the function's own
# parser takes it; a key needs no URL-encoding in this shape), with the run when the re-run is forced.
RESEND_ENTRIES = (
    "{% [$map($states.input.Items, function($item, $index) {{"
    '"Id": $string($index), '
    '"MessageBody": $string({'
    '"version": "0", "source": "aws.s3", "detail-type": "Object Created", "time": $now(), '
    '"detail": {'
    '"bucket": {"name": $states.input.BatchInput.bucket}, '
    '"object": {"key": $item.key, "size": $number($item.size), "etag": $item.etag}, '
    '"reason": "PutObject", "requester": "inferctl-reprocess", '
    '"inferenceRerun": {"run": $states.input.BatchInput.run}'
    "}})"
    "}})] %}"
)


def resend_definition(queue_url: Any, concurrency: int) -> dict[str, Any]:
    """The state machine: a Distributed Map over the CSV ``inferctl reprocess`` wrote (``key,size,etag``), ten
    images a child, each child one SendMessageBatch and a wait, ``concurrency`` children at once (the pace); the
    execution's input says where the list is, the image bucket and the run."""
    return {
        "Comment": "Re-send images to the inference queue, paced (inferctl reprocess --engine athena)",
        "QueryLanguage": "JSONata",
        "StartAt": "Resend",
        "States": {
            "Resend": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                    "Arguments": {"Bucket": "{% $states.input.listBucket %}", "Key": "{% $states.input.listKey %}"},
                },
                "ItemBatcher": {
                    "MaxItemsPerBatch": RESEND_BATCH,
                    "BatchInput": {"bucket": "{% $states.input.bucket %}", "run": "{% $states.input.run %}"},
                },
                "MaxConcurrency": concurrency,
                "ToleratedFailurePercentage": 0,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                    "StartAt": "Send",
                    "States": {
                        "Send": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::aws-sdk:sqs:sendMessageBatch",
                            "Arguments": {"QueueUrl": queue_url, "Entries": RESEND_ENTRIES},
                            "Retry": [
                                {
                                    "ErrorEquals": ["States.ALL"],
                                    "IntervalSeconds": 2,
                                    "MaxAttempts": 5,
                                    "BackoffRate": 2.0,
                                    "JitterStrategy": "FULL",
                                }
                            ],
                            "Output": "{% $states.result %}",
                            "Next": "Refused",
                        },
                        "Refused": {
                            "Type": "Choice",
                            "Choices": [{"Condition": "{% $count($states.input.Failed) > 0 %}", "Next": "Stop"}],
                            "Default": "Pace",
                        },
                        "Stop": {
                            "Type": "Fail",
                            "Error": "SendRefused",
                            "Cause": "SQS refused messages of a batch (see the execution's history)",
                        },
                        "Pace": {"Type": "Wait", "Seconds": RESEND_WAIT_SECONDS, "End": True},
                    },
                },
                "End": True,
            }
        },
    }
