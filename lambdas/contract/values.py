"""Value types shared by the pipeline, the backends and the result document. No AWS, no Pillow."""

from __future__ import annotations

from typing import NamedTuple


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


class BoundingBox(NamedTuple):
    """A box as ratios of the image's width and height (0-1), Rekognition's convention."""

    left: float
    top: float
    width: float
    height: float

    @classmethod
    def from_corners(cls, xmin: float, ymin: float, xmax: float, ymax: float) -> BoundingBox:
        """From normalised corner coordinates, clamped into the image."""
        left, top, right, bottom = _clamp(xmin), _clamp(ymin), _clamp(xmax), _clamp(ymax)
        return cls(left=left, top=top, width=max(0.0, right - left), height=max(0.0, bottom - top))

    def as_dict(self) -> dict[str, float]:
        return {
            "left": round(self.left, 6),
            "top": round(self.top, 6),
            "width": round(self.width, 6),
            "height": round(self.height, 6),
        }


class Label(NamedTuple):
    """One thing the model saw: a name, a confidence in percent (0-100) and, for detectors, a box."""

    name: str
    confidence: float
    box: BoundingBox | None = None


class ObjectRef(NamedTuple):
    """An S3 object as an S3 event notification describes it."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    sequencer: str | None = None  # S3's order of events for this key (hex); absent in messages we make
    rerun: str | None = None  # an operator's forced re-run (its run id): "already done" does not apply


class ImageFacts(NamedTuple):
    """What the pipeline knows about the image and what it did to it before inference."""

    sent_as: str  # "s3_object" (Rekognition read it from S3) or "bytes"
    format: str | None = None
    width: int | None = None
    height: int | None = None
    sent_width: int | None = None
    sent_height: int | None = None
    transformations: tuple[str, ...] = ()
    # How it was decoded (logged with the result, not written in it): "function" or "child" (a bounded child
    # process), the bytes reserved for it, and what the child really held at its peak.
    decoded_in: str | None = None
    decode_reserved: int | None = None
    decode_held: int | None = None


class Detection(NamedTuple):
    """A backend's answer in the shared shape, before thresholds are applied."""

    labels: tuple[Label, ...]
    image: ImageFacts
    latency_ms: float
    request_id: str | None = None
    raw_format: str | None = None  # for SageMaker: which response format was parsed
    dropped_over_limit: int = 0  # labels the model sent beyond MAX_LABELS_PER_IMAGE (least confident)
