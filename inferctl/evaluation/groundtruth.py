"""Ground truth in the formats users already have.

- SageMaker Ground Truth / Rekognition Custom Labels manifests (JSON lines). Object detection: the job's
  attribute holds ``image_size`` and ``annotations`` with boxes in **pixels** (``left``, ``top``, ``width``,
  ``height``, ``class_id``), and ``<attribute>-metadata`` holds the ``class-map``. Classification: the
  attribute holds the class id and ``<attribute>-metadata`` its ``class-name``.
- A folder per class: ``<root>/<class>/<image>`` (uploaded with ``inferctl upload <root>``, so the image key
  is ``<input prefix><class>/<image>``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdas.inference.core.rules import DEFAULT_IMAGE_SUFFIXES

Box = tuple[float, float, float, float]  # left, top, width, height as ratios of the image


@dataclass
class ImageTruth:
    boxes: list[tuple[str, Box]] = field(default_factory=list)  # detection: one per object
    classes: set[str] = field(default_factory=set)  # classification: the image's classes


@dataclass
class GroundTruth:
    kind: str  # "detection" or "classification"
    images: dict[str, ImageTruth]  # by S3 key

    @property
    def labels(self) -> set[str]:
        found = {name for truth in self.images.values() for name, _ in truth.boxes}
        return found | {name for truth in self.images.values() for name in truth.classes}


class ManifestError(ValueError):
    """A manifest line that is not Ground Truth: the message names the line."""


def _key_of(source_ref: str) -> str:
    if not source_ref.startswith("s3://"):
        raise ManifestError(f"source-ref {source_ref!r} is not an s3:// URI")
    return source_ref.split("/", 3)[3] if source_ref.count("/") >= 3 else ""


def read_manifest(lines: list[str]) -> GroundTruth:
    images: dict[str, ImageTruth] = {}
    kinds: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"line {number} is not JSON: {exc.msg}") from None
        if "source-ref" not in entry:
            raise ManifestError(f"line {number} has no source-ref")
        truth = images.setdefault(_key_of(entry["source-ref"]), ImageTruth())
        labelled = False
        for attribute, value in entry.items():
            metadata = entry.get(f"{attribute}-metadata")
            if attribute == "source-ref" or attribute.endswith("-metadata") or not isinstance(metadata, dict):
                continue
            if isinstance(value, dict) and "annotations" in value:
                kinds.add("detection")
                truth.boxes.extend(_boxes(value, metadata, number))
                labelled = True
            elif "class-name" in metadata:
                kinds.add("classification")
                truth.classes.add(str(metadata["class-name"]))
                labelled = True
        if not labelled:
            raise ManifestError(f"line {number} has no object-detection or classification label attribute")
    if len(kinds) > 1:
        raise ManifestError("the manifest mixes object-detection and classification labels")
    return GroundTruth(kinds.pop() if kinds else "detection", images)


def _boxes(value: dict[str, Any], metadata: dict[str, Any], number: int) -> list[tuple[str, Box]]:
    sizes = value.get("image_size") or [{}]
    width, height = float(sizes[0].get("width", 0)), float(sizes[0].get("height", 0))
    if width <= 0 or height <= 0:
        raise ManifestError(f"line {number}: image_size needs a width and a height in pixels")
    class_map = {str(k): str(v) for k, v in (metadata.get("class-map") or {}).items()}
    boxes = []
    for annotation in value["annotations"]:
        name = class_map.get(str(annotation["class_id"]), f"class_{annotation['class_id']}")
        box = (
            annotation["left"] / width,
            annotation["top"] / height,
            annotation["width"] / width,
            annotation["height"] / height,
        )
        boxes.append((name, box))
    return boxes


def read_folders(root: Path, input_prefix: str) -> GroundTruth:
    """``root/<class>/<image>``: each image's class is its folder's name."""
    images: dict[str, ImageTruth] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name.lower().endswith(DEFAULT_IMAGE_SUFFIXES):
            relative = path.relative_to(root)
            images[input_prefix + relative.as_posix()] = ImageTruth(classes={relative.parts[0]})
    return GroundTruth("classification", images)


def load(path: Path, input_prefix: str) -> GroundTruth:
    if path.is_dir():
        return read_folders(path, input_prefix)
    return read_manifest(path.read_text(encoding="utf-8").splitlines())


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
