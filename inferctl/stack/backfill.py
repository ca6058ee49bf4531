"""Reprocess and audit a bucket, in bounded memory.

S3 lists keys in order, and every key between an image ``K`` and its outcome ``K.json`` starts with ``K``.
So one pass over the listing pairs each image with its document using a stack of the images still waiting
for theirs (as deep as keys nest, in practice one or two): when a key arrives that an image on the stack is
not a prefix of, that image's document would already have been listed, so it has none.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from inferctl.stack import configuration
from inferctl.stack.errors import OperationFailed
from inferctl.stack.outcomes import concurrently, dead_letters, read_document
from inferctl.stack.target import Target
from lambdas.inference.core.events import RERUN_FIELD
from lambdas.inference.core.results import SCHEMA_VERSION
from lambdas.inference.core.rules import RESULT_SUFFIX
from lambdas.inference.pacing import RateLimiter
from lambdas.inference.settings import Settings

SEND_BATCH = 10  # SendMessageBatch takes at most 10 entries


@dataclass(frozen=True)
class Entry:
    """An image and the outcome document beside it (its key), as listed."""

    key: str
    etag: str
    size: int
    last_modified: datetime
    result_key: str | None


def listing(s3: Any, bucket: str, prefix: str, suffixes: tuple[str, ...], start_after: str = "") -> Iterator[Entry]:
    paginator = s3.get_paginator("list_objects_v2")
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        kwargs["StartAfter"] = start_after
    pending: list[dict[str, Any]] = []  # images whose document may still come, nested prefixes
    for page in paginator.paginate(**kwargs):
        for item in page.get("Contents", []):
            key = item["Key"]
            while pending and not key.startswith(pending[-1]["Key"]):
                yield _entry(pending.pop(), None)
            if pending and key == pending[-1]["Key"] + RESULT_SUFFIX:
                yield _entry(pending.pop(), key)
                continue
            if key.lower().endswith(suffixes) and not key.endswith("/"):
                pending.append(item)
    while pending:
        yield _entry(pending.pop(), None)


def _entry(item: dict[str, Any], result_key: str | None) -> Entry:
    return Entry(
        key=item["Key"],
        etag=str(item.get("ETag", "")).strip('"'),
        size=int(item.get("Size", 0)),
        last_modified=item["LastModified"],
        result_key=result_key,
    )


def with_documents(target: Target, entries: Iterator[Entry]) -> Iterator[tuple[Entry, dict[str, Any] | None]]:
    """Each entry with its document read (``outcomes.concurrently``: bounded reads in flight and in memory)."""
    s3 = target.client("s3")

    def read(entry: Entry) -> dict[str, Any] | None:
        if entry.result_key is None:
            return None
        try:
            document, _ = read_document(s3, target.bucket, entry.result_key, entry.key)
        except Exception:  # noqa: BLE001 - unreadable: not one of our documents
            return None
        return document

    return concurrently(entries, read)


# --- reprocess ---------------------------------------------------------------------------------------------


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


def live_settings(target: Target) -> Settings:
    """The function's settings as it runs now (its live environment)."""
    return configuration.live_settings(target)


def current(target: Target) -> Current:
    settings = live_settings(target)
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


@dataclass(frozen=True)
class Settled:
    """What ``--missing`` leaves alone: images in the dead-letter queue (``deadletters redrive`` is their way
    back) and images still waiting: inside their waiting window (their own notification is on its way), or
    any image at all while the trigger is paused (the queue holds them until the model can answer, and the
    model controller keeps them there past the queue's retention)."""

    dead_letters: frozenset[str] = frozenset()
    uploaded_before: datetime | None = None
    paused: bool = False

    def why(self, entry: Entry) -> str | None:
        if entry.key in self.dead_letters:
            return "dead_letter"
        if self.paused:
            return "waiting"
        if self.uploaded_before is not None and entry.last_modified >= self.uploaded_before:
            return "waiting"
        return None


def settled_now(target: Target, moment: datetime | None = None) -> Settled:
    letters = frozenset(
        key
        for letter in dead_letters(target.client("sqs"), target.dead_letter_queue_url, 100_000)
        for key in letter.keys
    )
    if trigger_paused(target):
        return Settled(letters, paused=True)  # nothing is worked on: whatever has no outcome waits in the queue
    moment = moment or datetime.now(UTC)
    return Settled(letters, moment - timedelta(seconds=waiting_window_seconds(target)))


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


def answers_another_upload(entry: Entry, document: dict[str, Any] | None) -> bool:
    """The document beside the image answers another upload of its key than the one listed now."""
    recorded = ((document or {}).get("source") or {}).get("etag")
    return bool(recorded) and recorded != entry.etag


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
    suffixes = live_settings(target).image_suffixes
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


# --- audit -------------------------------------------------------------------------------------------------

STATES = ("ok", "error", "waiting", "dead_letter", "missing")


@dataclass
class Audit:
    counts: dict[str, int] = field(default_factory=dict)
    error_codes: dict[str, int] = field(default_factory=dict)
    images: int = 0

    @property
    def missing(self) -> int:
        return self.counts.get("missing", 0)

    def as_dict(self) -> dict[str, Any]:
        return {"images": self.images, "states": self.counts, "error_codes": self.error_codes}


def waiting_window_seconds(target: Target) -> float:
    """How long an image may wait without being late: each receive's visibility timeout, as many times as
    the queue receives a message before the DLQ (and a minute for the notification itself)."""
    attributes = target.client("sqs").get_queue_attributes(QueueUrl=target.queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    receives = json.loads(attributes.get("RedrivePolicy", "{}")).get("maxReceiveCount", 1)
    return float(attributes.get("VisibilityTimeout", 30)) * int(receives) + 60


def trigger_paused(target: Target) -> bool:
    """The function's SQS trigger is paused (the model controller pauses it while the model cannot answer).
    Without the permission to look (``lambda:ListEventSourceMappings``), it is taken to run; any other failure
    is raised: a wrong answer here would call waiting images missing."""
    from botocore.exceptions import ClientError

    try:
        mappings = target.client("lambda").list_event_source_mappings(FunctionName=target.function_name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("AccessDeniedException", "AccessDenied"):
            return False
        raise
    return any(mapping.get("State") in ("Disabled", "Disabling") for mapping in mappings["EventSourceMappings"])


def audit(
    target: Target,
    *,
    prefix: str | None = None,
    write_row: Callable[[dict[str, Any]], None] = lambda row: None,
    on_image: Callable[[int], None] = lambda count: None,
    now: datetime | None = None,
) -> Audit:
    """Each image's state, streamed to ``write_row``; the counts returned."""
    suffixes = live_settings(target).image_suffixes
    settled = settled_now(target, now)
    result = Audit()
    entries = listing(target.client("s3"), target.bucket, prefix or target.input_prefix, suffixes)
    for entry, document in with_documents(target, entries):
        state, code, why = state_of(entry, document, settled)
        result.images += 1
        result.counts[state] = result.counts.get(state, 0) + 1
        if code:
            result.error_codes[code] = result.error_codes.get(code, 0) + 1
        write_row(audit_row(entry, state, code, why))
        on_image(result.images)
    return result


def audit_row(entry: Entry, state: str, code: str | None, why: str | None) -> dict[str, Any]:
    """One image's line of ``audit --output``."""
    return {
        "key": entry.key,
        "state": state,
        "code": code,
        "why": why,
        "last_modified": entry.last_modified.isoformat(),
    }


# Why an image has no outcome for its current upload: `reprocess --missing` re-runs both.
NO_RESULT, OLDER_UPLOAD = "no result", "answers an older upload"


def state_of(entry: Entry, document: dict[str, Any] | None, settled: Settled) -> tuple[str, str | None, str | None]:
    """(state, error code, why it has no outcome). A result that answers another upload of the key than the one
    listed (the newest result version deleted, the older one current again) counts as none."""
    if document is not None:
        if answers_another_upload(entry, document):  # the current upload has no outcome (yet)
            return settled.why(entry) or "missing", None, OLDER_UPLOAD
        if document.get("status") == "error":
            return "error", (document.get("error") or {}).get("code"), None
        return "ok", None, None
    return settled.why(entry) or "missing", None, NO_RESULT
