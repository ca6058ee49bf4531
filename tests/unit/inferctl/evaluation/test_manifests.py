"""Manifests other AWS services accept: boxes in the frame the manifest declares (the file's stored pixels) for every
EXIF orientation, checked against where Pillow really puts the pixels; and a Rekognition Custom Labels variant that
its documented rules accept, checked by a validator written from those rules, not from our writer."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageOps

from inferctl.evaluation import evaluate, manifests, orientation
from inferctl.evaluation.groundtruth import read_manifest
from inferctl.stack.review_session import Session, manifest
from lambdas.contract.thresholds import Thresholds

UPRIGHT_SIZE = (160, 120)
UPRIGHT_BOX = (20, 10, 50, 30)  # left, top, width, height in the upright image's pixels


def session(tmp_path: Path, items: list[dict[str, Any]], reviews: dict[str, Any]) -> Session:
    return Session(
        path=tmp_path / "session.json",
        bucket="b",
        input_prefix="test_images/",
        thresholds={},
        sample={"seed": 1, "population": {"none": 100}, "sizes": {"none": len(items)}, "drawn": []},
        items=items,
        reviews=reviews,
    )


def item(key: str, width: int, height: int, *, fmt: str = "JPEG", turn: int = 1, boxes: Any = ()) -> dict[str, Any]:
    return {
        "key": key,
        "stratum": "none",
        "probability": 0.5,
        "format": fmt,
        "width": width,
        "height": height,
        "transformations": [f"exif_orientation_{turn}_applied"] if turn != 1 else [],
        "predictions": [
            {
                "name": name,
                "confidence": 90.0,
                "accepted": True,
                "box": dict(zip(("left", "top", "width", "height"), box, strict=True)),
            }
            for name, box in boxes
        ],
    }


def all_right(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {i["key"]: {"verdicts": [True] * len(i["predictions"]), "added": []} for i in items}


def stored_with_orientation(turn: int) -> tuple[bytes, tuple[int, int, int, int]]:
    """A PNG whose pixels, shown with EXIF orientation ``turn`` applied, are the upright scene; and where the red
    box is in its *stored* pixels, found from the pixels themselves."""
    upright = Image.new("RGB", UPRIGHT_SIZE, (255, 255, 255))
    left, top, width, height = UPRIGHT_BOX
    ImageDraw.Draw(upright).rectangle((left, top, left + width - 1, top + height - 1), fill=(255, 0, 0))
    undo = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_270}  # fmt: skip
    stored = upright.transpose(undo[turn]) if turn != 1 else upright.copy()
    exif = stored.getexif()
    exif[0x0112] = turn
    buffer = io.BytesIO()
    stored.save(buffer, format="PNG", exif=exif.tobytes())
    data = buffer.getvalue()
    # the reference: Pillow's own reading of the EXIF tag turns it back upright ...
    assert ImageOps.exif_transpose(Image.open(io.BytesIO(data))).tobytes() == upright.tobytes()
    # ... and the red pixels' box in the stored image is where the manifest must point
    red = Image.open(io.BytesIO(data)).convert("RGB").point(lambda v: 255 if v > 200 else 0).split()
    mask = Image.eval(red[0], lambda v: v).copy()
    mask.paste(0, mask=red[1])  # red: R high, G low
    bbox = mask.getbbox()
    assert bbox is not None
    return data, (bbox[0], bbox[1], bbox[2] - bbox[0], bbox[3] - bbox[1])


@pytest.mark.parametrize("turn", range(1, 9))
def test_boxes_are_written_in_the_stored_pixels_for_every_orientation(tmp_path, turn):
    data, expected = stored_with_orientation(turn)
    stored_w, stored_h = Image.open(io.BytesIO(data)).size
    width, height = UPRIGHT_SIZE
    # the result's box, as the function would report it: a ratio of the upright image the model saw
    box = (UPRIGHT_BOX[0] / width, UPRIGHT_BOX[1] / height, UPRIGHT_BOX[2] / width, UPRIGHT_BOX[3] / height)
    items = [item("test_images/turned.png", stored_w, stored_h, fmt="PNG", turn=turn, boxes=[("sign", box)])]

    (line,) = manifest(session(tmp_path, items, all_right(items))).lines
    entry = json.loads(line)

    assert entry["reviewed"]["image_size"] == [{"width": stored_w, "height": stored_h, "depth": 3}]
    (annotation,) = entry["reviewed"]["annotations"]
    got = (annotation["left"], annotation["top"], annotation["width"], annotation["height"])
    assert all(abs(a - b) <= 1 for a, b in zip(got, expected, strict=True)), (turn, got, expected)


@pytest.mark.parametrize("turn", range(1, 9))
def test_evaluate_turns_a_stored_frame_manifest_back_to_the_results_frame(turn):
    data, stored_box = stored_with_orientation(turn)
    stored_w, stored_h = Image.open(io.BytesIO(data)).size
    line = {
        "source-ref": "s3://b/test_images/turned.png",
        "gt": {
            "image_size": [{"width": stored_w, "height": stored_h, "depth": 3}],
            "annotations": [dict(zip(("left", "top", "width", "height"), stored_box, strict=True)) | {"class_id": 0}],
        },
        "gt-metadata": {"class-map": {"0": "sign"}, "type": "groundtruth/object-detection"},
    }
    width, height = UPRIGHT_SIZE
    upright_box = (UPRIGHT_BOX[0] / width, UPRIGHT_BOX[1] / height, UPRIGHT_BOX[2] / width, UPRIGHT_BOX[3] / height)
    document = {
        "status": "ok",
        "source": {"key": "test_images/turned.png"},
        "image": {"width": stored_w, "height": stored_h, "transformations": [f"exif_orientation_{turn}_applied"]},
        "labels": [
            {
                "name": "sign",
                "confidence": 90.0,
                "bounding_box": dict(zip(("left", "top", "width", "height"), upright_box, strict=True)),
            }
        ],
    }
    result = evaluate.evaluate([document], read_manifest([json.dumps(line)]), Thresholds(50.0))
    (label,) = result.labels
    assert (label.current.tp, label.current.fp, label.positives) == (1, 0, 1)  # the same box in both frames


def test_orientation_boxes_go_there_and_back():
    box = (0.1, 0.2, 0.3, 0.25)
    for turn in range(1, 9):
        back = orientation.to_upright(orientation.to_stored(box, turn), turn)
        assert all(abs(a - b) < 1e-9 for a, b in zip(back, box, strict=True))


# --- Rekognition Custom Labels ---------------------------------------------------------------------------------


def rekognition_errors(lines: list[str], formats: dict[str, str]) -> list[str]:
    """What Rekognition Custom Labels would refuse, per its guide: "Guidelines and quotas" (PNG or JPEG; 64-4096
    px a side; aspect ratio under 20:1; at most 50 labels and 50 boxes an image), "Validation rules for manifest
    files" (at least 2 labels for image-level labels), the JSON-line errors (ERROR_INVALID_BOUNDING_BOX: a box
    off the frame or negative; ERROR_BOUNDING_BOX_TOO_SMALL: a box not larger than 1 x 1 px once an image is
    scaled to 1280 px on its longer side; ERROR_MISSING_CLASS_MAP_ID; a confidence per box), and the image-level
    line of "Importing image-level labels in manifest files" (``class-name``, ``groundtruth/image-classification``)."""
    errors: list[str] = []
    labels: set[str] = set()
    for number, line in enumerate(lines, 1):
        entry = json.loads(line)
        key = entry["source-ref"].split("/", 3)[3]
        if formats[key] not in ("PNG", "JPEG"):
            errors.append(f"{number}: {formats[key]} is not PNG or JPEG")
        for attribute, value in entry.items():
            metadata = entry.get(f"{attribute}-metadata")
            if not isinstance(metadata, dict):
                continue
            if metadata.get("type") == "groundtruth/object-detection":
                size = value["image_size"][0]
                w, h = size["width"], size["height"]
                if not (min(w, h) >= 64 and max(w, h) <= 4096 and max(w, h) / min(w, h) < 20):
                    errors.append(f"{number}: image {w}x{h}")
                scale = min(1.0, 1280 / max(w, h))
                if len(value["annotations"]) > 50 or len(metadata["objects"]) != len(value["annotations"]):
                    errors.append(f"{number}: boxes and confidences")
                for a in value["annotations"]:
                    if str(a["class_id"]) not in metadata["class-map"]:
                        errors.append(f"{number}: class {a['class_id']} not in the class-map")
                    if a["left"] < 0 or a["top"] < 0 or a["left"] + a["width"] > w or a["top"] + a["height"] > h:
                        errors.append(f"{number}: box off the frame {a}")
                    if not (a["width"] * scale > 1 and a["height"] * scale > 1):
                        errors.append(f"{number}: box too small {a}")
                labels |= set(metadata["class-map"].values())
            elif metadata.get("type") == "groundtruth/image-classification":
                if value != 1 or not isinstance(metadata.get("class-name"), str) or "confidence" not in metadata:
                    errors.append(f"{number}: image-level label {attribute}")
                labels.add(metadata["class-name"])
            elif "type" in metadata:
                errors.append(f"{number}: {metadata['type']} is not a type Rekognition Custom Labels reads")
    if len(labels) < 2 and any('"groundtruth/image-classification"' in line for line in lines):
        errors.append(f"only {len(labels)} label(s)")
    return errors


def test_the_rekognition_manifest_keeps_to_its_rules_and_says_what_it_left_out(tmp_path):
    many = [("bee", (0.01 * (n % 10), 0.01 * (n // 10), 0.05, 0.05)) for n in range(60)]
    items = [
        item(
            "test_images/a.jpg", 3000, 2000, boxes=[("sun", (0.95, 0.9, 0.2, 0.2)), ("cat", (0.5, 0.5, 0.0002, 0.0003))]
        ),
        item("test_images/cabin.webp", 800, 600, fmt="WEBP", boxes=[("cabin", (0.1, 0.1, 0.5, 0.5))]),
        item("test_images/swarm.png", 640, 480, fmt="PNG", boxes=many),
        item("test_images/wide.jpg", 4000, 150, boxes=[("road", (0.1, 0.1, 0.5, 0.5))]),
    ]
    formats = {i["key"]: i["format"] for i in items}
    review = session(tmp_path, items, all_right(items))

    ground_truth = manifest(review)
    rekognition = manifest(review, manifests.REKOGNITION)

    assert rekognition_errors(rekognition.lines, formats) == []
    assert set(rekognition.left_out) == {"test_images/cabin.webp", "test_images/wide.jpg"}
    said = " ".join(rekognition.warnings)
    for expected in ("cabin.webp", "PNG and JPEG only", "aspect ratio", "50 largest"):
        assert expected in said
    assert len(ground_truth.lines) == 4  # Ground Truth takes every format and shape
    assert rekognition_errors(ground_truth.lines, formats) != []  # and Rekognition would refuse some of it


def test_a_classifiers_review_is_written_as_image_level_labels_rekognition_reads(tmp_path):
    items = [item(f"test_images/{n}.jpg", 640, 480) for n in range(3)]
    reviews = {
        items[0]["key"]: {"verdicts": [], "added": [{"name": "sunrise", "box": None}, {"name": "lake", "box": None}]},
        items[1]["key"]: {"verdicts": [], "added": [{"name": "lake", "box": None}]},
        items[2]["key"]: {"verdicts": [], "added": []},  # nothing in it: no line Rekognition could use
    }
    review = session(tmp_path, items, reviews)

    written = manifest(review, manifests.REKOGNITION)

    assert rekognition_errors(written.lines, {i["key"]: "JPEG" for i in items}) == []
    first = json.loads(written.lines[0])
    assert {first[k]["class-name"] for k in first if k.endswith("-metadata") and "class-name" in first[k]} == {
        "sunrise",
        "lake",
    }
    assert written.left_out == [items[2]["key"]]
    assert all(not re.search(r"multilabel", line) for line in written.lines)
    # and evaluate reads it back, one class per label attribute
    truth = read_manifest(written.lines)
    assert truth.images[items[0]["key"]].classes == {"sunrise", "lake"}
