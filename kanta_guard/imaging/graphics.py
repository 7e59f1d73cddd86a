"""Graphic annotations of a presentation state (PS3.3 C.10.5) drawn as images for OCR.

A presentation state's Graphic Annotation Sequence (0070,0001) holds, per layer, text objects
(their Unformatted Text Value is text, read as such by the DICOM parser) and graphic objects
(0070,0009): polylines, interpolated curves, circles, ellipses and points a viewer draws over
the image. Text written with the mouse or a pen, or a name traced as polylines by a system that
stores "burned-in" annotation so, is only text once it is drawn: each annotation item's graphic
objects are drawn here, white on black, and the image goes to OCR like an overlay plane.

The canvas is the objects' bounding box with a margin, scaled so that its larger side is at
most :data:`MAX_SIDE` and its smaller at least :data:`MIN_SIDE` pixels (``DISPLAY`` units, 0 to
1, are drawn on a :data:`DISPLAY_SIDE` square). Lines are drawn a few pixels wide so that thin
strokes survive OCR's detector. Bounded: at most :data:`MAX_POINTS` points an item (more is
:class:`~kanta_guard.errors.UnscannableError`); data that is no list of coordinate pairs too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset

from ..errors import UnscannableError

__all__ = ["DISPLAY_SIDE", "MAX_POINTS", "MAX_SIDE", "MIN_SIDE", "graphics_of"]

MAX_SIDE = 2048
MIN_SIDE = 64
DISPLAY_SIDE = 1024
MAX_POINTS = 200_000
_GRAPHIC_ANNOTATIONS = 0x00700001
_GRAPHIC_OBJECTS = 0x00700009
_MARGIN = 16


def graphics_of(ds: Dataset, *, max_items: int | None = None) -> Iterator[tuple[int, Any]]:
    """Each item of the Graphic Annotation Sequence that has graphic objects, as ``(index from
    1, 8-bit image)``; at most ``max_items`` of them (all if None)."""
    items = ds.get(_GRAPHIC_ANNOTATIONS)
    if items is None or items.VR != "SQ":
        return
    drawn = 0
    for index, item in enumerate(items.value, 1):
        objects = item.get(_GRAPHIC_OBJECTS)
        if objects is None or not objects.value:
            continue
        if max_items is not None and drawn >= max_items:
            return
        image = _draw(objects.value)
        if image is not None:
            drawn += 1
            yield index, image


def _points(obj: Dataset) -> list[tuple[float, float]]:
    found = obj.get("GraphicData")
    values: Sequence[Any] = [] if found is None else found
    if isinstance(values, float | int):
        values = [values]
    if len(values) % 2 or len(values) // 2 > MAX_POINTS:
        raise UnscannableError(
            "DICOM: a graphic object whose data is no list of at most "
            f"{MAX_POINTS} coordinate pairs",
            "(0070,0022)GraphicData",
        )
    points = []
    for column, row in zip(values[::2], values[1::2], strict=True):
        x, y = float(column), float(row)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise UnscannableError(
                "DICOM: a graphic object with a coordinate that is no number",
                "(0070,0022)GraphicData",
            )
        points.append((x, y))
    return points


def _draw(objects: Sequence[Dataset]) -> npt.NDArray[np.uint8] | None:
    shapes: list[tuple[str, list[tuple[float, float]], bool]] = []
    total = 0
    for obj in objects:
        points = _points(obj)
        total += len(points)
        if total > MAX_POINTS:
            raise UnscannableError(
                f"DICOM: graphic annotation of more than {MAX_POINTS} points",
                "(0070,0009)GraphicObjectSequence",
            )
        if not points:
            continue
        display = str(obj.get("GraphicAnnotationUnits", "PIXEL")).strip().upper() == "DISPLAY"
        if display:
            points = [(x * DISPLAY_SIDE, y * DISPLAY_SIDE) for x, y in points]
        kind = str(obj.get("GraphicType", "POLYLINE")).strip().upper()
        shapes.append((kind, points, str(obj.get("GraphicFilled", "N")).upper() == "Y"))
    if not shapes:
        return None
    xs = [x for _, points, _ in shapes for x, _ in points]
    ys = [y for _, points, _ in shapes for _, y in points]
    left, top = min(xs), min(ys)
    width, height = max(max(xs) - left, 1.0), max(max(ys) - top, 1.0)
    scale = min(MAX_SIDE / width, MAX_SIDE / height, 1.0) if max(width, height) > MAX_SIDE else 1.0
    if min(width, height) * scale < MIN_SIDE and max(width, height) * scale < MAX_SIDE:
        scale = min(MIN_SIDE / min(width, height), MAX_SIDE / max(width, height))
    size = (int(width * scale) + 2 * _MARGIN, int(height * scale) + 2 * _MARGIN)
    canvas = Image.new("L", size, 0)
    pen = ImageDraw.Draw(canvas)
    stroke = max(2, round(min(size) / 128))

    def at(point: tuple[float, float]) -> tuple[float, float]:
        return ((point[0] - left) * scale + _MARGIN, (point[1] - top) * scale + _MARGIN)

    for kind, points, filled in shapes:
        placed = [at(p) for p in points]
        if kind == "POINT":
            for x, y in placed:
                pen.ellipse((x - stroke, y - stroke, x + stroke, y + stroke), fill=255)
        elif kind == "CIRCLE" and len(placed) >= 2:
            (cx, cy), (ex, ey) = placed[0], placed[1]
            r = math.hypot(ex - cx, ey - cy)
            box = (cx - r, cy - r, cx + r, cy + r)
            pen.ellipse(box, outline=255, width=stroke, fill=255 if filled else None)
        elif kind == "ELLIPSE" and len(placed) >= 4:
            xs_ = [p[0] for p in placed[:4]]
            ys_ = [p[1] for p in placed[:4]]
            box = (min(xs_), min(ys_), max(xs_), max(ys_))
            pen.ellipse(box, outline=255, width=stroke, fill=255 if filled else None)
        elif len(placed) >= 2:  # POLYLINE, INTERPOLATED (drawn through its points)
            if filled and len(placed) >= 3:
                pen.polygon(placed, fill=255)
            pen.line(placed, fill=255, width=stroke, joint="curve")
        else:
            x, y = placed[0]
            pen.ellipse((x - stroke, y - stroke, x + stroke, y + stroke), fill=255)
    return np.asarray(canvas, dtype=np.uint8)
