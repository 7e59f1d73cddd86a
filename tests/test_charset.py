"""Tests for kanta_guard.charset: BOM and XML sniffing, charset precedence, strict and lenient,
every reading of a body whose label and bytes disagree."""

from __future__ import annotations

import codecs
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kanta_guard.charset import (
    charset_param,
    decode_text,
    readings,
    sniff_bom,
    sniff_wide,
    xml_declared_encoding,
)
from kanta_guard.errors import UnscannableError

TEXT = "Potilas Äijälä 010181-900C €"
XML_UTF16 = '<?xml version="1.0" encoding="UTF-16"?><a>Äijälä 010181-900C</a>'
XML_LATIN1 = "<?xml version='1.0' encoding='ISO-8859-1'?><a>Äijälä 010181-900C</a>"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (codecs.BOM_UTF8 + b"x", "utf-8"),
        (codecs.BOM_UTF16_LE + b"x\x00", "utf-16-le"),
        (codecs.BOM_UTF16_BE + b"\x00x", "utf-16-be"),
        (codecs.BOM_UTF32_LE + b"x\x00\x00\x00", "utf-32-le"),  # not UTF-16 LE + U+0000
        (codecs.BOM_UTF32_BE + b"\x00\x00\x00x", "utf-32-be"),
        (b"plain", None),
        (b"", None),
        (b"\xef\xbb", None),  # a cut-off mark is no mark
    ],
)
def test_sniff_bom(data: bytes, expected: str | None) -> None:
    """Each byte order mark names its codec; anything else gives None."""
    assert sniff_bom(data) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (XML_LATIN1.encode("latin-1"), "ISO-8859-1"),
        (XML_UTF16.encode("utf-16-le"), "UTF-16"),  # no BOM: XML 1.0 Appendix F pattern
        (XML_UTF16.encode("utf-16-be"), "UTF-16"),
        (XML_UTF16.encode("utf-16"), "UTF-16"),  # with BOM
        ('<?xml version="1.0" encoding="UTF-32"?><a/>'.encode("utf-32-le"), "UTF-32"),
        (codecs.BOM_UTF8 + b'<?xml version="1.0" encoding="utf-8"?><a/>', "utf-8"),
        (b'<?xml version="1.0"\n  encoding = "windows-1252" standalone="yes"?>', "windows-1252"),
        ('<?xml version="1.0" encoding="IBM037"?><a/>'.encode("cp037"), "IBM037"),  # EBCDIC
        (b'<?xml version="1.0"?><a/>', None),
        (b"<a/>", None),
        (b' <?xml version="1.0" encoding="utf-8"?>', None),  # the declaration must come first
        (b'{"a": 1}', None),
        (b"", None),
    ],
)
def test_xml_declared_encoding(data: bytes, expected: str | None) -> None:
    """The declaration's encoding is read in whatever family the first bytes show."""
    assert xml_declared_encoding(data) == expected


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json; charset=utf-8", "utf-8"),
        ('text/xml; charset="ISO-8859-1"', "ISO-8859-1"),
        ("text/plain;CHARSET=latin1", "latin1"),
        ("text/plain; charset=", None),
        ("application/json", None),
        (None, None),
    ],
)
def test_charset_param(content_type: str | None, expected: str | None) -> None:
    """The charset parameter is unquoted and found whatever its case."""
    assert charset_param(content_type) == expected


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        (TEXT.encode("utf-8"), None, TEXT),
        (TEXT.encode("utf-8"), "utf-8", TEXT),
        (TEXT.encode("utf-8"), "UTF8", TEXT),
        (TEXT.encode("cp1252"), "windows-1252", TEXT),
        (TEXT[:-1].encode("latin-1"), "ISO-8859-1", TEXT[:-1]),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), None, TEXT),  # the BOM is stripped
        (TEXT.encode("utf-16"), None, TEXT),  # BOM (machine order)
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), None, TEXT),
        (codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le"), None, TEXT),
        # The BOM wins over a contradicting charset parameter (WHATWG "decode").
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "iso-8859-1", TEXT),
        (TEXT.encode("utf-16"), "utf-8", TEXT),
        # "utf-16" declared without a BOM: byte order sniffed, else big-endian (RFC 2781 §4.3).
        (TEXT.encode("utf-16-le"), "utf-16", TEXT),
        (TEXT.encode("utf-16-be"), "utf-16", TEXT),
        ("€uro".encode("utf-16-be"), "utf-16", "€uro"),
        # The XML declaration, when nothing else says.
        (XML_LATIN1.encode("latin-1"), None, XML_LATIN1),
        (XML_UTF16.encode("utf-16-le"), None, XML_UTF16),
        (XML_UTF16.encode("utf-16-be"), None, XML_UTF16),
        # The HTTP charset wins over the XML declaration (RFC 7303 §3.2).
        (XML_LATIN1.encode("utf-8"), "utf-8", XML_LATIN1),
        # No BOM, no declaration: UTF-16/32 from the NUL pattern (RFC 4627 §3).
        ('{"hetu":"010181-900C"}'.encode("utf-16-le"), None, '{"hetu":"010181-900C"}'),
        ('{"hetu":"010181-900C"}'.encode("utf-16-be"), None, '{"hetu":"010181-900C"}'),
        ('{"hetu":"010181-900C"}'.encode("utf-32-le"), None, '{"hetu":"010181-900C"}'),
        ('{"hetu":"010181-900C"}'.encode("utf-32-be"), None, '{"hetu":"010181-900C"}'),
        (b"", None, ""),
        (b"", "utf-16", ""),
    ],
)
def test_decode_strict(data: bytes, declared: str | None, expected: str) -> None:
    """Strict decoding follows BOM, charset parameter, XML declaration, sniffing, UTF-8."""
    assert decode_text(data, declared, strict=True) == expected


@pytest.mark.parametrize(
    ("data", "declared", "message"),
    [
        (b"abc\xff010181-900C", None, r"not valid utf-8 \(byte offset 3\)"),
        (b"\xc3", "utf-8", r"not valid utf-8 \(byte offset 0\)"),  # cut-off sequence
        (codecs.BOM_UTF8 + b"ab\xff", None, r"byte offset 5"),  # offsets count the BOM
        (b"a\x00b", "utf-16-le", "not valid utf-16-le"),  # odd length
        (b"\x81", "windows-1252", "not valid cp1252"),  # 0x81 is unassigned
        (b"a\x80", "ascii", "not valid ascii"),
        (b"abc", "no-such-charset", "unknown charset 'no-such-charset'"),
        (b"abc", "base64", "unknown charset"),  # bytes-to-bytes codec, not a charset
        (b"abc", "unicode_escape", "unknown charset"),  # Python-only pseudo charset
        # UTF-16 labelled UTF-8: valid UTF-8 bytes, but a server that sniffs the NULs would
        # read text the guard did not (regression: a HETU hidden as 0\x001\x00...).
        ('{"hetu":"010181-900C"}'.encode("utf-16-le"), "utf-8", r"U\+0000"),
        (b"abc\x00def", None, r"U\+0000 \(character offset 3\)"),
        # An XML declaration naming UTF-16 over ASCII bytes contradicts itself (XML 1.0 §4.3.3).
        (b'<?xml version="1.0" encoding="UTF-16"?><a/>', None, "does not match"),
        (b'<?xml version="1.0" encoding="nonsense"?><a/>', None, "unknown charset"),
    ],
)
def test_decode_strict_refuses(data: bytes, declared: str | None, message: str) -> None:
    """Strict decoding refuses what it cannot read completely, naming charset and offset."""
    with pytest.raises(UnscannableError, match=message) as info:
        decode_text(data, declared, strict=True)
    assert "010181" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        (TEXT.encode("utf-8"), None, TEXT),
        # Undecodable UTF-8 falls back to ISO-8859-1: every ASCII byte is still seen.
        (b"\xfa\xfb\xfd010181-900C\x80", None, "\xfa\xfb\xfd010181-900C\x80"),
        (b"\xc3(010181-900C", "utf-8", "\xc3(010181-900C"),
        (codecs.BOM_UTF8 + b"\xff010181-900C", None, "\xff010181-900C"),
        # Unknown charsets are ignored, not fatal.
        (b"010181-900C", "no-such-charset", "010181-900C"),
        # NUL bytes are kept, and never make binary data UTF-16: an implicit-VR DICOM data set
        # starts 08 00 05 00 (regression: its ASCII patient ID vanished into UTF-16).
        (b"\x08\x00\x05\x00010181-900C", None, "\x08\x00\x05\x00010181-900C"),
        # A broken UTF-16 body keeps what decodes.
        (
            codecs.BOM_UTF16_LE + "010181-900C".encode("utf-16-le") + b"\x00\xd8",
            None,
            "010181-900C\ufffd",
        ),
        # The XML Appendix F patterns are specific enough to trust in lenient mode too.
        (XML_UTF16.encode("utf-16-le"), None, XML_UTF16),
        (
            b'<?xml version="1.0" encoding="UTF-16"?><a/>',
            None,
            '<?xml version="1.0" encoding="UTF-16"?><a/>',
        ),
    ],
)
def test_decode_lenient(data: bytes, declared: str | None, expected: str) -> None:
    """Lenient decoding never fails and keeps ASCII visible."""
    assert decode_text(data, declared, strict=False) == expected


def test_decode_all_bytes_lenient() -> None:
    """Every byte value survives lenient decoding of binary data one to one."""
    data = bytes(range(256))
    assert decode_text(data, strict=False).encode("latin-1") == data


@pytest.mark.parametrize(
    ("data", "declared", "strict", "expected"),
    [
        # One reading: valid UTF-8, nothing declared or UTF-8 declared.
        (TEXT.encode("utf-8"), None, False, [(TEXT, "utf-8")]),
        (TEXT.encode("utf-8"), "utf-8", True, [(TEXT, "utf-8")]),
        # UTF-16 LE without a BOM: the NUL pattern adds its reading, first when UTF-8 fails
        # (ISO-8859-1 is read too: a receiver that does not sniff sees bytes).
        (
            TEXT.encode("utf-16-le"),
            None,
            False,
            [(TEXT, "utf-16-le"), (TEXT.encode("utf-16-le").decode("latin-1"), "iso8859-1")],
        ),
        # UTF-7 declared: decoded ("+AC0-" is "-") and as the UTF-8 a receiver may take it for.
        (b"a+AC0-b", "utf-7", True, [("a-b", "utf-7"), ("a+AC0-b", "utf-8")]),
        # ISO-8859-1 declared over UTF-8: both, and windows-1252 where C1 bytes stand.
        (
            "ä–".encode(),
            "iso-8859-1",
            True,
            [
                ("Ã¤â\x80\x93", "iso8859-1"),
                ("ä–", "utf-8"),
                ("Ã¤â€“", "cp1252+replace"),
            ],
        ),
        # Not UTF-8, nothing declared: ISO-8859-1, and windows-1252 for its dashes.
        (b"a\x96b", None, False, [("a\x96b", "iso8859-1"), ("a–b", "cp1252+replace")]),
        # A declared charset that fails is read with replacement beside what decodes.
        (b"abc", "utf-16", True, [("abc", "utf-8"), ("\u6162\ufffd", "utf-16-be+replace")]),
        # The BOM first, the contradicting label beside it.
        (
            codecs.BOM_UTF16_LE + "ab".encode("utf-16-le"),
            "iso-8859-1",
            True,
            [("ab", "utf-16-le"), ("ÿþa\x00b\x00", "iso8859-1")],
        ),
    ],
)
def test_readings(
    data: bytes, declared: str | None, strict: bool, expected: list[tuple[str, str]]
) -> None:
    """Every plausible reading, the primary first, each distinct text once, named how."""
    assert readings(data, declared, strict=strict) == expected


@pytest.mark.parametrize(
    ("data", "declared", "message"),
    [
        (b"ok \xc3\x28\xfa", "utf-8", r"not valid utf-8 \(byte offset 3\)"),  # no reading at all
        (b"abc", "no-such-charset", "unknown charset"),
        (b"ab\x00c", "utf-8", r"U\+0000"),  # a NUL and no UTF-16/32 reading beside it
    ],
)
def test_readings_refuse(data: bytes, declared: str | None, message: str) -> None:
    """Strict readings refuse a body no candidate decodes, and an unknown charset."""
    with pytest.raises(UnscannableError, match=message):
        readings(data, declared, strict=True)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Potilas Äijälä".encode("utf-16-le"), "utf-16-le"),
        ("Potilas Äijälä".encode("utf-16-be"), "utf-16-be"),
        ("€ Potilas".encode("utf-16-le"), "utf-16-le"),  # the first unit is no ASCII character
        ("Potilas".encode("utf-32-le"), "utf-32-le"),
        ("€ Potilas".encode("utf-32-be"), "utf-32-be"),
        (b"plain text", None),
        (bytes(range(256)) * 4, None),  # binary: NUL bytes, no pattern
        (b"\x00" * 64, None),
    ],
)
def test_sniff_wide(data: bytes, expected: str | None) -> None:
    """UTF-16/32 without a BOM shows in where its NUL bytes fall."""
    assert sniff_wide(data) == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512), st.sampled_from([None, "utf-8", "iso-8859-1", "utf-16", "utf-7"]))
def test_readings_never_fail_unexpectedly(data: bytes, declared: str | None) -> None:
    """Any bytes under any label give readings (or, strictly, UnscannableError); lenient
    readings always include one that keeps every byte (ISO-8859-1) unless UTF-8 held."""
    lenient = readings(data, declared, strict=False)
    assert lenient and len({text for text, _ in lenient}) == len(lenient)
    if not any(how == "utf-8" for _, how in lenient) and declared is None:
        assert (data.decode("latin-1"), "iso8859-1") in lenient
    try:
        readings(data, declared, strict=True)
    except UnscannableError as exc:
        assert exc.reason


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        ("a\x96b 131052 ".encode("utf-16-le") * 80_000, "iso-8859-1"),  # UTF-16 under Latin-1
        (b"131052\x96308 " * 80_000, None),  # windows-1252 dashes, not UTF-8
        (bytes(range(256)) * 4_000, None),  # binary
        (codecs.BOM_UTF8 + b"\xff" * 1_000_000, "utf-16"),  # every candidate fails but one
    ],
)
def test_readings_cost_is_linear(data: bytes, declared: str | None) -> None:
    """A megabyte read every way costs a few C-level passes, not one per character."""
    started = time.perf_counter()
    assert readings(data, declared, strict=False)
    assert time.perf_counter() - started < 0.5
