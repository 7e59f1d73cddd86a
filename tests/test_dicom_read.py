"""Tests for kanta_guard.dicom.read: the strict reader (what a lenient one would let through is
unscannable, with a reason that names no value), bounds, character sets, and pydicom's
reading of what passed."""

from __future__ import annotations

import struct
import zlib

import dicomgen
import pydicom
import pytest
from helpers import REAL
from pydicom.data import get_charset_files, get_testdata_file

from kanta_guard.dicom.read import (
    DEFLATED_LE,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    ReadLimits,
    decode,
    encodings_of,
    is_part10,
    keyword,
    read,
    to_pydicom,
)
from kanta_guard.errors import UnscannableError

_LONG = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
UNDEFINED = 0xFFFFFFFF


def el(
    tag: int, vr: str, value: bytes, *, implicit: bool = False, length: int | None = None
) -> bytes:
    """One data element in little endian, explicit VR unless ``implicit``."""
    size = len(value) if length is None else length
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if implicit:
        return head + struct.pack("<L", size) + value
    if vr in _LONG:
        return head + vr.encode() + b"\0\0" + struct.pack("<L", size) + value
    return head + vr.encode() + struct.pack("<H", size) + value


def item(content: bytes, *, undefined: bool = False) -> bytes:
    """A sequence item; of undefined length, with its delimiter."""
    if undefined:
        return b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + content + b"\xfe\xff\x0d\xe0\0\0\0\0"
    return b"\xfe\xff\x00\xe0" + struct.pack("<L", len(content)) + content


SEQUENCE_END = b"\xfe\xff\xdd\xe0\0\0\0\0"
NAME = el(0x00100010, "PN", b"Testinen^Maija ")


def test_every_element_at_every_depth() -> None:
    """Elements, sequences of defined and undefined length, nested items are all read."""
    inner = item(el(0x00100020, "LO", b"ABC "), undefined=True)
    data = (
        NAME
        + el(0x00101002, "SQ", inner + SEQUENCE_END, length=UNDEFINED)
        + el(0x0040A730, "SQ", item(el(0x0040A160, "UT", b"text")))
    )
    found = read(data, EXPLICIT_LE)
    assert [e.tag for e in found.dataset.elements] == [0x00100010, 0x00101002, 0x0040A730]
    sequence = found.dataset.elements[1]
    assert sequence.items is not None and len(sequence.items) == 1
    assert sequence.items[0].value(sequence.items[0].elements[0]) == b"ABC "
    assert found.elements == 5


def test_part10_and_its_meta() -> None:
    """A Part 10 file is read by its own transfer syntax, its file meta kept apart."""
    data = dicomgen.part10(dicomgen.clean(), IMPLICIT_LE)
    assert is_part10(data)
    found = read(data, EXPLICIT_LE)  # (the file's own transfer syntax wins)
    assert found.part10 and found.implicit and found.transfer_syntax == IMPLICIT_LE
    assert found.meta is not None and all(e.tag >> 16 == 2 for e in found.meta.elements)


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_RLE.dcm",
        "JPEG2000.dcm",
        "image_dfl.dcm",  # deflated (with a zlib trailer after the raw stream)
        "UN_sequence.dcm",
        "nested_priv_SQ.dcm",
        "test-SR.dcm",
        "waveform_ecg.dcm",
        "ExplVR_LitEndNoMeta.dcm",
        "examples_overlay.dcm",
    ],
)
def test_reads_what_pydicom_reads(name: str) -> None:
    """pydicom's sound test files are read, with as many top-level elements as pydicom sees."""
    path = get_testdata_file(name)
    assert path is not None
    data = open(str(path), "rb").read()  # noqa: SIM115 (a test's one-liner)
    found = read(data)
    ds = pydicom.dcmread(str(path), force=True)
    assert len(found.dataset.elements) == len(ds)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("MR_truncated.dcm", "running past the end"),
        ("rtplan_truncated.dcm", "running past the end"),
        ("SC_rgb_jpeg.dcm", "unknown value representation"),  # an implicit element mid-file
        ("meta_missing_tsyntax.dcm", "no transfer syntax"),
    ],
)
def test_refuses_what_pydicom_forgives(name: str, reason: str) -> None:
    """Files pydicom reads leniently (cut short, switching VR encoding) are unscannable."""
    path = get_testdata_file(name)
    assert path is not None
    with pytest.raises(UnscannableError, match=reason):
        read(open(str(path), "rb").read())  # noqa: SIM115


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        # Two PatientName elements: pydicom keeps the last, a receiver may show the first.
        (NAME + el(0x00100010, "PN", b"Virtanen^Matti"), "out of order or repeated"),
        (el(0x00100020, "LO", b"X") + NAME, "out of order or repeated"),
        (NAME[:-3], "running past the end"),
        (NAME + b"\x10\x00", "cut short"),
        (NAME + b"\x10\x00\x20\x00", "cut short"),
        (el(0x00100010, "ZZ", b"abcd"), "unknown value representation"),
        (el(0x00100010, "LO", b"", length=0xFFFF), "running past the end"),
        (el(0x00100020, "LO", b"") + b"\xfe\xff\x00\xe0\0\0\0\0", "item or delimiter"),
        (el(0x00101002, "SQ", item(NAME), length=UNDEFINED), "cut short"),
        (el(0x00101002, "SQ", NAME), "other than items"),
        (el(0x00101002, "SQ", item(NAME, undefined=True)[:-8]), "without its delimiter"),
        (el(0x00101002, "SQ", b"\xfe\xff\x00\xe0d\0\0\0" + NAME), "running past the end"),
        (el(0x00101002, "SQ", item(NAME) + SEQUENCE_END), "other than items"),
        (el(0x00081030, "UT", b"x", length=UNDEFINED), "undefined length"),
        (el(0x7FE00010, "OB", item(b"") + item(b"\xff\xd8"), length=UNDEFINED), "cut short"),
        (el(0x7FE00010, "OB", SEQUENCE_END, length=UNDEFINED), "offset table"),
        (el(0x7FE00010, "OB", item(b"") + NAME + SEQUENCE_END, length=UNDEFINED), "fragments"),
    ],
)
def test_malformed_is_unscannable(data: bytes, reason: str) -> None:
    """Repeated or unordered tags, values and items past their end, unknown VRs, undefined
    lengths where none may be, items that are no items: unscannable."""
    with pytest.raises(UnscannableError, match=reason):
        read(data, EXPLICIT_LE)


def test_reasons_name_no_value() -> None:
    """A reason names the byte offset, never the value that was being read."""
    value = f"Potilas {REAL}".encode()
    with pytest.raises(UnscannableError) as caught:
        read(el(0x00104000, "LT", value)[:-4], EXPLICIT_LE)
    assert "at byte 0" in caught.value.reason
    assert REAL[:6] not in str(caught.value) and "Potilas" not in str(caught.value)


def test_limits() -> None:
    """Element count, sequence depth and inflated bytes are bounded."""
    many = b"".join(el(0x00090010 + n, "LO", b"AB") for n in range(20))
    with pytest.raises(UnscannableError, match="more than 10"):
        read(many, EXPLICIT_LE, limits=ReadLimits(max_elements=10))
    nested = NAME
    for _ in range(6):
        nested = el(0x0040A730, "SQ", item(nested))
    read(nested, EXPLICIT_LE, limits=ReadLimits(max_sequence_depth=6))
    with pytest.raises(UnscannableError, match="more than 5 levels"):
        read(nested, EXPLICIT_LE, limits=ReadLimits(max_sequence_depth=5))
    bomb = el(0x00104000, "UT", b" " * 100_000)
    meta = dicomgen.part10(dicomgen.clean(), DEFLATED_LE)
    assert read(meta).transfer_syntax == DEFLATED_LE
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflater.compress(bomb) + deflater.flush()
    start = meta.index(b"DICM") + 4
    header = read(meta).meta
    assert header is not None
    end = start + sum(8 + e.length + (4 if e.vr in _LONG else 0) for e in header.elements)
    with pytest.raises(UnscannableError, match="inflates past"):
        read(meta[:end] + body, limits=ReadLimits(max_bytes=50_000))


def test_deflated_round_trip() -> None:
    """The deflated transfer syntax is inflated and read; cut short, it is unscannable."""
    data = dicomgen.part10(dicomgen.with_name(dicomgen.clean()), DEFLATED_LE)
    found = read(data)
    assert found.dataset.find(0x00100010) is not None
    with pytest.raises(UnscannableError, match=r"cut short|does not inflate"):
        read(data[:-200])


def test_bare_data_sets() -> None:
    """A bare data set is read in the transfer syntax given, or by its first element's VR."""
    ds = dicomgen.clean()
    for syntax in (IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE):
        data = dicomgen.bare(ds, syntax)
        assert not is_part10(data)
        assert read(data, syntax).dataset.find(0x00100020) is not None
        assert read(data).transfer_syntax == syntax  # sniffed
    with pytest.raises(UnscannableError, match="unknown transfer syntax"):
        read(dicomgen.bare(ds), "1.2.3.4")


def test_implicit_private_vr_by_creator() -> None:
    """In implicit VR, a private element's VR comes from the private dictionary by its creator
    (UN when nothing knows it), a Private Creator's is LO."""
    data = (
        el(0x00290010, "LO", b"SIEMENS CSA HEADER", implicit=True)
        + el(0x00291008, "CS", b"IMAGE NUM 4 ", implicit=True)
        + el(0x00291009, "LO", b"20100101", implicit=True)
        + el(0x00291099, "UN", b"abcd", implicit=True)
    )
    found = read(data, IMPLICIT_LE).dataset
    assert [e.vr for e in found.elements] == ["LO", "CS", "LO", "UN"]


def test_un_sequences() -> None:
    """A UN of undefined length is a sequence in implicit VR little endian; a defined-length UN
    whose tag the dictionary knows as a sequence is read as one."""
    inner = item(el(0x00100020, "LO", REAL.encode(), implicit=True))
    undefined = el(0x00101002, "UN", inner + SEQUENCE_END, length=UNDEFINED)
    defined = el(0x00101002, "UN", inner)
    for data in (undefined, defined):
        element = read(data, EXPLICIT_LE).dataset.elements[0]
        assert element.vr == "SQ" and element.items is not None
        assert element.items[0].elements[0].tag == 0x00100020
    opaque = el(0x00101002, "UN", b"not a sequence")
    assert read(opaque, EXPLICIT_LE).dataset.elements[0].vr == "UN"


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        ("chrGerm.dcm", 0x00100010),
        ("chrFren.dcm", 0x00100010),
        ("chrRuss.dcm", 0x00100010),
        ("chrGreek.dcm", 0x00100010),
        ("chrH31.dcm", 0x00100010),
        ("chrJapMulti.dcm", 0x00100010),
        ("chrKoreanMulti.dcm", 0x00100010),
        ("chrX1.dcm", 0x00100010),
        ("chrArab.dcm", 0x00100010),
        ("chrHbrw.dcm", 0x00100010),
    ],
)
def test_character_sets_as_pydicom(name: str, tag: int) -> None:
    """Values decode as pydicom decodes them, ISO 2022 escapes included."""
    path = next(p for p in get_charset_files(name))
    found = read(open(path, "rb").read())  # noqa: SIM115
    charset = found.dataset.find(0x00080005)
    encodings = (
        encodings_of(found.dataset.value(charset).decode("ascii")) if charset else ("ascii",)
    )
    element = found.dataset.find(tag)
    assert element is not None
    text = decode(found.dataset.value(element), element.vr, encodings).rstrip("\0 ")
    assert text.rstrip("=") == str(pydicom.dcmread(path)[tag].value)


def test_character_set_errors() -> None:
    """An unknown term, bytes that do not decode, an escape to an undeclared set, non-ASCII in
    the default repertoire: errors, never replacement characters."""
    with pytest.raises(LookupError):
        encodings_of("ISO_IR 999")
    with pytest.raises(LookupError):
        encodings_of("ISO 2022 IR 6\\")  # (an empty term past the first)
    assert encodings_of("") == ("ascii",)
    assert encodings_of("ISO_IR 100") == ("latin_1",)
    with pytest.raises(UnicodeError):
        decode("Mäki".encode("latin-1"), "PN", ("UTF8",))
    with pytest.raises(UnicodeError):
        decode("Mäki".encode(), "PN", ("ascii",))
    with pytest.raises(LookupError):
        decode(b"\x1b$B;3ED", "PN", ("ascii",))  # ISO 2022 IR 87 not declared
    with pytest.raises(UnicodeError):
        decode("Mäki".encode(), "CS", ("UTF8",))  # CS is in the default repertoire only
    assert decode("Mäki".encode(), "LO", ("UTF8",)) == "Mäki"


def test_keywords() -> None:
    """Keywords of the data dictionary, repeating groups by their mask; none for private tags."""
    assert keyword(0x00100010) == "PatientName"
    assert keyword(0x60023000) == "OverlayData"
    assert keyword(0x00191010) == ""


def test_to_pydicom_of_bare_compressed() -> None:
    """pydicom reads a bare compressed data set once it has passed: its pixels decode."""
    ds = dicomgen.compressed(dicomgen.clean("SC"), dicomgen.RLE_LOSSLESS)
    syntax = str(ds.file_meta.TransferSyntaxUID)
    found = to_pydicom(read(dicomgen.bare(ds), syntax))
    assert found.pixel_array.shape == (64, 64)
