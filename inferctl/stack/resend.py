"""``reprocess`` on the outcome table: which images to send comes from SQL (the inventory joined with the table,
``questions.selected``), and the sending scales with the engine:

- a deployed stack's re-send state machine (Step Functions, Distributed Map): the list is written to the analytics
  bucket as CSV (``key,size,etag``) and one execution sends it, ten images a child, paced to the model's capacity;
  nothing runs on the operator's machine once it has started;
- the embedded stack: the same messages sent from here, paced (``--rate``), as ``reprocess.reprocess`` sends them.
"""

from __future__ import annotations

import csv
import json
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inferctl.stack import listing, reprocess
from inferctl.stack.errors import OperationFailed
from inferctl.stack.target import Target
from lambdas.contract.pacing import RateLimiter

RESEND_PREFIX = "resend/"  # stacks/outcome_definitions.RESEND_PREFIX: the state machine may read only there
COLUMNS = ("key", "size", "etag")


@dataclass
class Sent:
    report: reprocess.Report
    execution_arn: str | None = None
    list_uri: str | None = None


def run_id(selection: reprocess.Selection) -> str | None:
    """A forced re-run's id (errors, stale, all); images without an outcome need none."""
    return f"reprocess-{uuid.uuid4().hex[:12]}" if selection.forced else None


def _tally(report: reprocess.Report, reason: str) -> None:
    report.selected += 1
    report.by_reason[reason] = report.by_reason.get(reason, 0) + 1


def by_state_machine(
    target: Target, chosen: Iterable[tuple[listing.Entry, str]], run: str | None, *, dry_run: bool = False
) -> Sent:
    """Write the list, start one execution of the stack's re-send state machine on it."""
    machine = target.outputs.get("ResendStateMachineArn")
    bucket = target.outputs.get("AnalyticsBucketName")
    if not machine or not bucket:
        raise OperationFailed(f"{target.description} has no re-send state machine (deploy with outcomeTable true)")
    report = reprocess.Report()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "resend.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for entry, reason in chosen:
                _tally(report, reason)
                writer.writerow((entry.key, entry.size, entry.etag))
        if dry_run or not report.selected:
            return Sent(report)
        moment = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
        key = f"{RESEND_PREFIX}{moment}-{run or 'missing'}.csv"
        target.client("s3").upload_file(str(path), bucket, key)
    started = target.client("stepfunctions").start_execution(
        stateMachineArn=machine,
        name=f"{moment}-{uuid.uuid4().hex[:8]}",
        input=json.dumps({"listBucket": bucket, "listKey": key, "bucket": target.bucket, "run": run or ""}),
    )
    report.enqueued = report.selected  # handed over: the execution sends them
    return Sent(report, started["executionArn"], f"s3://{bucket}/{key}")


def from_here(
    target: Target,
    chosen: Iterable[tuple[listing.Entry, str]],
    run: str | None,
    *,
    dry_run: bool = False,
    per_second: float = 10.0,
    on_batch: Callable[[reprocess.Report], None] = lambda report: None,
) -> Sent:
    """Send the chosen images from this machine, ten a request, paced (the embedded stack)."""
    report = reprocess.Report()
    sqs, limiter = target.client("sqs"), RateLimiter(per_second, burst=reprocess.SEND_BATCH)
    region = target.session.region_name or "us-east-1"
    batch: list[listing.Entry] = []
    for entry, reason in chosen:
        _tally(report, reason)
        if dry_run:
            continue
        batch.append(entry)
        if len(batch) == reprocess.SEND_BATCH:
            reprocess.send_batch(sqs, target, region, batch, run, limiter)
            report.enqueued += len(batch)
            batch = []
            on_batch(report)
    if batch:
        reprocess.send_batch(sqs, target, region, batch, run, limiter)
        report.enqueued += len(batch)
        on_batch(report)
    return Sent(report)


def describe(sent: Sent) -> dict[str, Any]:
    return {"execution": sent.execution_arn, "list": sent.list_uri}
