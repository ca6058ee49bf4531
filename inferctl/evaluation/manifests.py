"""Writing manifests other AWS services accept, from reviewed images.

Two targets, each with the rules its documentation states:

- **SageMaker Ground Truth** (``ground_truth``): object detection (``groundtruth/object-detection``: boxes in
  pixels, ``image_size``, ``class-map``, one ``objects`` confidence per annotation) or, without boxes, multi-label
  classification (``groundtruth/image-classification-multilabel``: class ids, ``class-map``, ``confidence-map``),
  as a labelling job writes them ("Output data", SageMaker Developer Guide). ``evaluate`` reads both.
- **Amazon Rekognition Custom Labels** (``rekognition``): object localisation as above, or image-level labels as
  one attribute per label with its ``class-name`` (``groundtruth/image-classification``), as its guide's "Importing
  image-level labels in manifest files" writes them; and its limits ("Guidelines and quotas", "Validation rules
  for manifest files", the JSON-line errors): PNG or JPEG only, 64 to 4096 px a side, aspect ratio under 20:1,
  boxes inside the frame and larger than 1 x 1 px once an image is scaled to 1280 px on its longer side, at most
  50 boxes and 50 labels an image. What cannot be made to fit is left out, and said (``warnings``).

Boxes are written in the stored pixels of the file ``source-ref`` names (``orientation.py``): a reviewed box is
a box of the image as it was shown, upright.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from inferctl.evaluation import orientation
from inferctl.evaluation.orientation import Box

GROUND_TRUTH, REKOGNITION = "groundtruth", "rekognition"
TARGETS = (GROUND_TRUTH, REKOGNITION)
JOB_NAME = "labeling-job/inferctl-review"
# Rekognition Custom Labels' limits (see the module's docstring).
REKOGNITION_FORMATS = frozenset({"JPEG", "PNG"})
REKOGNITION_MIN_SIDE, REKOGNITION_MAX_SIDE, REKOGNITION_MAX_ASPECT = 64, 4096, 20.0
REKOGNITION_TRAINING_SIDE = 1280  # images larger than this are scaled down for training; boxes must stay > 1 px
REKOGNITION_MAX_BOXES = REKOGNITION_MAX_LABELS = 50


@dataclass(frozen=True)
class Reviewed:
    """A reviewed image, as a manifest needs it: where it is, its stored size and format, how the function turned
    it upright, and what is in it (each object's label, and its box in the upright image, when it has one)."""

    bucket: str
    key: str
    width: int
    height: int
    format: str | None
    orientation: int
    objects: Sequence[tuple[str, Box | None]]
    extra: Mapping[str, Any] = field(default_factory=dict)  # attributes of the caller's own (no -metadata partner)


@dataclass
class Written:
    lines: list[str]
    warnings: list[str]
    left_out: list[str]  # keys left out, and said in ``warnings``


def write(images: Sequence[Reviewed], target: str, *, boxes: bool, attribute: str = "reviewed") -> Written:
    """The manifest for ``target``: detection lines when ``boxes``, else classification."""
    if target not in TARGETS:
        raise ValueError(f"target {target!r} is not one of {TARGETS}")
    names = sorted({name for image in images for name, _ in image.objects})
    ids = {name: index for index, name in enumerate(names)}
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    written = Written([], [], [])
    for image in images:
        if target == REKOGNITION:
            why = rekognition_refuses(image)
            if why:
                written.left_out.append(image.key)
                written.warnings.append(f"{image.key} left out of the Rekognition manifest: {why}")
                continue
        entry: dict[str, Any] = {"source-ref": f"s3://{image.bucket}/{image.key}"}
        if boxes:
            annotations = _annotations(image, ids, target, written.warnings)
            entry[attribute] = {
                "image_size": [{"width": image.width, "height": image.height, "depth": 3}],
                "annotations": annotations,
            }
            entry[f"{attribute}-metadata"] = {
                "objects": [{"confidence": 1} for _ in annotations],
                "class-map": {
                    str(ids[name]): name for name in names if ids[name] in {a["class_id"] for a in annotations}
                },
                "type": "groundtruth/object-detection",
                "human-annotated": "yes",
                "creation-date": now,
                "job-name": JOB_NAME,
            }
        elif target == GROUND_TRUTH:
            classes = sorted({ids[name] for name, _ in image.objects})
            entry[attribute] = classes
            entry[f"{attribute}-metadata"] = {
                "class-map": {str(ids[name]): name for name in names},
                "confidence-map": {str(class_id): 1 for class_id in classes},
                "type": "groundtruth/image-classification-multilabel",
                "human-annotated": "yes",
                "creation-date": now,
                "job-name": JOB_NAME,
            }
        else:
            labels = sorted({name for name, _ in image.objects})
            if not labels:
                written.left_out.append(image.key)
                written.warnings.append(
                    f"{image.key} left out of the Rekognition manifest: no label (an image-level line needs one)"
                )
                continue
            if len(labels) > REKOGNITION_MAX_LABELS:
                written.warnings.append(f"{image.key}: {len(labels)} labels, kept the first {REKOGNITION_MAX_LABELS}")
                labels = labels[:REKOGNITION_MAX_LABELS]
            for name in labels:
                label_attribute = f"{attribute}_{_attribute_name(name)}"
                entry[label_attribute] = 1
                entry[f"{label_attribute}-metadata"] = {
                    "confidence": 1,
                    "job-name": JOB_NAME,
                    "class-name": name,
                    "human-annotated": "yes",
                    "creation-date": now,
                    "type": "groundtruth/image-classification",
                }
        entry.update(image.extra)
        written.lines.append(json.dumps(entry, ensure_ascii=False))
    if target == REKOGNITION and not boxes and len(names) < 2:
        written.warnings.append(
            f"Rekognition Custom Labels trains a classifier on at least 2 labels; this manifest names {len(names)}"
        )
    return written


def rekognition_refuses(image: Reviewed) -> str | None:
    """Why Rekognition Custom Labels would refuse this image (its format, size or shape), or None."""
    if (image.format or "").upper() not in REKOGNITION_FORMATS:
        return f"a {image.format or 'unknown'} image (Rekognition Custom Labels trains on PNG and JPEG only)"
    shortest, longest = min(image.width, image.height), max(image.width, image.height)
    if shortest < REKOGNITION_MIN_SIDE or longest > REKOGNITION_MAX_SIDE:
        return f"{image.width}x{image.height} px (Rekognition takes {REKOGNITION_MIN_SIDE}-{REKOGNITION_MAX_SIDE} px)"
    if longest / shortest >= REKOGNITION_MAX_ASPECT:
        return f"{image.width}x{image.height} px (Rekognition needs an aspect ratio under 20:1)"
    return None


def smallest_box_side(width: int, height: int) -> int:
    """The smallest box side, in pixels, Rekognition Custom Labels keeps: more than 1 px once the image is scaled
    to 1280 px on its longer side (2 px for an image that is not scaled)."""
    scale = min(1.0, REKOGNITION_TRAINING_SIDE / max(width, height))
    return int(1 / scale) + 1


def _annotations(image: Reviewed, ids: Mapping[str, int], target: str, warnings: list[str]) -> list[dict[str, int]]:
    found = []
    for name, box in image.objects:
        if box is None:
            continue
        left, top, width, height = orientation.to_stored(box, image.orientation)
        pixels = _pixels((left, top, width, height), image.width, image.height)
        if target == REKOGNITION:
            pixels = _sized_for_rekognition(pixels, image.width, image.height)
        found.append({"class_id": ids[name], **pixels})
    if target == REKOGNITION and len(found) > REKOGNITION_MAX_BOXES:
        warnings.append(f"{image.key}: {len(found)} boxes, kept the {REKOGNITION_MAX_BOXES} largest")
        found = sorted(found, key=lambda a: a["width"] * a["height"], reverse=True)[:REKOGNITION_MAX_BOXES]
    return found


def _pixels(box: Box, width: int, height: int) -> dict[str, int]:
    """A ratio box as whole pixels inside the frame, at least 1 px a side."""
    left = min(max(0, round(box[0] * width)), width - 1)
    top = min(max(0, round(box[1] * height)), height - 1)
    right = min(width, max(left + 1, round((box[0] + box[2]) * width)))
    bottom = min(height, max(top + 1, round((box[1] + box[3]) * height)))
    return {"left": left, "top": top, "width": right - left, "height": bottom - top}


def _sized_for_rekognition(pixels: Mapping[str, int], width: int, height: int) -> dict[str, int]:
    """Grown (about its centre, kept in the frame) to the smallest side Rekognition keeps."""
    side = smallest_box_side(width, height)
    grown = dict(pixels)
    for start, extent, limit in (("left", "width", width), ("top", "height", height)):
        if grown[extent] < side:
            centre = grown[start] + grown[extent] / 2
            grown[extent] = min(side, limit)
            grown[start] = int(min(max(0, round(centre - grown[extent] / 2)), limit - grown[extent]))
    return grown


def _attribute_name(label: str) -> str:
    """A label as part of a JSON key (Custom Labels' own example: ``testdataset-classification_Sunrise``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", label)[:100] or "label"
