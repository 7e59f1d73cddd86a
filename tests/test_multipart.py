"""Tests for kanta_guard.multipart and kanta_guard.mediatype: byte-exact parts, MTOM, STOW-RS,
form-data, transfer encodings and every refusal."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest
from helpers import REAL, TEST

from kanta_guard import Scanner, Verdict
from kanta_guard.errors import UnscannableError
from kanta_guard.mediatype import MediaType, decode_ext_value, parse_media_type
from kanta_guard.multipart import Part, header_readings, parse_multipart, split_multipart

B = "MIMEBoundary_9f3a"
CT = f'multipart/related; boundary="{B}"'
B64 = b"Content-Transfer-Encoding: base64\r\n\r\n"
# Every byte value, CR/LF runs, and strings that look like the delimiter but are not one: not at
# a line start, cut short, wrong case, a single dash.
BINARY = (
    bytes(range(256))
    + b"\r\n\r\n\n\r\r\n"
    + f"x--{B}\r\n".encode()
    + f"\r\n--{B[:-1]}\r\n".encode()
    + f"\r\n--{B.upper()}\r\n".encode()
    + f"\r\n-{B}\r\n".encode()
    + f"\r\n- -{B}--".encode()
    + bytes(range(255, -1, -1))
    + b"\r"
)


def _body(*parts: bytes, boundary: str = B, eol: bytes = b"\r\n", epilogue: bytes = b"") -> bytes:
    """Assemble a multipart body from raw parts (headers, blank line, content)."""
    dash = b"--" + boundary.encode()
    out = b"preamble to be ignored" + eol
    for part in parts:
        out += dash + eol + part + eol
    return out + dash + b"--" + eol + epilogue


def test_mtom_xop_soap() -> None:
    """An MTOM/XOP SOAP 1.2 request: the XML root part and a byte-exact binary attachment."""
    root = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>'
        b'<Document><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" '
        b'href="cid:doc1@example.fi"/></Document><hetu>010181-900C</hetu>'
        b"</soap:Body></soap:Envelope>"
    )
    body = _body(
        b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
        b"Content-Transfer-Encoding: binary\r\n"
        b"Content-ID: <root>\r\n\r\n" + root,
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"Content-ID: <doc1@example.fi>\r\n\r\n" + BINARY,
    )
    content_type = (
        f'multipart/related; type="application/xop+xml"; boundary="{B}"; start="<root>"; '
        'start-info="application/soap+xml"'
    )
    parts = parse_multipart(body, content_type)
    assert [p.index for p in parts] == [1, 2]
    assert parts[0].body == root
    assert parts[0].content_id == "<root>"
    assert parts[0].content_type == (
        'application/xop+xml; charset=UTF-8; type="application/soap+xml"'
    )
    assert parts[1].body == BINARY
    assert parts[1].content_id == "<doc1@example.fi>"
    assert parts[1].header("content-transfer-encoding") == "binary"


def test_dicomweb_stow_rs() -> None:
    """A STOW-RS request (multipart/related; type="application/dicom") keeps each file exact."""
    dicom1 = bytes(128) + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00" + BINARY
    dicom2 = bytes(128) + b"DICM" + b"\r\n--not-the-boundary\r\n" + bytes(range(256)) * 4
    body = _body(
        b"Content-Type: application/dicom\r\n\r\n" + dicom1,
        b"Content-Type: application/dicom\r\n\r\n" + dicom2,
        boundary="DICOMwebBoundary",
    )
    content_type = 'multipart/related; type="application/dicom"; boundary=DICOMwebBoundary'
    parts = parse_multipart(body, content_type)
    assert [(p.content_type, p.body) for p in parts] == [
        ("application/dicom", dicom1),
        ("application/dicom", dicom2),
    ]


def test_form_data() -> None:
    """form-data: a text field and a binary file, with names and filenames (RFC 7578)."""
    body = _body(
        b'Content-Disposition: form-data; name="hetu"\r\n\r\n010181-900C',
        b'Content-Disposition: form-data; name="liite"; filename="kuva \\"1\\".bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + BINARY,
        b"Content-Disposition: form-data; name=tyhja\r\n\r\n",
        boundary="----WebKitFormBoundary7MA4YWxkTrZu0gW",
    )
    content_type = "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"
    parts = parse_multipart(body, content_type)
    assert [(p.name, p.filename, p.content_type, p.body) for p in parts] == [
        ("hetu", None, None, b"010181-900C"),
        ("liite", 'kuva "1".bin', "application/octet-stream", BINARY),
        ("tyhja", None, None, b""),
    ]


@pytest.mark.parametrize(
    ("disposition", "filename"),
    [
        (b'form-data; name="f"; filename="a.txt"', "a.txt"),
        # RFC 8187 filename* wins over filename (RFC 6266 §4.3).
        (b"attachment; filename=x.txt; filename*=UTF-8''%C3%84ij%C3%A4l%C3%A4.txt", "Äijälä.txt"),
        (b"attachment; filename*=iso-8859-1'fi'%C4.txt", "Ä.txt"),
        (b'attachment; filename="x.txt"; filename*=bogus', "x.txt"),  # malformed: ignored
        # UTF-8 straight in the header, as browsers send it (RFC 7578 §5.1.1).
        ('form-data; name="f"; filename="Äijälä.pdf"'.encode(), "Äijälä.pdf"),
    ],
)
def test_filenames(disposition: bytes, filename: str) -> None:
    """Filenames are unquoted and RFC 8187-decoded."""
    body = _body(b"Content-Disposition: " + disposition + b"\r\n\r\nx", boundary="b")
    (part,) = parse_multipart(body, "multipart/form-data; boundary=b")
    assert part.filename == filename


@pytest.mark.parametrize(
    ("headers", "content", "expected"),
    [
        (b"Content-Transfer-Encoding: base64", base64.encodebytes(BINARY), BINARY),  # 76-col lines
        (b"Content-Transfer-Encoding: BASE64", base64.b64encode(b"010181-900C"), b"010181-900C"),
        (
            b"Content-Transfer-Encoding: quoted-printable",
            b"=30=31=30181-900C =C3=84=\r\nij",
            (b"010181-900C \xc3\x84ij"),
        ),
        (b"Content-Transfer-Encoding: 7bit", b"plain", b"plain"),
        (b"Content-Transfer-Encoding: 8bit", b"\xc3\x84", b"\xc3\x84"),
        (b"Content-Transfer-Encoding: binary", BINARY, BINARY),
        (b"Content-Type: text/plain", b"", b""),
    ],
)
def test_transfer_encodings(headers: bytes, content: bytes, expected: bytes) -> None:
    """Content-Transfer-Encoding is undone (RFC 2045 §6)."""
    body = _body(headers + b"\r\n\r\n" + content)
    (part,) = parse_multipart(body, CT)
    assert part.body == expected


def test_lf_only() -> None:
    """A body with bare LF line endings parses; the LF before a delimiter is the delimiter's."""
    body = _body(
        b"Content-Type: text/plain\nContent-ID: <a>\n\nfirst\r\nline",
        b"Content-Type: text/plain\n\nsecond",
        eol=b"\n",
    )
    parts = parse_multipart(body, CT)
    assert [(p.content_type, p.content_id, p.body) for p in parts] == [
        ("text/plain", "<a>", b"first\r\nline"),
        ("text/plain", None, b"second"),
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Folded header (obs-fold): unfolded with one space.
        (
            _body(b"Content-Type: application/xop+xml;\r\n\tcharset=UTF-8;\r\n  type=a\r\n\r\nx"),
            "application/xop+xml; charset=UTF-8; type=a",
        ),
        # Transport padding after the delimiter (RFC 2046 §5.1.1), no preamble, an epilogue.
        (
            f"--{B} \t\r\nContent-Type: a/b\r\n\r\nx\r\n--{B}--\r\nepilogue".encode(),
            "a/b",
        ),
        # The close delimiter at the very end, without a line break.
        (f"--{B}\r\nContent-Type: a/b\r\n\r\nx\r\n--{B}--".encode(), "a/b"),
    ],
)
def test_header_and_delimiter_forms(body: bytes, expected: str) -> None:
    """Folded headers, transport padding and missing preamble/epilogue are all accepted."""
    (part,) = parse_multipart(body, CT)
    assert part.content_type == expected
    assert part.body == b"x"


def test_part_without_content() -> None:
    """Empty parts and header-only parts are parts with an empty body."""
    body = f"--{B}\r\n\r\n--{B}\r\nContent-Type: a/b\r\n\r\n--{B}--\r\n".encode()
    parts = parse_multipart(body, CT)
    assert [(p.headers, p.body) for p in parts] == [((), b""), ((("Content-Type", "a/b"),), b"")]


def test_max_parts() -> None:
    """Exactly max_parts parts is fine; one more is refused."""
    body = _body(*[b"\r\nx"] * 5)
    assert len(parse_multipart(body, CT, max_parts=5)) == 5
    with pytest.raises(UnscannableError, match="more than 4 parts"):
        parse_multipart(body, CT, max_parts=4)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (_body(b"\r\nx"), "multipart/related", "without a boundary"),
        (_body(b"\r\nx"), 'multipart/related; boundary=""', "without a boundary"),
        (_body(b"\r\nx"), "application/octet-stream; boundary=x", "not multipart"),
        # Duplicate boundary parameters: parsers disagree on which one wins.
        (_body(b"\r\nx"), f"multipart/related; boundary={B}; boundary=other", "repeated"),
        (_body(b"\r\nx"), f'multipart/related; boundary="{B}', "unterminated quoted string"),
        (b"no delimiter here", CT, "no boundary delimiter"),
        (b"", CT, "no boundary delimiter"),
        (f"--{B}--\r\n".encode(), CT, "no parts"),
        # Truncated: no close delimiter, or cut inside a delimiter line.
        (f"--{B}\r\nContent-Type: a/b\r\n\r\nxyz".encode(), CT, "without a close delimiter"),
        (f"--{B}\r\n\r\nx\r\n--{B}\r\n\r\ny\r\n--{B}".encode(), CT, "without a close delimiter"),
        (f"--{B}\r\n\r\nx\r\n--{B}\r\n\r\ny\r\n--{B}-".encode(), CT, "unexpected bytes"),
        # Header section without the blank line.
        (f"--{B}\r\nContent-Type: a/b\r\n--{B}--".encode(), CT, "blank line"),
        (_body(b"Content-Type: a/b"), CT, "blank line"),
        (_body(b"not a header\r\n\r\nx"), CT, r"malformed part header \(line 1\)"),
        (_body(b": empty name\r\n\r\nx"), CT, "malformed part header"),
        (_body(b" folded first\r\n\r\nx"), CT, "folded line"),
        # Transfer encodings the guard cannot read completely.
        (_body(B64 + b"MDEwMTgxLTkwMEM*"), CT, "not valid base64"),
        (_body(B64 + b"MDEwMTgx=LTkw"), CT, "not valid base64"),
        (_body(B64 + b"MDEwMTg"), CT, "not valid base64"),
        (_body(b"Content-Transfer-Encoding: x-uuencode\r\n\r\nx"), CT, "unknown content transfer"),
        # Ambiguity a server might resolve differently: refused (fail closed).
        (_body(f"\r\nx\r\n--{B}X\r\ny".encode()), CT, "unexpected bytes"),
        (
            _body(b"\r\nx", epilogue=f"\r\n--{B}\r\n\r\nhidden\r\n--{B}--".encode()),
            CT,
            "after the close delimiter",
        ),
        (_body(b"Content-Type: a/b\r\nContent-Type: c/d\r\n\r\nx"), CT, "repeats content-type"),
        (
            _body(
                b"Content-Transfer-Encoding: base64\r\n" + B64.replace(b"base64", b"binary") + b"x"
            ),
            CT,
            "repeats content-transfer-encoding",
        ),
    ],
)
def test_refused(body: bytes, content_type: str, message: str) -> None:
    """Bodies the guard cannot split and read completely are unscannable."""
    with pytest.raises(UnscannableError, match=message) as info:
        parse_multipart(body, content_type)
    assert "010181" not in str(info.value)


def test_error_location() -> None:
    """Errors inside a part name the part."""
    body = _body(b"\r\nok", b"Content-Transfer-Encoding: base64\r\n\r\n!!!!")
    with pytest.raises(UnscannableError) as info:
        parse_multipart(body, CT)
    assert info.value.location == "body/part[2]"


def test_linear_time() -> None:
    """Pathological inputs (many near-delimiters, many tiny parts) parse in linear time."""
    near = (b"\r\n--" + B[:-1].encode() + b"\r\n") * 200_000  # ~5 MB of near misses
    started = time.perf_counter()
    (part,) = parse_multipart(_body(b"\r\n" + near), CT)
    assert part.body == near
    parts = parse_multipart(_body(*[b"\r\n"] * 20_000), CT, max_parts=20_000)
    assert len(parts) == 20_000
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "Application/FHIR+JSON; Charset=UTF-8",
            MediaType("application/fhir+json", {"charset": "UTF-8"}),
        ),
        (
            'multipart/related; type="application/xop+xml"; boundary="a;b=c"; start="<root>"',
            MediaType(
                "multipart/related",
                {"type": "application/xop+xml", "boundary": "a;b=c", "start": "<root>"},
            ),
        ),
        ('text/plain; x="a\\"b\\\\c"', MediaType("text/plain", {"x": 'a"b\\c'})),  # RFC 9110 §5.6.4
        ("text/plain;;  ; charset = latin1 ;", MediaType("text/plain", {"charset": "latin1"})),
        ("text/plain; flag; a=1", MediaType("text/plain", {"a": "1"})),  # bare names skipped
        ("text/plain; a=1; A=1", MediaType("text/plain", {"a": "1"})),  # same value repeated
        ("", MediaType("")),
        (None, MediaType("")),
    ],
)
def test_parse_media_type(value: str | None, expected: MediaType) -> None:
    """Types are lower-cased, parameter names lower-cased, quoted values unescaped."""
    assert parse_media_type(value) == expected


@pytest.mark.parametrize(
    ("value", "is_xml", "is_json", "is_multipart"),
    [
        ("text/xml", True, False, False),
        ("application/xml", True, False, False),
        ("application/soap+xml; charset=utf-8", True, False, False),
        ("application/fhir+xml", True, False, False),
        ("application/json", False, True, False),
        ("application/fhir+json", False, True, False),
        ("multipart/related; boundary=x", False, False, True),
        ("text/plain", False, False, False),
        ("application/xml-dtd", False, False, False),
    ],
)
def test_media_type_families(value: str, is_xml: bool, is_json: bool, is_multipart: bool) -> None:
    """XML and JSON are recognised by type and by structured suffix (RFC 6839)."""
    media = parse_media_type(value)
    assert (media.is_xml, media.is_json, media.is_multipart) == (is_xml, is_json, is_multipart)


@pytest.mark.parametrize(
    "value",
    [
        'text/plain; a="x" y',  # text after a quoted string
        "text/plain; =x",  # empty name
        "text/plain; a=1; a=2",  # repeated with another value
    ],
)
def test_parse_media_type_refused(value: str) -> None:
    """Parameters two parsers could read differently are unscannable."""
    with pytest.raises(UnscannableError):
        parse_media_type(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("UTF-8''%e2%82%ac%20rates", "€ rates"),
        ("utf-8'en'a.txt", "a.txt"),
        ("ISO-8859-1''%E4", "ä"),
        ("UTF-8''%ff", None),  # not UTF-8
        ("no-quotes", None),
        ("nosuchcharset''x", None),
    ],
)
def test_decode_ext_value(value: str, expected: str | None) -> None:
    """RFC 8187 ext-values decode; malformed ones give None."""
    assert decode_ext_value(value) == expected


def test_part_header_lookup() -> None:
    """Part.header looks a header up case-insensitively."""
    part = Part(1, (("X-Foo", "1"), ("x-foo", "2")), b"")
    assert (part.header("x-FOO"), part.header("missing")) == ("1", None)


def test_split_multipart_keeps_preamble_and_epilogue() -> None:
    """The preamble and the epilogue come out byte-exact beside the parts."""
    body = b"before\r\n--b\r\nA: 1\r\n\r\nx\r\n--b--\r\nafter\r\n"
    split = split_multipart(body, "multipart/mixed; boundary=b")
    assert (split.preamble, [p.body for p in split.parts], split.epilogue) == (
        b"before",
        [b"x"],
        b"\r\nafter\r\n",
    )
    assert parse_multipart(body, "multipart/mixed; boundary=b") == split.parts


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/plain", []),
        ("=?UTF-8?Q?L=C3=A4hete=2Epdf?=", ["Lähete.pdf"]),
        ("=?UTF-8?B?TMOkaGV0ZS5wZGY=?=", ["Lähete.pdf"]),
        ("=?no-such-charset?B?TMOkaGV0ZQ==?=", ["LÃ¤hete"]),  # unknown charset: Latin-1
        (
            "form-data; name=\"doc\"; filename*=UTF-8''L%C3%A4hete.pdf",
            ["filename=Lähete.pdf"],
        ),
        (
            "attachment; filename*0*=UTF-8''L%C3%A4; filename*1=hete.pdf",
            ["filename=Lähete.pdf"],  # RFC 2231 §3: continuations joined
        ),
        (
            'form-data; name="doc"; filename="=?UTF-8?B?TMOkaGV0ZS5wZGY=?="',
            ['form-data; name="doc"; filename="Lähete.pdf"', "filename=Lähete.pdf"],
        ),
        ('form-data; name="doc"; filename="a%20b.pdf"', ["filename=a b.pdf"]),
    ],
)
def test_header_readings(value: str, expected: list[str]) -> None:
    """Encoded words, RFC 2231/8187 parameters and percent-escapes decode; the rest is as sent."""
    assert header_readings(value) == expected


def _form_data(
    *, preamble: str = "", epilogue: str = "", header: str = "", name: str = ""
) -> bytes:
    """A form-data body with one file part, the given preamble, epilogue and extra header."""
    extra = f"{header}\r\n" if header else ""
    name_line = f"{name}: 1\r\n" if name else ""
    return (
        f"{preamble}--b\r\n"
        'Content-Disposition: form-data; name="doc"; filename="lahete.txt"\r\n'
        f"{extra}{name_line}Content-Type: text/plain\r\n\r\n"
        "Lähete ilman tunnuksia\r\n"
        f"--b--\r\n{epilogue}"
    ).encode()


def _b64w(text: str) -> str:
    """Base64 of the text's UTF-8."""
    return base64.b64encode(text.encode()).decode()


#: (name, body from a code, the finding's location): the places RFC 2046 readers skip.
PLACES: list[tuple[str, Callable[[str], bytes], str]] = [
    ("preamble", lambda c: _form_data(preamble=f"hetu {c}\r\n"), "preamble:line 1"),
    ("epilogue", lambda c: _form_data(epilogue=f"hetu {c}\r\n"), "epilogue:line 2"),
    ("part header name", lambda c: _form_data(name=f"X-{c}"), "part[1]/header-name:1"),
    (
        "filename* (RFC 8187)",
        lambda c: _form_data(
            header="Content-Description: x; filename*=UTF-8''"
            + "".join(f"%{ord(ch):02X}" for ch in c)
        ),
        # (Percent-encoded, the value as written shows the code to a reader already.)
        "part[1]#Content-Description",
    ),
    (
        "encoded word, B (RFC 2047)",
        lambda c: _form_data(header=f"Content-Description: =?UTF-8?B?{_b64w(c)}?="),
        "part[1]#Content-Description!decoded",
    ),
    (
        "encoded word, Q (RFC 2047)",
        lambda c: _form_data(header=f"Content-Description: =?UTF-8?Q?{c.replace('-', '=2D')}?="),
        "part[1]#Content-Description!decoded",
    ),
]


@pytest.mark.parametrize(("name", "build", "location"), PLACES, ids=[p[0] for p in PLACES])
def test_places_outside_the_parts(
    scanner: Scanner, name: str, build: Callable[[str], bytes], location: str
) -> None:
    """A real code where a strict reader never looks is blocked once; a test code passes."""
    report = scanner.scan_bytes(build(REAL), "multipart/form-data; boundary=b")
    assert [(f.rule, f.location) for f in report.findings] == [("hetu.real", location)]
    assert scanner.scan_bytes(build(TEST), "multipart/form-data; boundary=b").verdict is (
        Verdict.PASS
    )


@pytest.mark.parametrize(
    "disposition",
    [
        "form-data; name=\"doc\"; filename*=UTF-8''{}.pdf",
        'form-data; name="doc"; filename="=?UTF-8?B?{}?="',
    ],
)
def test_encoded_file_names(scanner: Scanner, disposition: str) -> None:
    """A code in a file name encoded as RFC 8187 or RFC 2047 says is blocked."""
    for code, verdict in ((REAL, Verdict.BLOCK), (TEST, Verdict.PASS)):
        encoded = "".join(f"%{ord(ch):02X}" for ch in code) if "*=" in disposition else _b64w(code)
        body = (
            f"--b\r\nContent-Disposition: {disposition.format(encoded)}\r\n\r\nx\r\n--b--\r\n"
        ).encode()
        assert scanner.scan_bytes(body, "multipart/form-data; boundary=b").verdict is verdict


def test_ordinary_form_data_passes(scanner: Scanner) -> None:
    """A browser's form-data with a preamble-less body and a UTF-8 file name passes."""
    body = _form_data(header="Content-Description: =?UTF-8?Q?L=C3=A4hete?=", epilogue="\r\n")
    assert scanner.scan_bytes(body, "multipart/form-data; boundary=b").verdict is Verdict.PASS
