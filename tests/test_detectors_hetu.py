"""Tests for kanta_guard.detectors.hetu: normalised readings, false positives, counting."""

from __future__ import annotations

import pytest
from helpers import REAL, REAL_2, TEST, code
from hypothesis import given, settings
from hypothesis import strategies as st

from kanta_guard import idcode
from kanta_guard.detectors import HetuDetector
from kanta_guard.detectors.hetu import Sightings
from kanta_guard.model import HETU_OID, MAX_TEST_CODES, Context, Field, Role

DETECTOR = HetuDetector()
_D, _S, _N, _C = REAL[:6], REAL[6], REAL[7:10], REAL[10]


def _field(value: str, *, identifier: bool = False) -> Field:
    system = HETU_OID if identifier else None
    return Field(value, Context(Role.UNKNOWN, None, system), "x", identifier=identifier)


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


#: Real codes as people and programs really write them: every one is a hit.
FORMS = [
    ("as written", REAL),
    ("lower case", REAL.lower()),
    ("two spaces around the sign", f"{_D}  -  {_N}{_C}"),
    ("a tab before the sign", f"{_D}\t-{_N}{_C}"),
    ("a line break after the sign", f"{_D}-\n{_N}{_C}"),
    ("space before the check", f"{_D}-{_N} {_C}"),
    ("an en dash", f"{_D}\u2013{_N}{_C}"),
    ("a run of dashes", f"{_D}--{_N}{_C}"),
    ("dash, spaces and minus sign", f"{_D} \u2212 - {_N}{_C}"),
    ("letter sign between spaces", f"{REAL_2[:6]}  {REAL_2[6]}  {REAL_2[7:]}"),
    ("letter sign with dashes", f"{REAL_2[:6]}-{REAL_2[6]}-{REAL_2[7:]}"),
    ("no-break spaces", f"{_D}\u00a0-\u00a0{_N}{_C}"),
    ("zero-width space in the date", f"{_D[:3]}\u200b{_D[3:]}-{_N}{_C}"),
    ("soft hyphen in the number", f"{_D}-{_N[:1]}\u00ad{_N[1:]}{_C}"),
    ("zero-width space as the only separator", f"{_D}\u200b-\u200b{_N}{_C}"),
    ("word joiner and BOM", f"{_D}\u2060-\ufeff{_N}{_C}"),
    ("fullwidth digits and letter", _fullwidth(REAL)),
    ("fullwidth hyphen", f"{_D}\uff0d{_N}{_C}"),
    ("small hyphen-minus", f"{_D}\ufe63{_N}{_C}"),
    ("Arabic-Indic digits", "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in REAL)),
    ("glued to a word", f"HETU{REAL}x"),
    ("in a sentence", f"Potilas {REAL}, tuli vastaanotolle."),
    ("combining mark after the check", f"{REAL}\u0308 x"),
]


@pytest.mark.parametrize(("name", "text"), FORMS, ids=[n for n, _ in FORMS])
def test_every_form_is_found(name: str, text: str) -> None:
    """A real code in any normalisable form is one hit, with the canonical code and a mask."""
    hits = list(DETECTOR.detect(_field(text)))
    assert [h.rule for h in hits] == ["hetu.real"], hits
    canonical = idcode.normalise(REAL_2 if "letter sign" in name else REAL)
    assert hits[0].raw == canonical
    assert hits[0].masked in ("******-****", "******?****")
    assert canonical[:6] not in hits[0].masked and canonical[7:10] not in hits[0].masked


#: Not codes, or not real ones: no hit (the README's rules against false positives).
CLEAN = [
    ("a test code", TEST),
    ("a test code in fullwidth", _fullwidth(TEST)),
    ("an OID", "1.2.246.10.1234567.14.2026.1129"),
    ("a timestamp", "20160803092422"),
    ("a longer number before", f"9{REAL}"),
    ("a digit after", f"{REAL}5"),
    ("a digit after a space", f"{_D}-{_N} {_C}5"),
    ("no sign at all", f"{_D} {_N}{_C}"),
    ("two letter signs", f"{_D}AB{_N}{_C}"),
    ("a wrong check character", f"{_D}-{_N}{'A' if _C != 'A' else 'B'}"),
    ("a space inside the date", f"{_D[:3]} {_D[3:]}-{_N}{_C}"),
    ("an impossible date", code("320181", "-", 308)),
    ("a phone number", "040 123 4567"),
    ("a date and a count", "010181 - 12 kpl"),
]


@pytest.mark.parametrize(("name", "text"), CLEAN, ids=[n for n, _ in CLEAN])
def test_no_false_positive(name: str, text: str) -> None:
    """Look-alikes, test codes and numbers around a code do not fire."""
    assert list(DETECTOR.detect(_field(text))) == []


@pytest.mark.parametrize(
    ("value", "rules"),
    [
        (TEST, []),
        (_fullwidth(TEST), []),  # a test code typed in fullwidth is a test code
        (f" {TEST}\u200b", []),
        (REAL, ["hetu.real"]),
        (_fullwidth(REAL), ["hetu.real"]),
        ("250810A999Y", ["hetu.malformed_test"]),
        (REAL[:-1] + ("A" if REAL[-1] != "A" else "B"), ["hetu.malformed"]),
        ("", []),
    ],
)
def test_identity_field(value: str, rules: list[str]) -> None:
    """An identity field's value is judged in its normalised reading: fullwidth test codes
    pass, fullwidth real ones block, mistyped ones are malformed."""
    assert [h.rule for h in DETECTOR.detect(_field(value, identifier=True))] == rules


def test_one_hit_per_code_per_field() -> None:
    """A code seen in several readings of a field is one hit; two codes are two."""
    text = f"{_D}\u200b-{_N}{_C} and {REAL_2}"
    assert sorted(h.raw for h in DETECTOR.detect(_field(text))) == sorted(
        [idcode.normalise(REAL), idcode.normalise(REAL_2)]
    )


_PIECES = st.sampled_from(
    [REAL, REAL_2, TEST, "250810A999Y", " ", "-", "\u2013", "\u200b", "\u00ad", "x", "9", "\n"]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_count_equals_detect(text: str) -> None:
    """``count`` (for past the findings cap) says exactly how many hits ``detect`` yields."""
    field = _field(text)
    assert DETECTOR.count(field) == len(list(DETECTOR.detect(field)))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 31),
    st.integers(1, 12),
    st.integers(0, 99),
    st.sampled_from("+-YXWVUABCDEF"),
    st.integers(0, 999),
    st.sampled_from(idcode._CHECK + "GZ"),
)
def test_is_real_agrees_with_stdnum(
    day: int, month: int, year: int, sign: str, number: int, check: str
) -> None:
    """``idcode.is_real`` (the counting shortcut) says what stdnum's classify says."""
    value = f"{day:02d}{month:02d}{year:02d}{sign}{number:03d}{check}"
    assert idcode.is_real(value) is (idcode.classify(value) is idcode.Kind.REAL)


def test_a_wrong_test_code_is_shown() -> None:
    """A 900-series value with a wrong check character is shown in the evidence (the tester
    must see which test code to fix); a mistyped real-range one stays masked."""
    (wrong_test,) = DETECTOR.detect(_field("250810a999y", identifier=True))
    assert wrong_test.rule == "hetu.malformed_test" and wrong_test.masked == "250810A999Y"
    mistyped = REAL[:-1] + ("A" if REAL[-1] != "A" else "B")
    (malformed,) = DETECTOR.detect(_field(mistyped, identifier=True))
    assert malformed.masked == "******-****"


# -- what passes is noted (Sightings: Report.recognised) --------------------------------------

_TEST_2 = "231069-9711"
_WRONG_CHECK = REAL[:-1] + ("X" if REAL[-1] != "X" else "Y")  # invalid: not a code at all


def test_detect_notes_identity_fields_and_test_codes() -> None:
    """``detect`` notes each identity field (whatever it holds) and each valid test code, in
    text and in identity fields, each code once; never a real or an invalid one."""
    notes = Sightings()
    fields = [
        _field(TEST, identifier=True),
        _field(REAL, identifier=True),
        _field(f"Potilas {TEST.lower()}, huoltaja {_TEST_2}, tilaus {_WRONG_CHECK}"),
        _field(f"{REAL} ja {_TEST_2}"),
    ]
    for field in fields:
        list(DETECTOR.detect(field, notes))
    assert notes.identity_fields == 2
    assert list(notes.codes) == [TEST, _TEST_2]


def test_another_reading_adds_no_identity_field() -> None:
    """A field that is another reading of one already read (``view_of``) is not counted again."""
    notes = Sightings()
    field = _field(TEST, identifier=True)
    list(DETECTOR.detect(field, notes))
    list(DETECTOR.detect(Field(TEST, field.context, "x", True, view_of="x"), notes))
    assert notes.identity_fields == 1


def test_screen_notes_what_no_field_will_report() -> None:
    """The screen notes the test codes the document shows and its test-code identifiers (which
    are no needles, so no field reports them); a real identifier is a needle, left to detect."""
    doc = (
        f'<d><id root="{HETU_OID}" extension="{TEST}"/><id root="{HETU_OID}" extension="{REAL}"/>'
        f"<text>{_TEST_2} {TEST}</text></d>"
    ).encode()
    notes = Sightings()
    needles = DETECTOR.screen(doc, notes=notes)
    assert needles == {REAL.encode()}
    assert notes.identity_fields == 1
    assert list(notes.codes) == [TEST, _TEST_2]
    joined = Sightings()
    DETECTOR.screen(doc, joined=True, notes=joined)
    assert joined.identity_fields == 0 and not joined.codes  # (stretches are not fields)


def test_sightings_result_caps_the_codes() -> None:
    """The result names MAX_TEST_CODES codes in order and counts the rest."""
    notes = Sightings()
    codes = [code("010181", "-", n) for n in range(900, 960)]
    for c in [*codes, *codes]:
        notes.code(c)
    seen = notes.result()
    assert seen.test_codes == tuple(codes[:MAX_TEST_CODES])
    assert seen.more_test_codes == len(codes) - MAX_TEST_CODES
