"""Draw a result document's boxes and labels on its image (for people looking at the demo's output)."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageDraw, ImageOps

PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180)]


def annotate(image_bytes: bytes, document: dict[str, Any]) -> bytes:
    """A PNG of the image with each accepted label's box and ``name confidence%``."""
    opened = Image.open(io.BytesIO(image_bytes))
    opened.seek(0)
    image: Image.Image = opened
    transformations = (document.get("image") or {}).get("transformations", [])
    if any(step.startswith("exif_orientation_") for step in transformations):
        image = ImageOps.exif_transpose(image)  # boxes are relative to the upright image
    image = image.convert("RGB")
    draw = ImageDraw.Draw(image)
    width, height = image.size
    line = max(2, min(width, height) // 200)
    for index, label in enumerate(document.get("labels", [])):
        colour = PALETTE[index % len(PALETTE)]
        text = f"{label['name']} {label['confidence']:.0f}%"
        box = label.get("bounding_box")
        if box:
            x0, y0 = box["left"] * width, box["top"] * height
            x1, y1 = x0 + box["width"] * width, y0 + box["height"] * height
            draw.rectangle((x0, y0, x1, y1), outline=colour, width=line)
            anchor = (x0 + line, max(0.0, y0 - 12))
        else:
            anchor = (4.0, 4.0 + 14 * index)
        left, top, right, bottom = draw.textbbox(anchor, text)
        draw.rectangle((left - 2, top - 1, right + 2, bottom + 1), fill=colour)
        draw.text(anchor, text, fill=(0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
