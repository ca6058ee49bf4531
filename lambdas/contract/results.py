"""The result document written next to each image: ``<image key>.json``. Schema documented in docs/results.md.

``schema_version`` follows semantic versioning: a new optional field bumps the minor version, a removed or
retyped field the major version. Readers should check the major version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lambdas.contract.errors import ProcessingError
from lambdas.contract.rules import RESULT_SUFFIX
from lambdas.contract.thresholds import Thresholds
from lambdas.contract.values import Detection, ImageFacts, Label, ObjectRef

# 1.1: source.sequencer; 1.2: candidates, thresholds.candidate_floor; 1.3: rerun; 1.4: challenger;
# 1.5: producer (with the object metadata x-amz-meta-producer), over_limit_label_count
SCHEMA_VERSION = "1.5"
# Every document the function writes says who wrote it twice: in its body and in the object's user metadata
# (``x-amz-meta-producer``), which a JSON file uploaded by hand does not carry by accident (storage.py).
PRODUCER = "image-inference"
PRODUCER_METADATA = "producer"
# Our documents stay far below this (labels are capped per image); anything larger at a result key is not ours
# and is never read: a 39 MB JSON parsed whole would cost the function its memory, and its neighbours with it.
MAX_RESULT_DOCUMENT_BYTES = 2 * 1024 * 1024
# Documents written before the marker existed (schema 1.0-1.4) are recognised by their full shape instead.
LEGACY_SCHEMAS = frozenset({"1.0", "1.1", "1.2", "1.3", "1.4"})


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _source(ref: ObjectRef) -> dict[str, Any]:
    return {
        "bucket": ref.bucket,
        "key": ref.key,
        "version_id": ref.version_id,
        "etag": ref.etag,
        "size_bytes": ref.size,
        "sequencer": ref.sequencer,
    }


def _image(facts: ImageFacts | None) -> dict[str, Any] | None:
    if facts is None:
        return None
    return {
        "format": facts.format,
        "width": facts.width,
        "height": facts.height,
        "sent_as": facts.sent_as,
        "sent_width": facts.sent_width,
        "sent_height": facts.sent_height,
        "transformations": list(facts.transformations),
    }


# Confidences are written rounded to this many decimals; thresholds compare the model's own (unrounded) value.
CONFIDENCE_DECIMALS = 4


def label_dict(label: Label) -> dict[str, Any]:
    return {
        "name": label.name,
        "confidence": round(label.confidence, CONFIDENCE_DECIMALS),
        "bounding_box": label.box.as_dict() if label.box else None,
    }


def result_document(
    *,
    ref: ObjectRef,
    backend: str,
    model_id: str,
    thresholds: Thresholds,
    detection: Detection,
    accepted: list[Label],
    candidates: list[Label],
    rejected_count: int,
    received_at: datetime,
    completed_at: datetime,
    challenger: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A successful inference: the labels that cleared their thresholds and, apart, the candidates (below
    their threshold, at or above the floor), each highest confidence first; and, when a challenger model saw
    the image too, its own findings (``challenger.py``)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "producer": PRODUCER,
        "status": "ok",
        "source": _source(ref),
        "model": {"backend": backend, "model_id": model_id, "response_format": detection.raw_format},
        "thresholds": thresholds.as_dict(),
        "labels": [label_dict(label) for label in accepted],
        "candidates": [label_dict(label) for label in candidates],
        "rejected_label_count": rejected_count,
        "over_limit_label_count": detection.dropped_over_limit,
        "image": _image(detection.image),
        "timing": {
            "received_at": iso(received_at),
            "completed_at": iso(completed_at),
            "backend_latency_ms": round(detection.latency_ms, 3),
        },
        "backend_request_id": detection.request_id,
        "error": None,
        "rerun": {"run": ref.rerun} if ref.rerun else None,
        "challenger": challenger,
    }


def error_document(
    *,
    ref: ObjectRef,
    backend: str,
    model_id: str,
    thresholds: Thresholds,
    error: ProcessingError,
    received_at: datetime,
    completed_at: datetime,
) -> dict[str, Any]:
    """A failure that retrying cannot fix, recorded where the result would have been."""
    return {
        "schema_version": SCHEMA_VERSION,
        "producer": PRODUCER,
        "status": "error",
        "source": _source(ref),
        "model": {"backend": backend, "model_id": model_id, "response_format": None},
        "thresholds": thresholds.as_dict(),
        "labels": [],
        "candidates": [],
        "rejected_label_count": 0,
        "over_limit_label_count": 0,
        "image": None,
        "timing": {"received_at": iso(received_at), "completed_at": iso(completed_at), "backend_latency_ms": None},
        "backend_request_id": error.request_id,
        "error": {"code": error.code, "message": error.message, "retryable": error.retryable},
        "rerun": {"run": ref.rerun} if ref.rerun else None,
        "challenger": None,
    }


# --- who wrote what sits at a result key ----------------------------------------------------------------------

OURS, LEGACY, FOREIGN = "ours", "legacy", "foreign"


def document_kind(document: Any, image_key: str | None = None, metadata: Any = None) -> str:
    """Who wrote what sits at a result key.

    ``ours``: the function, now: the body names its producer and so does the object's metadata (``metadata``
    None means the caller could not see it, and the body is taken at its word). ``legacy``: the function before
    the mark existed (schema 1.0-1.4, recognised by its complete shape); the function replaces such a document
    the next time the image is notified and never takes its ordering fields at their word. ``foreign``:
    anything else (a user's JSON, a document that claims the producer without its metadata, another image's).
    With ``image_key``, the document must answer that image."""
    if not isinstance(document, dict) or not isinstance(document.get("source"), dict):
        return FOREIGN
    source = document["source"]
    if image_key is not None and source.get("key") != image_key:
        return FOREIGN
    if document.get("producer") == PRODUCER:
        marked = metadata is None or (isinstance(metadata, dict) and metadata.get(PRODUCER_METADATA) == PRODUCER)
        return OURS if marked else FOREIGN
    legacy = (
        document.get("schema_version") in LEGACY_SCHEMAS
        and document.get("status") in ("ok", "error")
        and isinstance(source.get("bucket"), str)
        and isinstance(document.get("model"), dict)
        and isinstance(document.get("thresholds"), dict)
        and isinstance(document.get("timing"), dict)
        and "labels" in document
    )
    return LEGACY if legacy else FOREIGN


def image_key_of(result_key: str) -> str:
    """The image a result key answers (``<image key>.json``)."""
    return result_key[: -len(RESULT_SUFFIX)] if result_key.endswith(RESULT_SUFFIX) else result_key
