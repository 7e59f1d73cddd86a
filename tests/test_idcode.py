"""Tests for kanta_guard.idcode: token finding, classification, masking."""

from __future__ import annotations

import re

import pytest
from helpers import REAL
from hypothesis import given, settings
from hypothesis import strategies as st

from kanta_guard import idcode
from kanta_guard.idcode import Kind


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        # The test codes of DVV/Kela (kanta.md): every century sign, all pass the checksum.
        ("010181-900C", Kind.TEST),
        ("030875-999Y", Kind.TEST),
        ("231069-9711", Kind.TEST),
        ("020516C903K", Kind.TEST),
        ("010594Y9032", Kind.TEST),
        ("020594X903P", Kind.TEST),
        ("030594W903B", Kind.TEST),
        ("040594V9030", Kind.TEST),
        ("050594U903M", Kind.TEST),
        ("010516B903X", Kind.TEST),
        # Real-range codes from public samples (Kela, HL7 Finland).
        ("050775-0251", Kind.REAL),
        ("160345-0277", Kind.REAL),
        ("010101-123N", Kind.REAL),
        # Lower case and Unicode dashes are the same code.
        ("010101\u2013123n", Kind.REAL),
        ("010101\u2212123N", Kind.REAL),
        ("010181 - 900C", Kind.TEST),
        # Wrong check characters, impossible dates, individual number 000/001.
        ("250810A999Y", Kind.INVALID),
        ("010190-999Y", Kind.INVALID),
        ("320181-123N", Kind.INVALID),
        ("010181-001C", Kind.INVALID),
    ],
)
def test_classify(value: str, kind: Kind) -> None:
    """Each value classifies as real, test or invalid, whatever its case or dash."""
    assert idcode.classify(value) is kind


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Potilas 010181-900C tuli", ["010181-900C"]),
        ("hetu:010101-123n.", ["010101-123n"]),
        ("010101 -123N", ["010101 -123N"]),
        ("010101- 123N", ["010101- 123N"]),
        ("010101-123 N", ["010101-123 N"]),
        ("(010594Y9032)", ["010594Y9032"]),
        ("HETU010181-900Cx", ["010181-900C"]),
        # After a percent escape: its last digit is no digit of the text ("%20" is a space).
        ("Potilas%20010181-900C", ["010181-900C"]),
        ("q=%09010181-900C&x", ["010181-900C"]),
        ("%2F010181-900C", ["010181-900C"]),
        ("x20010181-900C", []),  # (no escape: a longer number)
        ("Potilas%2520010181-900C", ["010181-900C"]),  # (encoded twice)
        ("Potilas\\x20010181-900C", ["010181-900C"]),  # (backslash escapes written out)
        ("Potilas\\u0020010181-900C", ["010181-900C"]),
        ("Potilas\\040010181-900C", ["010181-900C"]),
        ("key=20010181-900C", []),  # (no quoted-printable: a key and a longer number)
        # Not codes: OIDs, timestamps, longer numbers.
        ("1.2.246.10.1234567.14.2026.1129", []),
        ("20160803092422", []),
        ("9010101-123N", []),
        ("010101-123N5", []),
    ],
)
def test_token(text: str, found: list[str]) -> None:
    """TOKEN finds HETU-shaped tokens as typed, and not inside longer numbers or OIDs."""
    assert [m.group(0) for m in idcode.TOKEN.finditer(text)] == found


def test_mask_hides_every_digit() -> None:
    """A mask keeps only the shape: no digit and no check character survive."""
    masked = idcode.mask("050775-0251")
    assert masked == "******-****"
    assert (
        idcode.mask_text("id 050775-0251 and 160345\u20130277") == "id ******-**** and ******-****"
    )


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("010181-900C", "010181-900C"),  # a valid test code is no personal data
        ("010181-900X", "010181-900X"),  # a test code with a wrong check character: shown
        ("250810a999y", "250810A999Y"),  # shown normalised
        ("010181\u2013900C", "010181-900C"),
        ("050775-0251", "******-****"),  # a real-range value stays masked, valid or not
        ("050775-0252", "******-****"),
        ("\uff10\uff11\uff10\uff11\uff18\uff11-900C", "******-****"),  # not plain ASCII
    ],
)
def test_mask_shows_test_series(value: str, masked: str) -> None:
    """The 900 series is shown (the tester needs to see which test code is wrong); every other
    code-shaped value is masked."""
    assert idcode.mask(value) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("test 010181-900X", "test 010181-900X"),
        # Encoded, a real code is masked digit by digit; a test code beside it stays readable.
        ("010181-900C, 050775%2D0251", "010181-900C, ******%*D****"),
        # A test code's loose match must not hide a real one that overlaps it (the date
        # 001011 starts inside "900"): every start is tried, not only after a match.
        ("010181-9001011-3089", None),
    ],
)
def test_mask_any_form_and_test_series(text: str, masked: str | None) -> None:
    """A shown test code does not make ``mask_any_form`` mask the whole text; a real code
    beside it, in any form, is still hidden."""
    out = idcode.mask_any_form(text)
    if masked is not None:
        assert out == masked
    assert "0251" not in out and "3089" not in out and not idcode.reveals_code(out)


@pytest.mark.parametrize(
    ("value", "number"),
    [("250810A999Y", 999), ("010101-123N", 123), ("010101-12", None), ("abc", None)],
)
def test_individual_number(value: str, number: int | None) -> None:
    """The individual number is read even from an invalid code."""
    assert idcode.individual_number(value) == number


def test_find_tokens_equals_the_plain_pattern() -> None:
    """The digit-map search finds exactly what the token pattern finds scanning every position
    (on random text dense with digits, signs, dashes and whitespace, runs at both ends)."""
    import random

    from kanta_guard.idcode import _TOKEN_BYTES, find_tokens

    rng = random.Random(20261129)

    def piece() -> bytes:
        kind = rng.randrange(7)
        if kind >= 5:  # a whole code-shaped token
            return piece_of(0) + piece_of(1) + piece_of(2) + piece_of(3)
        return piece_of(kind)

    def piece_of(kind: int) -> bytes:
        if kind == 0:  # the date part of a code
            day, month, year = rng.randrange(40), rng.randrange(20), rng.randrange(100)
            return f"{day:02d}{month:02d}{year:02d}".encode()
        if kind == 1:  # a century sign or a dash
            return rng.choice([b"-", b"+", b"A", b"y", "\u2013".encode(), b"\xc2\xa0"])
        if kind == 2:  # the individual number
            return f"{rng.randrange(1000):03d}".encode()
        if kind == 3:  # a check character
            return bytes([rng.choice(b"0123456789ACHYx")])
        escapes = [b"%2", b"%0", b"%A", b"%25", b"\\x2", b"\\u002", b"\\04", b"\\"]
        return rng.choice([*(bytes([b]) for b in b'0123456789 \t\n<>"'), *escapes])

    found = 0
    for _ in range(3000):
        data = b"".join(piece() for _ in range(rng.randrange(0, 14)))
        expected = [m.group(0).decode("utf-8", "replace") for m in _TOKEN_BYTES.finditer(data)]
        assert find_tokens(data) == expected, data
        found += len(expected)
    assert found > 100  # the text really was dense with tokens
    assert find_tokens(b"010181-900C") == ["010181-900C"]
    assert find_tokens(b"x 010181-900C") == ["010181-900C"]
    assert find_tokens(b"1010181-900C 20240115093000") == []


# -- codes in escaped and encoded forms ------------------------------------------------------

_D, _N = REAL[:6], REAL[7:10]


@pytest.mark.parametrize(
    "text",
    [
        f"{_D}\\t-{_N}X",  # repr of a tab
        f"{_D}\\x2d{_N}X",
        f"{_D}\\u002D{_N}X",
        f"{_D}\\N{{HYPHEN-MINUS}}{_N}X",
        f"{_D}%2D{_N}X",
        f"{_D}%252D{_N}X",  # percent-encoded twice
        f"{_D}&#45;{_N}X",
        f"{_D}&minus;{_N}X",
        f"{_D}&amp;#45;{_N}X",  # a reference escaped once more
        "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in REAL),
        "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in REAL),  # Arabic-Indic
        f"{_D}\u200b-{_N}X",
        f"{_D[:2]}\u00ad{_D[2:]}-{_N}X",  # a soft hyphen inside the date
        f"{_D}\n\t -  {_N}X",
        f"9{REAL}9",  # digits touching it
    ],
)
def test_reveals_code_in_every_reading(text: str) -> None:
    """A code's date and number in any escaped or encoded form are seen, and masked away."""
    assert idcode.reveals_code(text)
    masked = idcode.mask_any_form(text)
    assert not idcode.reveals_code(masked), masked
    assert _D not in masked and not idcode.reveals_code(idcode.quote_input(text))


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("gzip, x-custom", "gzip, x-custom"),
        ("iso-8859-15", "iso-8859-15"),
        ("GET /a?b=1 HTTP/1.1 from 127.0.0.1:51234", "GET /a?b=1 HTTP/1.1 from 127.0.0.1:51234"),
        (f"code {REAL} here", "code ******-**** here"),
        # Only the stretch up to the nearest quote or colon loses its digits.
        (f"at 12:00 '{_D}\\t-{_N}X' line 7", "at 12:00 '******\\t-***X' line 7"),
    ],
)
def test_mask_any_form_keeps_the_rest(text: str, masked: str) -> None:
    """Text without a hidden code is unchanged, and around one only its own stretch is masked."""
    assert idcode.mask_any_form(text) == masked


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("x-zip", "'x-zip'"),
        ("a\tb", "'a\\tb'"),
        (f"{_D}\t-{_N}X", "'******-****'"),
        (f"{_D}\u200b-{_N}X", "'******\\u200b-***X'"),
        ("y" * 50, "'" + "y" * 40 + "'…"),
        # Cut inside a code that digits touch: masked before the cut, nothing left to read.
        ("y" * 30 + f"{REAL}5", "'" + "y" * 30 + "******-***'…"),
    ],
)
def test_quote_input(value: str, quoted: str) -> None:
    """Input is masked in every form, then escaped like repr, then cut to the limit."""
    assert idcode.quote_input(value) == quoted


@pytest.mark.parametrize(
    ("text", "found"),
    [
        # Any run of whitespace and/or dashes between the parts (issue 7).
        ("010101  -  123N", ["010101  -  123N"]),
        ("010101\t\u2013\n123N", ["010101\t\u2013\n123N"]),
        ("010101--123N", ["010101--123N"]),
        ("010101 A 123N", ["010101 A 123N"]),
        ("010101-A-123N", ["010101-A-123N"]),
        ("010101-123  N", ["010101-123  N"]),
        # Still not codes: no sign, two signs, digits touching, a space inside a part.
        ("010101 123N", []),
        ("010101AB123N", []),
        ("010101-123 N5", []),
        ("0101 01-123N", []),
    ],
)
def test_token_runs(text: str, found: list[str]) -> None:
    """TOKEN takes any run of separators between a code's parts, and nothing more."""
    assert [m.group(0) for m in idcode.TOKEN.finditer(text)] == found


@pytest.mark.parametrize(
    ("value", "normal"),
    [
        ("010181 \u2013 - 900c", "010181-900C"),
        ("010516 - B - 903x", "010516B903X"),
        ("010181900C", "010181900C"),  # no sign: left as it is (not a code)
        ("abc", "ABC"),
    ],
)
def test_normalise_canonical(value: str, normal: str) -> None:
    """A code-shaped value normalises to its canonical 11 characters; others stay as they are."""
    assert idcode.normalise(value) == normal


@pytest.mark.parametrize(
    ("text", "readings"),
    [
        ("plain ASCII", ["plain ASCII"]),
        ("ääkköset µg …", ["ääkköset µg …"]),  # NFKC changes µ and …, into nothing a code uses
        ("a\u200bb", ["a\u200bb", "ab", "a b"]),
        ("\uff11\u0662", ["\uff11\u0662", "12"]),
    ],
)
def test_match_readings(text: str, readings: list[str]) -> None:
    """A field has one reading unless a character in it can change what a reader sees."""
    assert idcode.match_readings(text) == readings


@pytest.mark.parametrize(
    ("data", "plain"),
    [
        (b"ascii", True),
        ("äö µ".encode(), True),
        ("\ufeffBOM first".encode(), True),
        ("x\ufeffy".encode(), False),
        ("\u00a0 no-break space".encode(), True),  # a separator that stays one
        ("\u00ad soft hyphen".encode(), False),
        ("\uff11 fullwidth".encode(), False),
        (b"\xff not UTF-8", False),
    ],
)
def test_reads_plainly(data: bytes, plain: bool) -> None:
    """Bytes read plainly when no character in them can change a reading."""
    assert idcode.reads_plainly(data) is plain


def test_clip_masks_then_cuts() -> None:
    """A long location is masked in every form, then cut; a code across the cut shows no
    digits of it."""
    assert idcode.clip("short") == "short"
    clipped = idcode.clip("x" * 1015 + REAL + "y" * 5000)
    assert len(clipped) == 1025 and clipped.endswith("…")
    assert not idcode.reveals_code(clipped) and REAL[:6] not in clipped


def test_keyed_hashes_are_not_masked() -> None:
    """A keyed hash whose hex reads as a code is left whole; a code beside it is still masked."""
    # 070222e637b is a valid real-range code when read as one (07.02.2022, E, 637, B).
    text = f"hash hmac:070222e637bf3aaa and {REAL}"
    masked = idcode.mask_text(text)
    assert "hmac:070222e637bf3aaa" in masked
    assert REAL not in masked
    # Not a hash's shape (11 hex digits): masked.
    assert idcode.mask_text("hmac:070222e637b") != "hmac:070222e637b"


# -- tokens of any stretch (text joined across markup) -----------------------------------------

_STRETCH_ALPHABET = "0123456789-- +AaBY\tx\u2013"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_STRETCH_ALPHABET, max_size=40))
def test_loose_tokens_cover_every_stretch(text: str) -> None:
    """Every token TOKEN finds in any substring of a text is one ``iter_loose_tokens`` gives
    (the joined screen's proof, by brute force over every substring)."""
    loose = set(idcode.iter_loose_tokens(text.encode("utf-8")))
    assert loose == set(idcode.loose_tokens(text))
    for start in range(len(text)):
        for end in range(start + 1, len(text) + 1):
            for match in idcode.TOKEN.finditer(text[start:end]):
                assert match.group(0) in loose, (text, start, end, match.group(0))


def test_loose_tokens_ignore_digits_around() -> None:
    """Digits glued to a code on both sides hide it from TOKEN, not from the loose search."""
    glued = f"5{REAL}5"
    assert not idcode.TOKEN.search(glued)
    assert list(idcode.iter_loose_tokens(glued.encode())) == [REAL]


# -- tokens a line break runs through -----------------------------------------------------------

_LINES_ALPHABET = "0123456789-+AY \n\r\u2013\u200b"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_LINES_ALPHABET, max_size=40))
def test_broken_tokens_are_what_lines_split(text: str) -> None:
    """``broken_tokens`` gives every token of a reading of the whole text that holds a line
    break (what no line of a line-by-line reading shows), and only such tokens (brute force
    over the readings)."""
    found = {(token, first) for first, _, token in idcode.broken_tokens(text)}
    expected: set[str] = set()
    for reading in idcode.match_readings(text):
        for match in idcode.TOKEN.finditer(reading):
            if any(c in match.group(0) for c in "\n\r"):
                expected.add(idcode.normalise(match.group(0)))
    assert {idcode.normalise(token) for token, _ in found} == expected, text


def test_broken_tokens_name_their_lines() -> None:
    """The lines a broken token starts and ends on, CR LF counted as one line end."""
    text = f"a\r\n{REAL[:6]}\r\n\r\n{REAL[6:]}\nb"
    assert [(first, last) for first, last, _ in idcode.broken_tokens(text)] == [(2, 4)]
    assert list(idcode.broken_tokens(f"{REAL} on one line\nand more")) == []
    assert list(idcode.broken_tokens(REAL[:6] + "\n" + "q" + REAL[6:])) == []


#: What ``idcode.ESCAPE_IN_CODE`` finds, written plainly: an escape right after a digit, or an
#: escaped digit.
_ESCAPE_REFERENCE = re.compile(
    rb"[0-9](?:%[0-9A-Fa-f]{2}|\\|&[#A-Za-z])"
    rb"|%(?:25)?3[0-9]|\\(?:x3[0-9]|u003[0-9]|0[67][0-7])|&#(?:4[89]|5[0-7]|[xX]3[0-9])"
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(list(b"0123456789%\\&#xXu3a4;25 -")), max_size=16).map(bytes))
def test_escape_in_code_is_its_plain_pattern(data: bytes) -> None:
    """The marker-by-marker search and the pattern find what the plain pattern finds."""
    expected = _ESCAPE_REFERENCE.search(data) is not None
    assert (idcode.ESCAPE_IN_CODE.search(data) is not None) is expected
    assert idcode.escape_in_code(data) is expected


def test_escape_in_code_past_many_markers() -> None:
    """Past the markers read one by one, the pattern's search answers (the same)."""
    assert idcode.escape_in_code(b"%" * 1000 + b"131052%2D308T")
    assert not idcode.escape_in_code(b"%" * 1000 + b"131052-308T")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("131052%2D308T", "131052-308T"),
        ("131052%20-%20308T", "131052-308T"),
        ("131052\\u002d308T", "131052-308T"),
        ("131052\\x2d308T", "131052-308T"),
        ("131052&#45;308T", "131052-308T"),
        ("131052&ndash;308T", "131052-308T"),
        ("%31%33%31%30%35%32-308T", "131052-308T"),
        ("131052%252D308T", "131052-308T"),
    ],
)
def test_unescaped_readings_show_an_escaped_code(text: str, code: str) -> None:
    """Each escaped form of a code reads as the code once its escapes are undone."""
    found = {
        idcode.normalise(m.group(0))
        for form in idcode.unescaped_readings(text)
        for reading in idcode.match_readings(form)
        for m in idcode.TOKEN.finditer(reading)
    }
    assert code in found, idcode.unescaped_readings(text)


_TOKENISH = st.text(alphabet="0123456789-+A YX%2D\\u003x\t#&;hmac:f\u00a0", max_size=40)


@settings(max_examples=500, deadline=None)
@given(_TOKENISH, st.integers(0, 319999), st.sampled_from("-+A Y"), st.integers(0, 999), _TOKENISH)
def test_token_matches_in_text_are_token_finditer(
    before: str, date: int, sign: str, number: int, after: str
) -> None:
    """The faster search (the look-behind asked only where the rest matches) finds exactly
    what ``TOKEN.finditer`` finds, and ``mask_text`` masks exactly what ``TOKEN.sub`` did."""
    text = f"{before}{date:06d}{sign}{number:03d}{_CHECK_ALPHABET[number % 31]}{after}"
    expected = [m.span() for m in idcode.TOKEN.finditer(text)]
    assert [m.span() for m in idcode.token_matches_in_text(text)] == expected
    if "hmac:" not in text:
        assert idcode.mask_text(text) == idcode.TOKEN.sub(lambda m: idcode.mask(m[0]), text)


_CHECK_ALPHABET = "0123456789ABCDEFHJKLMNPRSTUVWXY"


@settings(max_examples=400)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["%", "%2", "%25", "%2D", "%C3", "%A9", "%E2%82", "%AC", "%ff", "%G1"]),
            st.text(alphabet="%09AFaf-x é€\udc80\x00", max_size=4),
            st.text(max_size=3),
        ),
        max_size=12,
    ).map("".join)
)
def test_unquote_reads_as_urllib(text: str) -> None:
    """idcode.unquote is urllib.parse.unquote(errors="replace") (faster on non-ASCII text)."""
    from urllib.parse import unquote

    assert idcode.unquote(text) == unquote(text, errors="replace")
