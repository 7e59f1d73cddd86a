"""Decoding HTTP content codings (RFC 9110 §8.4) with a hard cap on the decompressed size.

Every decoder runs incrementally and stops as soon as its output would pass ``max_size``, so a
decompression bomb costs at most about ``max_size`` bytes of memory before it is refused. Anything
that cannot be decoded completely (unknown coding, corrupt, truncated or trailing data) raises
:class:`UnscannableError`; unlike ``mitmproxy.net.encoding`` there is no fallback to Python's
``codecs`` (which would happily "decode" ``base64`` or ``rot13``).
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable

import brotli

from kanta_guard.errors import UnscannableError
from kanta_guard.idcode import quote_input

if sys.version_info >= (3, 14):
    from compression import zstd
else:  # pragma: no cover - the backport is the same module (PEP 784)
    from backports import zstd

__all__ = ["MAX_STACKED", "decode_content"]

#: Most content codings accepted in one Content-Encoding value; real clients use one.
MAX_STACKED = 4

# Output per brotli call: its output buffer grows in blocks and overshoots the limit it is given
# by up to one block, so it is fed a small limit and drained in a loop.
_BROTLI_CHUNK = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
# RFC 8878 §3.1.1 (frame magic) and §3.1.2 (skippable frames: 0x184D2A50-0x184D2A5F, little end.)
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_SKIPPABLE_TAIL = b"\x2a\x4d\x18"
# RFC 9659 §3: HTTP zstd decoders need not support windows above 8 MB (2**23); the cap also stops
# a 20-byte frame header from making the decoder allocate a 128 MB window.
_ZSTD_WINDOW_LOG_MAX = 23


def decode_content(body: bytes, content_encoding: str | None, *, max_size: int) -> bytes:
    """Undo the content codings listed in ``content_encoding`` (the raw header value).

    Codings are listed in the order they were applied, so they are undone last first
    (RFC 9110 §8.4). ``identity`` and an empty or missing value change nothing.
    """
    # Every coding is looked up before any is run: an unknown one fails fast and cheaply.
    decoders = [_decoder(coding) for coding in _parse_codings(content_encoding)]
    data = body
    for decoder in reversed(decoders):
        # An empty body has nothing to hide: treat it as the empty stream (as mitmproxy does).
        if data:
            data = decoder(data, max_size)
    return data


def _parse_codings(value: str | None) -> list[str]:
    """The content codings of a header value, lower-cased (RFC 9110 §8.4.1: case-insensitive);
    empty list elements are ignored (RFC 9110 §5.6.1)."""
    if value is None:
        return []
    codings = [c.strip(" \t").lower() for c in value.split(",")]
    codings = [c for c in codings if c]
    if len(codings) > MAX_STACKED:
        raise UnscannableError(
            f"{len(codings)} content codings stacked (at most {MAX_STACKED} accepted)",
            "header:Content-Encoding",
        )
    return codings


def _decoder(coding: str) -> Callable[[bytes, int], bytes]:
    """The decoder for one coding; unknown codings are refused before any work is done."""
    try:
        return _DECODERS[coding]
    except KeyError:
        raise UnscannableError(
            f"unknown content encoding {quote_input(coding, 32)}", "header:Content-Encoding"
        ) from None


def _bomb(max_size: int) -> UnscannableError:
    return UnscannableError(
        f"decompressed body exceeds the {max_size}-byte limit (possible decompression bomb)"
    )


def _identity(data: bytes, max_size: int) -> bytes:
    return data


def _inflate(data: bytes, wbits: int, coding: str, room: int, max_size: int) -> tuple[bytes, bytes]:
    """Inflate one zlib, gzip or raw deflate stream into at most ``room`` bytes.

    Returns the output and the input left after the stream's end. ``zlib.error`` propagates so
    that callers can retry another framing.
    """
    d = zlib.decompressobj(wbits)
    out = bytearray()
    tail = data
    while not d.eof:
        # max_length caps the output of this call; +1 tells "exactly full" from "too much".
        piece = d.decompress(tail, room - len(out) + 1)
        if len(piece) > room - len(out):
            raise _bomb(max_size)
        out += piece
        before, tail = len(tail), d.unconsumed_tail
        if not piece and len(tail) == before:
            break  # no progress: the input ran out before the end of the stream
    if not d.eof:
        raise UnscannableError(f"truncated {coding} data ({len(data)} bytes)")
    return bytes(out), d.unused_data


def _gzip(data: bytes, max_size: int) -> bytes:
    """gzip (RFC 1952), possibly several members back to back (§2.2), as ``gzip -d`` reads it."""
    out: list[bytes] = []
    total = 0
    rest = data
    while True:
        try:
            # wbits 32+15: gzip, and zlib-wrapped data mislabelled as gzip, which clients accept.
            piece, rest = _inflate(rest, 32 + zlib.MAX_WBITS, "gzip", max_size - total, max_size)
        except zlib.error as exc:
            raise UnscannableError(f"corrupt gzip data ({len(data)} bytes)") from exc
        out.append(piece)
        total += len(piece)
        if not rest:
            return b"".join(out)
        if not rest.startswith(_GZIP_MAGIC):
            raise UnscannableError(
                f"{len(rest)} bytes of trailing data after the gzip stream "
                f"(byte offset {len(data) - len(rest)})"
            )


def _deflate(data: bytes, max_size: int) -> bytes:
    """deflate: RFC 9110 §8.4.1.2 means zlib-wrapped (RFC 1950), but raw deflate (RFC 1951) is
    sent by some servers and accepted by browsers and mitmproxy, so both are read."""
    try:
        out, rest = _inflate(data, zlib.MAX_WBITS, "deflate", max_size, max_size)
    except zlib.error:
        try:
            out, rest = _inflate(data, -zlib.MAX_WBITS, "deflate", max_size, max_size)
        except zlib.error as exc:
            raise UnscannableError(f"corrupt deflate data ({len(data)} bytes)") from exc
    if rest:
        raise UnscannableError(
            f"{len(rest)} bytes of trailing data after the deflate stream "
            f"(byte offset {len(data) - len(rest)})"
        )
    return out


def _brotli(data: bytes, max_size: int) -> bytes:
    """br (RFC 7932). The decoder rejects data after the end of the stream itself."""
    d = brotli.Decompressor()
    out = bytearray()
    try:
        piece: bytes = d.process(data, output_buffer_limit=_BROTLI_CHUNK)
        while True:
            out += piece
            if len(out) > max_size:
                raise _bomb(max_size)
            if d.can_accept_more_data():
                break  # all input consumed, all output delivered
            piece = d.process(b"", output_buffer_limit=_BROTLI_CHUNK)
            if not piece:
                break  # no progress; cannot happen with a sane decoder, never loop forever
    except brotli.error as exc:
        raise UnscannableError(f"corrupt br data or trailing data ({len(data)} bytes)") from exc
    if not d.is_finished():
        raise UnscannableError(f"truncated br data ({len(data)} bytes)")
    return bytes(out)


def _zstd(data: bytes, max_size: int) -> bytes:
    """zstd (RFC 8878): one or more frames, skippable frames included (§3.1)."""
    out = bytearray()
    rest = data
    while rest:
        skippable = rest[0] & 0xF0 == 0x50 and rest[1:4] == _ZSTD_SKIPPABLE_TAIL
        if not (rest.startswith(_ZSTD_MAGIC) or skippable):
            if rest is data:
                raise UnscannableError(f"corrupt zstd data ({len(data)} bytes)")
            raise UnscannableError(
                f"{len(rest)} bytes of trailing data after the zstd stream "
                f"(byte offset {len(data) - len(rest)})"
            )
        d = zstd.ZstdDecompressor(
            options={zstd.DecompressionParameter.window_log_max: _ZSTD_WINDOW_LOG_MAX}
        )
        tail = rest
        try:
            while not d.eof:
                piece = d.decompress(tail, max_length=max_size - len(out) + 1)
                tail = b""
                out += piece
                if len(out) > max_size:
                    raise _bomb(max_size)
                if d.needs_input and not d.eof:
                    raise UnscannableError(f"truncated zstd data ({len(data)} bytes)")
        except zstd.ZstdError as exc:
            if "memory" in str(exc):  # "Frame requires too much memory for decoding"
                raise UnscannableError("zstd frame needs a window above 8 MiB") from exc
            raise UnscannableError(f"corrupt zstd data ({len(data)} bytes)") from exc
        rest = d.unused_data
    return bytes(out)


# RFC 9110 §8.4.1 and the IANA HTTP Content Coding Registry; "x-gzip" is the §8.4.1.3 alias.
_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "identity": _identity,
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    "br": _brotli,
    "zstd": _zstd,
}
