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
from kanta_guard.parsers.base import base64_content
from kanta_guard.parsers.text import base64_body, base64_tokens


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
        "line 1",  # (the references a reader undoes: the line shows it)
    ),
    (
        "HTML named reference",
        "text/html; charset=utf-8",
        lambda c: f"<p>{c[:6]}&hyphen;{c[7:]}</p>".encode(),
        "line 1",  # (the references a reader undoes: the line shows it)
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


# -- Base64 standing in a line ------------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _wrapped(text: str, first: int, width: int = 76) -> str:
    """Base64 of the text, its first line ``first`` wide, then lines of ``width``."""
    encoded = base64.b64encode(text.encode()).decode()
    rest = encoded[first:]
    return "\r\n".join(
        [encoded[:first]] + [rest[i : i + width] for i in range(0, len(rest), width)]
    )


_FILLER = " lausunto" * 20


@pytest.mark.parametrize(
    ("body", "location"),
    [
        (lambda c: f"Potilas {_b64(c)} ok", "line 1!base64:line 1"),
        (lambda c: f"a\nb\nPotilas ({_b64(c)}), ok", "line 3!base64:line 1"),
        (lambda c: f"x\r\ny\rz {_b64(c)}", "line 3!base64:line 1"),
        (lambda c: f"Liite: {_wrapped(f'Potilas {c}{_FILLER}', 5)}", "line 1-5!base64:line 1"),
        (lambda c: f"Liite:\n{_wrapped(f'Potilas {c}{_FILLER}', 76)}", "line 2-5!base64:line 1"),
    ],
    ids=["inline", "third line", "CR and CRLF lines", "short first line", "wrapped block"],
)
def test_base64_in_a_line_is_read_where_it_stands(
    scanner: Scanner, body: Callable[[str], str], location: str
) -> None:
    report = scanner.scan_bytes(body(REAL).encode(), "text/plain")
    assert [(f.rule, f.location) for f in report.findings] == [("hetu.real", location)]
    assert scanner.scan_bytes(body(TEST).encode(), "text/plain").verdict is Verdict.PASS


def _decoded(text: bytes) -> list[bytes]:
    return [decoded for _, _, decoded in base64_tokens(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"Tavallinen muistiinpano ilman tunnuksia. " * 20, []),
        (b"potilastietojarjestelmaan tietosuojaselosteeseen", []),  # words: one case
        (b"id 0123456789abcdef0123456789abcdef ok", []),  # hex: an identifier
        (b"uuid 123e4567-e89b-12d3-a456-426614174000", []),
        (b"token eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMzEwNTIifQ. ok", []),  # JOSE: jose.py's
        (f"a {_b64('sisalto 12345678')} b".encode(), [b"sisalto 12345678"]),
        (
            f"a {_b64('sisalto 12345678')} {_b64('sisalto 12345678')}".encode(),
            [b"sisalto 12345678"],
        ),
        (f"x.{_b64('sisalto 12345678')}.".encode(), [b"sisalto 12345678"]),  # a dot, no run
        (  # a PEM block: pipeline.pem_items reads it
            b"Varmenne:\n-----BEGIN CERTIFICATE-----\n"
            + _b64_lines("lausunto " * 20, (64,))
            + b"\n-----END CERTIFICATE-----\n",
            [],
        ),
        (  # dots join runs, but no JOSE header starts them
            f"{_b64('sisalto 1234567890')}.{_b64('toinen 12345678901')}".encode(),
            [b"sisalto 1234567890", b"toinen 12345678901"],
        ),
        (
            b"Liite:\n" + _b64_lines("lausunto " * 20, (76,)) + b"\nTerveisin",
            [b"lausunto " * 20],
        ),
        (  # a short first line after a label, a short last line, then a word
            f"Liite: {_wrapped('lausunto ' * 20, 7)}\nok".encode(),
            [b"lausunto " * 20],
        ),
        (  # a label word alone on the line before, shorter than the block's lines
            b"Tietosuojaseloste\n" + _b64_lines("lausunto " * 20, (64,)),
            [b"lausunto " * 20],
        ),
    ],
)
def test_base64_tokens(text: bytes, expected: list[bytes]) -> None:
    found = _decoded(text)
    assert [d for d in found if d in expected] == expected
    if not expected:
        assert all(base64_content(d) is None or len(d) < 15 for d in found), found


_PROSE = st.text(alphabet="abc xyz,.:;()äö\n", max_size=30)
_SEPARATORS = st.sampled_from([" ", ",", "(", ")", ":", ";", '"', "\n", "\t", "<", ">", "!"])


@settings(max_examples=300, deadline=None)
@given(
    st.binary(min_size=11, max_size=60),
    st.booleans(),
    st.booleans(),
    _PROSE,
    _SEPARATORS,
    _SEPARATORS,
    _PROSE,
)
def test_base64_tokens_read_every_token_base64_content_reads(
    payload: bytes, url: bool, padded: bool, before: str, left: str, right: str, after: str
) -> None:
    """A superset, not examples: every Base64 token that ``base64_content`` decodes, standing
    in a line between anything but the alphabet, is given with that decoding."""
    token = (base64.urlsafe_b64encode if url else base64.b64encode)(payload)
    if not padded:
        token = token.rstrip(b"=")
    expected = base64_content(token)
    text = f"{before}{left}".encode() + token + f"{right}{after}".encode()
    if expected is not None:
        assert expected in _decoded(text)


@pytest.mark.parametrize(
    "unit",
    [
        b"aaaaaaaaaaaaaaa\n",  # runs one per line: a block of 2 MB
        b"Tietosuojaseloste ",  # a run (title case: decoded) repeated
        b"aaaaaaaaaaaaaa. ",  # just under a run's length
        b"AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA.",  # runs joined by dots
        b"QUFBQUFBQUFBQUFBQUFB ",  # the same token again and again
    ],
)
def test_base64_tokens_are_linear(unit: bytes) -> None:
    """Time grows with the text, not faster (min of three, twice the size)."""

    def cost(size: int) -> float:
        text = unit * (size // len(unit))
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in base64_tokens(text):
                pass
            best = min(best, time.perf_counter() - started)
        return best

    small, large = cost(250_000), cost(1_000_000)
    assert large < 10 * small + 0.02, (small, large)  # (4x linear, 16x quadratic)


# -- decoded texts asked in groups (live_decoded) -------------------------------------------------

#: What a decoded text may be made of: plain words, and everything that makes a text more than
#: its lines or another parser's (an "=", escapes, a Base64 run or body of short lines, a PEM
#: opening, a JOSE token, a document's or a container's start, a byte order mark, DICM at 128,
#: "ustar" at 257, control and non-UTF-8 bytes), and the join's own bytes.
_GROUP_PIECES = st.one_of(
    st.sampled_from(
        [
            b"rivi", b"kotona ", b"Potilas", b" ", b"\n", b"\r\n", b"\t", "ä".encode(), b"a=b",
            b"%41", b"\\n", b"&amp;", b"abcdefghijklmnopq", b"QUJD\nREVG\nR0hJ\nSktM", b"<a/>",
            b"{", b"[1]", b"  <r>", b"-----BEGIN ", b"eyJhIjoxfQ.e30.", b"\xef\xbb\xbf",
            b"BZh91AY&SY", b"GIF89a", b"RIFFabcdWEBP", b"%PDF-1.7", b"\n#\n", b"#", b"\x00",
            b"\x01", b"\xff", b"\x1f\x8b\x08\x00", b"PK\x03\x04",
        ]
    ),
    st.integers(0, 300).map(lambda n: b"x" * n + b"DICM" + b"ustar"),
    st.binary(max_size=6),
)  # fmt: skip
_GROUPS = st.lists(st.lists(_GROUP_PIECES, max_size=5).map(b"".join), min_size=1, max_size=20)


@settings(max_examples=600)
@given(_GROUPS)
def test_a_group_is_plain_text_only_if_each_text_is(group: list[bytes]) -> None:
    """``_plain_texts`` (the group's questions, asked of the texts joined) says yes only where
    ``lines_only`` of each text says "text" and no other parser would claim it (the per-text
    questions ``live_decoded`` otherwise asks)."""
    from kanta_guard.decode.sniff import sniff
    from kanta_guard.dicom.read import is_part10
    from kanta_guard.model import Payload
    from kanta_guard.parsers.text import _UNTYPED, _plain_texts, lines_only

    if _plain_texts(group):
        for data in group:
            payload = Payload(data, None, "", depth=1, declared=False)
            assert lines_only(payload, _UNTYPED, 1 << 20) == "text", data
            assert sniff(data) is None and not is_part10(data), data


def test_a_group_of_words_is_plain_text() -> None:
    """The group's questions do answer yes: decoded words and sentences, line breaks in them."""
    from kanta_guard.parsers.text import _plain_texts

    assert _plain_texts([b"rivi abcdex", "Potilas kotona\nhyvä vointi".encode(), b""])
    assert not _plain_texts([b"rivi abcdex", b"a=b"])  # (quoted-printable: asked text by text)
