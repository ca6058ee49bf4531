"""``audit --reconcile``: outcomes in the bucket that the table lacks, found and sent again.

A row can be lost between a document's write and the stream: the function's own retry covers a stream that
refuses (the record fails and its redelivery sends the row), not a document written before the table existed, nor
a stream that kept failing until the message went to the dead-letter queue. The inventory lists every document;
the table says which it has (``questions.missing_from_table``); each missing one is read, checked to be the
function's own, and its row put to the stream, stamped now (it was read as the key's current document now).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from inferctl.stack import questions
from inferctl.stack.concurrency import concurrently
from inferctl.stack.engines import AthenaTable, LocalTable
from inferctl.stack.errors import OperationFailed
from inferctl.stack.outcomes import read_result
from inferctl.stack.target import Target
from lambdas.contract import outcome_table
from lambdas.contract.outcome_stream import OutcomeStream

# Rows of documents written this recently may still be on their way (the function sends a batch's rows when the
# batch ends; Firehose holds them up to its buffer interval): they are not called missing.
EMBEDDED_SLACK = timedelta(seconds=60)
DEFAULT_BUFFER_SECONDS = 300


@dataclass(frozen=True)
class Resent:
    missing: int  # documents without their row
    sent: int
    failed: int  # rows the stream did not take (run again)
    not_ours: int  # documents that are not the function's (left alone)


def slack(target: Target, table: LocalTable | AthenaTable) -> timedelta:
    if isinstance(table, LocalTable):
        return EMBEDDED_SLACK
    buffer = int(target.outputs.get("OutcomeBufferSeconds") or DEFAULT_BUFFER_SECONDS)
    return timedelta(seconds=buffer + 60)


def resend(
    target: Target,
    table: LocalTable | AthenaTable,
    images: questions.Images,
    now: datetime | None = None,
    firehose: Any = None,
) -> Resent:
    stream_name = target.outputs.get("OutcomeStreamName")
    if not stream_name:
        raise OperationFailed(f"{target.description} has no outcome stream (OutcomeStreamName) to send rows to")
    now = now or datetime.now(UTC)
    keys = questions.missing_from_table(table, images, now - slack(target, table))
    s3 = target.client("s3")
    rows: list[tuple[str, bytes]] = []
    not_ours = 0
    for key, document in concurrently(keys, lambda key: read_result(s3, target.bucket, key)):
        if document is None:
            not_ours += 1
            continue
        rows.append((key, outcome_table.encode(outcome_table.row(document, datetime.now(UTC)))))
    stream = OutcomeStream(str(stream_name), firehose or target.client("firehose"))
    failed = stream.send(rows) if rows else set()
    return Resent(len(keys), len(rows) - len(failed), len(failed), not_ours)


def summary(resent: Resent) -> str:
    if not resent.missing:
        return "reconcile: every outcome document in the inventory has its row in the table"
    text = f"reconcile: {resent.missing} outcome documents had no row in the table; {resent.sent} rows sent again"
    if resent.failed:
        text += f", {resent.failed} refused by the stream (run again)"
    if resent.not_ours:
        text += f"; {resent.not_ours} are not the function's documents (left alone)"
    return text
