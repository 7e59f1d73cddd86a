"""Tests for kanta_guard.encoding: content-coding round trips, stacking, bombs and bad streams."""

from __future__ import annotations

import gzip
import sys
import tracemalloc
import zlib
from collections.abc import Callable

import brotli
import pytest

from kanta_guard.encoding import MAX_STACKED, decode_content
from kanta_guard.errors import UnscannableError

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

LIMIT = 1 << 20
BODY = b'{"resourceType":"Patient","identifier":[{"value":"010181-900C"}]}\r\n' * 50 + bytes(
    range(256)
)


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstd.compress,
}


def _encode(data: bytes, codings: list[str]) -> bytes:
    for coding in codings:
        if coding != "identity":
            data = ENCODERS[coding](data)
    return data


def _bomb(coding: str, size: int = 100 << 20) -> bytes:
    """``size`` zero bytes compressed a megabyte at a time, so the test itself stays light."""
    chunk = bytes(1 << 20)
    if coding == "gzip":
        z = zlib.compressobj(1, wbits=16 + zlib.MAX_WBITS)
        return b"".join(z.compress(chunk) for _ in range(size // len(chunk))) + z.flush()
    if coding == "deflate":
        z = zlib.compressobj(1)
        return b"".join(z.compress(chunk) for _ in range(size // len(chunk))) + z.flush()
    if coding == "br":
        b = brotli.Compressor(quality=1)
        out: bytes = b"".join(b.process(chunk) for _ in range(size // len(chunk))) + b.finish()
        return out
    c = zstd.ZstdCompressor(level=1)
    return b"".join(c.compress(chunk) for _ in range(size // len(chunk))) + c.flush()


@pytest.mark.parametrize(
    "header",
    [
        "gzip",
        "x-gzip",
        "deflate",
        "br",
        "zstd",
        "identity",
        "GZIP",  # codings are case-insensitive (RFC 9110 §8.4.1)
        "gzip, br",
        "br,zstd",
        "deflate, gzip, identity, zstd",
        " gzip ,, br ",  # empty list elements and whitespace are ignored (RFC 9110 §5.6.1)
    ],
)
def test_round_trip(header: str) -> None:
    """Data encoded with the listed codings, in order, decodes back to itself."""
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    assert decode_content(_encode(BODY, codings), header, max_size=LIMIT) == BODY


@pytest.mark.parametrize("header", [None, "", " ", "identity", "identity, identity"])
def test_no_coding(header: str | None) -> None:
    """No coding, an empty value and identity return the body unchanged."""
    assert decode_content(BODY, header, max_size=LIMIT) == BODY


@pytest.mark.parametrize("header", ["gzip", "deflate", "br", "zstd", "gzip, br"])
def test_empty_body(header: str) -> None:
    """An empty body decodes to an empty body under any coding (mitmproxy does the same)."""
    assert decode_content(b"", header, max_size=LIMIT) == b""


@pytest.mark.parametrize(
    ("encoded", "header"),
    [
        (_raw_deflate(BODY), "deflate"),  # raw deflate without the zlib wrapper, as browsers accept
        (zlib.compress(BODY), "gzip"),  # zlib data labelled gzip, as mitmproxy accepts
        (gzip.compress(BODY[:100]) + gzip.compress(BODY[100:]), "gzip"),  # RFC 1952 §2.2 members
        (zstd.compress(BODY[:100]) + zstd.compress(BODY[100:]), "zstd"),  # RFC 8878 §3.1 frames
        # A skippable frame (RFC 8878 §3.1.2) before the data frame.
        (b"\x5a\x2a\x4d\x18\x03\x00\x00\x00abc" + zstd.compress(BODY), "zstd"),
    ],
)
def test_variant_framings(encoded: bytes, header: str) -> None:
    """Framings real peers send are read completely."""
    assert decode_content(encoded, header, max_size=LIMIT) == BODY


@pytest.mark.parametrize(
    ("coding", "header"),
    [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip", "gzip, identity"),
    ],
)
def test_bomb_refused_memory_light(coding: str, header: str) -> None:
    """100 MB of zeros is refused at a 1 MB limit without holding much more than 1 MB."""
    bomb = _bomb(coding)
    tracemalloc.start()
    try:
        with pytest.raises(UnscannableError, match="1048576-byte limit"):
            decode_content(bomb, header, max_size=LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * LIMIT


def test_stacked_bomb_refused() -> None:
    """A bomb inside another coding is refused at the inner stage."""
    bomb = gzip.compress(_bomb("br", 16 << 20))
    with pytest.raises(UnscannableError, match="decompression bomb"):
        decode_content(bomb, "br, gzip", max_size=LIMIT)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_exactly_at_limit(coding: str) -> None:
    """Output of exactly ``max_size`` bytes is allowed; one byte more is not."""
    data = bytes(range(256)) * 16
    encoded = ENCODERS[coding](data)
    assert decode_content(encoded, coding, max_size=len(data)) == data
    with pytest.raises(UnscannableError, match="decompression bomb"):
        decode_content(encoded, coding, max_size=len(data) - 1)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_truncated(coding: str) -> None:
    """A stream cut short is unscannable, not decoded as far as it goes."""
    encoded = ENCODERS[coding](BODY)
    with pytest.raises(UnscannableError, match=rf"(truncated|corrupt) {coding}"):
        decode_content(encoded[: len(encoded) // 2], coding, max_size=LIMIT)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_corrupt(coding: str) -> None:
    """Bytes that are not the named coding are unscannable, and the error names the coding."""
    with pytest.raises(UnscannableError, match=rf"corrupt {coding}"):
        decode_content(b"\xff\xfe this is not compressed at all", coding, max_size=LIMIT)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_trailing_garbage(coding: str) -> None:
    """Data after the end of the stream is refused, never silently dropped."""
    encoded = ENCODERS[coding](BODY) + b"010181-900C"
    with pytest.raises(UnscannableError, match="trailing data") as info:
        decode_content(encoded, coding, max_size=LIMIT)
    assert "010181-900C" not in str(info.value)  # messages never carry payload


def test_gzip_bad_checksum() -> None:
    """A gzip member whose CRC does not match is corrupt."""
    encoded = bytearray(gzip.compress(BODY))
    encoded[-8] ^= 0xFF
    with pytest.raises(UnscannableError, match="corrupt gzip"):
        decode_content(bytes(encoded), "gzip", max_size=LIMIT)


@pytest.mark.parametrize(
    ("header", "named"),
    [
        ("compress", "compress"),  # LZW is registered but not supported
        ("foo", "foo"),
        ("base64", "base64"),  # a Python codec: mitmproxy would decode it, the guard must not
        ("rot13", "rot13"),
        ("gzip, foo", "foo"),
        ("gzip;q=1", "gzip;q=1"),  # codings take no parameters
    ],
)
def test_unknown_coding(header: str, named: str) -> None:
    """Unknown codings are unscannable and named in the message."""
    with pytest.raises(UnscannableError, match=f"unknown content encoding '{named}'") as info:
        decode_content(gzip.compress(BODY), header, max_size=LIMIT)
    assert info.value.location == "header:Content-Encoding"


def test_too_many_stacked() -> None:
    """More than MAX_STACKED codings are refused before any decoding."""
    header = ", ".join(["identity"] * (MAX_STACKED + 1))
    with pytest.raises(UnscannableError, match="stacked"):
        decode_content(BODY, header, max_size=LIMIT)
    assert decode_content(BODY, ", ".join(["identity"] * MAX_STACKED), max_size=LIMIT) == BODY


def test_zstd_window_capped() -> None:
    """A zstd frame asking for a window above RFC 9659's 8 MB is refused, not allocated."""
    options: dict[int, int] = {zstd.CompressionParameter.window_log: 27}
    encoded = zstd.compress(bytes(32 << 20), options=options)
    with pytest.raises(UnscannableError, match="window above 8 MiB"):
        decode_content(encoded, "zstd", max_size=64 << 20)
