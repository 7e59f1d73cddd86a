"""Reading DICOM: a Part 10 file, or a bare data set in a given transfer syntax, every data element
at every depth, strictly and within bounds.

Why not ``pydicom.dcmread`` alone: pydicom reads leniently, as a viewer should, and a guard must
not. It keeps the last of two elements with the same tag (a receiver may keep the first); it
switches from explicit to implicit VR when a VR looks wrong; it accepts a value cut short by the
end of the data, trailing bytes, an item that is no item, and swallows some errors into log
lines. Each is a way for a data set to show the guard one thing and an archive another. So the
structure is read here, in one linear pass over the bytes (PS3.5 chapter 7: explicit and implicit
VR, little and big endian, defined and undefined lengths, sequences of items, encapsulated pixel
data, the deflated transfer syntax), and anything a strict reader would refuse is
:class:`~kanta_guard.errors.UnscannableError`, with a reason that names the byte offset and never
a value: elements out of order or repeated, a value or item running past its end, a length
undefined where PS3.5 does not allow one, an unknown VR or transfer syntax, bytes after the
data set. pydicom supplies what it knows: the data dictionary (implicit VRs, keywords, private
dictionaries), the character sets (:func:`decode`), and, for pixel data, a
:class:`pydicom.Dataset` of the same bytes once they have passed here (:func:`to_pydicom`).

Bounded: at most ``max_elements`` data elements in all, sequences nested at most
``max_sequence_depth`` deep, a deflated data set inflated to at most ``max_bytes``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from io import BytesIO

import pydicom
from pydicom import charset as _charset
from pydicom.datadict import dictionary_VR, keyword_for_tag, private_dictionary_VR
from pydicom.dataset import FileMetaDataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID, AllTransferSyntaxes
from pydicom.valuerep import TEXT_VR_DELIMS

from ..errors import UnscannableError

__all__ = [
    "DEFLATED_LE",
    "EXPLICIT_BE",
    "EXPLICIT_LE",
    "IMPLICIT_LE",
    "ITEM",
    "PIXEL_DATA",
    "STRING_VRS",
    "DataSet",
    "DicomObject",
    "Element",
    "ReadLimits",
    "decode",
    "dictionary_vr",
    "encodings_of",
    "is_part10",
    "keyword",
    "read",
    "to_pydicom",
]

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
_KNOWN_SYNTAXES = frozenset(str(uid) for uid in AllTransferSyntaxes)

UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_END = 0xFFFEE00D
SEQUENCE_END = 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
_TRANSFER_SYNTAX = 0x00020010


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Every VR of PS3.5 6.2 (2024e).
_VRS = _words(
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR "
    "US UT UV"
)
#: VRs whose explicit-VR header has 2 reserved bytes and a 4-byte length (PS3.5 7.1.2).
_LONG = _words("OB OD OF OL OV OW SQ SV UC UN UR UT UV")
#: VRs whose values are character strings.
STRING_VRS = _words("AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT")
#: String VRs in the default repertoire only (PS3.5 6.1.2.3): Specific Character Set does not
#: apply to them.
_DEFAULT_REPERTOIRE = _words("AE AS CS DA DS DT IS TM UI UR")
#: Single-valued string VRs: a backslash is a character, not a value delimiter (PS3.5 6.4).
SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})

_PREAMBLE = 128


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Bounds on one object: data elements in all, sequence nesting, inflated bytes."""

    max_elements: int = 500_000
    max_sequence_depth: int = 32
    max_bytes: int = 128 * 1024 * 1024


@dataclass(slots=True)
class Element:
    """One data element as read: its tag, VR, and where its value lies in the data set's buffer
    (``start``, ``length``); the items of a sequence; the fragments (start, length) of
    encapsulated pixel data, the Basic Offset Table first."""

    tag: int
    vr: str
    start: int
    length: int
    items: list[DataSet] | None = None
    fragments: list[tuple[int, int]] | None = None


@dataclass(slots=True)
class DataSet:
    """The elements of a data set (or a sequence item) in tag order, with the buffer their
    values lie in and its byte order."""

    elements: list[Element]
    buffer: bytes
    little: bool = True
    #: Offset of the data set (or item) in its buffer, for reasons that name a position.
    offset: int = 0

    def value(self, element: Element) -> bytes:
        """The element's value bytes (of a defined-length element)."""
        return self.buffer[element.start : element.start + element.length]

    def find(self, tag: int) -> Element | None:
        """The element with this tag, if any (a linear look: data sets are small)."""
        for element in self.elements:
            if element.tag == tag:
                return element
            if element.tag > tag:
                return None
        return None


@dataclass(frozen=True, slots=True)
class DicomObject:
    """What :func:`read` found: the file meta information (Part 10), the data set, its
    transfer syntax, and the bytes to give pydicom for pixel data."""

    dataset: DataSet
    transfer_syntax: str
    implicit: bool
    little: bool
    meta: DataSet | None = None
    #: The bytes as received (a Part 10 file, or the bare data set).
    source: bytes = field(default=b"", repr=False)
    #: How many data elements were read, all levels.
    elements: int = 0

    @property
    def part10(self) -> bool:
        return self.meta is not None


def is_part10(data: bytes) -> bool:
    """True for a DICOM Part 10 file: ``DICM`` after the 128-byte preamble (PS3.10 7.1)."""
    return data[_PREAMBLE : _PREAMBLE + 4] == b"DICM"


def read(
    data: bytes,
    transfer_syntax: str | None = None,
    *,
    limits: ReadLimits = ReadLimits(),
    where: str = "body",
) -> DicomObject:
    """Read a Part 10 file (the bytes decide: ``DICM`` at 128) or a bare data set in
    ``transfer_syntax`` (PS3.7 and DIMSE carry data sets so). A bare data set without a
    transfer syntax is read as explicit VR little endian if its first element has an explicit
    VR (big endian if its first group reads so), else as implicit VR little endian; one that
    starts with file meta information (group 0002) is a Part 10 file without its preamble."""
    if is_part10(data):
        return _read_part10(data, _PREAMBLE + 4, limits, where)
    if data[:4] == b"DICM":
        return _read_part10(data, 4, limits, where)
    meta_first = len(data) >= 6 and data[:2] == b"\x02\x00" and data[4:6] in (b"UL", b"OB", b"UI")
    if transfer_syntax is None and meta_first:
        return _read_part10(data, 0, limits, where)
    if transfer_syntax is None:
        explicit = len(data) >= 6 and data[4:6].decode("latin-1") in _VRS
        if not explicit:
            transfer_syntax = IMPLICIT_LE
        elif data[0] == 0 and data[1]:  # group 0008 written 00 08: big endian
            transfer_syntax = EXPLICIT_BE
        else:
            transfer_syntax = EXPLICIT_LE
    syntax = _syntax(transfer_syntax.strip(), where)
    return _read_dataset(data, 0, syntax, None, data, limits, where)


def _syntax(uid: str, where: str) -> str:
    if uid not in _KNOWN_SYNTAXES:
        raise UnscannableError("DICOM: unknown transfer syntax", where)
    return uid


def _read_part10(data: bytes, start: int, limits: ReadLimits, where: str) -> DicomObject:
    reader = _Reader(data, limits, where)
    meta, pos = reader.dataset(start, len(data), 0, implicit=False, little=True, meta=True)
    element = meta.find(_TRANSFER_SYNTAX)
    if element is None:
        raise UnscannableError("DICOM: the file meta information names no transfer syntax", where)
    raw = meta.value(element)
    try:
        uid = raw.decode("ascii").rstrip("\0 ").strip()
    except UnicodeDecodeError:
        raise UnscannableError("DICOM: the transfer syntax is not a UID", where) from None
    syntax = _syntax(uid, where)
    return _read_dataset(data, pos, syntax, meta, data, limits, where, reader.count)


def _read_dataset(
    data: bytes,
    pos: int,
    syntax: str,
    meta: DataSet | None,
    source: bytes,
    limits: ReadLimits,
    where: str,
    counted: int = 0,
) -> DicomObject:
    implicit = syntax == IMPLICIT_LE
    little = syntax != EXPLICIT_BE
    buffer = data
    if syntax == DEFLATED_LE:
        buffer, pos = _inflate(data[pos:], limits.max_bytes, where), 0
    reader = _Reader(buffer, limits, where)
    reader.count = counted
    dataset, _ = reader.dataset(pos, len(buffer), 0, implicit=implicit, little=little)
    return DicomObject(dataset, syntax, implicit, little, meta, source, reader.count)


def _inflate(data: bytes, limit: int, where: str) -> bytes:
    """The deflated data set (PS3.5 A.5: raw deflate, RFC 1951), at most ``limit`` bytes."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise UnscannableError("DICOM: the deflated data set does not inflate", where) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise UnscannableError(
            f"too large: the deflated data set inflates past the {limit}-byte limit", where
        )
    if not inflater.eof:
        raise UnscannableError("DICOM: the deflated data set is cut short", where)
    if len(inflater.unused_data) > 8:
        # (Some writers leave a zlib or gzip trailer, 4 or 8 bytes, after the raw stream: no
        # data element fits in it.)
        raise UnscannableError("DICOM: bytes after the deflated data set", where)
    return out


class _Reader:
    """One pass over a buffer: data sets, sequences, items, fragments (see the module doc)."""

    __slots__ = ("buffer", "count", "limits", "where")

    def __init__(self, buffer: bytes, limits: ReadLimits, where: str) -> None:
        self.buffer = buffer
        self.limits = limits
        self.where = where
        self.count = 0

    def _fail(self, reason: str, pos: int) -> UnscannableError:
        return UnscannableError(f"DICOM: {reason} (at byte {pos})", self.where)

    def dataset(
        self,
        pos: int,
        end: int,
        depth: int,
        *,
        implicit: bool,
        little: bool,
        delimited: bool = False,
        meta: bool = False,
    ) -> tuple[DataSet, int]:
        """The data set from ``pos`` to ``end`` (or, ``delimited``, to its Item Delimitation
        Item; ``meta``, while the group is 0002), and the position after it."""
        buffer = self.buffer
        head = _LE_HEAD if little else _BE_HEAD
        u32 = _LE_U32 if little else _BE_U32
        u16 = _LE_U16 if little else _BE_U16
        start = pos
        elements: list[Element] = []
        append = elements.append
        last = -1
        creators: dict[int, str] = {}
        max_elements = self.limits.max_elements
        while True:
            if pos >= end:
                if delimited:
                    raise self._fail("an item of undefined length ends without its delimiter", pos)
                break
            if pos + 8 > end:
                raise self._fail("a data element cut short", pos)
            group, number = head(buffer, pos)
            tag = group << 16 | number
            if meta and group != 0x0002:
                break
            if group == 0xFFFE:
                if tag == ITEM_END and delimited:
                    if u32(buffer, pos + 4)[0]:
                        raise self._fail("an item delimiter with a length", pos)
                    return DataSet(elements, buffer, little, start), pos + 8
                raise self._fail("an item or delimiter where a data element belongs", pos)
            if tag <= last:
                raise self._fail("data elements out of order or repeated", pos)
            last = tag
            self.count += 1
            if self.count > max_elements:
                raise UnscannableError(
                    f"too large: more than {max_elements} DICOM data elements", self.where
                )
            if implicit:
                length = u32(buffer, pos + 4)[0]
                vr = _implicit_vr(tag, _creator(creators, tag))
                header = 8
            else:
                code = buffer[pos + 4 : pos + 6]
                vr = code.decode("latin-1")
                if vr not in _VRS:
                    raise self._fail("an unknown value representation", pos)
                if vr in _LONG:
                    if pos + 12 > end:
                        raise self._fail("a data element cut short", pos)
                    length = u32(buffer, pos + 8)[0]
                    header = 12
                else:
                    length = u16(buffer, pos + 6)[0]
                    header = 8
            value = pos + header
            if length == UNDEFINED:
                if vr == "SQ" or vr == "UN":
                    # An undefined-length UN is a sequence in implicit VR little endian
                    # (PS3.5 6.2.2).
                    items, pos = self.items(
                        value,
                        end,
                        depth + 1,
                        implicit=implicit or vr == "UN",
                        little=little or vr == "UN",
                        defined=False,
                    )
                    append(Element(tag, "SQ", value, 0, items))
                elif tag == PIXEL_DATA and vr in ("OB", "OW"):
                    fragments, pos = self.fragments(value, end, little)
                    append(Element(tag, vr, value, pos - value, None, fragments))
                else:
                    raise self._fail("an undefined length where PS3.5 allows none", pos)
                continue
            after = value + length
            if after > end:
                raise self._fail("a value running past the end of its data set", pos)
            if vr == "SQ":
                items, _ = self.items(
                    value, after, depth + 1, implicit=implicit, little=little, defined=True
                )
                append(Element(tag, vr, value, length, items))
            elif vr == "UN" and length and _implicit_vr(tag, _creator(creators, tag)) == "SQ":
                # A sequence written as UN: its items in implicit VR little endian (PS3.5
                # 6.2.2), read so where they parse; else the bytes stay a value, read as text.
                sequence = self.un_sequence(tag, value, after, depth + 1)
                append(sequence or Element(tag, vr, value, length))
            else:
                if group & 1 and 0x10 <= number <= 0xFF:
                    # A Private Creator: the VR of its block's elements in implicit VR.
                    creators[group << 8 | number] = (
                        buffer[value:after].decode("latin-1").strip(" \0")
                    )
                append(Element(tag, vr, value, length))
            pos = after
        return DataSet(elements, buffer, little, start), pos

    def un_sequence(self, tag: int, pos: int, end: int, depth: int) -> Element | None:
        """The items of a UN value that should be a sequence, or None if they do not parse."""
        count = self.count
        try:
            items, _ = self.items(pos, end, depth, implicit=True, little=True, defined=True)
        except UnscannableError as exc:
            if exc.reason.startswith(("too large", "too deep")):
                raise
            self.count = count
            return None
        return Element(tag, "SQ", pos, end - pos, items)

    def items(
        self, pos: int, end: int, depth: int, *, implicit: bool, little: bool, defined: bool
    ) -> tuple[list[DataSet], int]:
        """The items of a sequence from ``pos`` (to ``end`` if ``defined``, else to the
        Sequence Delimitation Item)."""
        if depth > self.limits.max_sequence_depth:
            raise UnscannableError(
                f"too deep: DICOM sequences nested more than "
                f"{self.limits.max_sequence_depth} levels",
                self.where,
            )
        buffer = self.buffer
        head = _LE_ITEM if little else _BE_ITEM
        found: list[DataSet] = []
        while True:
            if defined and pos == end:
                return found, pos
            if pos + 8 > end:
                raise self._fail("a sequence cut short", pos)
            group, number, length = head(buffer, pos)
            tag = group << 16 | number
            if tag == SEQUENCE_END and not defined:
                if length:
                    raise self._fail("a sequence delimiter with a length", pos)
                return found, pos + 8
            if tag != ITEM:
                raise self._fail("a sequence holding something other than items", pos)
            if length == UNDEFINED:
                item, pos = self.dataset(
                    pos + 8, end, depth, implicit=implicit, little=little, delimited=True
                )
            else:
                after = pos + 8 + length
                if after > end:
                    raise self._fail("an item running past the end of its sequence", pos)
                item, pos = self.dataset(pos + 8, after, depth, implicit=implicit, little=little)
            found.append(item)

    def fragments(self, pos: int, end: int, little: bool) -> tuple[list[tuple[int, int]], int]:
        """The fragments of encapsulated pixel data (PS3.5 A.4), the Basic Offset Table first."""
        buffer = self.buffer
        head = _LE_ITEM if little else _BE_ITEM
        found: list[tuple[int, int]] = []
        while True:
            if pos + 8 > end:
                raise self._fail("encapsulated pixel data cut short", pos)
            group, number, length = head(buffer, pos)
            tag = group << 16 | number
            if tag == SEQUENCE_END:
                if length or not found:
                    raise self._fail("encapsulated pixel data without its offset table", pos)
                return found, pos + 8
            if tag != ITEM or length == UNDEFINED:
                raise self._fail("encapsulated pixel data holding something but fragments", pos)
            if pos + 8 + length > end:
                raise self._fail("a pixel data fragment running past the end", pos)
            found.append((pos + 8, length))
            pos += 8 + length


_LE_HEAD = struct.Struct("<HH").unpack_from
_BE_HEAD = struct.Struct(">HH").unpack_from
_LE_ITEM = struct.Struct("<HHL").unpack_from
_BE_ITEM = struct.Struct(">HHL").unpack_from
_LE_U32 = struct.Struct("<L").unpack_from
_BE_U32 = struct.Struct(">L").unpack_from
_LE_U16 = struct.Struct("<H").unpack_from
_BE_U16 = struct.Struct(">H").unpack_from


def _creator(creators: dict[int, str], tag: int) -> str | None:
    """The Private Creator of a private element's block, if the data set names one."""
    group, number = tag >> 16, tag & 0xFFFF
    return creators.get(group << 8 | number >> 8) if group & 1 and number > 0xFF else None


def dictionary_vr(tag: int) -> str:
    """The data dictionary's VR of a standard attribute (UN if it does not know it)."""
    return _implicit_vr(tag, None)


@lru_cache(maxsize=8192)
def _implicit_vr(tag: int, creator: str | None) -> str:
    """The VR of an element in implicit VR: the data dictionary's (a private one's by its
    creator), UL for group lengths, LO for Private Creators, UN when nothing knows it."""
    group, number = tag >> 16, tag & 0xFFFF
    if number == 0:
        return "UL"
    try:
        if group & 1:
            if 0x10 <= number <= 0xFF:
                return "LO"
            if creator is None:
                return "UN"
            vr = private_dictionary_VR(tag, creator)
        else:
            vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    if " or " in vr:  # "OB or OW", "US or SS", "US or SS or OW": implicit VR writes OW / US
        options = vr.split(" or ")
        vr = "OW" if "OW" in options else options[0]
    return vr if vr in _VRS else "UN"


@lru_cache(maxsize=8192)
def keyword(tag: int) -> str:
    """The attribute's keyword (``PatientName``; repeating groups by their mask), "" if the
    data dictionary does not know it (private and retired-unknown tags)."""
    return keyword_for_tag(tag) if not tag >> 16 & 1 else ""


# -- text ---------------------------------------------------------------------------------------

#: pydicom's name of the default repertoire is Latin-1 (it decodes leniently); strictly it is
#: ISO 646, ASCII.
_ASCII_NAMES = frozenset({_charset.default_encoding})
_ESCAPE = b"\x1b"


@lru_cache(maxsize=256)
def encodings_of(value: str) -> tuple[str, ...]:
    """The Python codecs of a Specific Character Set value (its terms ``\\``-separated; PS3.3
    C.12.1.1.2), via pydicom's table; UnscannableError for a term it does not define (a text
    decoded with a guessed character set is not the text the sender meant): LookupError."""
    terms = [term.strip() for term in value.split("\\")] if value.strip() else [""]
    found: list[str] = []
    for number, term in enumerate(terms):
        codec = _charset.python_encoding.get(term)
        if codec is None or (term == "" and number):
            raise LookupError("an unknown Specific Character Set term")
        found.append("ascii" if codec in _ASCII_NAMES else codec)
    return tuple(found)


def decode(raw: bytes, vr: str, encodings: tuple[str, ...]) -> str:
    """The text of a string value, decoded strictly: the default repertoire (ASCII) for the VRs
    it applies to, else the data set's character sets with ISO 2022 escape sequences (PS3.5
    6.1.2.5; pydicom's tables). UnicodeError or LookupError if the bytes do not decode so."""
    if vr in _DEFAULT_REPERTOIRE:
        return raw.decode("ascii")
    if _ESCAPE not in raw:
        return raw.decode(encodings[0])
    delimiters = TEXT_VR_DELIMS | ({0x5E, 0x3D, 0x5C} if vr == "PN" else {0x5C})
    out: list[str] = []
    for fragment in _fragments(raw):
        out.append(_decode_fragment(fragment, encodings, delimiters))
    return "".join(out)


def _fragments(raw: bytes) -> list[bytes]:
    """``raw`` cut before each escape sequence."""
    pieces = raw.split(_ESCAPE)
    first, rest = pieces[0], pieces[1:]
    return ([first] if first else []) + [_ESCAPE + piece for piece in rest]


def _decode_fragment(fragment: bytes, encodings: tuple[str, ...], delimiters: set[int]) -> str:
    if not fragment.startswith(_ESCAPE):
        return fragment.decode(encodings[0])
    size = 4 if fragment.startswith((b"\x1b$(", b"\x1b$)")) else 3
    codec = _charset.CODES_TO_ENCODINGS.get(fragment[:size])
    if codec is None:
        raise LookupError("unknown escape sequence")
    if codec in _ASCII_NAMES:
        codec = "ascii"
    elif codec not in encodings:
        raise LookupError("escape sequence to a character set the data set does not declare")
    if codec in _charset.handled_encodings:
        return fragment.decode(codec)  # (the codec reads its escape sequences itself)
    body = fragment[size:]
    cut = next((i for i, byte in enumerate(body) if byte in delimiters), None)
    if cut is None:
        return body.decode(codec)
    return body[:cut].decode(codec) + body[cut:].decode(encodings[0])


# -- pydicom ------------------------------------------------------------------------------------


def to_pydicom(obj: DicomObject, where: str = "body") -> pydicom.Dataset:
    """The object as a :class:`pydicom.Dataset` (for its pixel data and overlays), read from
    the same bytes after :func:`read` found them sound: pydicom's leniency cannot matter then.
    UnscannableError if pydicom cannot read them after all."""
    try:
        if obj.part10:
            return pydicom.dcmread(BytesIO(obj.source), force=True)
        buffer = obj.dataset.buffer
        ds = read_dataset(BytesIO(buffer), obj.implicit, obj.little)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = UID(obj.transfer_syntax)
        return ds
    except Exception as exc:  # pydicom raises many kinds on odd data; none may pass unread
        raise UnscannableError(
            f"DICOM: pydicom cannot read the data set ({type(exc).__name__})", where
        ) from None
