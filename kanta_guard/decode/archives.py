"""Archives and compressed streams: zip (and the formats built on it), tar, gzip, bzip2, xz,
zstd, brotli, each read completely or refused, with caps on expanded size and entry count.

Libraries: the standard library's ``zipfile``, ``tarfile``, ``bz2`` and ``lzma`` (maintained
with CPython, streaming, no system tools), and for gzip, zstd and brotli the capped decoders of
:mod:`kanta_guard.encoding`, which the Content-Encoding step already uses: one implementation of
each format, one set of limits.
"""

from __future__ import annotations

import bz2
import io
import itertools
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from ..encoding import decode_content
from ..errors import UnscannableError
from ..idcode import quote_input
from . import Piece
from .sniff import type_for_name

__all__ = ["NotAZipError", "decompress", "inflate_raw", "tar_pieces", "zip_pieces"]

#: Read size while expanding a member: memory held per step, whatever the member claims.
CHUNK = 64 * 1024
#: Expansion ratio (output per compressed byte) past which a member is taken for a bomb, once
#: it has expanded past ``RATIO_FLOOR``. Deflate cannot pass about 1032:1 (RFC 1951's longest
#: match per bit); documents compress 5-50:1, generated spreadsheets up to about 150:1.
MAX_RATIO = 250
RATIO_FLOOR = 4 * 1024 * 1024
# APPNOTE.TXT 6.3.10 §4.4.4: general purpose flag bit 0 (encrypted), bit 6 (strong encryption).
_ENCRYPTED, _STRONG = 0x1, 0x40
# xz presets up to -9 need 65 MiB to decode (xz(1), "Memory usage"); more is refused.
_XZ_MEMLIMIT = 96 * 1024 * 1024
_CODINGS = {"application/gzip": "gzip", "application/zstd": "zstd", "application/x-brotli": "br"}


def decompress(data: bytes, media_type: str, max_size: int, location: str) -> bytes:
    """The content of one compressed stream (``decode.sniff.COMPRESSED_TYPES``), at most
    ``max_size`` bytes; unscannable if it is corrupt, truncated or larger."""
    coding = _CODINGS.get(media_type)
    try:
        if coding is not None:
            return decode_content(data, coding, max_size=max_size)
        if media_type == "application/x-bzip2":
            return _streams(data, bz2.BZ2Decompressor, max_size, "bzip2")
        if media_type == "application/x-lzma":
            # The label covers both formats in use (xz's own and the legacy "alone" one).
            return _streams(
                data,
                lambda: lzma.LZMADecompressor(lzma.FORMAT_AUTO, memlimit=_XZ_MEMLIMIT),
                max_size,
                "lzma",
            )
        return _streams(
            data,
            lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=_XZ_MEMLIMIT),
            max_size,
            "xz",
        )
    except UnscannableError as exc:
        raise UnscannableError(exc.reason, location) from None


class _Decoder(Protocol):
    """What ``bz2.BZ2Decompressor`` and ``lzma.LZMADecompressor`` share."""

    @property
    def eof(self) -> bool: ...
    @property
    def needs_input(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


def _streams(data: bytes, make: Callable[[], _Decoder], max_size: int, name: str) -> bytes:
    """bzip2 or xz: one or more streams back to back (as ``bzip2 -d`` and ``xz -d`` read them;
    xz allows NUL stream padding between streams, The .xz File Format §2.2)."""
    out = bytearray()
    rest = data
    while rest:
        if name == "xz":
            stripped = rest.lstrip(b"\x00")
            if not stripped and rest is not data:
                break
            rest = stripped
        decoder = make()
        tail = rest
        try:
            while not decoder.eof:
                piece = decoder.decompress(tail, max_size - len(out) + 1)
                tail = b""
                out += piece
                if len(out) > max_size:
                    raise _too_large(max_size)
                if not piece and decoder.needs_input:
                    raise UnscannableError(f"truncated {name} data ({len(data)} bytes)")
        except (OSError, EOFError, lzma.LZMAError) as exc:
            if isinstance(exc, lzma.LZMAError) and "memory" in str(exc).lower():
                raise UnscannableError("xz stream needs more than 96 MiB to decode") from exc
            raise UnscannableError(f"corrupt {name} data ({len(data)} bytes)") from exc
        rest = decoder.unused_data
    return bytes(out)


def inflate_raw(data: bytes, max_size: int) -> bytes | None:
    """``data`` inflated as one raw DEFLATE stream (RFC 1951, no header: what SAML's
    HTTP-Redirect binding and CDA's ``DF`` send) or a zlib stream (RFC 1950), if it is one
    that ends where the data does; None if it is not. Unscannable if it expands past
    ``max_size`` bytes (a bomb).

    For bytes nothing else recognised: raw DEFLATE has no magic number, so the trial is the
    test. Random bytes fail it within a few bytes (an invalid block type, code or distance),
    and a stream that stops short or leaves bytes over is no such encoding either.
    """
    for wbits in (-zlib.MAX_WBITS, zlib.MAX_WBITS):
        if not _may_open(data, wbits):
            continue  # (what zlib would refuse at its first bytes, refused without it)
        decoder = zlib.decompressobj(wbits)
        out = bytearray()
        tail = data
        try:
            while not decoder.eof:
                piece = decoder.decompress(tail, CHUNK)
                tail = decoder.unconsumed_tail
                out += piece
                if len(out) > max_size:
                    raise _too_large(max_size)
                if not piece and not tail:
                    break  # (input used up before the stream's end: truncated)
        except zlib.error:
            continue
        if decoder.eof and not decoder.unused_data and out:
            return bytes(out)
    return None


def _may_open(data: bytes, wbits: int) -> bool:
    """False where zlib refuses ``data`` at its first bytes, as ``inflate_raw`` would find by
    trying (random bytes are tried by the thousand: Base64 values decoded to binary). Raw
    DEFLATE (RFC 1951 §3.2.3): block type 3 is reserved; a stored block's LEN and NLEN must
    be complements. zlib (RFC 1950 §2.2): method 8, a window of at most 32 KB, the header a
    multiple of 31, no preset dictionary (none is given). Shorter data is left to zlib."""
    if wbits < 0:
        if not data:
            return True
        kind = (data[0] >> 1) & 3
        if kind == 3:
            return False
        if kind == 0 and len(data) >= 5:
            return data[1] | data[2] << 8 == ~(data[3] | data[4] << 8) & 0xFFFF
        return True
    if len(data) < 2:
        return True
    cmf, flg = data[0], data[1]
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0 and not flg & 0x20


def _too_large(max_size: int) -> UnscannableError:
    return UnscannableError(
        f"decompressed content exceeds the {max_size}-byte limit (possible decompression bomb)"
    )


class NotAZipError(UnscannableError):
    """The bytes do not open as a zip archive at all (no end of central directory record that
    leads to a central directory): what a chance ``PK\\5\\6`` in another file's data gives."""


def zip_pieces(
    data: bytes, *, max_entries: int, max_size: int, location: str, appended: bool = False
) -> Iterator[Piece]:
    """Every member of a zip archive (docx, xlsx, odt, epub, jar ...): its name and comment as
    text, its content as data; the archive's comment too.

    The archive is read both ways readers read one: from its central directory (zipfile,
    Info-ZIP's unzip, 7-Zip, Windows) and as a streaming reader does (Java's ZipInputStream,
    ``unzip`` or ``bsdtar`` reading a pipe), local entry after local entry from the start.
    Every byte is accounted for: the members the central directory lists (their local header,
    data and data descriptor), the directory and the end records. What is left over is read
    too: a local entry the directory does not list (``unlisted@N:name``, STORED or DEFLATED,
    within the same caps), and any other bytes (data hidden between entries, before the first,
    after the end record; the rest of a member's data after its DEFLATE stream ends) as a
    nested payload (``bytes[N:M]``); NUL padding is skipped.

    ``appended``: the archive follows another file that the caller reads (a JPEG or a PDF with
    a zip glued on): the bytes before its first entry are that file's, not given again (local
    entries among them are), and an archive of no members there is a chance end record in
    that file's data.

    Unscannable: not a zip, more than ``max_entries`` entries, an encrypted entry, a
    compression method Python cannot decode (an unlisted entry: other than STORED and
    DEFLATED), a CRC mismatch, more than ``max_size`` bytes in all, an entry expanding faster
    than ``MAX_RATIO``, entries that overlap (a zip bomb's layout, or one that readers read
    differently), a local header that contradicts the central directory (name, method,
    encryption, size), an unlisted entry whose end cannot be known (STORED with a data
    descriptor) or that runs into another entry.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise NotAZipError(f"corrupt zip archive ({_why(exc)})", location) from None
    except NotImplementedError as exc:  # "zip file version 6.4": a feature zipfile lacks
        raise UnscannableError(
            f"zip archive the guard cannot read ({_why(exc)})", location
        ) from None
    with archive:
        members = archive.infolist()
        if len(members) > max_entries:
            raise UnscannableError(
                f"zip archive has {len(members)} members (at most {max_entries} read)", location
            )
        if appended and not members:
            return
        listed, spans = _layout(data, archive, members, location)
        if archive.comment:
            yield Piece("comment", text=archive.comment.decode("utf-8", "replace"))
        total = 0
        spare: list[tuple[int, int]] = []  # member data past the end of its DEFLATE stream
        for index, (info, entry) in enumerate(zip(members, listed, strict=True)):
            name = info.filename
            where = name or f"member[{index}]"
            yield Piece(f"{where}#name", text=name)
            if info.comment:
                yield Piece(f"{where}#comment", text=info.comment.decode("utf-8", "replace"))
            if info.extra:
                # Extra fields (APPNOTE §4.5) hold Unicode path and comment copies, among others.
                yield Piece(f"{where}#extra", text=info.extra.decode("latin-1"))
            if entry.extra and entry.extra != info.extra:
                # (The local header's own: what a streaming reader sees.)
                yield Piece(f"{where}#local-extra", text=entry.extra.decode("latin-1"))
            if info.flag_bits & (_ENCRYPTED | _STRONG):
                raise UnscannableError(
                    f"zip member {quote_input(name)} is encrypted (password-protected)", location
                )
            if info.flag_bits & _PATCHED:
                raise UnscannableError(
                    f"zip member {quote_input(name)} is compressed patched data (flag bit 5), "
                    "which the guard cannot decode",
                    location,
                )
            if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                label = f"zip member {quote_input(name)}"
                content, used = _expand(
                    data,
                    entry.start,
                    entry.end,
                    info.compress_type,
                    max_size - total,
                    info.compress_size,
                    label,
                    location,
                )
                if zlib.crc32(content) != info.CRC:
                    raise UnscannableError(f"corrupt {label} (CRC-32 mismatch)", location)
                after = entry.start + used
                if after < entry.end:
                    # (A descriptor of the stream as it ends here: what a streaming reader
                    # takes next, carrying nothing.)
                    after += _descriptor(data, after, info.CRC, used, info.file_size)
                    spare.append((min(after, entry.end), entry.end))
            else:
                content = _member(archive, info, max_size - total, location)
            total += len(content)
            if info.is_dir() and not content:
                continue
            yield Piece(where, data=content)
        gaps = sorted(_gaps(spans, len(data)) + spare)
        host = spans[0][0] if appended else 0
        entries = max_entries - len(members)
        yield from _unlisted(data, gaps, host, entries, max_size - total, location)


# APPNOTE.TXT 6.3.10: the local file header (§4.3.7), the end of central directory record
# (§4.3.16), the zip64 end record and its locator (§4.3.14, §4.3.15), the data descriptor
# (§4.3.9) and the general purpose flags (§4.4.4: bit 3 sizes in a data descriptor, bit 5
# compressed patched data, bit 11 UTF-8 names).
_LOCAL = struct.Struct("<4s5H3L2H")
_LOCAL_SIG, _END_SIG, _END64_SIG, _LOCATOR_SIG, _DESCRIPTOR_SIG = (
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"PK\x06\x06",
    b"PK\x06\x07",
    b"PK\x07\x08",
)
_END = struct.Struct("<4s4H2LH")
_END64_SIZE, _LOCATOR_SIZE = 56, 20
_DESCRIPTOR, _PATCHED, _UTF8 = 0x8, 0x20, 0x800
_MASK32 = 0xFFFFFFFF
_DESCRIPTOR_FORMS = (
    (_DESCRIPTOR_SIG, struct.Struct("<3L")),
    (_DESCRIPTOR_SIG, struct.Struct("<LQQ")),
    (b"", struct.Struct("<3L")),
    (b"", struct.Struct("<LQQ")),
)


@dataclass(frozen=True, slots=True)
class _Listed:
    """Where a listed member's compressed data lies (``start`` to ``end``), and the extra
    field of its local header."""

    start: int
    end: int
    extra: bytes


def _layout(
    data: bytes, archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], location: str
) -> tuple[list[_Listed], list[tuple[int, int]]]:
    """Each member's data, and the spans of the file the members and the directory account
    for; unscannable if a local header contradicts the directory or two spans overlap."""
    listed: list[_Listed] = []
    spans: list[tuple[int, int]] = []
    for info in members:
        label = f"zip member {quote_input(info.filename)}"
        at = info.header_offset
        if at < 0 or len(data) - at < _LOCAL.size or data[at : at + 4] != _LOCAL_SIG:
            raise UnscannableError(
                f"corrupt {label} (no local header where the directory says)", location
            )
        _, _, flags, method, _, _, _, csize, _, name_size, extra_size = _LOCAL.unpack_from(data, at)
        name_at = at + _LOCAL.size
        start = name_at + name_size + extra_size
        end = start + info.compress_size
        if end > len(data):
            raise UnscannableError(f"corrupt {label} (truncated)", location)
        name = data[name_at : name_at + name_size].decode(
            "utf-8" if flags & _UTF8 else "cp437", "replace"
        )
        if name != info.orig_filename:
            raise UnscannableError(
                f"{label}: its local header names another file (readers disagree)", location
            )
        if (
            method != info.compress_type
            or (flags ^ info.flag_bits) & (_ENCRYPTED | _STRONG)
            or (not flags & _DESCRIPTOR and csize not in (_MASK32, info.compress_size))
        ):
            raise UnscannableError(
                f"{label}: its local header contradicts the central directory (method, "
                "encryption or size: readers disagree on its content)",
                location,
            )
        if (flags | info.flag_bits) & _DESCRIPTOR:
            end += _descriptor(data, end, info.CRC, info.compress_size, info.file_size)
        listed.append(_Listed(start, start + info.compress_size, data[name_at + name_size : start]))
        spans.append((at, end))
    first, last, directory = _end_records(data)
    if directory:
        spans.append((archive.start_dir, archive.start_dir + directory))
    spans.append((first, last))
    spans.sort()
    for (_, before), (after, _) in itertools.pairwise(spans):
        if after < before:
            raise UnscannableError(
                f"zip archive's entries overlap (byte {after} is read twice: a zip bomb's "
                "layout, or one that readers read differently)",
                location,
            )
    return listed, spans


def _end_records(data: bytes) -> tuple[int, int, int]:
    """Where the end records start and end (the zip64 record and locator, if any, the end of
    central directory record and the archive comment), and the directory's size: found as
    zipfile finds them (a record without a comment at the very end, else the last
    signature in the last 64 KiB)."""
    size = len(data)
    if data[-_END.size : -_END.size + 4] == _END_SIG and data[-2:] == b"\x00\x00":
        at = size - _END.size
    else:
        at = data.rfind(_END_SIG, max(size - (1 << 16) - _END.size, 0))
    fields = _END.unpack_from(data, at)
    directory, comment = fields[5], fields[7]
    first = at
    record = at - _LOCATOR_SIZE - _END64_SIZE
    if (
        record >= 0
        and data[at - _LOCATOR_SIZE : at - _LOCATOR_SIZE + 4] == _LOCATOR_SIG
        and data[record : record + 4] == _END64_SIG
    ):
        first = record
        directory = int.from_bytes(data[record + 40 : record + 48], "little")
    return first, min(at + _END.size + comment, size), directory


def _descriptor(data: bytes, at: int, crc: int, csize: int, usize: int) -> int:
    """The length of the data descriptor at ``at`` that states these values (with or without
    its signature, 32- or 64-bit sizes), 0 if none does: bytes that state others are left
    over, and read."""
    for signature, form in _DESCRIPTOR_FORMS:
        start = at + len(signature)
        if (
            data[at:start] == signature
            and start + form.size <= len(data)
            and form.unpack_from(data, start) == (crc, csize, usize)
        ):
            return len(signature) + form.size
    return 0


def _gaps(spans: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """The bytes of ``size`` the sorted, disjoint ``spans`` leave uncovered."""
    gaps = []
    at = 0
    for start, end in spans:
        if start > at:
            gaps.append((at, start))
        at = max(at, end)
    if at < size:
        gaps.append((at, size))
    return gaps


def _unlisted(
    data: bytes,
    gaps: list[tuple[int, int]],
    host: int,
    entries: int,
    room: int,
    location: str,
) -> Iterator[Piece]:
    """What the gaps hold: each local entry in them (a local header signature and a whole
    header), read as a streaming reader reads it, and the bytes between as nested payloads
    (NUL padding aside; bytes before ``host``, another file's, not: its reader has them)."""
    for start, end in gaps:
        at = start
        while (header := data.find(_LOCAL_SIG, at, end)) != -1 and end - header >= _LOCAL.size:
            entries -= 1
            if entries < 0:
                raise UnscannableError(
                    "zip archive has more entries than the directory lists, past the member limit",
                    location,
                )
            yield from _leftover(data, at, header, host)
            pieces, size, at = _local_entry(data, header, end, room, location)
            room -= size
            yield from pieces
        yield from _leftover(data, at, end, host)


def _leftover(data: bytes, start: int, end: int, host: int) -> Iterator[Piece]:
    if end > max(start, host) and data.count(b"\x00", start, end) != end - start:
        yield Piece(f"bytes[{start}:{end}]", data=data[start:end])


def _local_entry(
    data: bytes, at: int, end: int, room: int, location: str
) -> tuple[list[Piece], int, int]:
    """An unlisted local entry at ``at`` (its header and data before ``end``): its pieces, its
    content's size, and where it ends. Its DEFLATE stream ends it (as ZipInputStream reads
    one), then a data descriptor that states its values, if there is one."""
    _, _, flags, method, _, _, _, csize, usize, name_size, extra_size = _LOCAL.unpack_from(data, at)
    name_at = at + _LOCAL.size
    start = name_at + name_size + extra_size
    label = f"unlisted zip entry at byte {at}"
    if start > end:
        raise UnscannableError(f"{label} runs into another entry or past the end", location)
    name = data[name_at : name_at + name_size].decode(
        "utf-8" if flags & _UTF8 else "cp437", "replace"
    )
    extra = data[name_at + name_size : start]
    label += f" ({quote_input(name)})"
    if flags & (_ENCRYPTED | _STRONG):
        raise UnscannableError(f"{label} is encrypted (password-protected)", location)
    if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or flags & _PATCHED:
        raise UnscannableError(
            f"{label} uses compression method {method}, which the guard cannot decode "
            "without the central directory",
            location,
        )
    if method == zipfile.ZIP_DEFLATED:
        content, used = _expand(data, start, end, method, room, None, label, location)
        stop = start + used
        if flags & _DESCRIPTOR:
            stop += _descriptor(data, stop, zlib.crc32(content), used, len(content))
    else:
        if flags & _DESCRIPTOR and csize == 0:
            raise UnscannableError(
                f"{label} is STORED with a data descriptor: its size is unknown", location
            )
        if csize == _MASK32 or usize == _MASK32:
            csize = _zip64_size(extra)
        stop = start + csize
        if stop > end or csize < 0:
            raise UnscannableError(f"{label} runs into another entry or past the end", location)
        content, _ = _expand(data, start, stop, method, room, csize, label, location)
    where = f"unlisted@{at}:{name}"
    pieces = [Piece(f"{where}#name", text=name)]
    if extra:
        pieces.append(Piece(f"{where}#extra", text=extra.decode("latin-1")))
    if content or not name.endswith("/"):
        pieces.append(Piece(where, data=content, media_type=type_for_name(name)))
    return pieces, len(content), stop


def _zip64_size(extra: bytes) -> int:
    """The compressed size a local header's zip64 extra field states (APPNOTE §4.5.3: tag 1,
    the original size, then the compressed one), -1 if there is none."""
    at = 0
    while at + 4 <= len(extra):
        tag, size = struct.unpack_from("<2H", extra, at)
        if tag == 1 and size >= 16 and at + 20 <= len(extra):
            return int.from_bytes(extra[at + 12 : at + 20], "little")
        at += 4 + size
    return -1


def _expand(
    data: bytes,
    start: int,
    end: int,
    method: int,
    room: int,
    packed: int | None,
    label: str,
    location: str,
) -> tuple[bytes, int]:
    """The content of STORED or DEFLATED data at ``data[start:end]``, and how many of those
    bytes its DEFLATE stream took (it may end before ``end``): never more than ``room``
    bytes, never faster than ``MAX_RATIO`` past ``RATIO_FLOOR`` (per ``packed`` bytes, or per
    byte read so far where the compressed size is not known). Read in chunks: linear in what
    is read, whatever the entry claims."""
    if method == zipfile.ZIP_STORED:
        if end - start > room:
            raise UnscannableError(_too_large(room).reason, location)
        return data[start:end], end - start
    view = memoryview(data)[start:end]
    decoder = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    fed = 0
    tail: bytes | memoryview = b""
    try:
        while not decoder.eof:
            if not tail:
                tail = view[fed : fed + CHUNK]  # (empty at the end: output still pending)
                fed += len(tail)
            piece = decoder.decompress(tail, CHUNK)
            tail = decoder.unconsumed_tail
            if not piece and not tail and fed >= len(view) and not decoder.eof:
                raise UnscannableError(f"corrupt {label} (truncated DEFLATE data)", location)
            out += piece
            if len(out) > room:
                raise UnscannableError(_too_large(room).reason, location)
            if len(out) > RATIO_FLOOR and len(out) > MAX_RATIO * max(packed or fed, 1):
                raise UnscannableError(
                    f"{label} expands more than {MAX_RATIO}:1 (a zip bomb)", location
                )
    except zlib.error as exc:
        raise UnscannableError(f"corrupt {label} ({_why(exc)})", location) from None
    return bytes(out), fed - len(decoder.unused_data) - len(tail)


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, room: int, location: str) -> bytes:
    """One member's content, read in chunks: never more than ``room`` bytes, never a bomb."""
    out = bytearray()
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(CHUNK):
                out += chunk
                if len(out) > room:
                    raise UnscannableError(_too_large(room).reason, location)
                if len(out) > RATIO_FLOOR and len(out) > MAX_RATIO * max(info.compress_size, 1):
                    raise UnscannableError(
                        f"zip member {quote_input(info.filename)} expands more than "
                        f"{MAX_RATIO}:1 (a zip bomb)",
                        location,
                    )
    except NotImplementedError:
        raise UnscannableError(
            f"zip member {quote_input(info.filename)} uses compression method "
            f"{info.compress_type}, which the guard cannot decode",
            location,
        ) from None
    except RuntimeError as exc:  # zipfile: "File ... is encrypted, password required"
        raise UnscannableError(
            f"zip member {quote_input(info.filename)} cannot be read ({_why(exc)})", location
        ) from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
        raise UnscannableError(
            f"corrupt zip member {quote_input(info.filename)} ({_why(exc)})", location
        ) from None
    return bytes(out)


def tar_pieces(data: bytes, *, max_entries: int, max_size: int, location: str) -> Iterator[Piece]:
    """Every member of an (uncompressed) tar archive: names, link targets, owners and pax
    headers as text, regular files' content as data.

    A compressed tar arrives here already decompressed (``.tar.gz`` is gzip, then tar). Bytes
    after the end-of-archive blocks that are not zero padding are refused: tarfile stops at an
    invalid header without an error, and whatever follows would pass unread.
    """
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:")  # noqa: SIM115 (closed below)
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise UnscannableError(f"corrupt tar archive ({_why(exc)})", location) from None
    total = 0
    count = 0
    with archive:
        while True:
            try:
                member = archive.next()
            except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                raise UnscannableError(f"corrupt tar archive ({_why(exc)})", location) from None
            if member is None:
                break
            count += 1
            if count > max_entries:
                raise UnscannableError(f"tar archive has more than {max_entries} members", location)
            where = member.name or f"member[{count}]"
            yield Piece(f"{where}#name", text=member.name)
            for key, text in (("linkname", member.linkname), ("uname", member.uname)):
                if text:
                    yield Piece(f"{where}#{key}", text=text)
            if member.gname:
                yield Piece(f"{where}#gname", text=member.gname)
            for key, value in member.pax_headers.items():
                yield Piece(f"{where}#pax:{key}", text=f"{key}={value}")
            if not member.isreg():
                continue
            stream = archive.extractfile(member)
            if stream is None:
                continue
            out = bytearray()
            try:
                while chunk := stream.read(CHUNK):
                    out += chunk
                    if total + len(out) > max_size:
                        raise UnscannableError(_too_large(max_size).reason, location)
            except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                raise UnscannableError(
                    f"corrupt tar member {quote_input(member.name)} ({_why(exc)})", location
                ) from None
            total += len(out)
            yield Piece(where, data=bytes(out))
        end = archive.offset
    if data[end:].strip(b"\x00"):
        raise UnscannableError(
            f"{len(data) - end} bytes after the end of the tar archive that tar does not read "
            f"(byte offset {end})",
            location,
        )


def _why(exc: BaseException) -> str:
    """An exception's kind and message, masked: library messages can quote member names."""
    text = str(exc)
    return type(exc).__name__ + (f": {quote_input(text, 60)}" if text else "")
