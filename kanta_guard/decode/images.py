"""Image metadata: EXIF (every IFD), XMP, IPTC, comments, ICC profiles, PNG text chunks.

Pillow (maintained, the de-facto Python imaging library) opens JPEG, TIFF, WebP, GIF and BMP
and parses their metadata without decoding a pixel. PNG's chunks are walked here instead
(ISO/IEC 15948 §5.3, §11.3.4): text chunks may follow the image data, where Pillow only reads
them after decoding every pixel, which costs memory in proportion to the image's declared size.
The pixels themselves (burned-in text) are the imaging issue's.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Iterator

from PIL import ExifTags, Image, ImageFile, IptcImagePlugin, UnidentifiedImageError

from ..errors import UnscannableError
from . import Piece

__all__ = ["image_pieces"]

# EXIF 2.32 (CIPA DC-008) §4.6.3: UserComment starts with an 8-byte character code.
_USER_COMMENT = 0x9286
_CHARACTER_CODES = {b"ASCII\0\0\0": "ascii", b"JIS\0\0\0\0\0": "shift_jis", b"\0" * 8: "latin-1"}
# Windows' XP* tags (XPTitle … XPSubject) hold UTF-16LE text as BYTE arrays.
_XP_TAGS = range(0x9C9B, 0x9CA0)
_SUB_IFDS = (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, ExifTags.IFD.Interop, ExifTags.IFD.IFD1)
# Tags whose values are structure (offsets, counts, pixel layout), not text.
_SKIP_KEYS = frozenset({"exif", "dpi", "jfif", "jfif_version", "jfif_unit", "jfif_density"})
# PNG chunks that hold no text (image header, pixels, colour and timing data): §11.2, §11.3.
_PNG_PLAIN = frozenset(
    b"IHDR PLTE IDAT IEND tRNS cHRM gAMA sBIT sRGB cICP mDCV cLLI bKGD hIST pHYs sPLT tIME "
    b"acTL fcTL fdAT".split()
)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_pieces(
    data: bytes, media_type: str, *, max_parts: int, max_size: int, location: str
) -> Iterator[Piece]:
    """The metadata of an image; ``UnidentifiedImageError`` (or ``OSError``) if the format
    cannot be opened, for the caller to judge (declared: unscannable; sniffed: read as text)."""
    if data.startswith(_PNG_SIGNATURE):
        # Every chunk is checked before any is given: a broken PNG fails on opening, whole.
        yield from list(_png(data, max_size, location))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about odd metadata; it is read anyway
        image = Image.open(io.BytesIO(data))
    with image:
        frames = getattr(image, "n_frames", 1) if image.format in ("TIFF", "GIF") else 1
        if frames > max_parts:
            raise UnscannableError(f"image has {frames} frames (at most {max_parts})", location)
        seen: set[tuple[str, object]] = set()
        for frame in range(frames):
            if frame:
                image.seek(frame)
            prefix = f"frame[{frame + 1}]/" if frames > 1 else ""
            for piece in _frame(image, prefix):
                key = (piece.where, piece.text if piece.text is not None else piece.data)
                if key not in seen:
                    seen.add(key)
                    yield piece


def _frame(image: ImageFile.ImageFile, prefix: str) -> Iterator[Piece]:
    """The metadata of the current frame: info entries, EXIF, IPTC, unparsed JPEG segments."""
    kind = (image.format or "image").lower()
    for key, value in image.info.items():
        if key in _SKIP_KEYS:
            continue
        where = f"{prefix}{kind}:{key}"
        if isinstance(value, str):
            yield Piece(where, text=value)
        elif isinstance(value, bytes):
            media = "application/xml" if key == "xmp" else None
            yield Piece(where, data=value, media_type=media)
        elif isinstance(value, dict):  # JPEG APP13 "photoshop" image resources
            for resource, content in value.items():
                if isinstance(content, bytes) and resource != 0x0404:  # 0x0404: IPTC, below
                    yield Piece(f"{where}[{resource:#06x}]", data=content)
    yield from _exif(image.getexif(), prefix)
    try:
        iptc = IptcImagePlugin.getiptcinfo(image)
    except (SyntaxError, OSError, ValueError, struct.error):
        raise UnscannableError("corrupt IPTC metadata") from None
    for (record, dataset), values in (iptc or {}).items():
        for value in values if isinstance(values, list) else [values]:
            yield Piece(f"{prefix}iptc:{record}:{dataset}", text=value.decode("utf-8", "replace"))
    for marker, segment in getattr(image, "applist", ()):
        # APP1 (EXIF, XMP), APP2 (ICC), APP13 (IPTC) and COM are read above; others as they are.
        if marker in ("APP1", "APP2", "APP13", "COM"):
            continue
        yield Piece(f"{prefix}jpeg:{marker}", data=segment)


def _exif(exif: Image.Exif, prefix: str) -> Iterator[Piece]:
    """Every tag of every IFD (0th, Exif, GPS, Interoperability, 1st) that holds text."""
    ifds: list[tuple[str, dict[int, object]]] = [("", dict(exif))]
    for ifd in _SUB_IFDS:
        try:
            ifds.append((ifd.name + "/", dict(exif.get_ifd(ifd))))
        except (KeyError, ValueError, SyntaxError, struct.error):
            raise UnscannableError(f"corrupt EXIF {ifd.name} directory") from None
    for sub, tags in ifds:
        for tag, value in tags.items():
            name = ExifTags.GPSTAGS.get(tag) if sub == "GPSInfo/" else None
            name = name or ExifTags.TAGS.get(tag) or f"{tag:#06x}"
            where = f"{prefix}exif:{sub}{name}"
            text = _exif_text(tag, value)
            if text is not None:
                yield Piece(where, text=text)
            elif isinstance(value, bytes):
                yield Piece(where, data=value)  # MakerNote and other undefined blobs


def _exif_text(tag: int, value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        if tag in _XP_TAGS:
            value = bytes(v & 0xFF for v in value)
        else:
            return None
    if not isinstance(value, bytes):
        return None
    if tag in _XP_TAGS:
        return value.decode("utf-16-le", "replace")
    if tag == _USER_COMMENT:
        code, text = value[:8], value[8:]
        if code == b"UNICODE\0":
            # The byte order is the TIFF header's; both are tried where it is not known.
            return text.decode("utf-16-be", "replace") + "\n" + text.decode("utf-16-le", "replace")
        return text.decode(_CHARACTER_CODES.get(code, "latin-1"), "replace")
    return None


def _png(data: bytes, max_size: int, location: str) -> Iterator[Piece]:
    """Every chunk of a PNG that can hold text, decompressed where it is compressed."""
    offset, total = len(_PNG_SIGNATURE), 0
    while offset < len(data):
        if offset + 12 > len(data):
            raise UnidentifiedImageError("truncated PNG chunk")
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        body = data[offset + 8 : offset + 8 + length]
        end = offset + 12 + length
        if len(body) != length or end > len(data):
            raise UnidentifiedImageError("truncated PNG chunk")
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(kind + body) != crc:
            raise UnidentifiedImageError("PNG chunk CRC mismatch")
        offset = end
        if kind == b"IEND":
            break
        if kind in _PNG_PLAIN:
            continue
        name = kind.decode("latin-1")
        for piece in _png_chunk(name, body, max_size - total, location):
            total += len(piece.data or b"")
            yield piece
    else:
        raise UnidentifiedImageError("PNG without IEND")
    if data[offset:].strip(b"\x00"):
        yield Piece("trailer", data=data[offset:])  # bytes after IEND: another file, perhaps


def _png_chunk(name: str, body: bytes, room: int, location: str) -> Iterator[Piece]:
    keyword, _, rest = body.partition(b"\x00")
    key = keyword.decode("latin-1")
    if name == "tEXt":
        yield Piece(f"png:tEXt/{key}", text=f"{key}\n{rest.decode('latin-1')}")
    elif name in ("zTXt", "iCCP"):
        # §11.3.4.4 zTXt, §11.3.3.3 iCCP: keyword, NUL, method (0 = zlib), zlib data.
        content = _inflate(rest[1:], room, location)
        if name == "zTXt":
            yield Piece(f"png:zTXt/{key}", text=f"{key}\n{content.decode('latin-1')}")
        else:
            yield Piece(f"png:iCCP/{key}", text=key)
            yield Piece("png:iCCP", data=content)
    elif name == "iTXt":
        # §11.3.4.5: keyword, NUL, flag, method, language tag, NUL, translated keyword, NUL, text.
        flag, rest = rest[:1], rest[2:]
        language, _, rest = rest.partition(b"\x00")
        translated, _, text = rest.partition(b"\x00")
        if flag == b"\x01":
            text = _inflate(text, room, location)
        head = f"{key}\n{language.decode('latin-1')}\n{translated.decode('utf-8', 'replace')}"
        if key == "XML:com.adobe.xmp":
            yield Piece(f"png:iTXt/{key}", text=head)
            yield Piece(f"png:iTXt/{key}/xmp", data=text, media_type="application/xml")
        else:
            yield Piece(f"png:iTXt/{key}", text=f"{head}\n{text.decode('utf-8', 'replace')}")
    elif name == "eXIf":
        exif = Image.Exif()
        try:
            exif.load(body)
        except (SyntaxError, ValueError, struct.error, OSError):
            raise UnscannableError("corrupt PNG eXIf chunk", location) from None
        yield from _exif(exif, "png:")
    else:
        yield Piece(f"png:{name}", data=body)  # a private or future chunk: read as it is


def _inflate(data: bytes, room: int, location: str) -> bytes:
    decoder = zlib.decompressobj()
    try:
        out = decoder.decompress(data, room + 1)
    except zlib.error:
        raise UnscannableError("corrupt compressed PNG text chunk", location) from None
    if len(out) > room:
        raise UnscannableError("PNG text chunk exceeds the decoded-bytes limit", location)
    if not decoder.eof:
        raise UnscannableError("truncated compressed PNG text chunk", location)
    return out
