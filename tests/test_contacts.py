"""Tests for kanta_guard.contacts: parsing, finding, normalising and masking contacts."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from helpers import REAL, TEST
from hypothesis import given, settings
from hypothesis import strategies as st

from kanta_guard import contacts
from kanta_guard.contacts import (
    RESERVED_DOMAINS,
    RESERVED_SUFFIXES,
    find_emails,
    find_phones,
    mask_address,
    mask_email,
    mask_name,
    mask_phone,
    normalise_address,
    parse_email,
    phone_e164,
    reserved_email,
    telecom,
)


def test_all_is_in_sync() -> None:
    """``__all__`` names every public function and constant the module defines, and no more."""
    defined = {
        name
        for name, value in vars(contacts).items()
        if not name.startswith("_")
        and (
            (callable(value) and getattr(value, "__module__", "") == contacts.__name__)
            or name.isupper()
        )
    }
    assert sorted(contacts.__all__) == sorted(defined)


@pytest.mark.parametrize("domain", sorted(RESERVED_DOMAINS))
def test_reserved_domains_pass(domain: str) -> None:
    """Every RFC 2606 second-level name, and names under it, is reserved."""
    for address in (f"maija@{domain}", f"maija@mail.{domain.upper()}"):
        assert parse_email(address) is not None
        assert reserved_email(parse_email(address) or "")


@pytest.mark.parametrize("suffix", RESERVED_SUFFIXES)
def test_reserved_suffixes_pass(suffix: str) -> None:
    """Every RFC 2606 / RFC 6761 top-level name parses (email_validator refuses them) and is
    reserved, bare or under a name."""
    for domain in (f"kanta{suffix}", suffix[1:]):
        address = parse_email(f"Tester@{domain}")
        assert address == f"Tester@{domain}"
        assert reserved_email(address)


@pytest.mark.parametrize(
    "address",
    ["maija.virtanen@gmail.com", "kirjaamo@hus.fi", "x@example.co", "x@examples.com", "x@test.fi"],
)
def test_real_domains_are_not_reserved(address: str) -> None:
    """Look-alikes of the reserved names are real domains."""
    assert not reserved_email(address)


PARSED = [
    ("as written", "maija.virtanen@gmail.com", "maija.virtanen@gmail.com"),
    ("domain lower-cased, local kept", " Maija.V@GMAIL.Com ", "Maija.V@gmail.com"),
    ("mailto", "mailto:maija@hus.fi", "maija@hus.fi"),
    ("mailto with hfields", "MAILTO:maija@hus.fi?subject=x", "maija@hus.fi"),
    ("IDN in Unicode", "x@Bücher.DE", "x@bücher.de"),
    ("IDN in punycode", "x@xn--bcher-kva.de", "x@bücher.de"),
    ("quoted local part", '"maija virtanen"@gmail.com', '"maija virtanen"@gmail.com'),
    ("plus tag", "maija+kanta@gmail.com", "maija+kanta@gmail.com"),
    ("not an address", "maija.virtanen", None),
    ("two @", "a@b@gmail.com", None),
    ("no TLD", "maija@gmail", None),
    ("a one-character TLD (none is delegated)", "maija@gmail.c", None),
    ("binary read as text", "\u2021\u0153@6\u00ba.\u00e9", None),
    ("a two-letter TLD", "maija@hus.fi", "maija@hus.fi"),
    ("empty local", "@gmail.com", None),
    ("display name", "Maija <maija@gmail.com>", None),
    ("reserved, bad local", "a..b@kanta.test", None),
]


@pytest.mark.parametrize(("name", "text", "expected"), PARSED, ids=[p[0] for p in PARSED])
def test_parse_email(name: str, text: str, expected: str | None) -> None:
    """One address normalised, anything else None."""
    assert parse_email(text) == expected


FOUND = [
    ("in a sentence", "Yhteys: maija.virtanen@gmail.com.", ["maija.virtanen@gmail.com"]),
    ("in angle brackets", "Maija <maija@hus.fi>", ["maija@hus.fi"]),
    ("in a mailto URI", "mailto:maija@hus.fi", ["maija@hus.fi"]),
    ("two of them", "a@hus.fi, b@gmail.com", ["a@hus.fi", "b@gmail.com"]),
    ("IDN", "osoite x@bücher.de tässä", ["x@bücher.de"]),
    ("quoted local part", 'to "maija v"@gmail.com now', ['"maija v"@gmail.com']),
    ("double dot starts a new local part", "a..maija@gmail.com", ["maija@gmail.com"]),
    ("a handle is no address", "@maija and @@@ and x@ and @y", []),
    ("a decorator", "@dataclass(frozen=True)", []),
    ("a version pin", "package@1.2.3", []),
]


@pytest.mark.parametrize(("name", "text", "expected"), FOUND, ids=[f[0] for f in FOUND])
def test_find_emails(name: str, text: str, expected: list[str]) -> None:
    """Addresses in free text, each with its place."""
    found = find_emails(text)
    assert [a for _, _, a in found] == expected
    for start, end, address in found:
        assert parse_email(text[start:end]) == address


def test_find_emails_is_linear() -> None:
    """A text of nothing but "@" and atext does not make the scan quadratic: eight times the
    text costs about eight times the time, not 64 (best of three; a machine's speed cancels
    out of the ratio)."""
    import time

    def best(text: str) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            find_emails(text)
            times.append(time.perf_counter() - started)
        return max(min(times), 1e-4)

    for piece, size in (("a@", 5_000), ("@.", 5_000), ("a", 10_000)):
        small = piece * size if piece != "a" else "a" * size + "@" + "b" * size
        large = piece * size * 8 if piece != "a" else "a" * size * 8 + "@" + "b" * size * 8
        ratio = best(large) / best(small)
        assert ratio < 8 * 2.5, (piece, ratio)


PHONES = [
    ("mobile with spaces", "040 123 4567", "+358401234567"),
    ("international", "+358 40 123 4567", "+358401234567"),
    ("area code in brackets", "(09) 123 4567", "+35891234567"),
    ("tel URI with dashes", "tel:+358-40-1234567", "+358401234567"),
    ("compact", "0401234567", "+358401234567"),
    ("dash", "050-765 4321", "+358507654321"),
    ("dots", "040.123.4567", "+358401234567"),
    ("international prefix", "00358 40 123 4567", "+358401234567"),
    ("foreign", "+44 20 7946 0958", "+442079460958"),
]


@pytest.mark.parametrize(("name", "text", "e164"), PHONES, ids=[p[0] for p in PHONES])
def test_phone_forms(name: str, text: str, e164: str) -> None:
    """Every Finnish way of writing a number normalises to E.164, alone and in a sentence."""
    assert phone_e164(text) == e164
    sentence = f"Puh. {text}, soita klo 10.15."
    found = find_phones(sentence)
    assert [n for _, _, n in found] == [e164]
    start, end, _ = found[0]
    assert sentence[start:end] == text.removeprefix("tel:")


#: What POSSIBLE leniency read as numbers (measured, phonenumbers 9.0) and find_phones must not.
NOT_PHONES = [
    ("date d.m.yyyy", "Käynti 12.03.2024 klo 10"),
    ("date in a sentence", "3.12.2024 klo 14.30"),
    ("ISO date", "2024-03-12"),
    ("ISO timestamp", "2024-03-12T10:15:00+02:00"),
    ("HL7 timestamp", "20240312101500+0200"),
    ("slash date", "12/03/2024"),
    ("test identity code", TEST),
    ("real identity code", REAL),
    ("identity code with a digit check", "010181-9001"),
    ("identity code, letter sign", "010594Y9032"),
    ("OID", "1.2.246.21"),
    ("long OID", "1.2.246.10.1234567.10.1"),
    ("OID with a 0-initial arc", "1.2.246.10.0401234567"),
    ("OID arc", "1.2.246.537.26.1234567"),
    ("dose", "Metformin 500 mg 2 x 1"),
    ("dose range", "0,5-1 mg"),
    ("time", "klo 10:15"),
    ("identifier", "ID 123456789"),
    ("order number", "tilaus 0401234567A"),
    ("glued to a word", "HETU0401234567"),
    ("emergency number", "112"),
]


@pytest.mark.parametrize(("name", "text"), NOT_PHONES, ids=[n for n, _ in NOT_PHONES])
def test_look_alikes_are_not_phones(name: str, text: str) -> None:
    """Dates, doses, identity codes, OIDs and timestamps are not taken for phone numbers."""
    assert find_phones(text) == []


def test_valid_leniency_is_what_removes_them() -> None:
    """The measurement behind the choice: POSSIBLE takes dates and codes for numbers."""
    import phonenumbers

    possible = [
        t
        for _, t in NOT_PHONES
        if any(phonenumbers.PhoneNumberMatcher(t, "FI", phonenumbers.Leniency.POSSIBLE))
    ]
    assert len(possible) >= 8


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789 -+().", min_size=1, max_size=30))
def test_few_digits_are_never_a_number(text: str) -> None:
    """MIN_PHONE_DIGITS is a true lower bound: fewer digits are never reported."""
    for start, end, _ in find_phones(text):
        assert sum(c.isdigit() for c in text[start:end]) >= contacts.MIN_PHONE_DIGITS


def test_phone_e164_refuses_words() -> None:
    """A number with words around it is not "one number"; nor is an impossible one."""
    assert phone_e164("soita 040 123 4567") is None
    assert phone_e164("123") is None
    assert phone_e164("") is None
    assert phone_e164("tel:") is None


TELECOMS = [
    ("CDA tel", "tel:+358-40-1234567", None, ("phone", "+358401234567")),
    ("CDA fax", "fax:(09) 123 4567", None, ("phone", "+35891234567")),
    ("CDA mailto", "mailto:Maija@HUS.fi", None, ("email", "Maija@hus.fi")),
    ("CDA http", "https://www.hus.fi", None, ("url", "https://www.hus.fi")),
    ("FHIR phone", "040 123 4567", "phone", ("phone", "+358401234567")),
    ("FHIR sms", "0401234567", "sms", ("phone", "+358401234567")),
    ("FHIR pager", "0401234567", "pager", ("phone", "+358401234567")),
    ("FHIR email", "maija@hus.fi", "email", ("email", "maija@hus.fi")),
    ("FHIR url", "www.hus.fi", "url", ("url", "www.hus.fi")),
    ("FHIR other", "0401234567", "other", None),
    ("empty", "", None, None),
    ("nullFlavor", "  ", "phone", None),
    ("no scheme, a number", "040 123 4567", None, ("phone", "+358401234567")),
    ("garbage", "tel:ei tiedossa", None, None),
]


@pytest.mark.parametrize(
    ("name", "value", "system", "expected"), TELECOMS, ids=[t[0] for t in TELECOMS]
)
def test_telecom(
    name: str, value: str, system: str | None, expected: tuple[str, str] | None
) -> None:
    """Telecom values and contact points, by scheme or system."""
    assert telecom(value, system) == expected


def test_normalise_address() -> None:
    """Case, diacritics, punctuation and spacing do not matter when comparing addresses."""
    assert normalise_address("Testikatu 1 A 2, 00100 Helsinki") == normalise_address(
        "testikatu 1 a 2 00100 helsinki"
    )
    assert (
        normalise_address("  Äijäläntie 3–5,\n00100  HELSINKI ") == "aijalantie 3 5 00100 helsinki"
    )
    assert normalise_address("Åkerlundinkatu 1") == "akerlundinkatu 1"
    assert normalise_address("Östra Allén 7") == "ostra allen 7"


def test_mask_name() -> None:
    """First letter of each part kept, the rest one "*" per letter."""
    assert mask_name("Maija Virtanen") == "M**** V*******"
    assert mask_name("Anna-Liisa Äijälä") == "A***-L**** Ä*****"
    assert mask_name("") == ""


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+358401234567", "+358 40 *** **67"),
        ("+35891234567", "+358 91 ** **67"),
        ("+442079460958", "+44 20 **** **58"),
        ("+35894711", "+358 94 ***"),
    ],
)
def test_mask_phone(e164: str, masked: str) -> None:
    """Country code, first two and last two digits of the national number; no more."""
    assert mask_phone(e164) == masked


@given(st.sampled_from([p[2] for p in PHONES]))
def test_mask_phone_never_shows_more(e164: str) -> None:
    """At most the country code and four national digits are visible."""
    import phonenumbers

    masked = mask_phone(e164)
    cc = str(phonenumbers.parse(e164).country_code)
    assert masked.startswith("+" + cc + " ")
    assert sum(c.isdigit() for c in masked[len(cc) + 1 :]) <= 4


def test_mask_email() -> None:
    """The domain is kept, the local part never shown."""
    assert mask_email("maija.virtanen@gmail.com") == "*@gmail.com"
    assert mask_email('"maija v"@hus.fi') == "*@hus.fi"
    assert "maija" not in mask_email("maija@maija.fi".replace("maija.fi", "hus.fi"))


def test_mask_address() -> None:
    """Street and number hidden but the first letter; postal code's first two; city's first."""
    assert mask_address("Testikatu 1 A 2, 00100 Helsinki") == "T******** *, 00*** H*******"
    assert mask_address("Pitkä Kaari 3 B, 02100 Espoo") == "P**** K**** *, 02*** E****"
    assert mask_address("Testikatu 1") == "T******** *"
    masked = mask_address("Testikatu 12 B 34, 00100 Helsinki")
    assert not re.search(r"\d{3}|12|34|100", masked)


# -- the matcher's candidates, ruled out without parsing -----------------------------------------

_GROUP_STARTS = (
    "0", "04", "040", "050", "09", "358", "3580", "35800", "00", "000", "99", "990", "9951",
    "1", "10", "19", "2", "20", "29", "3", "5", "6", "7", "75", "8", "018", "020", "0800",
    "+", "+358", "+1", "+46", "+549", "+7", "+39", "+800", "001", "0046", "00549", "+0", "+00",
    "０４０", "０", "٠٥٠", "٣٥٨", "＋３５８",
)  # fmt: skip
_SEPARATORS = (
    " ", "-", ".", "/", "(", ")", "[", "]", "  ", " - ", ". ", "/ ", ") ", " (", "--",
    "\u00a0", "\u2013", "\u200b", "\u3000", "\uff0d", "\u00ad",
)  # fmt: skip


@st.composite
def _regions(draw: st.DrawFn) -> str:
    """A region of text as phone_regions finds it: digit groups (often starting as Finnish
    numbers, international prefixes and country codes do) and the punctuation between them."""
    groups = []
    for _ in range(draw(st.integers(1, 12))):
        start = draw(st.sampled_from(("", *_GROUP_STARTS)))
        rest = draw(st.text("0123456789", max_size=14 if start else 24))
        groups.append(start + rest or "0")
    separators = draw(st.lists(st.sampled_from(_SEPARATORS), min_size=len(groups)))
    text = draw(st.sampled_from(("", "(", "[", "-", " ")))
    for group, separator in zip(groups, separators, strict=False):
        text += group + separator
    return text


def _matcher(text: str) -> list[tuple[int, str, str]]:
    return [
        (m.start, m.raw_string, phonenumbers.format_number(m.number, 0))
        for m in phonenumbers.PhoneNumberMatcher(text, "FI", phonenumbers.Leniency.VALID)
    ]


@settings(max_examples=400, deadline=None)
@given(_regions())
def test_the_candidate_walk_finds_what_the_matcher_finds(text: str) -> None:
    """``contacts._matches`` (the matcher's own loop, with candidates ``may_hold_number``
    rules out not parsed) finds exactly what libphonenumber's matcher finds in a region."""
    found = [
        (offset + m.start, m.raw_string, phonenumbers.format_number(m.number, 0))
        for offset, m in contacts._matches(text, "FI")
    ]
    assert found == _matcher(text)


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("(0) 12345678", False),  # 12345678: no Finnish number type
        ("0.12345", False),  # a decimal
        ("12.03.2024", False),
        ("000019100", False),  # the zeros after the trunk prefix are kept: 00019100
        ("040 123 4567", True),
        ("3580025120914", True),  # 358, two trunk prefixes taken off: +35825120914
        ("0.01234", False),  # 00 1234: an international prefix, and +1 234 is no number
        ("0.0123456789", False),  # +1 23456789: too short for North America
        ("+00000000005", False),  # no country code starts with 0
        ("+46 8 123 456", True),  # Sweden
        ("+54 9 11 1234 5678", True),  # Argentina, which parse rewrites (9 11 … -> 11 15 …)
        ("040 1234567 ~ 12", True),  # an extension marker
        ("０４０ １２３ ４５６７", True),  # not ASCII: the matcher decides
    ],
)
def test_may_hold_number(candidate: str, expected: bool) -> None:
    assert contacts.may_hold_number(candidate) is expected
    if not expected:
        assert _matcher(candidate) == []


def test_the_matchers_own_patterns_are_there() -> None:
    """The candidate walk uses libphonenumber's own patterns (module constants of
    ``phonenumbermatcher``); a release without them would leave every region to the matcher
    (correct, and slow): this says so first."""
    from phonenumbers import phonenumbermatcher

    for name in ("_PATTERN", "_SECOND_NUMBER_START_PATTERN", "_INNER_MATCHES"):
        assert hasattr(phonenumbermatcher, name), name
    assert contacts._CANDIDATE is not None and contacts._INNER is not None
