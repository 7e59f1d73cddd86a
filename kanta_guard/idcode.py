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
>>> mask("010181-900C")
'******-****'
"""

from __future__ import annotations

import html
import re
import sys
import unicodedata
from enum import StrEnum
from functools import cache, lru_cache
from urllib.parse import unquote

from stdnum.exceptions import ValidationError
from stdnum.fi import hetu

__all__ = [
    "TOKEN",
    "Kind",
    "classify",
    "find_tokens",
    "individual_number",
    "mask",
    "mask_any_form",
    "mask_text",
    "normalise",
    "quote_input",
    "readings",
    "reveals_code",
]

_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_SIGNS = "-+ABCDEFUVWXYabcdefuvwxy" + _DASHES
# A token: DDMMYY, century sign, ZZZ, check character; horizontal whitespace tolerated between the
# groups (hand-typed narrative), not inside them. Not preceded or followed by a digit, so
# timestamps and longer numbers do not match; a letter may touch it ("HETU010181-900C"): a code
# glued to a word is still a code.
TOKEN = re.compile(
    rf"(?<![0-9])([0-3][0-9][01][0-9]{{3}})[ \t\u00a0]?([{re.escape(_SIGNS)}])"
    r"[ \t\u00a0]?([0-9]{3})[ \t\u00a0]?([0-9A-Ya-y])(?![0-9])"
)
# The same token in UTF-8 bytes, a little looser (any whitespace between the groups: attribute
# values turn newlines into spaces), for screening whole documents.
_TOKEN_BYTES = re.compile(
    rb"(?<![0-9])[0-3][0-9][01][0-9]{3}(?:\s|\xc2\xa0)?"
    rb"(?:[-+A-FU-Ya-fu-y]|\xe2\x80[\x90-\x95]|\xe2\x88\x92)"
    rb"(?:\s|\xc2\xa0)?[0-9]{3}(?:\s|\xc2\xa0)?[0-9A-Ya-y](?![0-9])"
)
# Digits to "0", everything else to "x": a run of exactly six digits is where a token can start.
_DIGIT_MAP = bytes(0x30 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))
# A run of exactly six digits in the mapped bytes: a literal, found fast by bytes.find.
_EXACTLY_SIX = b"x000000x"
_DASH_TABLE = str.maketrans(dict.fromkeys(_DASHES, "-"))
_WS = re.compile(r"\s+")


class Kind(StrEnum):
    """What a HETU-shaped value is."""

    REAL = "real"  # valid, individual number 002–899: a person in the population register
    TEST = "test"  # valid, individual number 900–999: temporary or test code
    INVALID = "invalid"  # HETU-shaped but not valid (checksum, date, individual number)


def normalise(value: str) -> str:
    """Upper case, ASCII hyphen for Unicode dashes, no whitespace."""
    return _WS.sub("", value.translate(_DASH_TABLE)).upper()


@lru_cache(maxsize=4096)
def classify(value: str) -> Kind:
    """Classify a value (normalised first) with ``stdnum.fi.hetu``.

    Cached: the same test codes recur in every request of a test run.
    """
    code = normalise(value)
    try:
        hetu.validate(code, allow_temporary=True)
    except ValidationError:
        return Kind.INVALID
    return Kind.TEST if code[7] == "9" else Kind.REAL


def individual_number(value: str) -> int | None:
    """The three-digit individual number of a HETU-shaped value, or None if there is none."""
    code = normalise(value)
    if len(code) >= 10 and code[7:10].isdigit():
        return int(code[7:10])
    return None


def find_tokens(data: bytes) -> list[str]:
    """Every HETU-shaped token in UTF-8 ``data``, decoded; fast on large documents.

    Python's ``re`` tries a pattern that starts with a character class at every position, which
    costs more than parsing the document. A token starts where a run of exactly six digits does,
    so the runs are found first on a digit map (where one is the literal ``x000000x``), and the
    pattern is tried only there.
    """
    tokens: list[str] = []
    match = _TOKEN_BYTES.match
    mapped = data.translate(_DIGIT_MAP)
    find = mapped.find
    # A run at the very start has no "x" before it (no padding: that would copy the document).
    at_start = mapped[:6] == b"000000" and mapped[6:7] != b"0"
    if at_start and (found := match(data, 0)) is not None:
        tokens.append(found.group(0).decode("utf-8", "replace"))
    pos = find(_EXACTLY_SIX)
    while pos != -1:
        # The run starts after the "x". (A run at the very end has no closing "x", and needs
        # none: six digits with nothing after them are no code.)
        if (found := match(data, pos + 1)) is not None:
            tokens.append(found.group(0).decode("utf-8", "replace"))
        pos = find(_EXACTLY_SIX, pos + 7)  # the closing "x" may open the next run
    return tokens


def mask(value: str) -> str:
    """Mask a code for logs and answers: only the century sign's position survives."""
    code = normalise(value)
    if len(code) == 11:
        return "******" + ("-" if code[6] in "-+ABCDEFUVWXY" else "?") + "****"
    return "*" * min(len(code), 11)


def mask_text(text: str) -> str:
    """Replace every HETU-shaped token in ``text`` by its mask (for paths, comments, logs)."""
    return TOKEN.sub(lambda m: mask(m.group(0)), text)


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
    combined = text
    for _ in range(_ROUNDS):
        decoded = html.unescape(unquote(_unbackslash(combined), errors="replace"))
        if decoded == combined:
            break
        combined = decoded
    forms = dict.fromkeys(
        (text, _unbackslash(text), unquote(text, errors="replace"), html.unescape(text), combined)
    )
    reading, no_format, _ = _tables()
    out: dict[str, None] = {}
    for form in forms:
        plain = unicodedata.normalize("NFKC", form).translate(reading)
        bare = unicodedata.normalize("NFKC", form.translate(no_format)).translate(reading)
        out.update(dict.fromkeys((plain, bare, _WS.sub("", bare))))
    return list(out)


def reveals_code(text: str) -> bool:
    """True if any of the :func:`readings` of ``text`` shows a code's date and individual number
    together (one to eight other characters between them)."""
    return any(_LOOSE.search(reading) for reading in readings(text))


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
