"""Tests of container identification: magic numbers, media type aliases, file names."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kanta_guard.decode import sniff as sniff_module
from kanta_guard.decode.sniff import container_type, sniff, type_for_name

SNIFFED = [
    (b"PK\x03\x04rest", "application/zip"),
    (b"PK\x05\x06" + b"\0" * 18, "application/zip"),
    (b"\x1f\x8b\x08\x00", "application/gzip"),
    (b"BZh91AY&SY", "application/x-bzip2"),
    (b"\xfd7zXZ\x00\x00", "application/x-xz"),
    (b"\x28\xb5\x2f\xfd\x00", "application/zstd"),
    (b"\xff\xd8\xff\xe0", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"RIFF\x00\x00\x00\x00WEBP", "image/webp"),
    (b"%PDF-1.7\n", "application/pdf"),
    (b"\xef\xbb\xbf  %PDF-1.4", "application/pdf"),
    (b"\x00" * 257 + b"ustar\x0000", "application/x-tar"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    # Documents are never taken for containers.
    (b"<a>%PDF-1.7</a>", None),
    (b'{"a": "%PDF-"}', None),
    (b"see %PDF-1.7", None),
    (b"BZh9 is not bzip2", None),
    # The gzip magic with another method or a reserved flag: no reader inflates it, so random
    # bytes that begin so (one Base64 digest in 65536) are not refused as corrupt gzip.
    (b"\x1f\x8b\x07\x00rest", None),
    (b"\x1f\x8b\x08\x20rest", None),
    (b"\x1f\x8b\x08", "application/gzip"),  # (truncated: read, and refused, as gzip)
    (b"", None),
]


@pytest.mark.parametrize(("data", "expected"), SNIFFED)
def test_sniff(data: bytes, expected: str | None) -> None:
    """The first bytes name the container, and a document's never do."""
    assert sniff(data) == expected


@pytest.mark.parametrize(
    ("media_type", "expected"),
    [
        ("application/x-gzip", "application/gzip"),
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/zip",
        ),
        ("application/vnd.oasis.opendocument.text", "application/zip"),
        ("application/epub+zip", "application/zip"),
        ("image/jpg", "image/jpeg"),
        ("image/heic", "image/heic"),
        ("image/svg+xml", None),
        ("application/xml", None),
        ("application/octet-stream", None),
    ],
)
def test_container_type(media_type: str, expected: str | None) -> None:
    """Aliases and families of container media types map to one canonical type."""
    assert container_type(media_type) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("word/document.xml", "application/xml"),
        ("_rels/.rels", "application/xml"),
        ("A\\B.PDF", "application/pdf"),
        ("inner.zip", "application/zip"),
        ("mimetype", None),
    ],
)
def test_type_for_name(name: str, expected: str | None) -> None:
    """A member's extension gives its type hint, case-insensitively."""
    assert type_for_name(name) == expected


_SIGNATURES = [
    b"PK\x03\x04", b"\x1f\x8b\x08\x00", b"BZh91AY&SY", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd",
    b"\x50\x2a\x4d\x18", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"II*\x00",
    b"MM\x00*", b"RIFF\x00\x00\x00\x00WEBP", b"7z\xbc\xaf\x27\x1c", b"Rar!\x1a\x07",
    b"MSCF\x00\x00\x00\x00", b"%PDF-", b" \r\n%PDF-", b"\xef\xbb\xbf%PDF-", b"\x00%PDF-",
    b"<", b"{", b"x" * 257 + b"ustar",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_SIGNATURES), st.binary(max_size=300), st.booleans())
def test_the_first_byte_shortcut_changes_nothing(
    signature: bytes, tail: bytes, prefix_only: bool
) -> None:
    """Skipping the search for a first byte no signature (nor a PDF's junk) starts with gives
    the answer of the whole search, on signatures, their look-alikes and random bytes."""
    data = tail if prefix_only else signature + tail
    fast = sniff(data)
    with _shortcut_off():
        assert sniff(data) == fast


@contextmanager
def _shortcut_off() -> Iterator[None]:
    saved = sniff_module._MAYBE
    sniff_module._MAYBE = b"\x01" * 256
    try:
        yield
    finally:
        sniff_module._MAYBE = saved
