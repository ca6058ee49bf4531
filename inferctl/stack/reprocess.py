"""``reprocess``: images selected by their state (missing, stale, errors, all) sent through the pipeline again as
S3 would notify them, paced to the model, resumable."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from inferctl.stack import configuration
from inferctl.stack.audit import Settled, settled_now
from inferctl.stack.errors import OperationFailed
from inferctl.stack.listing import Entry, answers_another_upload, listing, with_documents
from inferctl.stack.target import Target
from lambdas.contract.events import RERUN_FIELD
from lambdas.contract.pacing import RateLimiter
from lambdas.contract.results import SCHEMA_VERSION

SEND_BATCH = 10  # SendMessageBatch takes at most 10 entries


@dataclass(frozen=True)
class Selection:
    missing: bool = False
    errors: bool = False
    codes: frozenset[str] = frozenset()
    stale: bool = False
    all: bool = False

    @property
    def needs_documents(self) -> bool:
        # --missing reads them too: a document that answers an older upload leaves the current one without one
        return self.errors or self.stale or self.missing

    @property
    def forced(self) -> bool:
        """Re-runs bypass "already done"; images without an outcome need no force."""
        return self.errors or self.stale or self.all


@dataclass(frozen=True)
class Current:
    """What the function would write now: its model, its thresholds, the schema."""

    model_id: str | None
    thresholds: dict[str, Any]
    schema: str = SCHEMA_VERSION


# The thresholds whose change makes a document stale (``inclusive`` is how they compare, not a setting)
STALE_IF_CHANGED = ("min_confidence", "label_overrides", "candidate_floor")


def current(target: Target) -> Current:
    settings = configuration.live_settings(target)
    rendered = settings.thresholds.as_dict()  # as the function writes them into each document
    return Current(settings.model_id, {name: rendered[name] for name in STALE_IF_CHANGED})


def staleness(document: dict[str, Any], now: Current) -> str | None:
    """Why a document is stale (another model, an older schema, other thresholds), or None."""
    if (document.get("model") or {}).get("model_id") != now.model_id:
        return "model"
    if document.get("schema_version") != now.schema:
        return "schema"
    recorded = document.get("thresholds") or {}
    if any(recorded.get(name) != value for name, value in now.thresholds.items()):
        return "thresholds"
    return None


def selected(
    entry: Entry, document: dict[str, Any] | None, selection: Selection, now: Current | None, settled: Settled
) -> str | None:
    """Why this image is selected ("missing", "forced", "model", "schema", "thresholds", "error"), or None."""
    if selection.missing and (entry.result_key is None or answers_another_upload(entry, document)):
        return None if settled.why(entry) else "missing"
    if selection.all:
        return "missing" if entry.result_key is None else "forced"
    if selection.errors and document and document.get("status") == "error":
        code = (document.get("error") or {}).get("code")
        return "error" if not selection.codes or code in selection.codes else None
    if selection.stale and document and now is not None:
        return staleness(document, now)
    return None


def notification(bucket: str, region: str, entry: Entry, run: str | None) -> str:
    """A message shaped like S3's own notification, so the same function and guarantees apply."""
    record: dict[str, Any] = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "inferctl-reprocess",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(entry.key, safe="/"), "size": entry.size, "eTag": entry.etag},
        },
    }
    if run:
        record[RERUN_FIELD] = {"run": run}
    return json.dumps({"Records": [record]})


@dataclass
class Progress:
    """Where a reprocess run is: written after every batch sent, so an interrupted run resumes where it was."""

    run: str
    selection: dict[str, Any]
    prefix: str
    after: str = ""  # everything listed up to and including this key is decided
    listed: int = 0
    selected: int = 0
    enqueued: int = 0
    done: bool = False

    def save(self, path: Path) -> None:
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(json.dumps(self.__dict__, indent=2), encoding="utf-8")
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> Progress:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


@dataclass
class Report:
    listed: int = 0
    selected: int = 0
    enqueued: int = 0
    interrupted: bool = False
    by_reason: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # without a document, yet not missing: why


def reprocess(
    target: Target,
    selection: Selection,
    *,
    prefix: str | None = None,
    dry_run: bool = False,
    per_second: float = 10.0,
    state: Path | None = None,
    resume: bool = False,
    on_progress: Callable[[Progress], None] = lambda progress: None,
    stop_after_batches: int | None = None,
) -> Report:
    """Enqueue the selected images as notifications (SendMessageBatch, paced), resumable from ``state``."""
    if resume and state and state.exists():
        progress = Progress.load(state)
    else:
        progress = Progress(
            run=f"reprocess-{uuid.uuid4().hex[:12]}",
            selection=selection.__dict__ | {"codes": sorted(selection.codes)},
            prefix=prefix or target.input_prefix,
        )
    suffixes = configuration.live_settings(target).image_suffixes
    now = current(target) if selection.stale else None
    settled = settled_now(target) if selection.missing else Settled()
    run = progress.run if selection.forced else None
    sqs, limiter = target.client("sqs"), RateLimiter(per_second, burst=SEND_BATCH)
    region = target.session.region_name or "us-east-1"
    report = Report(listed=progress.listed, selected=progress.selected, enqueued=progress.enqueued)
    interrupted = {"flag": False}
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda *_: interrupted.update(flag=True))  # finish the batch, save, stop
    batch: list[Entry] = []
    batches = 0
    entries = listing(target.client("s3"), target.bucket, progress.prefix, suffixes, progress.after)
    stream = with_documents(target, entries) if selection.needs_documents else ((e, None) for e in entries)
    try:
        for entry, document in stream:
            report.listed += 1
            reason = selected(entry, document, selection, now, settled)
            if reason:
                report.selected += 1
                report.by_reason[reason] = report.by_reason.get(reason, 0) + 1
            elif selection.missing and (entry.result_key is None or answers_another_upload(entry, document)):
                skipped = settled.why(entry) or "other"
                report.skipped[skipped] = report.skipped.get(skipped, 0) + 1
            if reason and not dry_run:
                batch.append(entry)
            if len(batch) == SEND_BATCH or (dry_run and report.listed % 1000 == 0):
                send_batch(sqs, target, region, batch, run, limiter)
                report.enqueued += len(batch)
                batch = []
                batches += 1
                progress.after, progress.listed = entry.key, report.listed
                progress.selected, progress.enqueued = report.selected, report.enqueued
                if state and not dry_run:
                    progress.save(state)
                on_progress(progress)
                if interrupted["flag"] or (stop_after_batches is not None and batches >= stop_after_batches):
                    report.interrupted = True
                    return report
        if batch:
            send_batch(sqs, target, region, batch, run, limiter)
            report.enqueued += len(batch)
        progress.listed, progress.selected, progress.enqueued, progress.done = (
            report.listed,
            report.selected,
            report.enqueued,
            True,
        )
        if state and not dry_run:
            progress.save(state)
        on_progress(progress)
        return report
    finally:
        signal.signal(signal.SIGINT, previous)


def send_batch(
    sqs: Any, target: Target, region: str, batch: list[Entry], run: str | None, limiter: RateLimiter
) -> None:
    """Up to ten notifications in one SendMessageBatch (paced), failed entries retried; OperationFailed after three
    tries."""
    if not batch:
        return
    for _ in batch:
        limiter.acquire()
    entries = [
        {"Id": str(index), "MessageBody": notification(target.bucket, region, entry, run)}
        for index, entry in enumerate(batch)
    ]
    for attempt in range(3):
        failed = {
            item["Id"] for item in sqs.send_message_batch(QueueUrl=target.queue_url, Entries=entries).get("Failed", [])
        }
        entries = [entry for entry in entries if entry["Id"] in failed]
        if not entries:
            return
        time.sleep(0.5 * (attempt + 1))
    raise OperationFailed(
        f"{len(entries)} messages could not be sent to {target.queue_url}: the run stops here; "
        "run it again with --resume to continue"
    )
