"""Boxes between an image's stored pixels and the image shown upright (its EXIF orientation applied).

A result's boxes are ratios of the image the model saw: upright when the function applied the EXIF orientation
(``exif_orientation_N_applied`` among the result's transformations), the stored pixels otherwise. A Ground Truth
manifest's boxes are pixels of the file ``source-ref`` names, as stored, with ``image_size`` its stored width and
height (docs/decisions.md, 2026-12-02): what the pixels are, whatever a viewer does with the EXIF tag. So boxes
move between the two frames here, and only here.

The EXIF orientations (TIFF 6.0, tag 274) as the transform that makes the stored image upright, and where a point
of the stored image (x, y, as ratios) lands upright:
1 none (x, y) · 2 mirror left-right (1-x, y) · 3 rotate 180 (1-x, 1-y) · 4 mirror top-bottom (x, 1-y) ·
5 transpose (y, x) · 6 rotate 90 clockwise (1-y, x) · 7 transverse (1-y, 1-x) · 8 rotate 90 anticlockwise (y, 1-x).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

Box = tuple[float, float, float, float]  # left, top, width, height as ratios of the image
Point = tuple[float, float]

_APPLIED = re.compile(r"^exif_orientation_([1-8])_applied$")

# Where a stored point lands upright, per orientation; and back.
_TO_UPRIGHT: dict[int, Callable[[float, float], Point]] = {
    1: lambda x, y: (x, y),
    2: lambda x, y: (1 - x, y),
    3: lambda x, y: (1 - x, 1 - y),
    4: lambda x, y: (x, 1 - y),
    5: lambda x, y: (y, x),
    6: lambda x, y: (1 - y, x),
    7: lambda x, y: (1 - y, 1 - x),
    8: lambda x, y: (y, 1 - x),
}
_TO_STORED: dict[int, Callable[[float, float], Point]] = {
    1: lambda u, v: (u, v),
    2: lambda u, v: (1 - u, v),
    3: lambda u, v: (1 - u, 1 - v),
    4: lambda u, v: (u, 1 - v),
    5: lambda u, v: (v, u),
    6: lambda u, v: (v, 1 - u),
    7: lambda u, v: (1 - v, 1 - u),
    8: lambda u, v: (1 - v, u),
}


def applied(transformations: Iterable[str]) -> int:
    """The EXIF orientation the function applied before the model saw the image (1: none)."""
    for step in transformations:
        found = _APPLIED.match(step)
        if found:
            return int(found.group(1))
    return 1


def swaps_sides(orientation: int) -> bool:
    """Orientations 5-8 turn the image a quarter: its upright width is its stored height."""
    return orientation in (5, 6, 7, 8)


def upright_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    return (height, width) if swaps_sides(orientation) else (width, height)


def _moved(box: Box, move: Callable[[float, float], Point]) -> Box:
    left, top, width, height = box
    (x1, y1), (x2, y2) = move(left, top), move(left + width, top + height)
    return min(x1, x2), min(y1, y2), abs(x2 - x1), abs(y2 - y1)


def to_stored(box: Box, orientation: int) -> Box:
    """A box of the upright image as a box of the stored pixels."""
    return _moved(box, _TO_STORED[orientation])


def to_upright(box: Box, orientation: int) -> Box:
    """A box of the stored pixels as a box of the upright image."""
    return _moved(box, _TO_UPRIGHT[orientation])
