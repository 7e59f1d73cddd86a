"""Tests for kanta_guard.names: folding, readings and the name comparison."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kanta_guard.names import WrittenName, fold, name_parts, readings, same_name

REG_GIVEN = name_parts("Maija Liisa")
REG_FAMILY = name_parts("Testinen")


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Mäkinen", "makinen"),
        ("MAEKINEN", "makinen"),
        ("Makinen", "makinen"),
        ("Öhman", "ohman"),
        ("Oehman", "ohman"),
        ("Åström", "astrom"),
        ("Renée  Müller ", "renee muller"),  # an "ee" not after a or o stays
        ("Søren Brøndum", "soren brondum"),
    ],
)
def test_fold(text: str, folded: str) -> None:
    """Case, diacritics, the ae/oe spellings and spacing fold away."""
    assert fold(text) == folded


def test_name_parts() -> None:
    """Whitespace and hyphens split, empty parts go, a trailing Tes word goes."""
    assert name_parts("Anna-Liisa") == ("anna", "liisa")
    assert name_parts(" Virtanen--Mäkinen ") == ("virtanen", "makinen")
    assert name_parts("Lääkäri Tes") == ("laakari",)
    assert name_parts("LÄÄKÄRI TES") == ("laakari",)
    assert name_parts("Tes") == ("tes",)  # a name of its own is kept
    assert name_parts("Virtanen\u2013Mäkinen") == ("virtanen", "makinen")  # an en dash


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Testinen, Maija Liisa", [WrittenName(("maija", "liisa"), ("testinen",))]),
        ("TESTINEN,MAIJA", [WrittenName(("maija",), ("testinen",))]),
        ("Testinen", [WrittenName((), ("testinen",))]),
        (
            "Maija Testinen",
            [WrittenName(("maija",), ("testinen",)), WrittenName(("testinen",), ("maija",))],
        ),
        (
            "Hannu Lääkäri Tes",
            [WrittenName(("hannu",), ("laakari",)), WrittenName(("laakari",), ("hannu",))],
        ),
        (
            "Lääkäri Tes Hannu",
            [WrittenName(("laakari",), ("hannu",)), WrittenName(("hannu",), ("laakari",))],
        ),
        ("Lääkäri Tes, Hannu", [WrittenName(("hannu",), ("laakari",))]),
        ("", []),
        (" , ", []),
    ],
)
def test_readings(text: str, expected: list[WrittenName]) -> None:
    """A one-string name is read in the comma form, or in both orders without a comma."""
    assert readings(text) == expected


def _matches(text: str) -> bool:
    return any(same_name(REG_GIVEN, REG_FAMILY, r.given, r.family) for r in readings(text))


@pytest.mark.parametrize(
    "text",
    [
        "Maija Liisa Testinen",
        "MAIJA TESTINEN",
        "maija testinen",
        "Liisa Maija Testinen",  # any order
        "Liisa Testinen",  # a subset
        "Testinen",  # no given names at all
        "Testinen, Maija Liisa",
        "Testinen Maija",  # family first
        "Maija Liisa Maija Testinen",  # repeats, as Kela's documents write them
        "Maija Testinen Tes",
    ],
)
def test_variants_match(text: str) -> None:
    """Every way Finnish names really vary matches the registered name."""
    assert _matches(text)


@pytest.mark.parametrize(
    "text",
    [
        "Maija Virtanen",  # a real person's name on a registered code must not pass
        "Matti Testinen",
        "Maija Liisa Anna Testinen",  # a given name not registered
        "Maija",  # a given name alone is no family name
        "Testinen-Virtanen, Maija",  # a family part not registered
        "",
    ],
)
def test_other_names_do_not_match(text: str) -> None:
    """A different name never matches."""
    assert not _matches(text)


def test_double_barrelled_and_ae_spelling() -> None:
    """A double-barrelled family name may be written in part; ae/oe and case never matter."""
    given_, family = name_parts("Anna"), name_parts("Virtanen-Mäkinen")
    for text in ("Anna Virtanen", "Anna MAEKINEN", "Anna Virtanen-Makinen", "Mäkinen, Anna"):
        assert any(same_name(given_, family, r.given, r.family) for r in readings(text)), text
    assert not any(same_name(given_, family, r.given, r.family) for r in readings("Anna Koski"))


def test_arto_alvar_arto() -> None:
    """Kela's test documents repeat the calling name: ARTO ALVAR ARTO TESTAAJA."""
    assert same_name(("arto", "alvar"), ("testaaja",), ("arto", "alvar", "arto"), ("testaaja",))


_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöåÄÖÅé -", min_size=1, max_size=30)


@given(st.text(max_size=40))
def test_fold_is_idempotent(text: str) -> None:
    """Folding a folded text changes nothing (so folded parts can be compared as stored)."""
    assert fold(fold(text)) == fold(text)


@given(_NAME, _NAME)
def test_registered_name_matches_itself_in_every_spelling(given_text: str, family: str) -> None:
    """A registered name written back in upper case, without diacritics, matches itself."""
    reg_given, reg_family = name_parts(given_text), name_parts(family)
    if not reg_family:
        return
    written = f"{given_text} {family}".upper()
    stripped = fold(written)
    for text in (f"{family.upper()}, {given_text.upper()}", f"{fold(family)}, {fold(given_text)}"):
        assert any(same_name(reg_given, reg_family, r.given, r.family) for r in readings(text))
    assert stripped == fold(stripped)


@given(st.lists(st.sampled_from(["maija", "liisa", "anna"]), max_size=6))
def test_any_subset_of_given_names_matches(written: list[str]) -> None:
    """Any subset, order and repetition of registered given names matches; a foreign one not."""
    reg = ("maija", "liisa", "anna")
    assert same_name(reg, ("testinen",), tuple(written), ("testinen",))
    assert not same_name(reg, ("testinen",), (*written, "matti"), ("testinen",))


def _words_whole(text: str) -> list[tuple[str, ...]]:
    """The reference reading of ``names._words``: the whole text folded at once."""
    from kanta_guard import names

    folded = fold(text.translate(names._HYPHENS))
    return [parts for word in folded.split(" ") if (parts := names._split_word(word))]


_NAMEISH = st.text(
    st.one_of(
        st.sampled_from(list("aeoAEOäöåÄÖÅéÉüÜ -‐–\u00a0\u3000¨\u0301\u0308ßİﬁ℃½﹣\t\n\x1c")),
        st.characters(),
    ),
    max_size=24,
)


@given(_NAMEISH)
def test_words_fold_chunk_by_chunk_as_the_whole(text: str) -> None:
    """Folding a name between its whitespace gives the words folding it whole gives (the
    registry folds names so, to reuse the words' cache): marks, ae/oe spellings, characters
    that decompose to a space or a hyphen, every kind of whitespace."""
    from kanta_guard import names

    assert names._words(text) == _words_whole(text)


def _fold_reference(text: str) -> str:
    """``fold`` as first written: every character through ``unicodedata.combining``."""
    import unicodedata

    from kanta_guard import names

    if text.isascii():
        folded = text.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", text.casefold())
        folded = "".join(c for c in decomposed if not unicodedata.combining(c))
        folded = folded.casefold().translate(names._LETTERS)
    if "e" in folded:
        folded = names._AE_OE.sub(r"\1", folded)
    return " ".join(folded.split())


@given(_NAMEISH)
def test_fold_is_the_reference_fold(text: str) -> None:
    """The fast fold (the Finnish letters by one table, Latin marks by one pattern, tables only
    for what is left) folds every text as the character-by-character reference does."""
    assert fold(text) == _fold_reference(text)


@given(st.text(st.sampled_from("aoeAOEx-"), max_size=16))
def test_ae_oe_by_replacing_is_the_pattern(text: str) -> None:
    """The ae/oe rule applied by replacing removes exactly the e's the pattern removes."""
    from kanta_guard import names

    lowered = text.lower()
    assert names._fold_chars(text) == names._AE_OE.sub(r"\1", lowered)
