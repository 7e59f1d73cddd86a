"""Detector for ``name.narrative``: full names of people in narrative and free text.

A full name is one of (DVV's first-name and surname lists, ``kanta_guard.lexicon``):

* given names and a surname: ``Matti Virtanen``, ``Anna-Liisa Mäki-Korhonen``, ``MATTI
  JUHANI VIRTANEN``; the surname may be inflected (``Matti Virtaselle``, ``Liisa Lahden``):
  in Finnish only the last part of a name takes the case ending;
* a title before a surname: ``lääkäri Heikkinen``, ``sairaanhoitaja Virtaselta``, ``Dr.
  Korhonen``, ``LL Nieminen``;
* a surname, a comma and given names: ``Virtanen, Matti``.

Every word of a name is capitalised (or all capitals) and the words stand apart by spaces only:
a surname alone is not a name, nor is a word in lower case. What fills real documents is not
reported: surnames that are common words or places (``Kivi``, ``Koski``, ``Salo``, ``Lahti``) are
names only in the forms above, and a place after a title only in its base form (``hoitaja
Salosta`` is a nurse from Salo); eponyms and names of streets and institutions
(``Parkinsonin tauti``, ``Aleksis Kiven katu``); a sentence-initial given name that is also a
word before a surname that is also a word. Drug names are in neither list.

A name of a registered test identity (``RegistryLike``) is not reported.

The screen finds candidates with a byte table and a search for capital-after-space pairs:
measured on the 30 KB corpus CDA documents, 28-48 µs, against 480-520 µs for a pyahocorasick
automaton of the 15,000 given names and 115-365 µs for text regexes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

from .. import idcode, lexicon
from ..charset import sniff_bom, sniff_wide
from ..model import Field, Hit
from ..names import name_parts
from ..rules import RuleSpec, rule
from ..search import holds

__all__ = ["MAX_NEEDLES", "NarrativeNameDetector", "RegistryLike", "mask_name"]

#: More needles than this and the screen cannot tell (as for ``HetuDetector``).
MAX_NEEDLES = 32

#: What may stand between the words of a name: spaces, tabs, no-break and typographic spaces.
#: Not line breaks: a name is written on one line, and Base64 and indented markup break lines
#: before capitals all the time.
_SEP_CHARS = " \t\u00a0\u2000-\u200a\u202f\u205f\u3000"
_SEP = frozenset(" \t\u00a0\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B))))
#: A capital a name may open with (Latin-1 capitals; names opening with another letter are not
#: read as names: the lists are Finnish).
_CAP = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞ")
# A word: letters, or letter runs joined by hyphens. Possessive: each character read once.
_WORD = re.compile(r"[^\W\d_]++(?:-[^\W\d_]++)*+")
_HAS_CAP = re.compile("[A-ZÀ-ÖØ-Þ]")
_GAP_SEP = re.compile(f"[{_SEP_CHARS}]++")
_GAP_TITLE = re.compile(f"\\.?[{_SEP_CHARS}]++")
_GAP_COMMA = re.compile(f",[{_SEP_CHARS}]++")
_SENTENCE_END = frozenset(".!?:;\n\r•*-–")

#: Titles and forms of address written before a surname (lower case). A word ending in one
#: counts (``ylilääkäri``, ``osastonhoitaja``, ``sairaanhoitaja``), in any of these cases.
_TITLE_STEMS = (
    "lääkäri",
    "hoitaja",
    "tohtori",
    "professori",
    "dosentti",
    "kirurgi",
    "psykiatri",
    "psykologi",
    "terapeutti",
    "kätilö",
    "farmaseutti",
    "proviisori",
    "työntekijä",
    "sihteeri",
    "rouva",
    "herra",
    "neiti",
)
_TITLE_CASES = ("", "n", "lle", "lta", "ltä", "lla", "llä", "na", "nä", "ksi", "a", "ä", "sta")
_TITLE_FORMS = frozenset(s + c for s in _TITLE_STEMS for c in _TITLE_CASES)
_TITLE_LONGEST = max(map(len, _TITLE_FORMS))
#: Abbreviated titles, as written (case matters: ``el`` and ``sh`` are also Finnish words in
#: lower case, but only as titles do they stand before a capitalised surname).
_ABBREVIATIONS = frozenset(
    [
        "LL",
        "LT",
        "LK",
        "EL",
        "el",
        "Dr",
        "dr",
        "DR",
        "Tri",
        "tri",
        "TRI",
        "Prof",
        "prof",
        "PROF",
        "Dos",
        "dos",
        "sh",
        "Sh",
        "SH",
        "lh",
        "Lh",
        "LH",
        "th",
        "Th",
        "TH",
        "ft",
        "Ft",
        "FT",
        "psyk",
        "Psyk",
    ]
)

#: Words that, after a surname in the genitive, make it an eponym or the name of a street or an
#: institution, not a person (``Parkinsonin tauti``, ``Aleksis Kiven katu``, ``Lasse Virénin
#: koulu``): prefixes of the head noun in lower case, any case ending.
_HEADS = (
    "tau",
    "oireyhtym",
    "syndroom",
    "kasvai",
    "kyst",
    "lymfoom",
    "merk",
    "koe",
    "kokee",
    "test",
    "leikkau",
    "luokitu",
    "asteik",
    "menetelm",
    "reaktio",
    "refleks",
    "ilmiö",
    "kadu",
    "katu",
    "kuja",
    "polku",
    "polu",
    "puisto",
    "aukio",
    "väylä",
    "raitti",
    "koulu",
    "lukio",
    "sairaala",
    "talo",
    "säätiö",
    "palkin",
    "patsa",
)
#: Short head nouns, matched as whole words (``tie`` is also the start of ``tieto``).
_SHORT_HEADS = frozenset(
    ["tie", "tien", "tiellä", "tielle", "tieltä", "tiestä", "tiehen", "tori", "torin", "torilla"]
)
#: Given names that are everyday words or verb forms at the head of a sentence (``Anna`` is
#: "give!", ``Toivo`` "hope"): there, before a surname that is a word too (the Kotus list), they
#: are read as words. Hand-picked: most given names that are Kotus words (``matti``,
#: ``aino``) are names first.
_WORD_GIVEN = frozenset(
    [
        "anna",
        "tuli",
        "satu",
        "into",
        "usko",
        "toivo",
        "onni",
        "armas",
        "aamu",
        "ilta",
        "lempi",
        "sulo",
        "oiva",
        "tuuli",
        "lumi",
        "taimi",
        "helmi",
        "pilvi",
        "sini",
        "valo",
        "aarre",
        "rauha",
        "lahja",
        "ilo",
        "tyyne",
        "veli",
        "kaino",
        "siru",
    ]
)
#: Given names that are first of all function words (``Eli`` "that is", ``Aina`` "always"):
#: at the head of a sentence never read as a name.
_FUNCTION_GIVEN = frozenset(["eli", "aina", "alla", "ensi", "ali", "kun", "niin", "vain"])


class RegistryLike(Protocol):
    """What the detector asks of the registry of test identities (``kanta_guard.registry``).

    Name parts are folded (``kanta_guard.names.fold``): lower case, ä→a, ö→o, å→a, ae→a,
    oe→o.
    """

    def named(
        self,
        given: tuple[str, ...],
        family: tuple[str, ...],
        *,
        professional: bool | None = None,
    ) -> list[Any]:
        """The registered identities that have this name (empty: none)."""
        ...

    def knows_family(self, folded_part: str) -> bool:
        """True if some registered identity has this (folded) family name part."""
        ...


def mask_name(name: str) -> str:
    """Every letter but the first of each part as ``*``: ``M*** V*******``, ``A***-L****``."""
    out: list[str] = []
    first = True
    for char in name:
        if char.isalpha():
            out.append(char if first else "*")
            first = False
        else:
            out.append(char)
            first = True
    return "".join(out)


class _Token(NamedTuple):
    start: int
    end: int
    text: str


def _capitalised(word: str) -> bool:
    """Every hyphen part opens with a capital and goes on in lower case, or all is capitals."""
    for part in word.split("-"):
        if len(part) < 2 or part[0] not in _CAP:
            return False
        if not (part[1:].islower() or part.isupper()):
            return False
    return True


def _given(word: str) -> bool:
    names = lexicon.given_names()
    return _capitalised(word) and all(part.lower() in names for part in word.split("-"))


def _surname(word: str) -> tuple[str, ...]:
    """The surname lemmas of a capitalised word (its first part, if hyphenated, in the base
    form; a lone word in any case), () if it is none."""
    if not _capitalised(word):
        return ()
    parts = word.split("-")
    if len(parts) == 1:
        return lexicon.surname_lemmas(word)
    if parts[0].lower() not in lexicon.surnames():
        return ()
    last = lexicon.surname_lemmas(parts[-1]) or (parts[-1].lower(),)
    head = "-".join(p.lower() for p in parts[:-1])
    return tuple(f"{head}-{lemma}" for lemma in last)


def _ends_in_title(lowered: str) -> bool:
    """True if a lower-case word ends in a title form (``ylilääkärille``)."""
    return any(
        lowered[-n:] in _TITLE_FORMS for n in range(4, min(len(lowered), _TITLE_LONGEST) + 1)
    )


def _title(word: str) -> bool:
    """A title or form of address: an abbreviation as written, or a word ending in a title."""
    if word in _ABBREVIATIONS:
        return True
    last = word.rsplit("-", 1)[-1]
    if not (last.islower() or last.isupper() or last[1:].islower()):
        return False  # a title is written in lower case, capitalised or in capitals
    return _ends_in_title(last.lower())


def _head_after(tokens: list[_Token], text: str, index: int) -> bool:
    """True if ``tokens[index]`` is a surname in the genitive (``Kiven``, ``Parkinsonin``) and
    the word after it (a space away) is an eponym's or a place's head noun (``katu``,
    ``tauti``): the name of a street, a disease, an institution."""
    if index + 1 >= len(tokens):
        return False
    word = tokens[index].text.lower()
    if not word.endswith("n") or word in lexicon.surnames():
        return False  # not a genitive (Virtanen is the base form)
    after = tokens[index + 1]
    if not _GAP_SEP.fullmatch(text, tokens[index].end, after.start):
        return False
    head = after.text.lower()
    return head.islower() and (head.startswith(_HEADS) or head in _SHORT_HEADS)


def _surname_then_given(
    tokens: list[_Token], text: str, i: int, gap: re.Pattern[str]
) -> str | None:
    """The lower-case surname at token ``i`` (its last hyphen part in the list) if ``gap``
    stands between it and a given name at token ``i + 1``; else None."""
    if i + 1 >= len(tokens):
        return None
    word = tokens[i].text
    if not _capitalised(word) or not gap.fullmatch(text, tokens[i].end, tokens[i + 1].start):
        return None
    lemma = word.lower()
    if lemma.split("-")[-1] not in lexicon.surnames() or not _given(tokens[i + 1].text):
        return None
    return lemma


def _given_after(
    tokens: list[_Token], text: str, i: int, lemma: str, why: str
) -> tuple[int, int, str, tuple[str, ...], tuple[str, ...], bool | None]:
    """The name a surname at token ``i`` opens: the given names after it."""
    last = _given_run(tokens, text, i + 1, i)
    given = tuple(t.text for t in tokens[i + 1 : last + 1])
    return i, last, why, given, (lemma,), None


def _given_run(tokens: list[_Token], text: str, first: int, origin: int | None = None) -> int:
    """The last token of the given names from token ``first`` on, a space apart: at most three
    tokens after ``origin`` (``first`` when not given)."""
    origin = first if origin is None else origin
    run = first
    while (
        run + 1 < len(tokens)
        and run - origin < 3
        and _GAP_SEP.fullmatch(text, tokens[run].end, tokens[run + 1].start)
        and _given(tokens[run + 1].text)
    ):
        run += 1
    return run


class NarrativeNameDetector:
    """Finds full names of people in free text that are not a registered identity's."""

    name = "narrative-name"
    #: Names and numbers that markup splits are read joined (``Detector.detect``).
    whole_elements = True
    systems: frozenset[str] = frozenset()
    rules: tuple[RuleSpec, ...] = (rule("name.narrative"),)

    def __init__(self, registry: RegistryLike | None = None) -> None:
        self._registry = registry
        # Load the lexicons now, not on the first field.
        lexicon.given_names()
        lexicon.surnames()
        lexicon.common_words()

    # -- detect -----------------------------------------------------------------------------

    def detect(self, field: Field) -> Iterator[Hit]:
        """Hits for one field: each full name found, unless the registry knows it. Linear in
        the field's length: one pass over its words, a bounded look at each."""
        for raw, explanation in self._found(field.value):
            yield Hit("name.narrative", field, raw, mask_name(raw), explanation)

    def count(self, field: Field) -> int:
        """How many hits :meth:`detect` would yield (no hit built)."""
        return sum(1 for _ in self._found(field.value))

    def _found(self, text: str) -> Iterator[tuple[str, str]]:
        """(name, explanation) of each name in ``text`` as written (in NFC) and in its other
        readings (``idcode.match_readings``: NFKC, format characters removed or as spaces, so
        that a soft hyphen or a zero-width space inside a name hides nothing), each once."""
        if text.isascii():
            for start, end, explanation in self._names(text):
                yield text[start:end], explanation
            return
        readings = idcode.match_readings(text)
        first = readings[0]
        if not unicodedata.is_normalized("NFC", first):
            first = unicodedata.normalize("NFC", first)
        seen: set[str] = set()
        for reading in (first, *readings[1:]):
            for start, end, explanation in self._names(reading):
                raw = reading[start:end]
                if raw not in seen:
                    seen.add(raw)
                    yield raw, explanation

    def _names(self, text: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, explanation) of every reportable name in ``text``."""
        if _HAS_CAP.search(text) is None:
            return
        tokens = [_Token(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
        i = 0
        count = len(tokens)
        while i < count:
            # Every name has a capitalised second word: most words are passed over here.
            if i + 1 >= count or tokens[i + 1].text[0] not in _CAP:
                i += 1
                continue
            found = self._name_at(tokens, text, i)
            if found is None:
                i += 1
                continue
            first, last, explanation, given, family, professional = found
            i = last + 1
            if not self._registered(given, family, professional):
                yield tokens[first].start, tokens[last].end, explanation

    def _name_at(
        self, tokens: list[_Token], text: str, i: int
    ) -> tuple[int, int, str, tuple[str, ...], tuple[str, ...], bool | None] | None:
        """The name that starts at token ``i``, if any: its first and last token, why it is a
        name, its given and family parts (family as lemmas) and whether it is a professional's."""
        token = tokens[i]
        sentence_start = i == 0 or any(
            c in _SENTENCE_END for c in text[tokens[i - 1].end : token.start]
        )
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if nxt is not None and nxt.text[0] in _CAP and _title(token.text):
            gap = _GAP_SEP if token.text not in _ABBREVIATIONS else _GAP_TITLE
            if gap.fullmatch(text, token.end, nxt.start):
                full = self._full(tokens, text, i + 1, False)
                if full is not None:
                    last, given, family = full
                    return i + 1, last, "a title and a full name", given, family, True
                after = tokens[i + 2] if i + 2 < len(tokens) else None
                if (
                    after is not None
                    and after.text[0] in _CAP
                    and _GAP_SEP.fullmatch(text, nxt.end, after.start)
                    and nxt.text.lower() in lexicon.given_names()
                ):
                    # A given name and another capitalised word after a title: a full name
                    # (read from the given name on), not a surname ("hoitaja Hannu Lääkäri").
                    return None
                lemmas = _surname(nxt.text)
                # (A short word in capitals after a title is an acronym: "proviisorin ID".)
                acronym = len(nxt.text) <= 3 and nxt.text.isupper()
                if lemmas and not acronym and not _head_after(tokens, text, i + 1):
                    # A place only in its base form ("hoitaja Salo", not "hoitaja Salosta": a
                    # nurse from Salo).
                    place = any(x in lexicon.PLACES for x in lemmas)
                    if not place or nxt.text.lower() in lemmas:
                        return i + 1, i + 1, "a surname after a title", (), lemmas, True
        comma = self._comma(tokens, text, i)
        if comma is not None:
            return comma
        full = self._full(tokens, text, i, sentence_start)
        if full is not None:
            last, given, family = full
            return i, last, "a given name and a surname", given, family, None
        return self._surname_first(tokens, text, i)

    def _full(
        self, tokens: list[_Token], text: str, i: int, sentence_start: bool
    ) -> tuple[int, tuple[str, ...], tuple[str, ...]] | None:
        """Given names from token ``i`` and a surname after them: (last token, given, family)."""
        if not _given(tokens[i].text):
            return None
        # Up to three more given names, a space apart; the last may be the surname.
        run = _given_run(tokens, text, i)
        last: int | None = None
        lemmas: tuple[str, ...] = ()
        if run + 1 < len(tokens) and _GAP_SEP.fullmatch(
            text, tokens[run].end, tokens[run + 1].start
        ):
            lemmas = _surname(tokens[run + 1].text)
            if lemmas:
                last = run + 1
        if last is None and run > i:
            lemmas = _surname(tokens[run].text)
            if lemmas:
                last = run
        if last is None or _head_after(tokens, text, last):
            return None
        head = tokens[i].text.lower()
        if sentence_start and head in _FUNCTION_GIVEN:
            return None  # "Eli Korhosen mukaan …": "that is, according to Korhonen"
        if (
            sentence_start
            and last == i + 1
            and head in _WORD_GIVEN
            and any(lexicon.ambiguous_surname(x) for x in lemmas)
        ):
            # "Toivo Koski..." at the head of a sentence may be two words: a name only if its
            # surname is no word either.
            return None
        given = tuple(t.text for t in tokens[i:last])
        return last, given, lemmas

    def _comma(
        self, tokens: list[_Token], text: str, i: int
    ) -> tuple[int, int, str, tuple[str, ...], tuple[str, ...], bool | None] | None:
        """``Surname, Given [Given]`` from token ``i``."""
        lemma = _surname_then_given(tokens, text, i, _GAP_COMMA)
        if lemma is None:
            return None
        if lexicon.ambiguous_surname(lemma):
            # "Salo, Matti" as a list entry (first on its line), not "… in Salo, Matti …".
            line_start = text.rfind("\n", 0, tokens[i].start) + 1
            if text[line_start : tokens[i].start].strip():
                return None
        return _given_after(tokens, text, i, lemma, "a surname and given names (comma form)")

    def _surname_first(
        self, tokens: list[_Token], text: str, i: int
    ) -> tuple[int, int, str, tuple[str, ...], tuple[str, ...], bool | None] | None:
        """``Surname Given [Given]`` from token ``i``, the order of registers and signatures
        (``Virtanen Matti``): a surname in its base form that is no everyday word or place
        and no given name, a separator run, then given names."""
        lemma = _surname_then_given(tokens, text, i, _GAP_SEP)
        if lemma is None:
            return None
        last_part = lemma.split("-")[-1]
        if (
            lexicon.ambiguous_surname(lemma)
            or lexicon.ambiguous_surname(last_part)
            or last_part in lexicon.given_names()
        ):
            return None
        return _given_after(tokens, text, i, lemma, "a surname and given names")

    def _registered(
        self, given: tuple[str, ...], family: tuple[str, ...], professional: bool | None
    ) -> bool:
        """True if the registry has an identity of this name (any lemma of the surname)."""
        registry = self._registry
        if registry is None:
            return False
        # Name parts as the registry holds them (names.name_parts: hyphenated names split,
        # Anna-Liisa -> anna, liisa; Virtanen-Mäkinen -> virtanen, makinen).
        folded_given = tuple(p for g in given for p in name_parts(g))
        for lemma in family:
            parts = name_parts(lemma)
            if not parts:
                continue
            if not folded_given:
                if all(registry.knows_family(part) for part in parts):
                    return True
            elif registry.named(folded_given, parts, professional=professional):
                return True
        return False

    # -- screen -----------------------------------------------------------------------------

    def _plain_readings(self, data: bytes) -> bool:
        """True if no reading of UTF-8 ``data`` but as written (``idcode.match_readings``:
        NFKC, format characters removed or as spaces) holds a pair the screen would name: then
        every name :meth:`detect` finds in a reading stands as written."""
        try:
            text = data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return True  # (not UTF-8: read one byte a character, as the screen does)
        for reading in idcode.match_readings(text)[1:]:
            encoded = reading.encode("utf-8", "surrogatepass")
            if not idcode.reads_plainly(encoded):
                return False  # (not expected: a reading is NFKC, without format characters)
            if self.screen(encoded) != frozenset():
                return False
        return True

    def screen(self, data: bytes, *, joined: bool = False) -> frozenset[bytes] | None:
        """Which fields of this document (its UTF-8 text, markup included) could hold a name
        :meth:`detect` reports? The needles are surnames, as they stand in ``data``.

        Why every reported name's field holds a needle (the argument, not examples;
        tests/test_detectors_narrative.py checks it with random sentences):

        1. *What a report needs.* Every name :meth:`detect` reports has two words one
           separator run apart (``_SEP_CHARS``; after a title a ``.`` may come first, after a
           comma-form surname a ``,``): a given name (its last hyphen part, capitalised, in the
           list) or a title (a word ending in a title form, or an abbreviation), then a
           capitalised word whose first hyphen part :func:`lexicon.surname_lemmas` reads as a
           surname; or a surname (the last hyphen part of a word, in the list) and a ``,``,
           then a given name. The screen asks only this, nothing of the context (registry,
           heads, sentence starts), so it asks less than :meth:`detect`.
        2. *Finding the pairs.* The last separator before the second word is one of the
           characters of ``_SEP_CHARS``; the second word opens with a capital of ``_CAP``. In
           UTF-8 the separator ends in one of the bytes of ``_SEP_LAST`` and the capital starts
           with ``A``–``Z`` or ``0xC3``: ``_PAIRS`` reads exactly those two bytes in a row
           (and more), so every such pair of the document is a candidate.
        3. *Fields in a document.* A field is a stretch of the document as written, bounded
           by non-letters (a quote, ``<``, ``>``, a line break), but for what parsers decode.
           The screen answers None where decoding could spell letters or separators the bytes
           do not show (``&#`` references, ``\\u`` escapes, CDATA, text not in NFC, bytes not
           UTF-8); JSON's other escapes are read as two separators (``\\t`` is a tab), so a
           pair split by one is still found. The XML entities stand for no letter and no
           separator. So the words of a field's pair are the document's letter runs around a
           separator run (the first word a suffix of its run, the second a prefix), and the
           needle (the surname, or the shortest suffix or prefix of the run that reads as one)
           is a part of the field's word.
        5. *Readings.* :meth:`detect` also reads a field's NFKC reading with format
           characters removed or as spaces (``idcode.match_readings``: a soft hyphen or a
           zero-width space pasted into a name, fullwidth letters), whose words need not stand
           in the bytes: a document with such a character is screened as written only if no
           such reading of it holds a candidate pair at all (``_plain_readings``), else None.
        6. ``joined``: ``data`` is decoded text joined across markup. It names nothing: a
           name that markup splits (``Matti <b>Virtanen</b>``) is read as a reader reads it,
           from the field of the element holding the mixed content (``parsers/xml.py``
           ``_mixed_fields``), which this screen screens as any other field; the joined text
           serves the identity codes' windows, which no name is.

        Linear: one byte translation and one search of a two-byte literal, then a bounded
        look around each candidate (a separator run is skipped once, for the candidate at its
        end).
        """
        if joined:
            return frozenset()
        if any(holds(data, marker, rare) for marker, rare in _DECODED):
            return None
        if not data.isascii() and not idcode.reads_plainly(data) and not self._plain_readings(data):
            return None  # (point 5)
        try:
            text_ok = data.decode("utf-8")
        except UnicodeDecodeError:
            # Bytes that are not UTF-8 (a binary blob, a Latin-1 text) are read as the text
            # parser reads them, one character a byte (ISO-8859-1; windows-1252 differs only in
            # 0x80-0x9F, where no capital a name starts with lies but Š, Ž, Ÿ, which are not
            # read as name initials either): the needles are that reading's, in UTF-8, as the
            # parser's fields hold them.
            if sniff_bom(data) is not None or sniff_wide(data) is not None:
                return None  # UTF-16/32: read so by the text parser, not a byte a character
            text_ok = data.decode("latin-1")
            data = text_ok.encode("utf-8")
        if b"\\" in data:
            data = _JSON_ESCAPE.sub(b"  ", data)  # same length: needles stand where they were
        classes = data.translate(_CLASSES)
        if (
            b"!" in classes or (b"\xe2" in data and _NFC_E2.search(data))
        ) and not unicodedata.is_normalized("NFC", text_ok):
            return None
        needles: set[bytes] = set()
        for match in _PAIRS.finditer(classes):
            needle = _needle(data, classes, match.start())
            if needle is not None:
                needles.add(needle)
                if len(needles) > MAX_NEEDLES:
                    return None
        return frozenset(needles)


# -- the screen's machinery -------------------------------------------------------------------


_DECODED = ((b"&#", 0), (b"\\u", 0), (b"<![CDATA[", 2))
# JSON escapes that a parser decodes: the ones of letters (\b \f \n \r \t) become separators.
_JSON_ESCAPE = re.compile(rb'\\[\\"/bfnrt]')
#: The last byte of every separator's UTF-8 form: space, tab, no-break space (C2 A0), U+2000-
#: U+200A (E2 80 80-8A), U+202F (E2 80 AF), U+205F (E2 81 9F), U+3000 (E3 80 80).
_SEP_LAST = bytes([0x20, 0x09, *range(0x80, 0x8B), 0x9F, 0xA0, 0xAF])


def _class_table() -> bytes:
    table = bytearray(b"#" * 256)
    for byte in [*range(0x61, 0x7B), *range(0x80, 0x100)]:  # a-z, and any byte of a non-ASCII
        table[byte] = 0x61
    table[ord(".")] = table[ord(",")] = ord(".")
    for byte in _SEP_LAST:
        table[byte] = 0x20
    for byte in [*range(0x41, 0x5B), 0xC3]:  # A-Z, and the lead byte of À-Þ (and à-ÿ)
        table[byte] = 0x41
    for byte in (0xCC, 0xCD, 0xCE, 0xD9, 0xE0, 0xE1, 0xE3, 0xEF, 0xF0):  # see _NFC_E2
        table[byte] = 0x21
    return bytes(table)


_CLASSES = _class_table()
# A separator byte and a capital, after a letter, a "." or "," or another separator (the
# search runs on the two-byte literal; the look-behind is asked only where it stands).
_PAIRS = re.compile(rb" A(?<=[aA. ] A)")
# Bytes read around a candidate: enough for the longest name form or title, in UTF-8.
_REACH = 4 * (lexicon.MAX_FORM + 8)
_RUN_SEP_REV = re.compile(f"[{_SEP_CHARS}]*+([.,]?)")
_LETTERS = re.compile(r"[^\W\d_]++")
_LETTERS_REV = re.compile(r"[^\W\d_]{1,64}")


def _needle(data: bytes, classes: bytes, space: int) -> bytes | None:
    """The needle of the candidate pair whose separator ends at byte ``space``, if any."""
    if (
        data[space] >= 0x80
        and data[space - 1 : space + 1] != b"\xc2\xa0"
        and data[space - 2 : space + 1] not in _WIDE_SEPARATORS
    ):
        # The byte ends no separator's UTF-8 form: a continuation byte of another character
        # (C2 80-8A are C1 controls; binary read as Latin-1 is full of them).
        return None
    if data[space] < 0x80:  # an ASCII space or tab: the common case, decided on bytes
        before = classes[space - 1]
        if before in _LETTER_CLASSES:
            # Only a given name, a title or a surname (a name written surname first) ends
            # there, in one of their last three (or two) bytes, in one of its case forms.
            tail3, tail2 = data[space - 3 : space], data[space - 2 : space]
            given = (tail3 in _TAILS3 or tail2 in _TAILS2) and _may_end_pair(
                data, classes, space, _GIVEN_FORMS
            )
            if not given and not (
                (tail3 in _SURNAME_TAILS3 or tail2 in _SURNAME_TAILS2)
                and _may_end_pair(data, classes, space, _SURNAME_FORMS)
            ):
                return None
        elif before == 0x2E:  # "." or ","
            if data[space - 1] == 0x2C:  # a comma-form surname
                tail3, tail2 = data[space - 4 : space - 1], data[space - 3 : space - 1]
                if tail3 not in _SURNAME_TAILS3 and tail2 not in _SURNAME_TAILS2:
                    return None
                if not _may_end_pair(data, classes, space - 1, _SURNAME_FORMS):
                    return None
            elif data[space - 3 : space - 1] not in _ABBREVIATION_TAILS or not _may_end_pair(
                data, classes, space - 1, frozenset()
            ):
                return None  # an abbreviated title ("Dr.") or nothing
        else:  # a run of separators: what stands before it?
            stripped = classes[max(0, space - 64) : space].rstrip(b" ")
            if stripped and stripped[-1] == 0x23:
                return None  # no letter, "." or ",": no pair (an ASCII byte: not a run's)
    ahead = data[space + 1 : space + 1 + _REACH].decode("utf-8", "ignore")
    second = _LETTERS.match(ahead)
    if second is None or second.group()[0] not in _CAP:
        return None
    # Back from the separator: skip its run (once; in steps if longer than a window).
    end = space + 1
    while True:
        lo = max(0, end - _REACH)
        behind = data[lo:end].decode("utf-8", "ignore")[::-1]
        run = _RUN_SEP_REV.match(behind)
        assert run is not None  # the pattern matches the empty string
        if run.end() < len(behind) or lo == 0:
            break
        # All separators: go on back from the first character boundary of the window.
        end = lo
        while data[end] & 0xC0 == 0x80:
            end += 1
    mark = run.group(1)
    # The letters before the run, read from a window that ends where the run starts.
    stop = end - len(behind[: run.end()].encode("utf-8"))
    prior = data[max(0, stop - _REACH) : stop].decode("utf-8", "ignore")[::-1]
    first_rev = _LETTERS_REV.match(prior)
    if first_rev is None:
        return None
    first = first_rev.group()[::-1]
    word = second.group()
    if mark == ",":
        if _comma_surname(first) and _given_prefix(word):
            return first.encode("utf-8")
        return None
    # After a title, a word of three capitals or fewer that no hyphen continues is an acronym
    # (:meth:`NarrativeNameDetector._name_at`: "proviisorin ID"), and opens no name.
    acronym = len(word) <= 3 and word.isupper() and ahead[len(word) : len(word) + 1] != "-"
    opens = (mark == "" and _given_suffix(first)) or (not acronym and _title_suffix(first))
    if opens and lexicon.surname_lemmas(word):
        return word.encode("utf-8")
    if mark == "" and _comma_surname(first) and _given_prefix(word):
        return first.encode("utf-8")  # (surname first: ``Virtanen Matti``)
    return None


_LETTER_CLASSES = frozenset(b"aA!")
#: The UTF-8 forms of the separators above U+00FF (``_SEP_LAST``): U+2000-U+200A, U+202F,
#: U+205F, U+3000.
_WIDE_SEPARATORS = frozenset(
    {bytes([0xE2, 0x80, b]) for b in range(0x80, 0x8B)}
    | {b"\xe2\x80\xaf", b"\xe2\x81\x9f", b"\xe3\x80\x80"}
)
# Text NFC would change holds a character whose UTF-8 form opens with one of the lead bytes
# classed "!" (combining marks, the scripts with compositions or singletons) or is one of the few
# such characters among E2 xx xx (U+2000, U+2001, U+2126, U+212A, U+212B, U+2329, U+232A,
# U+2ADC: ``_NFC_E2``); without them, no NFC check is needed.
_NFC_E2 = re.compile(rb"\xe2(?:\x80[\x80\x81]|[\x84\x8c\xab])")


def _tails() -> tuple[frozenset[bytes], frozenset[bytes]]:
    """The last three UTF-8 bytes of every given name and title in each case form it may take
    (``Matti``, ``MATTI``; ``lääkäri``, ``Lääkäri``, ``LÄÄKÄRI``; abbreviations as written), and
    the whole of those only two bytes long."""
    forms: set[str] = set(_ABBREVIATIONS)
    for name in lexicon.given_names():
        forms.update((name.capitalize(), name.upper()))
    for title in _TITLE_FORMS:
        forms.update((title, title.capitalize(), title.upper()))
    encoded = [form.encode("utf-8") for form in forms]
    return (
        frozenset(e[-3:] for e in encoded if len(e) >= 3),
        frozenset(e for e in encoded if len(e) == 2),
    )


_TAILS3, _TAILS2 = _tails()


def _surname_tails() -> tuple[frozenset[bytes], frozenset[bytes]]:
    """The same for surnames (a comma-form surname ends before its comma)."""
    encoded = [
        form.encode("utf-8")
        for name in lexicon.surnames()
        for form in (name.capitalize(), name.upper())
    ]
    return (
        frozenset(e[-3:] for e in encoded if len(e) >= 3),
        frozenset(e for e in encoded if len(e) == 2),
    )


_SURNAME_TAILS3, _SURNAME_TAILS2 = _surname_tails()
_GIVEN_FORMS = frozenset(
    form.encode("utf-8")
    for name in lexicon.given_names()
    for form in (name.capitalize(), name.upper())
)
_ABBREVIATION_FORMS = frozenset(a.encode("ascii") for a in _ABBREVIATIONS)
_SURNAME_FORMS = frozenset(
    form.encode("utf-8")
    for name in lexicon.surnames()
    for form in (name.capitalize(), name.upper())
)
_TITLE_TAILS = frozenset(
    form.encode("utf-8")[-5:]
    for title in _TITLE_FORMS
    for form in (title, title.capitalize(), title.upper())
)
_ABBREVIATION_TAILS = frozenset(a.encode("ascii")[-2:] for a in _ABBREVIATIONS)


def _may_end_pair(data: bytes, classes: bytes, space: int, names: frozenset[bytes]) -> bool:
    """False only if the ASCII letters before byte ``space`` are none of ``names``, no
    abbreviated title and (when ``space`` is a separator's) no title; True when unsure (a run
    with other bytes, or one longer than a window)."""
    seg = classes[max(0, space - 64) : space]
    start = max(seg.rfind(b"#"), seg.rfind(b" "), seg.rfind(b"."))
    if start == -1 or data[space - len(seg) + start] >= 0x80:
        # (No boundary in the window, or one classed a separator that may be the last byte
        # of a letter: ``Ä`` is C3 84, and 84 ends U+2004 too. "HÄMÄLÄINEN" is no "INEN".)
        return True
    run = data[space - len(seg) + start + 1 : space]
    if not run.isascii():
        return True
    if data[space] != 0x2E and run[-5:] in _TITLE_TAILS:
        return True
    return run in names or run in _ABBREVIATION_FORMS


def _given_suffix(part: str) -> bool:
    return part[0] in _CAP and part.lower() in lexicon.given_names()


def _comma_surname(part: str) -> bool:
    return part[0] in _CAP and part.lower() in lexicon.surnames()


def _given_prefix(part: str) -> bool:
    return part.lower() in lexicon.given_names()


def _title_suffix(run: str) -> bool:
    """True if ``run`` is a title as :func:`_title` reads one (a word ending in a title form, or
    an abbreviation as written)."""
    return _ends_in_title(run.lower()) or run in _ABBREVIATIONS
