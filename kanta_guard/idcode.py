"""Finding, normalising, classifying and masking Finnish personal identity codes (HETU).

Validation is python-stdnum's ``stdnum.fi.hetu`` (checksum, date, century signs of the 2023
reform); this module only adds what a scanner needs around it: finding HETU-shaped tokens as they
are really typed (lower case, Unicode dashes, stray whitespace) and masking them.

Source: DVV, "Henkilötunnus" (century signs ``+ - Y X W V U A B C D E F``; individual numbers
002–899 issued to people, 900–999 temporary and test codes).

>>> classify("010181-900C")
<Kind.TEST: 'test'>
>>> normalise("010181\u2013900c")
'010181-900C'
>>> mask("131052" + "-308T")  # (a real-range code, assembled: never a literal)
'******-****'
>>> mask("010181-900X")  # a 900-series test code (here with a wrong check character) is shown
'010181-900X'
"""

from __future__ import annotations

import datetime
import heapq
import html
import re
import sys
import unicodedata
from collections.abc import Iterator
from enum import StrEnum
from functools import cache, lru_cache

from stdnum.exceptions import ValidationError
from stdnum.fi import hetu

__all__ = [
    "ESCAPE_IN_CODE",
    "LOOSE_TOKEN",
    "TOKEN",
    "Kind",
    "broken_tokens",
    "changing_characters",
    "classify",
    "clip",
    "escape_in_code",
    "find_tokens",
    "individual_number",
    "is_real",
    "is_test",
    "iter_loose_tokens",
    "iter_tokens",
    "loose_tokens",
    "mask",
    "mask_any_form",
    "mask_text",
    "match_readings",
    "normalise",
    "quote_input",
    "readings",
    "reads_plainly",
    "reveals_code",
    "screen_form",
    "token_matches_in_text",
    "unescape_ways",
    "unescaped_readings",
    "unquote",
]

_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_SIGN_LETTERS = "+ABCDEFUVWXYabcdefuvwxy"
# A separator between the parts of a code: any whitespace (``\s`` is Unicode whitespace, as
# ``str.isspace``) or dash. A run of them may stand between any two parts (hand-typed narrative,
# word-processor text); a century sign that is a letter or "+" may have runs on both sides, and
# a sign that is a dash is any run holding one.
_SEP = rf"[\s\-{_DASHES}]"
_MID = rf"(?:{_SEP}*+[{_SIGN_LETTERS}]{_SEP}*+|\s*+[\-{_DASHES}]{_SEP}*+)"
# A token: DDMMYY, century sign (with its separators), ZZZ, check character. Not preceded or
# followed by a digit, so timestamps and longer numbers do not match; a letter may touch it
# ("HETU010181-900C"): a code glued to a word is still a code. Every repetition is possessive
# (``*+``, Python 3.11): a run is read once, never backtracked into, so a match attempt costs
# the length of its run and the search stays linear in the text.
#
# A digit before it that ends an escape is no digit of the text: ``Potilas%20131052-308T`` is
# text percent-encoded (a URL, a form value, a note a system encoded), its space ``%20``; so
# are a percent escape encoded twice (``%2520``) and the backslash escapes of C, Python, JSON
# and JavaScript written out (``\x20``, ``\u0020``, octal ``\040``: a log line, a repr).
# (Not quoted-printable's ``=20``: ``key=20240115-123A`` is a key and a date-based number.)
_ESCAPE_ENDS = (
    r"%[0-9A-Fa-f][0-9]",
    r"%25[0-9A-Fa-f][0-9]",
    r"\\x[0-9A-Fa-f][0-9]",
    r"\\u[0-9A-Fa-f]{3}[0-9]",
    r"\\[0-3][0-7]{2}",
)
_NOT_AFTER_DIGIT = "(?:(?<![0-9])" + "".join(f"|(?<={end})" for end in _ESCAPE_ENDS) + ")"
TOKEN = re.compile(
    _NOT_AFTER_DIGIT
    + rf"([0-3][0-9][01][0-9]{{3}})({_MID})([0-9]{{3}}){_SEP}*+([0-9A-Ya-y])(?![0-9])"
)


def _utf8_alternatives(chars: str) -> bytes:
    """A bytes-regex alternation matching any of ``chars`` in UTF-8 (ASCII ones as a class)."""
    ascii_chars = "".join(c for c in chars if c.isascii())
    wide = sorted({c.encode("utf-8") for c in chars if not c.isascii()}, key=len, reverse=True)
    parts = [b"[" + re.escape(ascii_chars.encode("ascii")) + b"]"] if ascii_chars else []
    parts.extend(re.escape(w) for w in wide)
    return b"(?:" + b"|".join(parts) + b")"


@cache
def _whitespace() -> str:
    """Every character ``\\s`` matches in a str pattern (``str.isspace``; none lies above
    U+3000 in Unicode 15)."""
    return "".join(chr(p) for p in range(0x3001) if chr(p).isspace())


def _token_bytes(loose: bool = False) -> re.Pattern[bytes]:
    """TOKEN over UTF-8 bytes, alternative for alternative, for screening whole documents.

    The same pattern character for character: ``[0-9]`` and the letters are ASCII in both, and
    each separator class is the alternation of its characters' UTF-8 forms. One addition: the
    JSON escapes of whitespace (``\\t \\n \\r \\f``, RFC 8259 §7) separate too, since the JSON
    walk reads them as the characters they stand for.
    """
    space = _utf8_alternatives(_whitespace())
    dash = _utf8_alternatives("-" + _DASHES)
    space = b"(?:" + space + rb"|\\[tnrf])"
    sep = b"(?:" + space + b"|" + dash + b")"
    signs = b"[" + re.escape(_SIGN_LETTERS.encode("ascii")) + b"]"
    mid = b"(?:" + sep + b"*+" + signs + sep + b"*+|" + space + b"*+" + dash + sep + b"*+)"
    before, after = (b"", b"") if loose else (_NOT_AFTER_DIGIT.encode(), rb"(?![0-9])")
    return re.compile(
        before + rb"[0-3][0-9][01][0-9]{3}" + mid + rb"[0-9]{3}" + sep + rb"*+[0-9A-Ya-y]" + after
    )


_TOKEN_BYTES = _token_bytes()
_LOOSE_BYTES = _token_bytes(loose=True)
#: TOKEN without its look-behind and look-ahead for digits (``iter_loose_tokens``).
LOOSE_TOKEN = re.compile(TOKEN.pattern.removeprefix(_NOT_AFTER_DIGIT).removesuffix("(?![0-9])"))
assert LOOSE_TOKEN.pattern.startswith("([0-3]") and LOOSE_TOKEN.pattern.endswith("y])")
#: Where a token may start after a digit: the end of a percent escape before a run of
#: exactly six digits (``_token_matches``' run search cannot see it: the run is eight long).
_AFTER_ESCAPE = re.compile(
    ("(?:" + "|".join(_ESCAPE_ENDS) + ")(?=[0-9]{6}(?![0-9]))").encode("ascii")
)
_SIX_OR_MORE = re.compile(r"[0-9]{6,}")
# JSON whitespace escapes inside a token found in raw bytes: read as the whitespace they are.
_JSON_WS_ESCAPE = re.compile(r"\\[tnrf]")
# Digits to "0", everything else to "x": a run of exactly six digits is where a token can start.
_DIGIT_MAP = bytes(0x30 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))
# A run of exactly six digits in the mapped bytes: a literal, found fast by bytes.find.
_EXACTLY_SIX = b"x000000x"
# DVV: the check character is int(DDMMYYZZZ) mod 31 in this alphabet.
_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_DASH_TABLE = str.maketrans(dict.fromkeys(_DASHES, "-"))
_WS = re.compile(r"\s+")
# A normalised (dashes "-", no whitespace, upper case) code-shaped value, in its parts; the
# repetitions possessive, so a long run of dashes is read once.
_PARTS = re.compile(r"([0-9]{6})(-*+)([+A-FU-Y])?-*+([0-9]{3})-*+([0-9A-Y])")


class Kind(StrEnum):
    """What a HETU-shaped value is."""

    REAL = "real"  # valid, individual number 002–899: a person in the population register
    TEST = "test"  # valid, individual number 900–999: temporary or test code
    INVALID = "invalid"  # HETU-shaped but not valid (checksum, date, individual number)


def normalise(value: str) -> str:
    """Upper case, no whitespace, and a code-shaped value in its canonical form.

    A token's separators go: a letter or "+" sign stays, a run of dashes around it goes, a run
    of dashes without one is the sign "-" (``010181 – 900c`` → ``010181-900C``). Other values
    are returned upper-cased with ASCII hyphens for Unicode dashes and no whitespace.
    """
    if value.isascii():
        code = "".join(value.split()).upper()  # (str.split: the whitespace \s matches)
    else:
        code = _WS.sub("", value.translate(_DASH_TABLE)).upper()
    parts = _PARTS.fullmatch(code)
    if parts is None:
        return code
    date, dashes, sign, number, check = parts.groups()
    if sign is None and not dashes:
        return code  # no sign at all: not a code
    return f"{date}{sign or '-'}{number}{check}"


@lru_cache(maxsize=4096)
def classify(value: str) -> Kind:
    """Classify a value (normalised first) with ``stdnum.fi.hetu``.

    Cached: the same test codes recur in every request of a test run. A code-shaped value
    whose check character is wrong is invalid without asking stdnum (which would say so too,
    at ten times the cost): most HETU-shaped numbers in free text are such.
    """
    code = normalise(value)
    if (
        len(code) == 11
        and code.isascii()
        and code[:6].isdigit()
        and code[7:10].isdigit()
        and _CHECK[int(code[:6] + code[7:10]) % 31] != code[10]
    ):
        return Kind.INVALID
    try:
        hetu.validate(code, allow_temporary=True)
    except ValidationError:
        return Kind.INVALID
    return Kind.TEST if code[7] == "9" else Kind.REAL


_CENTURY = {"+": 1800, "-": 1900, "A": 2000}
_CENTURY.update(dict.fromkeys("YXWVU", 1900))
_CENTURY.update(dict.fromkeys("BCDEF", 2000))


def is_real(code: str) -> bool:
    """Whether a normalised code is valid and in the real range: what ``classify(code) is
    Kind.REAL`` says, without stdnum, in a microsecond.

    For counting what is left out past the findings cap, where a flood of distinct codes
    would otherwise take stdnum's ten microseconds each (classify decides every finding that
    is kept; tests/test_idcode.py holds the two to agreeing). The rules are stdnum's: DVV's
    century signs, a real calendar date, individual number 002-899, the check character.
    """
    number = _valid_number(code)
    return number is not None and 2 <= number <= 899


def is_test(code: str) -> bool:
    """Whether a normalised code is a valid 900-series code: what ``classify(code) is
    Kind.TEST`` says, without stdnum (a registry of 100,000 codes is checked at load)."""
    number = _valid_number(code)
    return number is not None and number >= 900


def _valid_number(code: str) -> int | None:
    """The individual number of a normalised, valid code (stdnum's rules: DVV's century
    signs, a real calendar date, the check character); None if it is not one."""
    if len(code) != 11 or not code.isascii():
        return None
    date, sign, number = code[:6], code[6], code[7:10]
    if not (date.isdigit() and number.isdigit()) or sign not in _CENTURY:
        return None
    if _CHECK[int(date + number) % 31] != code[10]:
        return None
    return int(number) if _real_date(date, _CENTURY[sign]) else None


@lru_cache(maxsize=8192)
def _real_date(ddmmyy: str, century: int) -> bool:
    """Whether ``ddmmyy`` in ``century`` is a calendar date (cached: a flood of distinct codes
    shares few dates, and the date is the dearest part of the check)."""
    try:
        datetime.date(century + int(ddmmyy[4:]), int(ddmmyy[2:4]), int(ddmmyy[:2]))
    except ValueError:
        return False
    return True


def individual_number(value: str) -> int | None:
    """The three-digit individual number of a HETU-shaped value, or None if there is none."""
    code = normalise(value)
    if len(code) >= 10 and code[7:10].isdigit():
        return int(code[7:10])
    return None


def find_tokens(data: bytes) -> list[str]:
    """Every HETU-shaped token in UTF-8 ``data``, decoded (see :func:`iter_tokens`)."""
    return list(iter_tokens(data))


def iter_tokens(data: bytes) -> Iterator[str]:
    """The HETU-shaped tokens in UTF-8 ``data``, decoded, lazily (a screen that has seen
    enough stops); fast on large documents.

    Python's ``re`` tries a pattern that starts with a character class at every position, which
    costs more than parsing the document. A token starts where a run of exactly six digits does,
    so the runs are found first on a digit map (where one is the literal ``x000000x``), and the
    pattern is tried only there.
    """
    for found in _token_matches(data):
        yield found.group(0).decode("utf-8", "replace")


#: What ``str.splitlines`` ends a line at (a line-by-line reading splits a token there).
_LINE_BREAK = re.compile("[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")


def broken_tokens(text: str) -> Iterator[tuple[int, int, str]]:
    """The tokens of every :func:`match_readings` reading of ``text`` that a line break runs
    through (TOKEN's separators are any whitespace, line breaks too: ``010170\n-123X`` is a
    code to a reader of the whole text, and no line of it holds one), each with the numbers of
    the lines (CR LF, CR or LF ends one) where it starts and ends in its reading, in order.

    Linear: one :func:`iter_tokens` pass per reading, lines counted once between tokens.
    """
    if _LINE_BREAK.search(text) is None:
        return
    seen: set[tuple[int, str]] = set()  # (a place two readings show alike: once)
    for reading in match_readings(text):
        data = reading.encode("utf-8", "surrogatepass")
        line, counted = 1, 0
        for found in _token_matches(data):
            token = found.group(0).decode("utf-8", "replace")
            if _LINE_BREAK.search(token) is None:
                continue
            start, end = found.span()
            line += _breaks(data, counted, start)
            counted = start
            if (line, normalise(token)) not in seen:
                seen.add((line, normalise(token)))
                yield line, line + _breaks(data, start, end), token


def _breaks(data: bytes, start: int, end: int) -> int:
    """Line ends (CR LF, CR or LF) in ``data[start:end]``."""
    return (
        data.count(b"\n", start, end)
        + data.count(b"\r", start, end)
        - data.count(b"\r\n", start, end)
    )


def _token_matches(data: bytes) -> Iterator[re.Match[bytes]]:
    """The matches of TOKEN over UTF-8 ``data`` (see :func:`iter_tokens`), in order."""
    if data.find(b"%") == -1 and data.find(b"\\") == -1:
        yield from _run_matches(data)
        return
    after_escapes = (
        m
        for escape in _AFTER_ESCAPE.finditer(data)
        if (m := _TOKEN_BYTES.match(data, escape.end())) is not None
    )
    # (Two streams in order, merged lazily: each match is in one of them only, since a run
    # that an escape's digit starts is longer than six.)
    yield from heapq.merge(_run_matches(data), after_escapes, key=lambda m: m.start())


def _run_matches(data: bytes) -> Iterator[re.Match[bytes]]:
    """The matches of TOKEN over UTF-8 ``data`` that start a run of exactly six digits."""
    match = _TOKEN_BYTES.match
    mapped = data.translate(_DIGIT_MAP)
    find = mapped.find
    # A run at the very start has no "x" before it (no padding: that would copy the document).
    at_start = mapped[:6] == b"000000" and mapped[6:7] != b"0"
    if at_start and (found := match(data, 0)) is not None:
        yield found
    pos = find(_EXACTLY_SIX)
    while pos != -1:
        # The run starts after the "x". (A run at the very end has no closing "x", and needs
        # none: six digits with nothing after them are no code.)
        if (found := match(data, pos + 1)) is not None:
            yield found
        pos = find(_EXACTLY_SIX, pos + 7)  # the closing "x" may open the next run


def iter_loose_tokens(data: bytes) -> Iterator[str]:
    """Every token of any stretch of UTF-8 ``data``: what :data:`TOKEN` matches in some
    substring of it, whatever stands around that substring (decoded, lazily).

    For text joined across markup, where an element's text is any stretch of the document's
    and its neighbours may be digits the element does not hold. A token of a substring starts
    where its six date digits do, which in ``data`` is six bytes before the end of a run of
    digits (the sign after them is no digit); so the pattern without its look-arounds is tried
    once per run, at that place, and matches there exactly the token the substring holds: its
    alternatives exclude each other (a sign that is a letter or "+", or a dash), and each
    repetition is possessive, so what follows the check character cannot change the match.
    One pass over the digit map, one match per run: linear.
    """
    match = _LOOSE_BYTES.match
    mapped = data.translate(_DIGIT_MAP)
    find = mapped.find
    pos = find(b"000000")
    while pos != -1:
        end = find(b"x", pos + 6)
        if end == -1:
            end = len(mapped)
        if (found := match(data, end - 6)) is not None:
            yield found.group(0).decode("utf-8", "replace")
        pos = find(b"000000", end)


def loose_tokens(text: str) -> Iterator[str]:
    """:func:`iter_loose_tokens` for a str (a normalised reading)."""
    for run in _SIX_OR_MORE.finditer(text):
        if (found := LOOSE_TOKEN.match(text, run.end() - 6)) is not None:
            yield found.group(0)


# -- The readings a detector matches --------------------------------------------------------
#
# A field's text is matched as written and, where a character in it could change what a reader
# sees, also normalised (once per field): NFKC (fullwidth and other compatibility forms to
# ASCII, Unicode TR #15), format characters (category Cf: zero-width spaces, soft hyphens,
# bidi marks pasted from a word processor) removed, and every decimal digit (category Nd) made
# ASCII. A Cf character can stand where a separator does, so a second reading turns each into a
# space. The text as written is kept as a reading because NFKC can also destroy a token (a check
# character composed with a combining mark after it): every reading only adds.

_BOM = "\ufeff"


#: Unicode's Default_Ignorable_Code_Point characters that are no format character (Cf): shown
#: as nothing, so taken out like one (a grapheme joiner U+034F or a variation selector U+FE0F
#: between a code's digits hid it). DerivedCoreProperties.txt (Unicode 15): the Mn and Lo
#: ones, and the unassigned ones kept for future format characters.
_IGNORABLE = frozenset(
    (
        0x034F,
        0x115F,
        0x1160,
        0x17B4,
        0x17B5,
        *range(0x180B, 0x1810),
        0x2065,
        0x3164,
        *range(0xFE00, 0xFE10),
        0xFFA0,
        *range(0xFFF0, 0xFFF9),
        *range(0xE0000, 0xE1000),
    )
)


@cache
def _normal_tables() -> tuple[dict[int, str], dict[int, str], dict[int, str], frozenset[str]]:
    """Tables for the readings (Cf and the other ignorables removed, or as a space; Nd to ASCII
    digits) and the set of the characters that can make a normalised reading differ from the
    text as written.

    Such a character is not ASCII and is a format character, or its NFKC form with digits made
    ASCII differs from it and holds something a token is made of (an ASCII letter or digit,
    "+", whitespace, a dash, a digit, a format character). Separators (whitespace, dashes) whose
    form is one separator stay separators in every reading and do not count. Built over planes
    0, 1 and 14, where every decimal digit, dash, space and format character lies (Unicode 15);
    the compatibility ideographs of plane 2 normalise to ideographs.
    """
    remove: dict[int, str] = {}
    space: dict[int, str] = {}
    digits: dict[int, str] = {}
    separators = set(_whitespace()) | set("-" + _DASHES)
    for point in (*range(0x80, 0x20000), *range(0xE0000, 0xE1000)):
        char = chr(point)
        category = unicodedata.category(char)
        if category == "Cf" or point in _IGNORABLE:
            remove[point], space[point] = "", " "
        elif category == "Nd":
            digits[point] = str(unicodedata.decimal(char))
    digits.update(remove)
    changing: list[int] = []
    for point in (*range(0x80, 0x20000), *range(0xE0000, 0xE1000)):
        char = chr(point)
        if point in remove:
            changing.append(point)
            continue
        form = unicodedata.normalize("NFKC", char).translate(digits)
        if form == char:
            continue
        if char in separators and len(form) == 1 and form in separators:
            continue
        if any(
            (c.isascii() and (c.isalnum() or c in "+-")) or c in separators or ord(c) in digits
            for c in form
        ):
            changing.append(point)
    return remove, space, digits, frozenset(map(chr, changing))


_ASCII = bytes(range(0x80))


def _changes(data: bytes) -> bool:
    """True if UTF-8 ``data`` holds a character that can change a reading (``_normal_tables``).

    Only the non-ASCII bytes are decoded (deleting the ASCII ones, at C speed, leaves whole
    UTF-8 sequences): a Finnish document has a few hundred of them in 30 KB.
    """
    rest = data.translate(None, _ASCII)
    return bool(rest) and not _normal_tables()[3].isdisjoint(rest.decode("utf-8", "surrogatepass"))


def changing_characters() -> frozenset[str]:
    """The characters that can make a :func:`match_readings` reading differ from the text as
    written (format characters; compatibility forms of letters, digits, signs, separators)."""
    return _normal_tables()[3]


def match_readings(text: str) -> list[str]:
    """The readings of a field's ``text`` a detector matches: as written and, if a character in
    it could change what a reader sees, NFKC with format characters removed and digits ASCII,
    and the same with format characters as spaces. Most text has one reading (itself).

    >>> match_readings("\uff11\uff13\uff11052-308t")[1]
    '131052-308t'
    """
    if text.isascii():
        return [text]
    rest = _non_ascii(text)
    changing = _normal_tables()[3]
    if changing.isdisjoint(rest):
        return [text]
    formats = list(_sets()[0] & rest)
    without = _replace_each(text, formats, "", _classes()[0])
    spaced = _replace_each(text, formats, " ", _classes()[0])
    return list(dict.fromkeys((text, _ascii_digits(without), _ascii_digits(spaced))))


def _non_ascii(text: str) -> set[str]:
    """The distinct non-ASCII characters of ``text`` (its ASCII bytes deleted at C speed)."""
    rest = text.encode("utf-8", "surrogatepass").translate(None, _ASCII)
    return set(rest.decode("utf-8", "surrogatepass"))


@cache
def _sets() -> tuple[frozenset[str], frozenset[str]]:
    """The format characters and the non-ASCII decimal digits, as sets of characters."""
    remove, _, digits, _ = _normal_tables()
    return frozenset(map(chr, remove)), frozenset(chr(p) for p, v in digits.items() if v)


@cache
def _classes() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Compiled character classes of the format characters and of the non-ASCII digits."""
    remove, _, digits, _ = _normal_tables()
    return _char_class(list(remove)), _char_class([p for p, v in digits.items() if v])


def _char_class(points: list[int]) -> re.Pattern[str]:
    ranges: list[list[int]] = []
    for point in sorted(points):
        if ranges and ranges[-1][1] == point - 1:
            ranges[-1][1] = point
        else:
            ranges.append([point, point])
    body = "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )
    return re.compile(f"[{body}]")


def _replace_each(text: str, chars: list[str], by: str, pattern: re.Pattern[str]) -> str:
    """``text`` with each of ``chars`` replaced by ``by``: one fast substring pass per
    character present (a document holds a few distinct ones; str.translate with a table costs
    a dict look-up per character, 5 MB/s), or the class pattern where many are."""
    if len(chars) > 16:
        return pattern.sub(by, text)
    for char in chars:
        text = text.replace(char, by)
    return text


def _ascii_digits(text: str) -> str:
    """NFKC, then every decimal digit of any script as its ASCII digit."""
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return text
    digits = _normal_tables()[2]
    present = list(_sets()[1] & _non_ascii(text))
    if len(present) > 16:
        return _classes()[1].sub(lambda m: digits[ord(m.group(0))], text)
    for char in present:
        text = text.replace(char, digits[ord(char)])
    return text


def reads_plainly(data: bytes) -> bool:
    """True if UTF-8 ``data`` holds no character that could make a :func:`match_readings`
    reading of any part of it differ from the part as written (a leading byte order mark
    aside): then every token any reading shows stands in the bytes as written.

    False also for bytes that are not UTF-8 (lone surrogates allowed, as parsers re-encode).
    """
    if data.isascii():
        return True
    try:
        data.decode("utf-8", "surrogatepass")  # (valid UTF-8: a C-speed check)
    except UnicodeDecodeError:
        return False
    return not _changes(data.removeprefix(_BOM.encode("utf-8")))


def screen_form(token: str) -> str:
    """A token found in raw bytes (:func:`find_tokens`) as the JSON walk would read it: its
    whitespace escapes (``\\t`` …) as whitespace. Classify this, not the raw token."""
    return _JSON_WS_ESCAPE.sub(" ", token) if "\\" in token else token


def mask(value: str) -> str:
    """Mask a code for logs and answers: only the century sign's position survives.

    A code of the 900 series (individual number 900-999, valid or not) is a test code, not
    personal data: it is shown, normalised, so that a tester can see which one is wrong (its
    check character, its date) and fix it. Any other code-shaped value is masked, a wrong check
    character included: it may be a real person's code mistyped.
    """
    code = normalise(value)
    if len(code) == 11:
        if _is_test_series(code):
            return code
        return "******" + ("-" if code[6] in "-+ABCDEFUVWXY" else "?") + "****"
    return "*" * min(len(code), 11)


def _is_test_series(code: str) -> bool:
    """Whether a normalised 11-character code has a 900-series individual number and ASCII
    digits only (nothing a reader could decode otherwise)."""
    return code.isascii() and code[:6].isdigit() and code[7:10].isdigit() and code[7] == "9"


#: A keyed hash as :class:`kanta_guard.masking.KeyedHasher` writes it: 16 lowercase hex digits.
_HASH = re.compile(r"hmac:[0-9a-f]{16}(?![0-9a-f])")


def mask_text(text: str) -> str:
    """Replace every HETU-shaped token in ``text`` by its mask (for paths, comments, logs).

    A keyed hash (``hmac:`` and exactly 16 hex digits) is left whole: its hex digits can by
    chance read as a code (``hmac:070222e637bf…``), and masking it would break the correlation
    it exists for. It is the guard's own output, never a value from a request.
    """
    hashes = [(m.start(), m.end()) for m in _HASH.finditer(text)] if "hmac:" in text else []
    out: list[str] = []
    done = 0
    for found in token_matches_in_text(text):
        start, end = found.span()
        if any(h_start <= start and end <= h_end for h_start, h_end in hashes):
            continue
        out.append(text[done:start])
        out.append(mask(found.group(0)))
        done = end
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


#: TOKEN without its look-behind, which it tries at every position of a text (12 times the
#: cost of a pattern that starts with a character class, which sre skips to): the look-behind
#: is asked only where the rest matches (``token_matches_in_text``).
_TOKEN_AHEAD = re.compile(TOKEN.pattern.removeprefix(_NOT_AFTER_DIGIT))
_TOKEN_BEHIND = re.compile(_NOT_AFTER_DIGIT)
assert _TOKEN_AHEAD.pattern.startswith("([0-3]")


def token_matches_in_text(text: str) -> Iterator[re.Match[str]]:
    """The matches ``TOKEN.finditer(text)`` finds, found faster: the leftmost position where
    the rest of the pattern matches and its look-behind holds, then on from its end."""
    at = 0
    while (found := _TOKEN_AHEAD.search(text, at)) is not None:
        if _TOKEN_BEHIND.match(text, found.start()) is None:
            at = found.start() + 1
            continue
        yield found
        at = found.end()


# -- Codes in escaped and encoded forms -------------------------------------------------------
#
# An error reason or a log line that quotes input shows it escaped (``repr`` turns a tab into
# ``\t``), and input can carry a code in a form ``mask_text`` does not see but a reader decodes
# at a glance: ``131052%2D308X``, ``&#49;31052-308X``, fullwidth digits, a zero-width space or
# a soft hyphen inside, several spaces around the sign. The functions below read a text every
# such way and mask what any reading reveals.

# What a reading must not show: a date and an individual number with one to eight other
# characters between them (the sign, spacing, a stray letter or a broken escape). The check
# character follows from those nine digits, so a reader who has them has the code; and unlike
# TOKEN, digits may touch it: this decides what to mask, not what to block.
_LOOSE = re.compile(r"[0-3][0-9][01][0-9]{3}[^0-9]{1,8}[0-9]{3}")
# Backslash escapes of Python, JSON, C and JavaScript; any other escaped character stands for
# itself (``\-`` in a regex, ``\"`` in a string).
_BACKSLASH = re.compile(
    r"\\(?:x([0-9A-Fa-f]{2})|u\{([0-9A-Fa-f]{1,6})\}|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})"
    r"|([0-7]{1,3})|N\{([^}]{1,80})\}|(.))",
    re.DOTALL,
)
_SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v", "a": "\a", "b": "\b"}
# Where a quoted form of a code cannot continue: ASCII punctuation that no escape, reference
# or separator of a code uses (``\\ % & # ; { } + -`` and ``_`` can be part of one).
_HARD = re.compile(r"""(["'(),./:<=>?@\[\]^`|~!$*])""")
_ROUNDS = 4  # decoding a doubly escaped form takes two; stop before a crafted one takes long


def _unbackslash_one(match: re.Match[str]) -> str:
    hex2, braced, hex4, hex8, octal, name, other = match.groups()
    if other is not None:
        return _SIMPLE_ESCAPES.get(other, other)
    if name is not None:
        try:
            return unicodedata.lookup(name)
        except KeyError:
            return match.group(0)
    number = int(octal, 8) if octal is not None else int(hex2 or braced or hex4 or hex8, 16)
    return chr(number) if number <= sys.maxunicode else ""


def _unbackslash(text: str) -> str:
    return _BACKSLASH.sub(_unbackslash_one, text) if "\\" in text else text


@cache
def _tables() -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    """Translate tables: digits and dashes to ASCII, format characters (Cf) to a space, every
    numeric character to ``*``.

    Built once, on first need, over planes 0 and 1 and the tags block (14): no decimal digit,
    dash or format character lies elsewhere (Unicode 15).
    """
    reading: dict[int, str] = {}
    stars: dict[int, str] = {}
    for point in (*range(0x20000), *range(0xE0000, 0xE1000)):
        char = chr(point)
        category = unicodedata.category(char)
        if category == "Cf":
            reading[point] = " "
        elif category == "Pd" or char == "\u2212":
            reading[point] = "-"
        elif category == "Nd" and point > 0x7F:
            reading[point] = str(unicodedata.decimal(char))
        if char.isnumeric() or (category == "Nd"):
            stars[point] = "*"
    no_format = {point: "" for point, value in reading.items() if value == " "}
    return reading, no_format, stars


def _stars(text: str) -> str:
    """Every numeric character (of any script) as ``*``."""
    return text.translate(_tables()[2])


def readings(text: str) -> list[str]:
    """``text`` as a reader could decode it: as written, backslash escapes undone,
    percent-decoded, character references undone, and all of them together (repeatedly);
    each of those in NFKC with digits and dashes made ASCII, then format characters (Cf) as
    spaces, without them, and without whitespace too.
    """
    if text.isascii() and not any(c in text for c in "\\%&"):
        # Nothing to decode: only the spacing can hide a code (a run of spaces, a line break).
        squeezed = _WS.sub("", text)
        return [text] if squeezed == text else [text, squeezed]
    forms = dict.fromkeys((text, *unescaped_readings(text)))
    reading, no_format, _ = _tables()
    out: dict[str, None] = {}
    for form in forms:
        plain = unicodedata.normalize("NFKC", form).translate(reading)
        bare = unicodedata.normalize("NFKC", form.translate(no_format)).translate(reading)
        out.update(dict.fromkeys((plain, bare, _WS.sub("", bare))))
    return list(out)


def unescaped_readings(text: str) -> list[str]:
    """``text`` with its escapes undone, where it holds any: backslash escapes, percent
    escapes, character references, each alone and all together (repeatedly, as
    :func:`readings` does); the forms that differ from it. A reader decodes what it sees:
    ``131052%2D308T`` or ``131052&#45;308T`` is a code to anyone who reads it."""
    if "\\" not in text and "%" not in text and "&" not in text:
        return []
    forms = dict.fromkeys(unescape_ways(text))
    forms.pop(text, None)
    return list(forms)


def unescape_ways(text: str) -> tuple[str, str, str, str]:
    """``text`` with its backslash escapes undone, its percent escapes, its character
    references, and all of them together (repeatedly: a doubly escaped form takes two
    rounds), in that order; each is ``text`` itself where it undoes nothing."""
    combined = text
    for _ in range(_ROUNDS):
        decoded = html.unescape(unquote(_unbackslash(combined)))
        if decoded == combined:
            break
        combined = decoded
    return _unbackslash(text), unquote(text), html.unescape(text), combined


#: A run of percent escapes: what ``unquote`` decodes together.
_PERCENT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def unquote(text: str) -> str:
    """``urllib.parse.unquote(text, errors="replace")``, in one C-level search: each run of
    percent escapes decoded as UTF-8 (invalid sequences replaced), everything else kept.

    urllib splits the text into runs of ASCII and of other characters and decodes each ASCII
    run's escapes with its literal characters; an ASCII character ends any UTF-8 sequence
    its escapes began, as a literal non-ASCII character (a lead byte) does, so decoding the
    runs of escapes alone reads the same. On text of many non-ASCII characters (random bytes
    read as Latin-1) urllib's split cost 200 µs a 450-byte text; tests/test_idcode.py holds
    the two to the same result."""
    if "%" not in text:
        return text
    return _PERCENT_RUN.sub(_decoded_run, text)


def _decoded_run(match: re.Match[str]) -> str:
    return bytes.fromhex(match.group().replace("%", "")).decode("utf-8", "replace")


#: Where an escape may hide a code's sign, separator or digit: an escape right after a digit,
#: or an escaped digit (percent, backslash, character reference). What ``HetuDetector.screen``
#: decodes a document for (most documents hold no such thing). Its first byte is one of three:
#: sre tries the pattern at each of them only.
_ESCAPE_TAIL = (
    rb"(?:(?<=[0-9]%)[0-9A-Fa-f]{2}|(?<=[0-9]&)[#A-Za-z]|(?<=[0-9]\\)"
    rb"|(?<=%)(?:25)?3[0-9]|(?<=\\)(?:x3[0-9]|u003[0-9]|0[67][0-7])"
    rb"|(?<=&)#(?:4[89]|5[0-7]|[xX]3[0-9]))"
)
ESCAPE_IN_CODE = re.compile(rb"[%\\&]" + _ESCAPE_TAIL)
#: The same after its first byte (``escape_in_code``: matched right after each marker found).
_ESCAPE_AT = re.compile(_ESCAPE_TAIL)
#: Markers looked at one by one before the pattern is searched (a C-level pass, 5 ns a byte).
_FEW_MARKERS = 256


def escape_in_code(data: bytes) -> bool:
    """Whether ``ESCAPE_IN_CODE`` stands in ``data``: each marker found by ``bytes.find`` (no
    document holds many), the pattern's search past ``_FEW_MARKERS`` of them."""
    seen = 0
    for marker in (b"%", b"\\", b"&"):
        at = data.find(marker)
        while at != -1:
            seen += 1
            if seen > _FEW_MARKERS:
                return ESCAPE_IN_CODE.search(data) is not None
            if _ESCAPE_AT.match(data, at + 1) is not None:
                return True
            at = data.find(marker, at + 1)
    return False


def reveals_code(text: str) -> bool:
    """True if any of the :func:`readings` of ``text`` shows a code's date and individual number
    together (one to eight other characters between them), the individual number outside the
    900 series (test codes are shown: :func:`mask`)."""
    return any(_reveals(reading) for reading in readings(text))


def _reveals(reading: str) -> bool:
    """Whether ``reading`` holds a date and an individual number below 900. Every start is
    tried (a test code's match must not hide a real one that overlaps it); a match is at most
    17 characters long, so this stays linear."""
    position = 0
    while (found := _LOOSE.search(reading, position)) is not None:
        if found.group(0)[-3] != "9":
            return True
        position = found.start() + 1
    return False


def mask_any_form(text: str) -> str:
    """:func:`mask_text`, and then mask what only a decoded reading shows (see :func:`readings`).

    A code in an escaped or encoded form cannot be masked in place: where it starts and ends
    in the text as written is lost in the decoding. So the whole stretch of text it lies in
    (up to the nearest punctuation no encoding of a code uses, such as a quote or a colon) has
    every digit masked: the digits, escapes like ``\\x31`` and ``%2D`` and references like
    ``&#49;`` all lose what they spell, while the words and the punctuation stay readable.
    Should a reading still reveal a token, every digit of the text is masked; should even that
    not do, the text is withheld.
    """
    masked = mask_text(text)
    if not reveals_code(masked):
        return masked
    pieces = _HARD.split(masked)
    # Odd indexes hold the separators themselves (the pattern captures them).
    for i in range(0, len(pieces), 2):
        if reveals_code(pieces[i]):
            pieces[i] = _stars(pieces[i])
    masked = "".join(pieces)
    if reveals_code(masked):
        masked = _stars(masked)
    return "[withheld: it holds an identity code]" if reveals_code(masked) else masked


def clip(text: str, limit: int = 1024) -> str:
    """``text`` masked in every form (:func:`mask_any_form`) and cut to ``limit`` characters
    (``…`` marks the cut): a finding's location or reason stays small in an answer or a log
    record, whatever the request held (a JSON key of a megabyte)."""
    if len(text) <= limit:
        return mask_any_form(text)
    # Mask before cutting (a code across the cut is seen whole), but not a megabyte.
    masked = mask_any_form(text[: 2 * limit + 16])[:limit] + "…"
    return _stars(masked) if reveals_code(masked) else masked


def quote_input(value: str, limit: int = 40) -> str:
    """``value`` (request input) quoted for an error reason or a log line: masked in every form
    (:func:`mask_any_form`) *before* it is escaped, then escaped like ``repr`` (a tab as
    ``\\t``, a zero-width space as ``\\u200b``) and cut to ``limit`` characters (``…`` marks
    the cut).

    >>> quote_input("x-gzip2")
    "'x-gzip2'"
    """
    # Mask before cutting (a code across the cut is still seen whole), but not a megabyte.
    masked = mask_any_form(value[: 8 * limit + 16])
    quoted = repr(masked[:limit]) + ("…" if len(masked) > limit else "")
    # The cut can leave a code-shaped tail of something longer ("…308X5"): look again.
    return _stars(quoted) if reveals_code(quoted) else quoted
