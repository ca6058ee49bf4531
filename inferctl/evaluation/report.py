"""The evaluation as a page people would rather look at than read: one self-contained HTML file (no network,
no CDN): per-label precision/recall curves with the recommended and current points, and a gallery of the
images whose boxes redraw as a threshold slider moves (from the results' labels and candidates)."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from inferctl.console import label_colours
from inferctl.evaluation.evaluate import Evaluation, pool
from inferctl.evaluation.groundtruth import GroundTruth

THUMBNAIL_SIDE = 360
THUMBNAILS_MAX = 60  # disagreement pictures in the comparison
Fetch = Callable[[str, str | None], bytes]  # (key, version) -> image bytes


def upright(data: bytes, transformations: Iterable[str], side: int) -> Any:
    """The image (its first frame) as its boxes are drawn on it: EXIF orientation applied when the function
    applied it, at most ``side`` pixels on a side. A PIL image; errors are Pillow's."""
    from PIL import Image, ImageOps

    opened = Image.open(io.BytesIO(data))
    opened.seek(0)
    image: Image.Image = opened
    if any(step.startswith("exif_orientation_") for step in transformations):
        image = ImageOps.exif_transpose(image)
    image.thumbnail((side, side))
    return image


def thumbnail(data: bytes, transformations: Iterable[str]) -> str | None:
    """A small JPEG as a data URI, upright as the boxes are (EXIF orientation applied when it was)."""
    try:
        image = upright(data, transformations, THUMBNAIL_SIDE).convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
    except Exception:  # noqa: BLE001 - a picture the report cannot show is left out, the numbers stay
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def gallery(
    documents: Iterable[Mapping[str, Any]], truth: GroundTruth | None, fetch: Fetch | None, limit: int = 60
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for document in documents:
        if document.get("status") != "ok" or len(items) >= limit:
            continue
        key = str(document["source"]["key"])
        boxes = _boxes(pool(document))
        image = None
        if fetch is not None:
            try:
                data = fetch(key, (document.get("source") or {}).get("version_id"))
                image = thumbnail(data, (document.get("image") or {}).get("transformations", []))
            except Exception:  # noqa: BLE001 - see thumbnail
                image = None
        truth_boxes = []
        if truth is not None and key in truth.images:
            truth_boxes = [{"name": name, "box": list(box)} for name, box in truth.images[key].boxes]
        items.append({"key": key, "image": image, "boxes": boxes, "truth": truth_boxes})
    return items


def _boxes(labels: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"name": label["name"], "confidence": label["confidence"], "box": label.get("bounding_box")} for label in labels
    ]


def with_pictures(
    comparison: dict[str, Any], documents: Iterable[Mapping[str, Any]], fetch: Fetch | None
) -> dict[str, Any]:
    """The comparison (``Comparison.as_dict()``) with a thumbnail and both models' accepted boxes on each of
    its first THUMBNAILS_MAX disagreements."""
    by_key = {str(d["source"]["key"]): d for d in documents if isinstance(d.get("source"), dict)}
    for item in comparison["disagreements"][:THUMBNAILS_MAX]:
        source = by_key[item["key"]]
        item["boxes"] = {
            "primary": _boxes(source.get("labels", [])),
            "challenger": _boxes((source.get("challenger") or {}).get("labels", [])),
        }
        item["image"] = None
        if fetch is not None:
            try:
                data = fetch(item["key"], source["source"].get("version_id"))
                item["image"] = thumbnail(data, (source.get("image") or {}).get("transformations", []))
            except Exception:  # noqa: BLE001 - the numbers and boxes stand without the picture
                item["image"] = None
    return comparison


def render(
    evaluation: Evaluation | None,
    items: list[dict[str, Any]],
    title: str,
    threshold: float,
    comparison: dict[str, Any] | None = None,
    colours: dict[str, str] | None = None,
) -> str:
    names = {r.label for r in evaluation.labels} if evaluation else set()
    for item in items:
        names |= {box["name"] for box in item.get("boxes", [])} | {truth["name"] for truth in item.get("truth", [])}
    for model in (comparison or {}).get("models", []):
        names |= {label["label"] for label in model.get("labels", [])}
    for item in (comparison or {}).get("gallery", []):
        names |= {box["name"] for box in item.get("boxes", []) if "name" in box}
    data = {
        "evaluation": evaluation.as_dict() if evaluation else None,
        "gallery": items,
        "threshold": threshold,
        "comparison": comparison,
        # as the annotated images draw them: the run's label set when given, else this report's
        "colours": {**label_colours(names), **(colours or {})},
    }
    payload = json.dumps(data).replace("</", "<\\/")
    return TEMPLATE.replace("__TITLE__", html.escape(title)).replace("__DATA__", payload)


def write(
    path: Path,
    evaluation: Evaluation | None,
    items: list[dict[str, Any]],
    title: str,
    threshold: float,
    comparison: dict[str, Any] | None = None,
    colours: dict[str, str] | None = None,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(evaluation, items, title, threshold, comparison, colours), encoding="utf-8")
    return path


TEMPLATE = (Path(__file__).with_name("report.html")).read_text(encoding="utf-8")
