"""DICOM pixel data and overlay planes as 8-bit images a person (or an OCR engine) would see.

What the guard reads for burned-in text must be what a viewer shows, so each frame goes through
the standard display pipeline (DICOM PS3.3 C.11, PS3.4 N.2.1): the Modality LUT (Rescale Slope
and Intercept, or the Modality LUT Sequence), then the VOI LUT (the VOI LUT Sequence, else the
first Window Center/Width), MONOCHROME1 inverted (PS3.3 C.7.6.3.1.2: its minimum is white),
PALETTE COLOR through its palette (C.7.6.3.1.5), YBR colour converted to RGB. The decoding and
every step are pydicom 3's (``pydicom.pixels``), with the installed pylibjpeg plugins for the
compressed transfer syntaxes (JPEG baseline, extended and lossless, JPEG-LS, JPEG 2000, RLE).

Overlay planes (PS3.3 C.9.2, repeating groups 6000–601E) come from pydicom's
``Dataset.overlay_array`` for (60xx,3000) Overlay Data. pydicom does not read the retired
overlays embedded in the unused high bits of the pixel data (PS3.5 2003, 8.1.2: Overlay Bits
Allocated > 1 or Overlay Bit Position > 0, no (60xx,3000)); :func:`overlays_of` extracts those
itself from the raw decoded frame, so that an old modality's text layer is not skipped.

Memory is bounded per frame: a frame (or overlay) of more than ``max_pixels`` pixels is refused
with :class:`~kanta_guard.errors.UnscannableError`, not downscaled, because decoding has to
allocate the whole frame before anything could shrink it, and shrinking would erase exactly the
small text the guard looks for. The processing peaks at about 24 bytes a pixel (the decoded
frame, pydicom's float64 LUT output and the 8-bit result), so the default budget of 2**24
pixels (4096 × 4096, any mammogram) costs at most about 400 MB. Frames are decoded one at a
time (``iter_array`` with frame indices), so a multi-frame image costs one frame's memory.

Error messages name the attribute or the transfer syntax, never a value of the data set.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi_lut,
)
from pydicom.pixels.utils import as_pixel_options
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from ..errors import UnscannableError

__all__ = [
    "MAX_PIXELS",
    "Image8",
    "frame_count",
    "frame_indices",
    "frames_of",
    "overlays_of",
]

#: An 8-bit image: (rows, columns) grey or (rows, columns, 3) RGB, dtype uint8.
type Image8 = npt.NDArray[np.uint8]

#: Default pixel budget of one frame or overlay plane (rows × columns): 4096 × 4096.
MAX_PIXELS = 1 << 24

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_OVERLAY_GROUPS = range(0x6000, 0x6020, 2)
_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
# PS3.5 A.4: an encapsulated Pixel Data value starts with the Basic Offset Table's Item tag.
_ITEM_TAG = b"\xfe\xff\x00\xe0"


def frame_count(ds: Dataset) -> int:
    """Number of Frames (0028,0008), 1 when absent or invalid (PS3.3 C.7.6.6: single frame)."""
    try:
        count = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        return 1
    return max(count, 1)


def frame_indices(count: int, max_frames: int) -> list[int]:
    """Which of ``count`` frames to read when at most ``max_frames`` may be: all of them if they
    fit, else ``max_frames`` spread evenly from the first to the last.

    Burned-in text is usually on every frame of a cine loop, but a frame in the middle may carry
    a different annotation; evenly spaced frames see more of the loop than its first few.

    >>> frame_indices(3, 10)
    [0, 1, 2]
    >>> frame_indices(100, 4)
    [0, 33, 66, 99]
    >>> frame_indices(5, 1)
    [0]
    """
    if max_frames <= 0 or count <= 0:
        return []
    if count <= max_frames:
        return list(range(count))
    if max_frames == 1:
        return [0]
    step = (count - 1) / (max_frames - 1)
    return sorted({round(i * step) for i in range(max_frames)})


def frames_of(
    ds: Dataset,
    max_frames: int,
    *,
    max_pixels: int = MAX_PIXELS,
    transfer_syntax: str | None = None,
) -> Iterator[Image8]:
    """Each frame of ``ds``'s pixel data (at most ``max_frames``, see :func:`frame_indices`) as
    an 8-bit grey or RGB image, the display pipeline applied; nothing if it has no pixel data.

    The transfer syntax is ``transfer_syntax`` if given, else the file meta's (0002,0010), else
    (a bare data set, as DIMSE carries it) inferred from the encoding it was read with, which is
    only possible for native (uncompressed) pixel data: a bare data set with encapsulated pixel
    data needs its transfer syntax passed in.

    Raises :class:`~kanta_guard.errors.UnscannableError` when a frame is over ``max_pixels`` or
    cannot be decoded (no decoder for the transfer syntax, corrupt data, a missing attribute).
    """
    keyword = next((k for k in _PIXEL_KEYWORDS if k in ds), None)
    if keyword is None or max_frames <= 0:
        return
    rows, columns = _dimensions(ds, "Rows", "Columns", "pixel data")
    if rows * columns > max_pixels:
        raise UnscannableError(
            f"image frame of {rows} x {columns} pixels is over the pixel budget of {max_pixels}",
            "pixel data",
        )
    syntax = _transfer_syntax(ds, keyword, transfer_syntax)
    indices = frame_indices(frame_count(ds), max_frames)
    for frame in _decoded(ds, syntax, indices, raw=False):
        yield _displayed(frame, ds)


def overlays_of(
    ds: Dataset,
    *,
    max_pixels: int = MAX_PIXELS,
    max_frames: int | None = None,
    transfer_syntax: str | None = None,
) -> Iterator[tuple[int, Image8]]:
    """Each overlay plane of ``ds`` that has a set bit, as ``(group, image)``: 255 where the
    overlay's bit is set, 0 elsewhere (white on black, as a viewer draws it).

    A multi-frame overlay (Number of Frames in Overlay) yields one image per frame with a set
    bit, at most ``max_frames`` of them (all if None). An overlay of more than ``max_pixels``
    pixels in all (rows × columns × frames: pydicom unpacks them at once) is refused. Overlays
    embedded in the pixel data's high bits are read from the first frame's raw values.

    Raises :class:`~kanta_guard.errors.UnscannableError` for an overlay over the budget or one
    whose data does not match its declared size.
    """
    for group in _OVERLAY_GROUPS:
        if (group, 0x3000) in ds:
            yield from _overlay_planes(ds, group, max_pixels, max_frames)
        elif (group, 0x0010) in ds and _embedded(ds, group):
            image = _embedded_overlay(ds, group, max_pixels, transfer_syntax)
            if image is not None:
                yield group, image


# -- Frames --------------------------------------------------------------------------------


def _dimensions(ds: Dataset, row_tag: Any, column_tag: Any, what: str) -> tuple[int, int]:
    """Rows and columns as positive ints, or unscannable."""
    try:
        rows, columns = int(ds[row_tag].value), int(ds[column_tag].value)
    except (KeyError, TypeError, ValueError):
        raise UnscannableError(f"{what} without valid rows and columns", what) from None
    if rows <= 0 or columns <= 0:
        raise UnscannableError(f"{what} without valid rows and columns", what)
    return rows, columns


def _transfer_syntax(ds: Dataset, keyword: str, given: str | None) -> UID:
    """The transfer syntax the pixel data is in (see :func:`frames_of`)."""
    if given:
        return UID(given)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and (uid := meta.get("TransferSyntaxUID")):
        return UID(str(uid))
    value = ds[keyword].value
    if isinstance(value, bytes | bytearray) and bytes(value[:4]) == _ITEM_TAG:
        raise UnscannableError("encapsulated pixel data without a transfer syntax", "pixel data")
    implicit, little = ds.original_encoding
    if implicit is None or little is None:
        implicit, little = ds.is_implicit_VR, ds.is_little_endian
    if implicit is None or little is None:
        raise UnscannableError("pixel data without a transfer syntax", "pixel data")
    if not little:
        return ExplicitVRBigEndian
    return ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian


def _decoded(
    ds: Dataset, syntax: UID, indices: Sequence[int], *, raw: bool
) -> Iterator[npt.NDArray[Any]]:
    """The frames at ``indices``, decoded one at a time by pydicom (and its plugins)."""
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise UnscannableError(
            f"no decoder for the transfer syntax {syntax}", "pixel data"
        ) from None
    if not decoder.is_available:
        raise UnscannableError(
            f"no installed decoder plugin for the transfer syntax {syntax}", "pixel data"
        )
    try:
        frames = decoder.iter_array(
            ds, indices=list(indices), validate=True, raw=raw, **as_pixel_options(ds)
        )
        for frame, _ in frames:
            yield frame
    except UnscannableError:
        raise
    except Exception as error:  # every decoder failure means the same to us
        # pydicom and the plugins raise ValueError, RuntimeError, AttributeError, KeyError …
        # with messages that may quote the data set; only the exception's type is kept.
        raise UnscannableError(
            f"pixel data in {syntax} could not be decoded ({type(error).__name__})",
            "pixel data",
        ) from None


def _displayed(frame: npt.NDArray[Any], ds: Dataset) -> Image8:
    """One decoded frame through the display pipeline, as 8-bit grey or RGB."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]
    if frame.dtype.kind == "f":
        return _stretch(np.nan_to_num(frame, nan=0.0, posinf=0.0, neginf=0.0))
    if photometric == "PALETTE COLOR" and frame.ndim == 2:
        try:
            rgb = apply_color_lut(frame, ds)
        except Exception as error:  # a broken palette is unreadable colour
            raise UnscannableError(
                f"palette colour image with an unusable palette ({type(error).__name__})",
                "pixel data",
            ) from None
        return _scale_colour(rgb, int(np.iinfo(rgb.dtype).bits) if rgb.dtype.kind == "u" else 16)
    if frame.ndim == 3:
        # YBR_FULL and YBR_FULL_422 were converted to RGB by pydicom (``raw=False``); the
        # JPEG and JPEG 2000 plugins return RGB for their YBR colour spaces themselves.
        return _scale_colour(frame, int(ds.get("BitsStored", 8) or 8))
    grey = _grey_values(frame, ds)
    image = _stretch(grey)
    if photometric == "MONOCHROME1":
        np.subtract(255, image, out=image)
    return image


def _grey_values(frame: npt.NDArray[Any], ds: Dataset) -> npt.NDArray[Any]:
    """Modality LUT then VOI LUT (pydicom), falling back to the values as stored when the
    data set's LUT attributes are unusable: the pixels were decoded, so the frame is still
    read, only with a plain min–max contrast instead of the intended one."""
    values: npt.NDArray[Any] = frame
    try:
        values = apply_modality_lut(values, ds)
    except Exception:
        values = frame
    with contextlib.suppress(Exception):
        values = apply_voi_lut(values, ds, index=0)
    return values


def _stretch(values: npt.NDArray[Any]) -> Image8:
    """Values linearly onto 0–255 from their own minimum and maximum (flat: all 0)."""
    low, high = float(values.min()), float(values.max())
    if not high > low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = values.astype(np.float32, copy=True)
    scaled -= low
    scaled *= 255.0 / (high - low)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    return np.rint(scaled, out=scaled).astype(np.uint8)


def _scale_colour(rgb: npt.NDArray[Any], bits: int) -> Image8:
    """An RGB frame with ``bits`` significant bits per sample as 8 bits per sample."""
    if rgb.dtype == np.uint8 and bits <= 8:
        return np.ascontiguousarray(rgb)
    if rgb.dtype.kind == "i":
        rgb = np.clip(rgb, 0, None)
    top = float((1 << max(bits, 1)) - 1)
    scaled = rgb.astype(np.float32) * (255.0 / top)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    return np.rint(scaled, out=scaled).astype(np.uint8)


# -- Overlays ------------------------------------------------------------------------------


def _overlay_planes(
    ds: Dataset, group: int, max_pixels: int, max_frames: int | None
) -> Iterator[tuple[int, Image8]]:
    """The frames of the overlay in (group,3000) with a set bit."""
    where = f"overlay {group:04X}"
    rows, columns = _dimensions(ds, (group, 0x0010), (group, 0x0011), where)
    try:
        count = max(int(ds.get((group, 0x0015)).value or 1), 1) if (group, 0x0015) in ds else 1
    except (TypeError, ValueError):
        raise UnscannableError("overlay with an invalid number of frames", where) from None
    if rows * columns * count > max_pixels:
        raise UnscannableError(
            f"overlay of {count} x {rows} x {columns} pixels is over the pixel budget of "
            f"{max_pixels}",
            where,
        )
    try:
        planes = ds.overlay_array(group)
    except Exception as error:  # pydicom names lengths, never values
        raise UnscannableError(
            f"overlay data could not be read ({type(error).__name__})", where
        ) from None
    if planes.ndim == 2:
        planes = planes[np.newaxis]
    yielded = 0
    for plane in planes:
        if max_frames is not None and yielded >= max_frames:
            return
        if plane.any():
            yielded += 1
            yield group, (plane != 0).astype(np.uint8) * np.uint8(255)


def _embedded(ds: Dataset, group: int) -> bool:
    """True for a retired overlay in the pixel data's unused bits (no (60xx,3000) of its own)."""
    allocated = ds.get((group, 0x0100))
    position = ds.get((group, 0x0102))
    return (allocated is not None and (allocated.value or 1) != 1) or (
        position is not None and (position.value or 0) != 0
    )


def _embedded_overlay(
    ds: Dataset, group: int, max_pixels: int, transfer_syntax: str | None
) -> Image8 | None:
    """The bit at Overlay Bit Position of the first frame's raw values, or None if unset.

    PS3.5 (2003) 8.1.2: such an overlay shares the pixel cells of the image, with its own rows
    and columns equal to the image's; Overlay Bit Position is the bit it occupies.
    """
    where = f"overlay {group:04X}"
    keyword = "PixelData"
    if keyword not in ds:
        raise UnscannableError("overlay in the pixel data's bits without pixel data", where)
    rows, columns = _dimensions(ds, "Rows", "Columns", "pixel data")
    if rows * columns > max_pixels:
        raise UnscannableError(
            f"image frame of {rows} x {columns} pixels is over the pixel budget of {max_pixels}",
            where,
        )
    try:
        position = int(ds[(group, 0x0102)].value)
        allocated = int(ds.get("BitsAllocated", 16))
    except (KeyError, TypeError, ValueError):
        raise UnscannableError(
            "overlay in the pixel data's bits without a position", where
        ) from None
    if not 0 <= position < allocated:
        raise UnscannableError("overlay bit position outside the pixel cell", where)
    syntax = _transfer_syntax(ds, keyword, transfer_syntax)
    # The decoders mask nothing in raw mode only for native data; the bit is read from the
    # stored cells, so bits_stored is widened to the whole cell for this one decode.
    frame = next(_decoded_cells(ds, syntax), None)
    if frame is None:
        return None
    if frame.ndim == 3:
        frame = frame[..., 0]
    bits = (frame.astype(np.uint32, copy=False) >> position) & 1
    if not bits.any():
        return None
    return bits.astype(np.uint8) * np.uint8(255)


def _decoded_cells(ds: Dataset, syntax: UID) -> Iterator[npt.NDArray[Any]]:
    """The first frame's whole pixel cells (every allocated bit, unsigned), for embedded
    overlays: decoded with Bits Stored = Bits Allocated and no sign, so that no bit is masked."""
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise UnscannableError(
            f"no decoder for the transfer syntax {syntax}", "pixel data"
        ) from None
    options = as_pixel_options(ds)
    options["bits_stored"] = options.get("bits_allocated", 16)
    options["pixel_representation"] = 0
    try:
        for frame, _ in decoder.iter_array(ds, indices=[0], validate=True, raw=True, **options):
            yield frame
            return
    except Exception as error:  # as in _decoded
        raise UnscannableError(
            f"pixel data in {syntax} could not be decoded ({type(error).__name__})",
            "pixel data",
        ) from None
