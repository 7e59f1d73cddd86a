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
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

from ..encoding import decode_content
from ..errors import UnscannableError
from ..idcode import quote_input
from . import Piece

__all__ = ["decompress", "inflate_raw", "tar_pieces", "zip_pieces"]

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


def _too_large(max_size: int) -> UnscannableError:
    return UnscannableError(
        f"decompressed content exceeds the {max_size}-byte limit (possible decompression bomb)"
    )


def zip_pieces(data: bytes, *, max_entries: int, max_size: int, location: str) -> Iterator[Piece]:
    """Every member of a zip archive (docx, xlsx, odt, epub, jar ...): its name and comment as
    text, its content as data; the archive's comment too.

    Unscannable: not a zip, more than ``max_entries`` members, an encrypted member, a
    compression method Python cannot decode, a CRC mismatch, more than ``max_size`` bytes in
    all, or a member expanding faster than ``MAX_RATIO``.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise UnscannableError(f"corrupt zip archive ({_why(exc)})", location) from None
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
        if archive.comment:
            yield Piece("comment", text=archive.comment.decode("utf-8", "replace"))
        total = 0
        for index, info in enumerate(members):
            name = info.filename
            where = name or f"member[{index}]"
            yield Piece(f"{where}#name", text=name)
            if info.comment:
                yield Piece(f"{where}#comment", text=info.comment.decode("utf-8", "replace"))
            if info.extra:
                # Extra fields (APPNOTE §4.5) hold Unicode path and comment copies, among others.
                yield Piece(f"{where}#extra", text=info.extra.decode("latin-1"))
            if info.flag_bits & (_ENCRYPTED | _STRONG):
                raise UnscannableError(
                    f"zip member {quote_input(name)} is encrypted (password-protected)", location
                )
            content = _member(archive, info, max_size - total, location)
            total += len(content)
            if info.is_dir() and not content:
                continue
            yield Piece(where, data=content)


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
