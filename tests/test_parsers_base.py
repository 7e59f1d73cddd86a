"""Base64 sniffing shared by the parsers: what is decoded, and the fast search for candidates
(a superset of what decodes, held with hypothesis)."""

from __future__ import annotations

import base64
import random

import pytest
from helpers import REAL, TEST
from hypothesis import given, settings
from hypothesis import strategies as st

from kanta_guard import Scanner, Verdict
from kanta_guard.parsers.base import MIN_BASE64, base64_content, base64_spans, looks_base64, sift


def _wrap(text: str, width: int, newline: str) -> str:
    return newline.join(text[i : i + width] for i in range(0, len(text), width))


def _samples() -> list[str]:
    """Base64 texts as they really come: one line, MIME/PEM-wrapped, padded, url-safe."""
    rng = random.Random(20261129)
    out: list[str] = []
    for size in (25, 100, 300):
        raw = bytes(rng.randrange(256) for _ in range(size))
        for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
            out.append(encoded)
            for width in (16, 64, 76):
                for newline in ("\n", "\r\n", " "):
                    out.append(_wrap(encoded, width, newline))
                    out.append("\n  " + _wrap(encoded, width, newline) + "\n")
    return out


@pytest.mark.parametrize("text", _samples())
def test_spans_find_every_base64_text(text: str) -> None:
    """The span search is a superset: every text base64_content accepts is a candidate."""
    if base64_content(text) is None:
        pytest.skip("not Base64 by base64_content's rules (short, or a ragged last line)")
    data = f"<a x='1'>{text}</a>".encode()
    start = data.index(b">") + 1
    assert (start, start + len(text)) in list(base64_spans(data, b">", b"<"))
    escaped = text.replace("\r", "\\r").replace("\n", "\\n")
    quoted = f'{{"k": "{escaped}"}}'.encode()
    start = quoted.index(b'"', 5) + 1
    assert (start, start + len(escaped)) in list(base64_spans(quoted, b'"', b'"'))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Potilas käyttää lääkettä ohjeen mukaan kahdesti päivässä", False),
        ("6f1c0000-0000-4000-8000-000000000001", False),  # a UUID: an identifier
        ("0123456789abcdef0123456789abcdef", False),  # hex digest
        ("short", False),
        (base64.b64encode(b"<ClinicalDocument/>" * 3).decode(), True),
        (_wrap(base64.b64encode(bytes(range(90))).decode(), 20, "\n"), True),
    ],
)
def test_looks_base64(text: str, expected: bool) -> None:
    assert looks_base64(text) is expected


def test_natural_text_is_no_candidate() -> None:
    """Narrative text (words and spaces) does not even reach base64_content."""
    sentence = b"Potilas kayttaa laaketta ohjeen mukaan kahdesti paivassa. "
    text = b"<text>" + sentence * 20 + b"</text>"
    assert list(base64_spans(text, b">", b"<")) == []


def test_blob_memo_keeps_certificate_sized_texts_only() -> None:
    """Only 1-16 KB texts are kept (certificates), and the memo is bounded."""
    from kanta_guard.parsers.base import BlobMemo

    memo = BlobMemo()
    short, cert, document = b"A" * 344, b"B" * 2000, b"C" * 20_000
    for text in (short, cert, document):
        memo.add(text, len(text) * 3 // 4)
    assert memo.get(short) is None and memo.get(document) is None
    assert memo.get(cert) == 1500
    for i in range(BlobMemo.MAX_ENTRIES):
        memo.add(b"%05d" % i + b"D" * 2000, 1)
    assert memo.get(cert) is None  # full: started over
    assert len(memo._known) <= BlobMemo.MAX_ENTRIES


# -- Base64 in every shape (issue 7) ----------------------------------------------------------

_TEXTS = st.text(min_size=24, max_size=300) | st.binary(min_size=24, max_size=300)
_NEWLINES = st.sampled_from(["\n", "\r\n", " ", "\t", "\n\t\t  ", " \r\n"])


@st.composite
def _wrapped_base64(draw: st.DrawFn) -> tuple[bytes, str]:
    """Random content, Base64- or Base64url-encoded, wrapped at random widths with random line
    breaks and surrounding whitespace: the raw content and the text."""
    content = draw(_TEXTS)
    raw = content.encode("utf-8") if isinstance(content, str) else content
    encode = draw(st.sampled_from([base64.b64encode, base64.urlsafe_b64encode]))
    encoded = encode(raw).decode("ascii")
    if draw(st.booleans()):
        encoded = encoded.rstrip("=")  # unpadded, as Base64url often is (RFC 4648 §3.2)
    first = draw(st.integers(1, 80))
    widths = draw(st.lists(st.integers(1, 100), min_size=1, max_size=6))
    lines, pos, i = [encoded[:first]], first, 0
    while pos < len(encoded):
        width = widths[i % len(widths)]
        lines.append(encoded[pos : pos + width])
        pos += width
        i += 1
    breaks = draw(st.lists(_NEWLINES, min_size=1, max_size=3))
    text = "".join(
        line + breaks[n % len(breaks)] for n, line in enumerate(lines if lines[-1] else lines[:-1])
    )
    lead = draw(st.sampled_from(["", "\n", "\n    ", "\r\n\t"]))
    return raw, lead + text.rstrip(" \t") + draw(st.sampled_from(["", "\n", "\n  "]))


def _spans_hold(text: str) -> None:
    """The span searches find ``text`` in XML text, in XML attributes and in JSON strings."""
    prefix = "<a x='1' y=\">\">"  # (a ">" in an attribute value hides nothing)
    data = f"{prefix}{text}</a>".encode()
    start = len(prefix)
    assert (start, start + len(text)) in list(base64_spans(data, b">", b"<"))
    for quote in ('"', "'"):
        attr = f"<a b={quote}{text}{quote}/>".encode()
        begin = attr.index(quote.encode()) + 1
        for long_only in (False, True):
            found = list(base64_spans(attr, quote.encode(), quote.encode(), long_only=long_only))
            assert (begin, begin + len(text)) in found
    escaped = text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
    escaped = escaped.replace("\t", "\\t")
    quoted = f'{{"k": "{escaped}"}}'.encode()
    begin = quoted.index(b'"', 5) + 1
    assert (begin, begin + len(escaped)) in list(base64_spans(quoted, b'"', b'"'))


@settings(max_examples=300, deadline=None)
@given(_wrapped_base64())
def test_spans_are_a_superset_of_what_decodes(case: tuple[bytes, str]) -> None:
    """Whatever base64_content accepts, the span searches (the fast paths' candidates) find,
    in XML text, XML attributes (either quote) and JSON strings."""
    raw, text = case
    decoded = base64_content(text)
    if decoded is None:
        return
    assert decoded == raw
    _spans_hold(text)


@settings(max_examples=200, deadline=None)
@given(_wrapped_base64())
def test_real_shapes_are_accepted(case: tuple[bytes, str]) -> None:
    """Base64 wrapped as encoders and people wrap it (every line but the first and the last
    at least 16 characters) is recognised and decodes to what was encoded."""
    raw, text = case
    lines = text.split()
    assume_real = len("".join(lines)) >= MIN_BASE64 and all(len(x) >= 16 for x in lines[1:-1])
    if len(lines) > 1:
        assume_real = assume_real and max(map(len, lines)) >= 16
    hexish = all(c in "0123456789abcdefABCDEF-" for c in "".join(lines))
    if not assume_real or hexish:
        return
    assert base64_content(text) == raw


@pytest.mark.parametrize(
    ("widths", "newline"),
    [
        ([20, 76, 76, 76], "\n"),  # IHE XDS inline documents: a break after 20, then 76
        ([20, 60, 76, 76], "\n"),
        ([76], "\r\n"),
        ([64], "\n\t\t\t"),  # indented in a pretty-printed document
        ([3, 64, 64], "\n"),  # the tag took most of the first line
    ],
)
def test_irregular_wrapping_is_base64(widths: list[int], newline: str) -> None:
    """Lines of uneven width, as real messages have them, are still Base64."""
    raw = bytes(range(256)) * 2
    encoded = base64.b64encode(raw).decode()
    lines, pos, i = [], 0, 0
    while pos < len(encoded):
        width = widths[min(i, len(widths) - 1)]
        lines.append(encoded[pos : pos + width])
        pos, i = pos + width, i + 1
    assert base64_content(newline.join(lines)) == raw


@pytest.mark.parametrize(
    "text",
    [
        "Potilas kayttaa laaketta ohjeen mukaan kahdesti paivassa aamulla",
        "Hetu tarkistettu ja potilaan henkilollisyys varmistettu vastaanotolla",
        "a b c d e f g h i j k l m n o p q r s t u v w x y z 0 1 2 3 4 5",
    ],
)
def test_prose_is_not_base64(text: str) -> None:
    """Words of prose in the Base64 alphabet are not taken for wrapped Base64."""
    assert base64_content(text) is None


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{{"note": "{v}"}}', "application/json"),
        ("note={v}", "application/x-www-form-urlencoded"),
        ("<a><n>{v}</n></a>", "application/xml"),
    ],
)
def test_text_holding_a_code_is_not_only_decoded(
    scanner: Scanner, body: str, content_type: str
) -> None:
    """A string that is Base64url to a decoder but holds a real code as written is read as
    text, in every parser (JSON and form read only the decoded form of what decodes)."""
    value = "HETUtarkistettu" + REAL + "abcdefgh"  # 34 characters of the Base64url alphabet
    assert base64_content(value) is None
    report = scanner.scan_bytes(body.format(v=value).encode(), content_type)
    assert report.verdict is Verdict.BLOCK
    clean = "HETUtarkistettu" + TEST + "abcdefgh"
    assert base64_content(clean) is not None
    assert scanner.scan_bytes(body.format(v=clean).encode(), content_type).verdict is Verdict.PASS


# -- short Base64 (a code alone is 15-16 characters of it) -------------------------------------


@st.composite
def _short_base64(draw: st.DrawFn) -> tuple[bytes, str]:
    """Printable text of 11-23 bytes, Base64- or Base64url-encoded (padded or not), with
    whitespace around it or not: the raw content and the text."""
    content = draw(st.text(st.characters(codec="utf-8", exclude_categories=("C",)), max_size=23))
    raw = content.encode("utf-8")[:23]
    encode = draw(st.sampled_from([base64.b64encode, base64.urlsafe_b64encode]))
    encoded = encode(raw).decode("ascii")
    if draw(st.booleans()):
        encoded = encoded.rstrip("=")
    around = draw(st.sampled_from(["", " ", "\n    ", "\r\n\t"]))
    return raw, around + encoded + around.replace("    ", "  ")


@settings(max_examples=300, deadline=None)
@given(_short_base64())
def test_short_base64_spans_are_a_superset(case: tuple[bytes, str]) -> None:
    """Short Base64 that base64_content decodes, the span searches find too (XML text and
    attributes, JSON strings), and it decodes to what was encoded."""
    raw, text = case
    decoded = base64_content(text)
    if decoded is None:
        return
    assert decoded == raw
    _spans_hold(text)


def test_a_code_alone_in_short_base64_decodes() -> None:
    """A code alone, Base64 or Base64url, padded or not, is decoded; and a few words too."""
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(TEST.encode()).decode()
        assert base64_content(encoded) == TEST.encode()
        assert base64_content(encoded.rstrip("=")) == TEST.encode()
        assert base64_content(f"\n  {encoded}\n") == TEST.encode()
    assert base64_content(base64.b64encode(f"hetu {TEST}".encode()).decode()) is not None


@pytest.mark.parametrize(
    "text",
    [
        "Verenpainetauti1",  # a word (16 characters, both cases, a digit): decodes to noise
        "verenpainetautia",  # one case only
        "VERENPAINETAUTIA",
        "1234567890123456",  # digits only
        "0123456789abcdef",  # hex
        "6f1c00004000a000",
        "abcdefghijklmnopq",  # 17: one past a multiple of 4
        "QUJDREVGR0hJSktM=",  # padded to no multiple of 4
        "MTMxMDUy LTMwOFQ=",  # a space inside
        base64.b64encode(bytes(range(12))).decode(),  # binary
        base64.b64encode(b"\x00" * 12).decode(),
        "AAAAAAAAAAAAAAAA",
    ],
)
def test_short_tokens_that_are_not_base64_of_text(text: str) -> None:
    """Words, numbers, identifiers and short Base64 of binary are not decoded."""
    assert base64_content(text) is None


def test_short_base64_spans_are_linear() -> None:
    """A document full of near-candidates (quotes and long whitespace runs) is searched in
    linear time."""
    import time

    for data in (b'"' * 200_000, b'"' + b" " * 400_000 + b"A" * 14 + b'"', b">" + b"\n" * 400_000):
        started = time.perf_counter()
        list(base64_spans(data, b'"', b'"'))
        list(base64_spans(data, b">", b"<"))
        assert time.perf_counter() - started < 0.5


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), max_size=200), st.integers(1, 32))
def test_sift_gives_what_is_not_ruled_out(flags: list[bool], size: int) -> None:
    """Exactly the items a group question cannot rule out alone, in order; each item is asked
    about in at most log2(size) + 1 groups (linear)."""
    asked: list[int] = []

    def clear(group: list[int]) -> bool:
        asked.append(len(group))
        return not any(flags[i] for i in group)

    items = list(range(len(flags)))
    assert sift(items, clear, size) == [i for i in items if flags[i]]
    assert sum(asked) <= len(items) * (size.bit_length() + 1)


# -- the C-speed shortcuts of base64_content, held to what they replace ------------------------


def _reference_decode(compact: bytes) -> bytes | None:
    """What ``_decode`` did before it asked binascii's strict mode (b64decode validating)."""
    compact += b"=" * (-len(compact) % 4)
    try:
        if b"-" in compact or b"_" in compact:
            return base64.urlsafe_b64decode(compact)
        return base64.b64decode(compact, validate=True)
    except ValueError:
        return None


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=40) | st.text("AZaz09+/=-_ \n", max_size=40).map(str.encode))
def test_decode_is_validating_b64decode(data: bytes) -> None:
    from kanta_guard.parsers.base import _decode

    assert _decode(data) == _reference_decode(data)


def test_decode_refuses_what_b64decode_refuses() -> None:
    from kanta_guard.parsers.base import _decode

    for text in (b"abc==", b"ab=c", b"=abc", b"abcd\n", b"abcd!", b"a"):
        assert _decode(text) is None, text
    assert _decode(b"abc") == b"i\xb7" and _decode(b"ab=") == b"i"


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=30) | st.text(max_size=20).map(lambda s: s.encode("utf-8", "replace")))
def test_printable_is_the_text_check(data: bytes) -> None:
    from kanta_guard.parsers.base import _printable

    try:
        expected = data.decode("utf-8").translate(str.maketrans("\t\r\n", "   ")).isprintable()
    except UnicodeDecodeError:
        expected = False
    assert _printable(data) is expected


@settings(max_examples=500, deadline=None)
@given(
    st.text("0123456789-+ABCDEFUVWXYabc ", max_size=12),
    st.text("0123456789-+ABCDEFUVWXYabc ", max_size=12),
    st.sampled_from(["-", "+", "A", "Y", "-\t", " - "]),
)
def test_real_code_check_needs_no_token_search_below_nine_digits(
    before: str, after: str, sign: str
) -> None:
    """``_holds_real_code`` skips the token search only where no real code can stand: it
    agrees with the search on texts around a real code and on texts of few digits."""
    from kanta_guard import idcode
    from kanta_guard.parsers.base import _holds_real_code

    for text in (before + REAL.replace("-", sign) + after, before + after):
        data = text.encode()
        expected = any(idcode.classify(t) is idcode.Kind.REAL for t in idcode.find_tokens(data))
        assert _holds_real_code(data) is expected


# -- text written in hex ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        # (Printable text: what ``_printable`` takes, spaces but no other separator.)
        alphabet=st.characters(
            blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
        ).filter(lambda c: c.isprintable()),
        min_size=11,
        max_size=80,
    ),
    st.sampled_from(["", "0x", "0X", "\\x", "x"]),
    st.booleans(),
    st.sampled_from([0, 16, 32, 64, 76]),
    st.sampled_from(["\n", "\r\n", "\n    ", " "]),
)
def test_hex_text_is_read_and_found(
    content: str, prefix: str, upper: bool, width: int, newline: str
) -> None:
    """Text written in hex (``hexBinary``, a ``bytea`` dump: ``\\x4869…``), on one line or
    wrapped in lines of 16 digits or more, decodes to the text, and the span searches find it
    in XML text, attributes and JSON strings."""
    raw = content.encode("utf-8")
    digits = raw.hex().upper() if upper else raw.hex()
    if width:
        digits = newline.join(digits[i : i + width] for i in range(0, len(digits), width))
    text = prefix + digits
    if len(raw) < 11 or (base64_content(text) is None and _holds_code(raw)):
        return  # (a real code as written in the digits: read as text first)
    assert base64_content(text) == raw
    _spans_hold(text)


def _holds_code(raw: bytes) -> bool:
    from kanta_guard.parsers.base import _holds_real_code

    return _holds_real_code(raw.hex().encode())


@pytest.mark.parametrize(
    "text",
    [
        "0123456789abcdef0123456789abcdef",  # a digest: bytes, no text
        "d41d8cd98f00b204e9800998ecf8427e",
        "6f1c0000000040008000000000000001",
        "00000000000000000000000000",
        "3131",  # too short: two characters
        "0x4869",
        # Byte pairs written apart, and chunks shorter than a line: a row of numbers, no hex text.
        " ".join(["50", "6f", "74", "69", "6c", "61", "73", "20", "31", "33", "31", "30"]),
        "506f7469 6c617320 31333130 3532",
    ],
)
def test_hex_that_spells_no_text_is_not_read(text: str) -> None:
    """Digests and identifiers in hex stay identifiers (their bytes are no text)."""
    assert base64_content(text) is None
