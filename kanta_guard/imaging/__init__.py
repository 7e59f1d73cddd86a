"""Imaging: DICOM pixel data and overlays as 8-bit images, and the text OCR reads in them.

The DICOM parser asks :func:`frames_of`, :func:`overlays_of` and :func:`graphics_of` (a
presentation state's graphic annotations, drawn) for what a viewer would show,
then :func:`read_image_text` for the text burned into it; the text goes through the same rules
as narrative text. :mod:`.pixels` decodes (pydicom 3 and its pylibjpeg plugins), :mod:`.ocr`
reads (RapidOCR's ONNX models, or Tesseract where it is installed).
"""

from __future__ import annotations

from .graphics import graphics_of
from .ocr import ImageText, available_engines, configure, read_image_text
from .pixels import MAX_PIXELS, frame_count, frame_indices, frames_of, overlays_of

__all__ = [
    "MAX_PIXELS",
    "ImageText",
    "available_engines",
    "configure",
    "frame_count",
    "frame_indices",
    "frames_of",
    "graphics_of",
    "overlays_of",
    "read_image_text",
]
