"""S3 events as they arrive in an SQS message body, and which keys are work.

An SQS body holds one of:
- S3's "Object Created" event as EventBridge delivers it (the stack's route: one event per body, ``detail``
  holding the object; its key is not URL-encoded: S3 User Guide, "EventBridge event message structure");
- an S3 event notification with one or more ``Records`` (what ``inferctl reprocess`` and the controller
  enqueue, and what a bucket notification sends: keys URL-encoded, spaces as ``+``, other characters as
  ``%XX``, decoded here once);
- the ``s3:TestEvent`` that S3 sends when a notification configuration is written.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from lambdas.contract.rules import RESULT_SUFFIX
from lambdas.contract.values import ObjectRef

EVENTBRIDGE_SOURCE = "aws.s3"
OBJECT_CREATED_DETAIL = "Object Created"
# Set by `inferctl reprocess` (and the stack's re-send state machine, in ``detail``) on a message it enqueues to
# force a re-run (S3 never sends this field).
RERUN_FIELD = "inferenceRerun"


class MalformedMessage(ValueError):
    """The SQS body is not an S3 notification. Retrying cannot change a message's body."""


class S3TestEvent(NamedTuple):
    """S3's ``s3:TestEvent``: proof that the notification configuration works, not work to do."""

    bucket: str | None


class ObjectCreated(NamedTuple):
    ref: ObjectRef
    event_name: str


def parse_body(body: str) -> S3TestEvent | list[ObjectCreated]:
    """Parse an SQS message body; raise MalformedMessage saying what is wrong with it."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, TypeError) as exc:
        raise MalformedMessage(f"message body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MalformedMessage(f"message body is JSON {type(document).__name__}, not an S3 notification object")
    if document.get("source") == EVENTBRIDGE_SOURCE and "detail" in document:
        return [_parse_eventbridge(document)]
    if document.get("Event") == "s3:TestEvent":
        bucket = document.get("Bucket")
        return S3TestEvent(bucket=bucket if isinstance(bucket, str) else None)
    records = document.get("Records")
    if not isinstance(records, list) or not records:
        raise MalformedMessage("message body has no 'Records' list and is not an s3:TestEvent")
    return [_parse_record(index, record) for index, record in enumerate(records)]


def keys_in(body: str) -> list[str]:
    """The object keys a message names, for the log lines about it; [] when it names none (never raises)."""
    try:
        parsed = parse_body(body)
    except MalformedMessage:
        return []
    return [] if isinstance(parsed, S3TestEvent) else [event.ref.key for event in parsed]


def _parse_record(index: int, record: object) -> ObjectCreated:
    if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
        raise MalformedMessage(f"Records[{index}] is not an S3 event record (eventSource != 'aws:s3')")
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        obj = s3["object"]
        raw_key = obj["key"]
    except (KeyError, TypeError):
        raise MalformedMessage(f"Records[{index}] lacks s3.bucket.name or s3.object.key") from None
    if not isinstance(bucket, str) or not isinstance(raw_key, str):
        raise MalformedMessage(f"Records[{index}] has a non-string bucket name or key")
    size = obj.get("size")
    etag = obj.get("eTag") or obj.get("etag")
    version = obj.get("versionId")
    sequencer = obj.get("sequencer")
    rerun = (record.get(RERUN_FIELD) or {}).get("run") if isinstance(record.get(RERUN_FIELD), dict) else None
    return ObjectCreated(
        ref=_ref(bucket, unquote_plus(raw_key), size, etag, version, sequencer, rerun),
        event_name=str(record.get("eventName", "")),
    )


def _parse_eventbridge(document: dict[str, Any]) -> ObjectCreated:
    """S3's event through EventBridge: ``detail.bucket.name``, ``detail.object`` with ``key`` (as stored, not
    URL-encoded), ``size``, ``etag``, ``version-id`` and ``sequencer``. Another detail type (a rule widened
    by hand) is returned as what it is, and skipped. ``detail.inferenceRerun.run``: a forced re-run (the re-send
    state machine writes this shape: its keys need no URL-encoding)."""
    detail = document.get("detail")
    bucket = detail.get("bucket") if isinstance(detail, dict) else None
    obj = detail.get("object") if isinstance(detail, dict) else None
    if not isinstance(bucket, dict) or not isinstance(obj, dict) or not isinstance(detail, dict):
        raise MalformedMessage("EventBridge event from aws.s3 lacks detail.bucket.name or detail.object.key")
    name, key = bucket.get("name"), obj.get("key")
    if not isinstance(name, str) or not isinstance(key, str):
        raise MalformedMessage("EventBridge event has no string detail.bucket.name or detail.object.key")
    detail_type = document.get("detail-type")
    event_name = (
        f"ObjectCreated:{detail.get('reason') or 'Put'}" if detail_type == OBJECT_CREATED_DETAIL else str(detail_type)
    )
    rerun = detail.get(RERUN_FIELD)
    return ObjectCreated(
        ref=_ref(
            name,
            key,
            obj.get("size"),
            obj.get("etag"),
            obj.get("version-id"),
            obj.get("sequencer"),
            rerun.get("run") if isinstance(rerun, dict) else None,
        ),
        event_name=event_name,
    )


def _ref(
    bucket: str, key: str, size: object, etag: object, version: object, sequencer: object, rerun: object
) -> ObjectRef:
    return ObjectRef(
        bucket=bucket,
        key=key,
        version_id=version if isinstance(version, str) and version else None,
        etag=etag.strip('"') if isinstance(etag, str) and etag else None,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        sequencer=sequencer if isinstance(sequencer, str) and sequencer else None,
        rerun=rerun if isinstance(rerun, str) and rerun else None,
    )


class Skip(Enum):
    """Why an object is not work. Skips are logged and acknowledged, never retried."""

    NOT_OBJECT_CREATED = "not an ObjectCreated event"
    OUTSIDE_PREFIX = "key is outside the input prefix"
    RESULT_FILE = "key is a result document"
    UNSUPPORTED_SUFFIX = "key does not end in a supported image suffix"
    FOLDER_MARKER = "key is a folder marker"


def result_key_for(image_key: str) -> str:
    """Where the result for an image goes: next to it, ``<image key>.json``. A pure function of the key,
    so a redelivered message overwrites the same document instead of adding another."""
    return image_key + RESULT_SUFFIX


def skip_reason(event: ObjectCreated, prefix: str, suffixes: tuple[str, ...]) -> Skip | None:
    """None when the object is an image to process, otherwise why not. ``suffixes`` are lower-case."""
    key = event.ref.key
    if event.event_name and not event.event_name.startswith("ObjectCreated:"):
        return Skip.NOT_OBJECT_CREATED
    if not key.startswith(prefix):
        return Skip.OUTSIDE_PREFIX
    if key.endswith("/"):
        return Skip.FOLDER_MARKER
    lowered = key.lower()
    if lowered.endswith(RESULT_SUFFIX):
        return Skip.RESULT_FILE
    if not lowered.endswith(suffixes):  # lower-case already: rules.image_suffixes normalises them
        return Skip.UNSUPPORTED_SUFFIX
    return None
