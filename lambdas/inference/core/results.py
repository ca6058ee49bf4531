"""The result document written next to each image: ``<image key>.json``. Schema documented in docs/results.md.

``schema_version`` follows semantic versioning: a new optional field bumps the minor version, a removed or
retyped field the major version. Readers should check the major version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lambdas.inference.core.errors import ProcessingError
from lambdas.inference.core.thresholds import Thresholds
from lambdas.inference.core.values import Detection, ImageFacts, Label, ObjectRef

# 1.1: source.sequencer; 1.2: candidates, thresholds.candidate_floor; 1.3: rerun; 1.4: challenger;
# 1.5: producer (with the object metadata x-amz-meta-producer), over_limit_label_count
SCHEMA_VERSION = "1.5"
# Every document the function writes says who wrote it twice: in its body and in the object's user metadata
# (``x-amz-meta-producer``), which a JSON file uploaded by hand does not carry by accident (storage.py).
PRODUCER = "image-inference"
PRODUCER_METADATA = "producer"


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
