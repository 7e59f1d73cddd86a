"""Tests for kanta_guard.lexicon: the vendored name lists and the surname lemmatiser."""

from __future__ import annotations

import pytest

from kanta_guard import lexicon


def test_lists_load_once_and_hold_the_common_names() -> None:
    """The DVV lists load (cached: the same object twice) and hold the most common names."""
    assert lexicon.given_names() is lexicon.given_names()
    assert {"matti", "päivi", "anna", "juhani"} <= lexicon.given_names()
    assert {"virtanen", "korhonen", "mäkinen", "kivi", "salo"} <= lexicon.surnames()
    assert len(lexicon.given_names()) > 10_000
    assert len(lexicon.surnames()) > 20_000


def test_common_words_are_names_that_are_words() -> None:
    """The Kotus subset holds names that are everyday words, and nothing that is no name."""
    words = lexicon.common_words()
    assert {"kivi", "koski", "mäki", "toivo"} <= words
    assert words <= lexicon.given_names() | lexicon.surnames()


@pytest.mark.parametrize("lemma", ["kivi", "salo", "lahti", "koski", "koivisto"])
def test_words_and_places_are_ambiguous(lemma: str) -> None:
    """Surnames that are also words or places are marked ambiguous."""
    assert lexicon.ambiguous_surname(lemma)


@pytest.mark.parametrize("lemma", ["virtanen", "korhonen", "heikkinen", "mattila"])
def test_plain_surnames_are_not_ambiguous(lemma: str) -> None:
    """-nen names (even those the Kotus list holds) and other names are plain names."""
    assert not lexicon.ambiguous_surname(lemma)


#: (form, the lemma it must give): every case the detector must read.
FORMS = [
    ("Virtanen", "virtanen"),
    ("Virtasen", "virtanen"),  # genitive
    ("Virtaselle", "virtanen"),  # allative
    ("Virtaselta", "virtanen"),  # ablative
    ("Virtasella", "virtanen"),  # adessive
    ("Virtasesta", "virtanen"),  # elative
    ("Virtasessa", "virtanen"),  # inessive
    ("Virtasta", "virtanen"),  # partitive
    ("Virtasena", "virtanen"),  # essive
    ("Virtaseksi", "virtanen"),  # translative
    ("Virtaseen", "virtanen"),  # illative
    ("Virtasellekin", "virtanen"),  # clitic
    ("Mäkisen", "mäkinen"),
    ("Heikkiseltä", "heikkinen"),
    ("Korhoselle", "korhonen"),
    ("Lahtiselle", "lahtinen"),
    ("Kiven", "kivi"),  # i-stem: kivi, kiven
    ("Lahden", "lahti"),  # gradation t:d
    ("Mäen", "mäki"),  # gradation k:-
    ("Aallon", "aalto"),  # lt:ll
    ("Rannan", "ranta"),  # nt:nn
    ("Lammen", "lampi"),  # mp:mm
    ("Laineelle", "laine"),  # e-stem
    ("Rinteen", "rinne"),  # weak base form
    ("Kankaan", "kangas"),  # -as, ng:nk (it gave kangs until 2026-12-04)
    ("Kankaalle", "kangas"),
    ("Oinaan", "oinas"),  # -as, no gradation
    ("Kallaksen", "kallas"),  # -as with a -kse- stem
    ("Ilvekselle", "ilves"),  # -es with a -kse- stem
    ("Kirveen", "kirves"),  # -es with an -ee- stem
    ("Mattilan", "mattila"),
    ("Koivistolla", "koivisto"),
    ("Turun", "turku"),  # rk:r
    ("MÄKISEN", "mäkinen"),  # capitals
]


@pytest.mark.parametrize(("form", "lemma"), FORMS, ids=[f for f, _ in FORMS])
def test_inflected_surnames_are_lemmatised(form: str, lemma: str) -> None:
    """Each inflected form gives its surname among its lemmas."""
    assert lemma in lexicon.surname_lemmas(form)


@pytest.mark.parametrize("word", ["potilas", "Marevan", "Diapam", "Panadol", "x" * 100])
def test_words_that_are_no_surname_give_none(word: str) -> None:
    """Common words, drug names and overlong words give no lemma."""
    assert lexicon.surname_lemmas(word) == ()
