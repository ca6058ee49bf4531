"""Draw a result document's boxes and labels on its image, legible at any size: line width and text scale
with the image, each box is drawn twice (dark under light) so it shows on any background, and each label's
text takes black or white by its background's brightness. Each label has its own colour (``console.label_colour``),
the same in every image and in the report. Pillow is imported when an image is drawn, not with the CLI."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from inferctl.console import label_colour, rgb


def _text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    red, green, blue = background
    return (0, 0, 0) if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else (255, 255, 255)


def annotate(image_bytes: bytes, document: dict[str, Any], colours: Mapping[str, str] | None = None) -> bytes:
    """A PNG of the image with each accepted label's box and ``name confidence%``, each label in its colour
    (``colours``: those of the run's whole label set, ``console.label_colours``; otherwise its own)."""
    from PIL import Image, ImageDraw, ImageFont, ImageOps

    opened = Image.open(io.BytesIO(image_bytes))
    opened.seek(0)
    image: Image.Image = opened
    transformations = (document.get("image") or {}).get("transformations", [])
    if any(step.startswith("exif_orientation_") for step in transformations):
        image = ImageOps.exif_transpose(image)  # boxes are relative to the upright image
    image = image.convert("RGB")
    draw = ImageDraw.Draw(image)
    width, height = image.size
    side = min(width, height)
    line = max(2, side // 150)
    font = ImageFont.load_default(size=max(11, side // 28))
    for index, label in enumerate(document.get("labels", [])):
        colour = rgb((colours or {}).get(label["name"]) or label_colour(label["name"]))
        text = f"{label['name']} {label['confidence']:.0f}%"
        box = label.get("bounding_box")
        if box:
            x0, y0 = box["left"] * width, box["top"] * height
            x1, y1 = x0 + box["width"] * width, y0 + box["height"] * height
            draw.rectangle((x0, y0, max(x0, x1), max(y0, y1)), outline=(0, 0, 0), width=line * 2)
            inner = (x0 + line / 2, y0 + line / 2, x1 - line / 2, y1 - line / 2)
            if inner[2] >= inner[0] and inner[3] >= inner[1]:  # a box thinner than the line has no inside
                draw.rectangle(inner, outline=colour, width=line)
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            anchor = (x0, max(0.0, y0 - (bottom - top) - 2 * line))
        else:
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            anchor = (line * 2.0, line * 2.0 + index * ((bottom - top) + 3 * line))
        x, y = anchor
        draw.rectangle((x, y, x + (right - left) + 2 * line, y + (bottom - top) + 2 * line), fill=colour)
        draw.text((x + line - left, y + line - top), text, fill=_text_colour(colour), font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
