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

import re
from enum import StrEnum
from functools import lru_cache

from stdnum.exceptions import ValidationError
from stdnum.fi import hetu

__all__ = [
    "TOKEN",
    "Kind",
    "classify",
    "find_tokens",
    "individual_number",
    "mask",
    "mask_text",
    "normalise",
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
