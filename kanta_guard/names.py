"""Finnish personal names as they really vary in writing, folded and compared.

A registered test identity's name comes back in traffic in many shapes: upper case (Kela's own
test documents), without diacritics or with the old ``ae``/``oe`` spellings (``Maekinen`` for
Mäkinen, from systems that could not write ä), with only the calling name or the given names in
another order, with a double-barrelled family name shortened, or as one string (FHIR
``HumanName.text``, a CDA ``name`` without parts) in either order. Kela's test professional cards
add `` Tes`` to the surname (``SN=Hukka Tes``). :func:`same_name` accepts exactly these
variations and nothing else: a different name on a registered code must not pass.

>>> fold("  MÄKINEN ")
'makinen'
>>> name_parts("Anna-Liisa  Lääkäri Tes")
('anna', 'liisa', 'laakari')
>>> same_name(("maija", "liisa"), ("testinen",), ("liisa",), ("testinen",))
True
>>> same_name(("maija", "liisa"), ("testinen",), ("maija",), ("virtanen",))
False
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "WrittenName",
    "fold",
    "name_matches",
    "name_parts",
    "readings",
    "same_name",
]

# Letters NFKD does not decompose into a base letter and a mark (they are letters of their own),
# read as the Finnish (or Swedish) letter they stand for in a name typed without them.
_LETTERS = str.maketrans({"ø": "o", "æ": "a", "œ": "o", "ß": "ss", "đ": "d", "ł": "l", "ı": "i"})
# The accented letters of Finnish (and Swedish) names that decompose to an ASCII letter and one
# combining mark, as that letter (what NFKD minus the marks makes of them, case aside).
_FINNISH = tuple(zip("äöåÄÖÅéÉüÜ", "aoaAOAeEuU", strict=True))
# The ae/oe spellings of ä and ö: a run of e after a or o goes (Maekinen → makinen), so that
# folding again changes nothing. (The rule as a pattern; _fold_chars applies it by replacing.)
_AE_OE = re.compile(r"([ao])e+")
# Hyphens a name is split on: the ASCII one and the Unicode dashes people paste (as idcode).
_HYPHENS = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"))
_TES = "tes"


class _Marks(dict[int, int | None]):
    """``str.translate``'s table that deletes combining marks (``unicodedata.combining``),
    filled as code points are met: a C-level look-up a character, where a generator over the
    characters cost a name of ten letters 4 µs. Bounded: past 65,536 code points it answers
    without remembering."""

    def __missing__(self, point: int) -> int | None:
        value = None if unicodedata.combining(chr(point)) else point
        if len(self) < 65536:
            self[point] = value
        return value


_NO_MARKS = _Marks()
#: The combining marks of the Combining Diacritical Marks block (U+0300-U+036F), as
#: ``unicodedata`` says (the grapheme joiner U+034F is in the block and is no mark).
_LATIN_MARKS = re.compile(
    "[" + "".join(c for c in map(chr, range(0x300, 0x370)) if unicodedata.combining(c)) + "]+"
)
#: Any character ``_HYPHENS`` maps.
_DASHES = re.compile("[\u2010-\u2015\u2212]")


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Case-folded, diacritics off (ä→a, ö→o, å→a, é→e, ü→u …: NFKD minus combining marks),
    the ae/oe spellings as a/o (Maekinen = Mäkinen = Makinen), whitespace collapsed.

    Cached: the same few names recur in every document of a test run.

    >>> fold("Åström-Öhman")
    'astrom-ohman'
    >>> fold("MAEKINEN") == fold("Mäkinen") == fold("makinen")
    True
    """
    return " ".join(_fold_chars(text).split())


@lru_cache(maxsize=65536)
def _fold_chars(text: str) -> str:
    """:func:`fold` without collapsing whitespace: done character by character (casefold,
    NFKD, marks off, letters), but for the ae/oe rule, which neither whitespace nor a hyphen
    can join, and NFKD's reordering of combining marks, which never crosses a starter (both
    are). So a text may be folded piece by piece between them (``_words``)."""
    if text.isascii():
        folded = text.lower()
    elif (quick := _finnish_letters(text)).isascii():
        # Only the letters of Finnish names beside ASCII (nearly every registered name): each
        # is its base letter, as the decomposition below makes it, at a tenth of the cost.
        folded = quick.lower()
    else:
        # casefold first (it may produce combining marks: "İ" → "i̇"), NFKD, marks off, and
        # casefold again (a compatibility form may decompose to upper case: "℃" → "°C").
        decomposed = unicodedata.normalize("NFKD", text.casefold())
        # (The marks of Latin letters first, by one pattern: a translation table costs a
        # look-up a character, and what is left is ASCII nearly always.)
        folded = _LATIN_MARKS.sub("", decomposed)
        if not folded.isascii():
            folded = folded.translate(_NO_MARKS)
        folded = folded.casefold()
        if not folded.isascii():
            folded = folded.translate(_LETTERS)
    # The ae/oe rule (_AE_OE) by replacing: a run of e after a or o goes one e a round (the
    # pattern's substitution cost a name 0.9 µs; tests/test_names.py holds the two alike).
    while "ae" in folded or "oe" in folded:
        folded = folded.replace("ae", "a").replace("oe", "o")
    return folded


def _finnish_letters(text: str) -> str:
    """``text`` with ä, ö, å, é, ü (either case) as their base letters (str.translate's table
    look-up a character cost a name 2 µs, ten replacements 0.2)."""
    for letter, base in _FINNISH:
        if letter in text:
            text = text.replace(letter, base)
    return text


def _split_word(word: str) -> tuple[str, ...]:
    """A folded word's hyphen-separated parts, empty ones dropped."""
    if "-" not in word:
        return (word,) if word else ()
    return tuple(p for p in word.split("-") if p)


def _words(text: str) -> list[tuple[str, ...]]:
    """The folded whitespace-separated words of ``text``, each as its hyphen-separated parts.

    Folded piece by piece (between whitespace and hyphens: ``_fold_chars``), so that the cache
    serves the words that recur across names (a registry's 100,000 names share few words;
    folding one that is not ASCII costs about 10 µs). The same as folding the whole text, then
    splitting it (tests/test_names.py holds this with hypothesis); a piece that folds to
    several words (``¨`` decomposes to a space and a mark) is split again.
    """
    if not text.isascii() and _DASHES.search(text):
        text = text.translate(_HYPHENS)
    words: list[tuple[str, ...]] = []
    for chunk in text.split():
        if "-" in chunk:
            folded = "-".join(map(_fold_chars, chunk.split("-")))
        else:
            folded = _fold_chars(chunk)
        for word in folded.split():
            if parts := _split_word(word):
                words.append(parts)
    return words


def _drop_tes(words: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """``words`` without a last word ``tes`` (the test-card suffix), if another word is left."""
    if len(words) > 1 and words[-1] == (_TES,):
        return words[:-1]
    return words


def _flat(words: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(part for word in words for part in word)


@lru_cache(maxsize=65536)
def name_parts(text: str) -> tuple[str, ...]:
    """Folded parts of a written name: split on whitespace and hyphens (Anna-Liisa → anna, liisa),
    empty parts dropped, a trailing test-card suffix `` Tes`` removed (Kela's test professional
    cards write surnames like "Lääkäri Tes": the word "tes" at the end is dropped when another
    word stands before it).

    >>> name_parts("Virtanen-Mäkinen")
    ('virtanen', 'makinen')
    >>> name_parts("Hukka Tes")
    ('hukka',)
    """
    return _flat(_drop_tes(_words(text)))


@dataclass(frozen=True, slots=True)
class WrittenName:
    """One reading of a written name: its given and family names as folded parts."""

    given: tuple[str, ...]
    family: tuple[str, ...]


def readings(text: str) -> list[WrittenName]:
    """The ways a one-string name can be read.

    "Family, Given Given" (the comma form) gives one reading; a string without a comma (FHIR
    ``HumanName.text``, a CDA name without parts, narrative) gives both "Given … Family" (the last
    word is the family name) and "Family Given …" (the first word is). A single word is a family
    name alone. A ``Tes`` word (the test-card suffix after the family name) is dropped.

    >>> readings("Testinen, Maija Liisa")
    [WrittenName(given=('maija', 'liisa'), family=('testinen',))]
    >>> [(r.given, r.family) for r in readings("Maija Virtanen-Testinen")]
    [(('maija',), ('virtanen', 'testinen')), (('virtanen', 'testinen'), ('maija',))]
    """
    if "," in text:
        family_text, _, given_text = text.partition(",")
        family = _flat(_drop_tes(_words(family_text)))
        given = _flat(_words(given_text.replace(",", " ")))
        if not family and not given:
            return []
        return [WrittenName(given, family)]
    # The suffix follows the family name, which may stand first or last: a "tes" word is no
    # given name either way.
    words = [word for word in _words(text) if word != (_TES,)] or _words(text)
    if not words:
        return []
    if len(words) == 1:
        return [WrittenName((), words[0])]
    first = WrittenName(_flat(words[:-1]), words[-1])
    second = WrittenName(_flat(words[1:]), words[0])
    return [first] if second == first else [first, second]


def _without_tes(family: tuple[str, ...]) -> tuple[str, ...]:
    return family[:-1] if len(family) > 1 and family[-1] == _TES else family


def name_matches(
    registered_given: Collection[str],
    registered_family: Collection[str],
    given: Iterable[str],
    family: tuple[str, ...],
) -> bool:
    """:func:`same_name` with the registered parts as sets (computed once, at load).

    Linear in the written parts: each one is a set look-up.
    """
    family = _without_tes(family)
    if not family:
        return False
    return all(part in registered_family for part in family) and all(
        part in registered_given for part in given
    )


def same_name(
    registered_given: tuple[str, ...],
    registered_family: tuple[str, ...],
    given: tuple[str, ...],
    family: tuple[str, ...],
) -> bool:
    """True if a written name (``given``, ``family``: folded parts) is the registered one as
    Finnish names really vary.

    The written given names are any subset, in any order and with repeats, of the registered
    ones (Kela's own test documents repeat the calling name: ARTO ALVAR ARTO), or none at all;
    the written family parts are the registered family parts, or a non-empty subset of a
    double-barrelled family name (Virtanen-Mäkinen written Virtanen). Case, diacritics, hyphens
    and the Tes suffix never matter (the parts are already folded; a trailing ``tes`` family part
    is ignored all the same). Linear in the parts.

    >>> same_name(("arto", "alvar"), ("testaaja",), ("arto", "alvar", "arto"), ("testaaja",))
    True
    >>> same_name(("anna",), ("virtanen", "makinen"), ("anna",), ("virtanen",))
    True
    """
    return name_matches(
        frozenset(registered_given),
        frozenset(_without_tes(registered_family)),
        given,
        family,
    )
