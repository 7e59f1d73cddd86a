"""Name lexicons (DVV first names and surnames, Kotus words) and a small lemmatiser for
inflected Finnish surnames.

The lists are vendored under ``kanta_guard/data/`` (see the ``SOURCE.md`` beside each), read
with :mod:`importlib.resources` so a wheel carries them, and loaded once per process into
frozensets of lower-cased names (ä, ö, å kept). :func:`surname_lemmas` undoes Finnish case
endings on a surname (``Virtaselle`` → ``virtanen``, ``Lahden`` → ``lahti``, ``Mäen`` →
``mäki``) by generating a bounded set of candidate base forms and keeping those in the list: no
dictionary of inflected forms, no dependency, a constant cost per word.
"""

from __future__ import annotations

import gzip
from functools import cache, lru_cache
from importlib import resources

__all__ = [
    "MAX_FORM",
    "PLACES",
    "ambiguous_surname",
    "common_words",
    "given_names",
    "surname_lemmas",
    "surnames",
]

#: Longer words are no inflected form of a listed name (the longest name has 26 letters).
MAX_FORM = 48

#: Finnish towns and municipalities that are also DVV surnames (hand-picked, the larger ones and
#: those common in hospital-district text): ``Salon``, ``Lahdesta`` in narrative are places
#: more often than people. Lower case.
PLACES: frozenset[str] = frozenset(
    [
        "lahti",
        "salo",
        "koivisto",
        "kotka",
        "kemi",
        "rauma",
        "hamina",
        "kuopio",
        "kajaani",
        "nokia",
        "kerava",
        "turku",
        "joensuu",
        "mikkeli",
        "kokkola",
        "järvenpää",
        "tornio",
        "kuusamo",
        "huittinen",
        "raisio",
        "heinola",
        "mäntsälä",
        "riihimäki",
        "kankaanpää",
        "kauhava",
        "alajärvi",
        "kurikka",
        "nivala",
        "kalajoki",
        "liminka",
        "muhos",
        "kittilä",
        "kolari",
        "simo",
        "pyhäjärvi",
        "pieksämäki",
        "kangasniemi",
        "juva",
        "sulkava",
        "rantasalmi",
        "leppävirta",
        "valtimo",
        "vaala",
        "pyhäranta",
        "laitila",
        "eura",
        "kokemäki",
        "ulvila",
        "jämsä",
        "saarijärvi",
        "viitasaari",
        "joutsa",
        "mäntyharju",
        "iitti",
        "pukkila",
        "askola",
        "myrskylä",
        "soini",
        "kivijärvi",
        "kinnula",
        "sievi",
        "kannus",
        "himanka",
        "lohtaja",
        "kaustinen",
        "veteli",
        "perho",
        "kaarina",
        "inari",
        "loviisa",
        "ristiina",
    ]
)


def _read(package: str, name: str) -> frozenset[str]:
    raw = resources.files(package).joinpath(name).read_bytes()
    return frozenset(gzip.decompress(raw).decode("utf-8").split())


@cache
def given_names() -> frozenset[str]:
    """Every first name of the DVV lists (first and other given names), lower case."""
    return _read("kanta_guard.data.names", "given.txt.gz")


@cache
def surnames() -> frozenset[str]:
    """Every surname of the DVV list, lower case."""
    return _read("kanta_guard.data.names", "surnames.txt.gz")


@cache
def common_words() -> frozenset[str]:
    """Names (first or surname) that are also Finnish words of the Kotus list, lower case."""
    return _read("kanta_guard.data.words", "names_as_words.txt.gz")


@cache
def _ambiguous() -> frozenset[str]:
    # -nen words of the Kotus list (virtanen, tuominen, karjalainen) are read as names when
    # capitalised after a title: only the plain words and places are ambiguous.
    words = {w for w in common_words() if not w.endswith("nen")}
    return frozenset((words | PLACES) & surnames())


def ambiguous_surname(lemma: str) -> bool:
    """True if this surname is also an everyday word or a place (``kivi``, ``salo``, ``lahti``)."""
    return lemma in _ambiguous()


# Case endings and clitics, longest first where one ends another (singular cases of Finnish
# nouns: genitive, partitive, the six local cases, essive, translative, abessive, comitative,
# illative -Vn/-hVn/-seen; clitics -kin, -kaan, -han).
_CLITICS = ("kaan", "kään", "kin", "han", "hän")
_ENDINGS = (
    "seen",
    "hin",
    "hen",
    "hon",
    "lle",
    "lla",
    "llä",
    "lta",
    "ltä",
    "ssa",
    "ssä",
    "sta",
    "stä",
    "ksi",
    "tta",
    "ttä",
    "na",
    "nä",
    "ta",
    "tä",
    "ne",
    "an",
    "en",
    "in",
    "on",
    "un",
    "yn",
    "än",
    "ön",
    "n",
    "a",
    "ä",
)
_VOWELS = frozenset("aeiouyäöå")
# Consonant gradation undone: the weak grade as it stands before the last vowel of a stem, and
# the strong grade of the base form (lahde- → lahti, aallo- → aalto, ranna- → ranta,
# lamme- → lampi, mäe- → mäki, kyljen → kylki).
_STRONG = (
    ("ng", "nk"),
    ("mm", "mp"),
    ("ll", "lt"),
    ("nn", "nt"),
    ("rr", "rt"),
    ("lj", "lk"),
    ("rj", "rk"),
    ("d", "t"),
    ("r", "rk"),
    ("l", "lk"),
    ("h", "hk"),
    ("v", "p"),
    ("k", "kk"),
    ("p", "pp"),
    ("t", "tt"),
)
# The reverse, for names whose base form is the weak grade (rinne: rinteen, kangas: kankaan).
_WEAK = (("nt", "nn"), ("nk", "ng"), ("mp", "mm"), ("lt", "ll"), ("rt", "rr"), ("kk", "k"))


def _graded(stem: str) -> list[str]:
    """``stem`` with the consonants before its last vowel at the other grade (and with a ``k``
    put back where the weak grade dropped it: ``mäi`` → ``mäki``)."""
    if len(stem) < 2 or stem[-1] not in _VOWELS:
        return []
    head, vowel = stem[:-1], stem[-1]
    out: list[str] = []
    if head and head[-1] in _VOWELS:
        out.append(f"{head}k{vowel}")
    for weak, strong in _STRONG:
        if head.endswith(weak):
            out.append(f"{head[: -len(weak)]}{strong}{vowel}")
    for strong, weak in _WEAK:
        if head.endswith(strong):
            out.append(f"{head[: -len(strong)]}{weak}{vowel}")
    return out


def _bases(stem: str) -> list[str]:
    """Base forms a stem left by a case ending may belong to."""
    out = [stem]
    if stem.endswith("se"):
        out.append(stem[:-2] + "nen")  # virtase-lle
    elif stem.endswith("s"):
        out.append(stem[:-1] + "nen")  # virtas-ta
        out.append(stem + "e")  # kangas: kankaa-n is caught below; kauris → kauri-s
    if stem.endswith("kse"):
        out.append(stem[:-3] + "s")  # kallakse-n → kallas, ilvekse-n → ilves
    if stem.endswith("ee"):
        out.append(stem[:-1])  # lainee-n → laine
        out.append(stem[:-1] + "s")  # kirvee-n → kirves
        out.extend(_graded(stem[:-1]))  # rintee-n → rinne
    if stem.endswith("aa") or stem.endswith("ää"):
        out.append(stem[:-1] + "s")  # kankaa-n → kankas → kangas (graded below)
        out.extend(w + "s" for w in _graded(stem[:-1]))  # kanka- → kanga- → kangas
    if stem.endswith("e"):
        out.append(stem[:-1] + "i")  # kive-n → kivi
        out.extend(_graded(stem[:-1] + "i"))  # lahde-n → lahti, mäe-n → mäki
    if stem.endswith("i") and len(stem) > 3:
        out.append(stem[:-1])  # parkinsoni-lle → parkinson (a consonant-final name)
    out.extend(_graded(stem))  # aallo-n → aalto
    return out


def _forms(word: str) -> list[str]:
    """Candidate base forms of a lower-case word: itself, then each ending undone."""
    out = [word]
    stems = [word]
    for clitic in _CLITICS:
        if word.endswith(clitic) and len(word) - len(clitic) >= 3:
            stems.append(word[: -len(clitic)])
            out.append(stems[-1])
            break
    for stem in stems:
        for ending in _ENDINGS:
            if stem.endswith(ending) and len(stem) - len(ending) >= 2:
                out.extend(_bases(stem[: -len(ending)]))
    return out


@lru_cache(maxsize=8192)
def surname_lemmas(word: str) -> tuple[str, ...]:
    """The listed surnames ``word`` (any case) may be an inflected form of, the word itself
    first when it is one; () if none. A bounded number of candidates is tried: constant cost.
    Remembered for the most recent words (a pure function of the word: the lists are fixed):
    a table or a bundle repeats its words row after row, and each undoing costs ~13 µs."""
    lowered = word.lower()
    if len(lowered) > MAX_FORM:
        return ()
    names = surnames()
    found: dict[str, None] = {}
    for form in _forms(lowered):
        if form in names:
            found[form] = None
    return tuple(found)
