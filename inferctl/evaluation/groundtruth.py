"""Ground truth in the formats users already have.

- SageMaker Ground Truth / Rekognition Custom Labels manifests (JSON lines). Object detection: the job's
  attribute holds ``image_size`` and ``annotations`` with boxes in **pixels** (``left``, ``top``, ``width``,
  ``height``, ``class_id``), and ``<attribute>-metadata`` holds the ``class-map``. The pixels are the file's, as
  stored; a result's boxes are of the upright image when the function applied an EXIF orientation, and
  ``evaluate`` turns the truth's boxes the same way (``orientation.py``) before matching. Classification: the
  attribute holds the class id and ``<attribute>-metadata`` its ``class-name`` (Custom Labels puts one such
  attribute per label on an image). Multi-label classification: the attribute holds a list of class ids and
  ``<attribute>-metadata`` the ``class-map`` (``groundtruth/image-classification-multilabel``).
- A folder per class: ``<root>/<class>/<image>`` (uploaded with ``inferctl upload <root>``, so the image key
  is ``<input prefix><class>/<image>``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdas.contract.rules import DEFAULT_IMAGE_SUFFIXES

Box = tuple[float, float, float, float]  # left, top, width, height as ratios of the image


@dataclass
class ImageTruth:
    boxes: list[tuple[str, Box]] = field(default_factory=list)  # detection: one per object
    classes: set[str] = field(default_factory=set)  # classification: the image's classes
    size: tuple[int, int] | None = None  # detection: the manifest's image_size (width, height)


@dataclass
class GroundTruth:
    kind: str  # "detection" or "classification"
    images: dict[str, ImageTruth]  # by S3 key
    warnings: list[str] = field(default_factory=list)  # what was read but may not be what was meant
    buckets: set[str] = field(default_factory=set)  # the buckets its source-refs name (keys match without them)

    @property
    def labels(self) -> set[str]:
        found = {name for truth in self.images.values() for name, _ in truth.boxes}
        return found | {name for truth in self.images.values() for name in truth.classes}


class ManifestError(ValueError):
    """A manifest line that is not Ground Truth: the message names the line."""


class _Gaps:
    """Class ids a line's class-map does not name: each is scored as ``class_<id>``, and said once."""

    def __init__(self) -> None:
        self.lines: dict[str, list[int]] = {}

    def name(self, class_map: dict[str, str], class_id: Any, number: int) -> str:
        key = str(class_id)
        if key in class_map:
            return class_map[key]
        self.lines.setdefault(key, []).append(number)
        return f"class_{key}"

    def warnings(self) -> list[str]:
        found = []
        for key, lines in sorted(self.lines.items()):
            where = ", ".join(str(n) for n in lines[:5]) + (f" and {len(lines) - 5} more" if len(lines) > 5 else "")
            found.append(
                f"class_id {key} is not in the class-map (line {where}): scored as 'class_{key}', which no model "
                "answers; add it to the class-map"
            )
        return found


def _key_of(source_ref: str, number: int) -> str:
    if not source_ref.startswith("s3://"):
        raise ManifestError(f"line {number}: source-ref {source_ref!r} is not an s3:// URI")
    return source_ref.split("/", 3)[3] if source_ref.count("/") >= 3 else ""


def read_manifest(lines: list[str]) -> GroundTruth:
    images: dict[str, ImageTruth] = {}
    kinds: set[str] = set()
    gaps = _Gaps()
    buckets: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"line {number} is not JSON: {exc.msg}") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("source-ref"), str):
            raise ManifestError(f"line {number} has no source-ref")
        truth = images.setdefault(_key_of(entry["source-ref"], number), ImageTruth())
        buckets.add(entry["source-ref"][len("s3://") :].split("/", 1)[0])
        labelled = False
        for attribute, value in entry.items():
            metadata = entry.get(f"{attribute}-metadata")
            if attribute == "source-ref" or attribute.endswith("-metadata") or not isinstance(metadata, dict):
                continue
            if isinstance(value, dict) and "annotations" in value:
                kinds.add("detection")
                truth.boxes.extend(_boxes(value, metadata, number, gaps))
                truth.size = _size(value)
                labelled = True
            elif isinstance(value, list) and isinstance(metadata.get("class-map"), dict):
                kinds.add("classification")  # multi-label: the ids of every class the image shows
                class_map = {str(k): str(v) for k, v in metadata["class-map"].items()}
                truth.classes.update(gaps.name(class_map, class_id, number) for class_id in value)
                labelled = True
            elif "class-name" in metadata:
                kinds.add("classification")
                truth.classes.add(str(metadata["class-name"]))
                labelled = True
        if not labelled:
            raise ManifestError(f"line {number} has no object-detection or classification label attribute")
    if len(kinds) > 1:
        raise ManifestError("the manifest mixes object-detection and classification labels")
    return GroundTruth(kinds.pop() if kinds else "detection", images, gaps.warnings(), buckets)


def _size(value: dict[str, Any]) -> tuple[int, int] | None:
    try:
        size = value["image_size"][0]
        return int(size["width"]), int(size["height"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _boxes(value: dict[str, Any], metadata: dict[str, Any], number: int, gaps: _Gaps) -> list[tuple[str, Box]]:
    sizes = value.get("image_size") or [{}]
    try:
        width, height = float(sizes[0].get("width", 0)), float(sizes[0].get("height", 0))
    except (TypeError, ValueError, AttributeError):
        width = height = 0.0
    if width <= 0 or height <= 0:
        raise ManifestError(f"line {number}: image_size needs a width and a height in pixels")
    class_map = {str(k): str(v) for k, v in (metadata.get("class-map") or {}).items()}
    boxes = []
    if not isinstance(value["annotations"], list):
        raise ManifestError(f"line {number}: annotations is not a list")
    for annotation in value["annotations"]:
        missing = [k for k in ("class_id", "left", "top", "width", "height") if not _is_number(annotation, k)]
        if missing:
            raise ManifestError(f"line {number}: an annotation lacks a number for {', '.join(missing)}")
        box = (
            annotation["left"] / width,
            annotation["top"] / height,
            annotation["width"] / width,
            annotation["height"] / height,
        )
        boxes.append((gaps.name(class_map, annotation["class_id"], number), box))
    return boxes


def _is_number(annotation: Any, key: str) -> bool:
    value = annotation.get(key) if isinstance(annotation, dict) else None
    return isinstance(value, int | float) and not isinstance(value, bool)


def read_folders(root: Path, input_prefix: str) -> GroundTruth:
    """``root/<class>/<image>``: each image's class is its folder's name."""
    images: dict[str, ImageTruth] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name.lower().endswith(DEFAULT_IMAGE_SUFFIXES):
            relative = path.relative_to(root)
            images[input_prefix + relative.as_posix()] = ImageTruth(classes={relative.parts[0]})
    return GroundTruth("classification", images)


def load(path: Path, input_prefix: str) -> GroundTruth:
    """A manifest or a folder per class; ManifestError names the file and the line."""
    if path.is_dir():
        return read_folders(path, input_prefix)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ManifestError(f"{path} is not a text file: give a Ground Truth manifest (JSON lines)") from None
    try:
        return read_manifest(text.splitlines())
    except ManifestError as exc:
        raise ManifestError(
            f"{path}: {exc} (a Ground Truth manifest has one JSON object per line, with source-ref and a label "
            "attribute: docs/operator-guide.md#ground-truth)"
        ) from None


def detection_manifest_line(
    bucket: str, key: str, size: tuple[int, int], objects: list[tuple[str, tuple[int, int, int, int]]]
) -> str:
    """One Ground Truth object-detection line (pixel boxes ``(left, top, width, height)``), as a labelling job
    writes it: what the demo writes for its generated scenes."""
    names = sorted({name for name, _ in objects})
    class_ids = {name: index for index, name in enumerate(names)}
    entry = {
        "source-ref": f"s3://{bucket}/{key}",
        "bounding-box": {
            "image_size": [{"width": size[0], "height": size[1], "depth": 3}],
            "annotations": [
                {"class_id": class_ids[name], "left": left, "top": top, "width": width, "height": height}
                for name, (left, top, width, height) in objects
            ],
        },
        "bounding-box-metadata": {
            "objects": [{"confidence": 1} for _ in objects],
            "class-map": {str(index): name for name, index in class_ids.items()},
            "type": "groundtruth/object-detection",
            "human-annotated": "no",
            "creation-date": "2026-11-23T00:00:00.000000",
            "job-name": "labeling-job/demo-scenes",
        },
    }
    return json.dumps(entry, ensure_ascii=False)
