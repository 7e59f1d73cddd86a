"""Tests for kanta_guard.parsers.text: every reading of a text body, HTML references, Base64."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest
from helpers import REAL, TEST
from hypothesis import given, settings
from hypothesis import strategies as st
from test_screen import FULL

from kanta_guard import Scanner, Verdict
from kanta_guard.parsers.text import base64_body


def _b64_lines(text: str, widths: tuple[int, ...]) -> bytes:
    """Base64 of the text in lines of the given widths, in turn (irregular, as some send it)."""
    encoded = base64.b64encode(text.encode()).decode()
    lines, at, turn = [], 0, 0
    while at < len(encoded):
        width = widths[turn % len(widths)]
        lines.append(encoded[at : at + width])
        at, turn = at + width, turn + 1
    return "\r\n".join(lines).encode()


#: (name, content type, body from a code, the blocking finding's location).
BODIES: list[tuple[str, str | None, Callable[[str], bytes], str]] = [
    ("plain UTF-8", "text/plain", lambda c: f"hetu {c}\n".encode(), "line 1"),
    (
        "UTF-16LE without BOM in text/plain",
        "text/plain",
        lambda c: f"Potilas Äijälä\nhetu {c}\n".encode("utf-16-le"),
        "line 2",  # (not UTF-8: the UTF-16 reading is the first)
    ),
    (
        "UTF-16BE without BOM, no type",
        None,
        lambda c: f"hetu {c}".encode("utf-16-be"),
        "line 1!utf-16-be",
    ),
    (
        "UTF-16LE labelled UTF-8",
        "text/plain; charset=utf-8",
        lambda c: f"hetu {c}".encode("utf-16-le"),
        "line 1!utf-16-le",
    ),
    (
        "UTF-7 declared: +AC0- is the dash",
        "text/plain; charset=utf-7",
        lambda c: f"hetu {c[:6]}+AC0-{c[7:]}".encode(),
        "line 1",
    ),
    (
        "UTF-7 declared, the code plain: its UTF-8 reading",
        "text/plain; charset=utf-7",
        lambda c: f"a+AMQ-b {c}".encode(),  # (the UTF-7 reading too, line 1 both)
        "line 1",
    ),
    (
        "ISO-8859-1 declared over UTF-8 with an en dash",
        "text/plain; charset=iso-8859-1",
        lambda c: f"Äijälä {c[:6]}\u2013{c[7:]}".encode(),
        "line 1!utf-8",
    ),
    (
        "windows-1252 en dash, no charset",
        "text/plain",
        lambda c: f"Äijälä {c[:6]}\u2013{c[7:]}".encode("cp1252"),
        "line 1!cp1252+replace",
    ),
    (
        "windows-1252 en dash labelled ISO-8859-1",
        "text/plain; charset=iso-8859-1",
        lambda c: f"{c[:6]}\u2013{c[7:]}".encode("cp1252"),
        "line 1!cp1252+replace",
    ),
    (
        "HTML numeric references",
        "text/html",
        lambda c: f"<p>{c[:2]}&#{ord(c[2])};&#x{ord(c[3]):x};{c[4:]}</p>".encode(),
        "line 1!html",
    ),
    (
        "HTML named reference",
        "text/html; charset=utf-8",
        lambda c: f"<p>{c[:6]}&hyphen;{c[7:]}</p>".encode(),
        "line 1!html",
    ),
    ("HTML plain code", "text/html", lambda c: f"<td>{c}</td>".encode(), "line 1"),
    (
        "quoted-printable, a soft line break inside",
        "text/plain",
        lambda c: f"hetu {c[:8]}=\r\n{c[8:]}\n".encode(),
        "line 1!qp+utf-8",
    ),
    (
        "quoted-printable digits and sign",
        "text/plain; charset=iso-8859-1",
        lambda c: ("P\xe4iv\xe4 " + "".join(f"={ord(ch):02X}" for ch in c)).encode("latin-1"),
        "line 1!qp+iso8859-1",
    ),
    ("parts on two lines", "text/plain", lambda c: f"hetu {c[:6]}\n{c[6:]}\n".encode(), "line 1-2"),
    (
        "parts on two lines, a blank one between",
        "text/plain",
        lambda c: f"a\r\n{c[:7]}\r\n\r\n{c[7:]}\r\n".encode(),
        "line 2-4",
    ),
    (
        "Base64 body, irregular line widths",
        "text/plain",
        lambda c: _b64_lines(f"Potilas\nhetu {c}\n", (10, 40, 7)),
        "body!base64:line 2",
    ),
    (
        "Base64 body, octet-stream, one line",
        "application/octet-stream",
        lambda c: base64.b64encode(f"Lähete potilaalle {c}.".encode()),
        "body!base64:line 1",
    ),
    (
        "Base64url body, no padding",
        None,
        lambda c: base64.urlsafe_b64encode(f"??>> hetu {c} ok".encode()).rstrip(b"="),
        "body!base64:line 1",
    ),
    (
        "Base64 of UTF-16 JSON",
        "text/plain",
        lambda c: base64.b64encode(f'{{"hetu": "{c}"}}'.encode("utf-16")),
        "body!base64:/hetu",
    ),
]


@pytest.mark.parametrize(
    ("name", "content_type", "build", "location"), BODIES, ids=[b[0] for b in BODIES]
)
def test_real_code_blocked_test_code_passes(
    scanner: Scanner,
    name: str,
    content_type: str | None,
    build: Callable[[str], bytes],
    location: str,
) -> None:
    """A real code in any reading is blocked once, where it reads; a test code passes."""
    report = scanner.scan_bytes(build(REAL), content_type)
    assert [(f.rule, f.location) for f in report.findings] == [("hetu.real", location)]
    assert scanner.scan_bytes(build(TEST), content_type).verdict is Verdict.PASS


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"Tavallinen muistiinpano ilman tunnuksia.\n" * 20),
        ("text/plain", b"Matti\nMaija\nPekka\n"),  # words one per line: the alphabet, not Base64
        ("text/plain", b"0123456789abcdef0123456789abcdef01234567"),  # hex: an identifier
        ("text/plain; charset=iso-8859-1", "Äijälä – 2026-12-01".encode("cp1252")),
        ("text/html", b"<p>Tilaus &#35;123456-7890 &amp; 010181&#45;900C</p>"),
        ("application/vnd.example", b"\x7fBIN\r\n\x1a\n" + bytes(range(256)) * 8),
        ("application/octet-stream", bytes(range(256)) * 8),
        # Equals signs that are no quoted-printable code, and some that are, spelling nothing.
        ("text/plain", b"a=10 b=FF c=3D d=\nyhteens\xc3\xa4 == 5 =ZZ\n" + TEST.encode()),
        ("text/plain", b"Maksettu 12.3.2024=\n123,00 euroa\n"),
        # Numbers on consecutive lines that are no code across them.
        ("text/plain", b"131052\n2024-01-15\n308\n010181\n-900C\n"),
    ],
)
def test_ordinary_content_does_not_fire(scanner: Scanner, content_type: str, body: bytes) -> None:
    """Natural text, look-alikes, binaries and test codes pass in every reading."""
    assert scanner.scan_bytes(body, content_type).verdict is Verdict.PASS


def test_unreadable_under_its_declared_charset_is_unscannable(scanner: Scanner) -> None:
    """A body no reading decodes under its declared charset stays unscannable."""
    report = scanner.scan_bytes(b"ok \xc3\x28\xfa", "text/plain; charset=utf-8")
    assert report.rules == ("unscannable",)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (base64.b64encode(b"x" * 40), b"x" * 40),
        (b"  " + base64.b64encode(b"y" * 40) + b"\r\n", b"y" * 40),
        (_b64_lines("z" * 60, (5, 17)), b"z" * 60),
        (b"QUJD" * 3, None),  # under the 16 characters of a code alone
        (b"Tavallinen muistiinpano ilman tunnuksia", None),  # a space inside a line
        (b"abcd" * 8 + b"=" + b"abcd" * 8, None),  # padding in the middle
        (b"0123456789abcdef" * 4, None),  # hex digits only
        (b"AAAA+AAA-AAA" * 4, None),  # the two alphabets mixed
    ],
)
def test_base64_body(data: bytes, expected: bytes | None) -> None:
    """A body of nothing but Base64 lines decodes, whatever their widths; others do not."""
    assert base64_body(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"A\n" * 200_000,  # many short lines
        b"A" * 400_000 + b"!",  # fails at the very end
        (b"AAAA\n" * 50_000) + b"=A",
    ],
)
def test_base64_body_is_linear(data: bytes) -> None:
    """Awkward near-Base64 bodies are decided in linear time (no regex backtracking)."""
    started = time.perf_counter()
    base64_body(data)
    assert time.perf_counter() - started < 0.5


_ENCODINGS = ["utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-16", "cp1252"]
_LABELS = [None, "text/plain", "application/octet-stream", "text/csv"]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(_ENCODINGS),
    st.sampled_from(_LABELS),
    st.sampled_from(["-", "\u2013"]),
    st.text(alphabet="abcäö ,.", max_size=40),
    st.text(alphabet="abcäö ,.", max_size=40),
)
def test_a_code_in_any_encoding_is_blocked(
    scanner: Scanner, encoding: str, label: str | None, dash: str, before: str, after: str
) -> None:
    """A real code in text, in any common encoding under any generic label, is blocked."""
    code = REAL[:6] + dash + REAL[7:]
    body = f"{before}\n{code}\n{after}".encode(encoding)
    assert "hetu.real" in scanner.scan_bytes(body, label).rules


@pytest.mark.parametrize(
    ("name", "content_type", "build", "location"), BODIES, ids=[b[0] for b in BODIES]
)
def test_screened_equals_full_walk(
    scanner: Scanner,
    name: str,
    content_type: str | None,
    build: Callable[[str], bytes],
    location: str,
) -> None:
    """The screen's shortcuts (raw bytes, windows-1252 dashes) find what reading every line
    of every reading finds."""
    for code in (REAL, TEST):
        body = build(code)
        fast, full = scanner.scan_bytes(body, content_type), FULL.scan_bytes(body, content_type)
        assert [(f.rule, f.location) for f in fast.findings] == [
            (f.rule, f.location) for f in full.findings
        ]
