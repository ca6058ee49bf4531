"""``audit``: the state of every image under the prefix (a result, an error document, waiting, in the dead-letter
queue, or missing), from the listing paired with its documents (``listing.py``) and the queues."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from inferctl.stack import configuration
from inferctl.stack.deadletters import dead_letters
from inferctl.stack.listing import Entry, answers_another_upload, listing, with_documents
from inferctl.stack.target import Target


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
    suffixes = configuration.live_settings(target).image_suffixes
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
