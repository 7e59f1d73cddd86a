"""Tests of kanta_guard.imaging.pixels: frames and overlays as the 8-bit images a viewer shows."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
)

from kanta_guard.errors import UnscannableError
from kanta_guard.imaging import (
    MAX_PIXELS,
    frame_count,
    frame_indices,
    frames_of,
    overlays_of,
)

#: A name planted in the data sets: no error message may repeat it.
PLANTED = "Virtanen^Planted"


def dataset(
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    syntax: str = ExplicitVRLittleEndian,
) -> Dataset:
    """A minimal image data set (with file meta) holding ``pixels`` (frames first if 3-D grey)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PatientName = PLANTED
    stored = bits_stored or (8 if pixels.dtype == np.uint8 else 16)
    ds.set_pixel_data(pixels, photometric, stored)
    if syntax != ExplicitVRLittleEndian:
        ds.compress(syntax)
    return ds


def ramp(rows: int = 64, columns: int = 64, top: int = 4095) -> np.ndarray:
    """A 16-bit horizontal ramp from 0 to ``top``."""
    line = np.linspace(0, top, columns).astype(np.uint16)
    return np.tile(line, (rows, 1))


def only(ds: Dataset, max_frames: int = 1) -> np.ndarray:
    """The one frame of ``ds``."""
    frames = list(frames_of(ds, max_frames))
    assert len(frames) == 1
    return frames[0]


def test_native_grey_is_stretched_to_8_bits() -> None:
    """A 12-bit ramp without VOI comes out as 8 bits spanning 0–255."""
    image = only(dataset(ramp(), bits_stored=12))
    assert image.dtype == np.uint8 and image.shape == (64, 64)
    assert image[0, 0] == 0 and image[0, -1] == 255
    assert np.all(np.diff(image[0].astype(int)) >= 0)


def test_window_is_applied_after_rescale() -> None:
    """Rescale then Window Center/Width: values under the window black, over it white."""
    ds = dataset(ramp(top=2000))
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1000  # stored 0..2000 → -1000..1000
    ds.WindowCenter, ds.WindowWidth = 0, 200  # shows -100..100 only
    image = only(ds)
    values = np.linspace(0, 2000, 64) - 1000
    assert np.all(image[0][values < -110] == 0)
    assert np.all(image[0][values > 110] == 255)
    inside = image[0][(values > -90) & (values < 90)]
    assert inside.min() > 0 and inside.max() < 255


def test_voi_lut_sequence_is_preferred() -> None:
    """A VOI LUT Sequence maps stored values through its table."""
    ds = dataset(ramp(top=255).astype(np.uint16), bits_stored=8)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 8]
    item.LUTData = [255 - i for i in range(256)]  # an inverting table
    ds.VOILUTSequence = [item]
    image = only(ds)
    assert image[0, 0] == 255 and image[0, -1] == 0


def test_monochrome1_is_inverted() -> None:
    """MONOCHROME1's minimum is white: the same values read inverted from MONOCHROME2."""
    two = only(dataset(ramp(), bits_stored=12))
    one = only(dataset(ramp(), "MONOCHROME1", bits_stored=12))
    assert np.array_equal(one, 255 - two)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_compressed_frames_equal_native(syntax: str) -> None:
    """RLE and JPEG 2000 (pydicom's and openjpeg's encoders) decode to the native result."""
    native = only(dataset(ramp(), bits_stored=12))
    compressed = dataset(ramp(), bits_stored=12, syntax=syntax)
    assert compressed.file_meta.TransferSyntaxUID == syntax
    assert np.array_equal(only(compressed), native)


def test_jpeg_ls_decodes_through_pylibjpeg() -> None:
    """JPEG-LS lossless (pydicom's own test file; no encoder is installed) equals its native
    twin."""
    lossless = pydicom.dcmread(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))
    native = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    assert np.array_equal(only(lossless), only(native))


def test_jpeg_baseline_colour_comes_out_rgb() -> None:
    """A JPEG baseline YBR_FULL_422 frame (Pillow-encoded) comes out as RGB close to the source."""
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, :16] = (200, 30, 30)
    rgb[:, 16:32] = (30, 200, 30)
    rgb[:, 32:] = (30, 30, 200)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=95)
    ds = dataset(rgb, "RGB")
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    image = only(ds)
    assert image.shape == (32, 48, 3)
    assert np.abs(image.astype(int) - rgb.astype(int)).mean() < 8


def test_ybr_full_uncompressed_is_converted() -> None:
    """YBR_FULL_422 native data (pydicom's test file) reads like its RGB twin."""
    ybr = only(pydicom.dcmread(get_testdata_file("SC_ybr_full_422_uncompressed.dcm")))
    rgb = only(pydicom.dcmread(get_testdata_file("SC_rgb_rle.dcm")))
    assert ybr.shape == rgb.shape == (100, 100, 3)
    assert np.abs(ybr.astype(int) - rgb.astype(int)).mean() < 2


def test_palette_colour_goes_through_its_palette() -> None:
    """PALETTE COLOR indices become the palette's RGB (here a grey palette, 16-bit entries)."""
    ds = dataset(np.tile(np.arange(256, dtype=np.uint8), (4, 1)), "PALETTE COLOR")
    for colour in ("Red", "Green", "Blue"):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        table = np.arange(256, dtype=np.uint16)[::-1] * 257  # 0..65535, reversed
        setattr(ds, f"{colour}PaletteColorLookupTableData", table.tobytes())
    image = only(ds)
    assert image.shape == (4, 256, 3)
    assert image[0, 0].tolist() == [255, 255, 255] and image[0, -1].tolist() == [0, 0, 0]


def test_multi_frame_spreads_max_frames() -> None:
    """Of five frames, three are read: the first, the middle and the last, each its own."""
    frames = np.stack([np.full((8, 8), 10 * (i + 1), np.uint8) for i in range(5)])
    frames[:, 0, 0] = 0  # contrast, so that each frame stretches to 0..255 the same way
    ds = dataset(frames)
    assert frame_count(ds) == 5
    read = list(frames_of(ds, 3))
    assert len(read) == 3
    assert all(image.shape == (8, 8) and image[1, 1] == 255 for image in read)
    rle = dataset(frames, syntax=RLELossless)
    assert len(list(frames_of(rle, 10))) == 5


@pytest.mark.parametrize(
    ("count", "most", "expected"),
    [
        (1, 4, [0]),
        (4, 4, [0, 1, 2, 3]),
        (10, 2, [0, 9]),
        (100, 4, [0, 33, 66, 99]),
        (10, 0, []),
    ],
)
def test_frame_indices(count: int, most: int, expected: list[int]) -> None:
    """Frames to read: all that fit, else spread from the first to the last."""
    assert frame_indices(count, most) == expected


def test_no_pixel_data_yields_nothing() -> None:
    """A data set without pixel data (a KOS manifest, an SR) has no frames and no overlays."""
    ds = Dataset()
    ds.PatientName = PLANTED
    assert list(frames_of(ds, 4)) == [] and list(overlays_of(ds)) == []


def test_bare_data_set_native_syntax_is_inferred() -> None:
    """A bare data set (no file meta, as DIMSE carries it) with native pixel data is read in the
    encoding it was read with; with encapsulated data it needs the transfer syntax passed in."""
    source = dataset(ramp(), bits_stored=12)
    copy = dataset(ramp(), bits_stored=12)
    copy.file_meta = FileMetaDataset()
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, copy, implicit_vr=True, little_endian=True)
    buffer.seek(0)
    bare = pydicom.dcmread(buffer, force=True)
    assert bare.original_encoding == (True, True)
    assert "TransferSyntaxUID" not in bare.file_meta
    assert np.array_equal(only(bare), only(source))

    rle = dataset(ramp(), bits_stored=12, syntax=RLELossless)
    rle.file_meta = FileMetaDataset()
    with pytest.raises(UnscannableError, match="without a transfer syntax"):
        only(rle)
    assert np.array_equal(next(frames_of(rle, 1, transfer_syntax=RLELossless)), only(source))


def test_over_the_pixel_budget_is_refused() -> None:
    """A frame over the pixel budget is refused, not downscaled, before anything is decoded."""
    ds = dataset(ramp(rows=64, columns=64))
    with pytest.raises(UnscannableError, match="pixel budget") as raised:
        list(frames_of(ds, 1, max_pixels=64 * 63))
    assert PLANTED not in str(raised.value)
    assert MAX_PIXELS == 4096 * 4096


def test_undecodable_pixel_data_is_unscannable() -> None:
    """Corrupt RLE data raises UnscannableError with the transfer syntax and no value in it."""
    ds = dataset(ramp(), bits_stored=12, syntax=RLELossless)
    fragment = PLANTED.encode() * 8
    ds.PixelData = encapsulate([fragment])
    with pytest.raises(UnscannableError, match="could not be decoded") as raised:
        only(ds)
    assert PLANTED not in str(raised.value) and "Virtanen" not in raised.value.reason


def test_unsupported_syntax_is_unscannable() -> None:
    """A transfer syntax no decoder handles (MPEG-2 video) is unscannable."""
    ds = dataset(ramp())
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    with pytest.raises(UnscannableError, match="no decoder"):
        only(ds)


def overlay(ds: Dataset, group: int, bits: np.ndarray) -> None:
    """Add the overlay plane ``bits`` (rows × columns of 0/1) in ``group``."""
    rows, columns = bits.shape
    ds.add_new((group, 0x0010), "US", rows)
    ds.add_new((group, 0x0011), "US", columns)
    ds.add_new((group, 0x0040), "CS", "G")
    ds.add_new((group, 0x0050), "SS", [1, 1])
    ds.add_new((group, 0x0100), "US", 1)
    ds.add_new((group, 0x0102), "US", 0)
    ds.add_new((group, 0x3000), "OW", pydicom.pixels.pack_bits(bits.ravel()))


def test_overlay_planes_with_set_bits_are_images() -> None:
    """Each overlay group with a set bit is one white-on-black image; an empty one is skipped."""
    ds = dataset(ramp())
    text = np.zeros((64, 64), np.uint8)
    text[10:20, 5:40] = 1
    overlay(ds, 0x6000, text)
    overlay(ds, 0x6002, np.zeros((64, 64), np.uint8))
    overlay(ds, 0x601E, text.T.copy())
    found = list(overlays_of(ds))
    assert [group for group, _ in found] == [0x6000, 0x601E]
    _, image = found[0]
    assert image.dtype == np.uint8 and image.shape == (64, 64)
    assert np.array_equal(image == 255, text == 1) and set(np.unique(image)) == {0, 255}


def test_pydicom_example_overlay() -> None:
    """pydicom's own overlay example has one overlay plane with set bits."""
    ds = pydicom.dcmread(get_testdata_file("examples_overlay.dcm"))
    found = list(overlays_of(ds))
    assert len(found) == 1 and found[0][0] == 0x6000 and found[0][1].max() == 255


def test_embedded_overlay_is_read_from_the_high_bits() -> None:
    """A retired overlay in bit 15 of 12-bit pixel cells (no 60xx,3000) is extracted."""
    pixels = ramp()
    mark = np.zeros((64, 64), bool)
    mark[30:34, 10:50] = True
    cells = pixels | (mark.astype(np.uint16) << 15)
    ds = dataset(cells, bits_stored=16)
    ds.BitsStored, ds.HighBit = 12, 11
    ds.add_new((0x6000, 0x0010), "US", 64)
    ds.add_new((0x6000, 0x0011), "US", 64)
    ds.add_new((0x6000, 0x0100), "US", 16)
    ds.add_new((0x6000, 0x0102), "US", 15)
    found = list(overlays_of(ds))
    assert len(found) == 1
    group, image = found[0]
    assert group == 0x6000 and np.array_equal(image == 255, mark)
    # The image itself is read from the 12 stored bits: the overlay bit is not in its values.
    assert np.array_equal(only(ds), only(dataset(pixels, bits_stored=12)))


def test_overlay_over_the_budget_is_refused() -> None:
    """An overlay over the pixel budget is refused."""
    ds = dataset(ramp())
    overlay(ds, 0x6000, np.ones((64, 64), np.uint8))
    with pytest.raises(UnscannableError, match="pixel budget"):
        list(overlays_of(ds, max_pixels=1000))


def test_truncated_overlay_is_unscannable() -> None:
    """Overlay data shorter than its rows and columns say is unscannable."""
    ds = dataset(ramp())
    overlay(ds, 0x6000, np.ones((64, 64), np.uint8))
    ds[0x6000, 0x3000].value = b"\xff" * 10
    with pytest.raises(UnscannableError, match="overlay data could not be read"):
        list(overlays_of(ds))


def test_graphic_annotations_are_drawn() -> None:
    """Each annotation item with graphic objects is one image, white strokes on black, the
    objects' box with a margin (PIXEL units as they are; DISPLAY units on a 1024 square); items
    without graphic objects are skipped; bad or too many points are unscannable."""
    from pydicom.sequence import Sequence as DicomSequence

    from kanta_guard.imaging import graphics_of
    from kanta_guard.imaging.graphics import DISPLAY_SIDE, MAX_POINTS

    def obj(points: list[float], units: str = "PIXEL", kind: str = "POLYLINE") -> Dataset:
        found = Dataset()
        found.GraphicAnnotationUnits = units
        found.GraphicDimensions = 2
        found.NumberOfGraphicPoints = len(points) // 2
        found.GraphicData = points
        found.GraphicType = kind
        return found

    def state(*items: list[Dataset]) -> Dataset:
        ds = Dataset()
        sequence = []
        for objects in items:
            item = Dataset()
            item.GraphicLayer = "L"
            if objects:
                item.GraphicObjectSequence = DicomSequence(objects)
            sequence.append(item)
        ds.GraphicAnnotationSequence = DicomSequence(sequence)
        return ds

    ds = state([], [obj([10.0, 10.0, 310.0, 110.0])], [obj([0.0, 0.0, 0.5, 0.25], "DISPLAY")])
    (first, line), (second, display) = list(graphics_of(ds))
    assert (first, second) == (2, 3)
    assert line.shape == (100 + 32, 300 + 32) and line.dtype == np.uint8
    assert line.max() == 255 and line[0, 0] == 0 and line[16, 16] == 255
    assert display.shape == (DISPLAY_SIDE // 4 + 32, DISPLAY_SIDE // 2 + 32)
    assert len(list(graphics_of(ds, max_items=1))) == 1
    assert list(graphics_of(Dataset())) == []
    for bad in ([1.0, 2.0, 3.0], [float("nan"), 1.0, 2.0, 3.0], [0.0, 0.0] * (MAX_POINTS + 1)):
        with pytest.raises(UnscannableError):
            list(graphics_of(state([obj(bad)])))
