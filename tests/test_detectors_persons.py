"""Tests for kanta_guard.detectors.persons: each party's names and street addresses judged
against the registry and the policy's test contacts."""

from __future__ import annotations

from functools import cache

import pytest
from helpers import FIXTURES

from kanta_guard.detectors.persons import PersonDetector
from kanta_guard.model import HETU_OID, Address, Party, PartyKind, PersonName, Role
from kanta_guard.policy import ContactSettings
from kanta_guard.registry import Registry, load_registry

MAIJA = "010181-900C"  # Maija Liisa Testinen (tests/fixtures/personal/registry.toml)
HANNU = "030875-999Y"  # Hannu Lääkäri, professional


@cache
def registry() -> Registry:
    return load_registry(FIXTURES / "personal" / "registry.toml")


CONTACTS = ContactSettings(
    addresses=("Politiikantie 3, 00100 Helsinki",), address_patterns=(r"Testi\w* \d+.*",)
)


def detector(with_registry: bool = True) -> PersonDetector:
    return PersonDetector(registry() if with_registry else None, CONTACTS)


def person(
    *names: PersonName,
    code: str | None = None,
    role: Role = Role.PATIENT,
    addresses: tuple[Address, ...] = (),
    kind: PartyKind = PartyKind.PERSON,
) -> Party:
    identifiers = ((HETU_OID, code),) if code else ()
    return Party(kind, role, "/x", identifiers, names, (), addresses)


def judged(party: Party, with_registry: bool = True) -> list[tuple[str, str]]:
    return [(h.rule, h.masked) for h in detector(with_registry).judge(party)]


def test_shape() -> None:
    """It declares the person rules, no identifier systems, and reads no fields."""
    found = detector()
    assert [r.id for r in found.rules] == ["name.unregistered", "name.mismatch", "address.personal"]
    assert found.systems == frozenset()
    assert found.screen(b"anything") == frozenset()


@pytest.mark.parametrize(
    "name",
    [
        PersonName(("MAIJA", "LIISA", "MAIJA"), ("TESTINEN",)),
        PersonName((), ("testinen",)),
        PersonName(text="Testinen, Liisa"),
        PersonName(text="Liisa Maija Testinen"),
        PersonName(("Maija",), ("Testinen",), text="Maija Liisa Testinen"),
        PersonName(("Maija",), ("Testinen",), prefix=("LL",), text="LL Maija Testinen"),
    ],
)
def test_registered_name_on_its_code_passes(name: PersonName) -> None:
    """The code's registered name, as written in every allowed variant, passes."""
    assert judged(person(name, code=MAIJA)) == []


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        (PersonName(("Maija",), ("Virtanen",)), "M**** V*******"),
        (PersonName(text="Virtanen, Maija"), "V*******, M****"),
        # Regression: the text beside registered parts was not judged.
        (
            PersonName(("Maija",), ("Testinen",), text="Jonathan Brightwater"),
            "J******* B**********",
        ),
        (PersonName(("Maija",), ("Testinen", "Virtanen")), "M**** T******* V*******"),
    ],
)
def test_other_name_on_registered_code_is_a_mismatch(name: PersonName, masked: str) -> None:
    """Another name on a registered code is name.mismatch, masked."""
    assert judged(person(name, code=MAIJA)) == [("name.mismatch", masked)]


def test_unregistered_and_professionals() -> None:
    """Without a code, a name must be a registered identity's; a professional's, a registered
    professional's (the card's ` Tes` ignored)."""
    assert judged(person(PersonName(("Liisa",), ("Korhonen",)))) == [
        ("name.unregistered", "L**** K*******")
    ]
    assert judged(person(PersonName(text="Maija Testinen"))) == []
    pro = Role.AUTHOR
    assert judged(person(PersonName(("Hannu",), ("Lääkäri Tes",)), role=pro)) == []
    assert judged(person(PersonName(text="Maija Testinen"), role=pro)) == [
        ("name.unregistered", "M**** T*******")
    ]
    # Registered parts with a text naming someone else: both must be the same identity's.
    mixed = PersonName(("Maija",), ("Testinen",), text="Hannu Lääkäri")
    assert [rule for rule, _ in judged(person(mixed))] == ["name.unregistered"]


def test_without_registry_every_name_is_unregistered() -> None:
    """Without a registry every person's name is reported, saying how to configure one."""
    hits = list(detector(False).judge(person(PersonName(("Maija",), ("Testinen",)), code=MAIJA)))
    assert [h.rule for h in hits] == ["name.unregistered"]
    assert "[registry] file" in hits[0].explanation


def test_organisations_are_not_judged() -> None:
    """An organisation's name and street address are no person's."""
    org = person(
        PersonName(text="Liisa Korhonen Oy"),
        addresses=(Address(("Mannerheimintie 5",), "00100", "Helsinki"),),
        kind=PartyKind.ORGANISATION,
        role=Role.ORGANISATION,
    )
    assert judged(org) == []


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        (Address(("Mannerheimintie 5 B 7",), "00100", "Helsinki"), "address.personal"),
        (Address(("Testikatu 1 A 2",), "00100", "Helsinki"), None),  # the registry's
        (Address(("TESTIKATU 1 A 2",)), None),  # the street alone, another case
        (Address(("Politiikantie 3",), "00100", "Helsinki"), None),  # the policy's
        (Address(("Testipolku 12",), "00100", "Helsinki"), None),  # the policy's pattern
        (Address((), "00100", "Helsinki"), None),  # no street: no one
        # The whole address as one text and no street lines (FHIR Address.text alone, a CDA
        # addr of loose text): judged on its text when a street stands in it.
        (Address(text="Mannerheimintie 5 B 7, 00100 Helsinki"), "address.personal"),
        (Address((), "00100", "Helsinki", text="Mannerheimintie 5 B 7"), "address.personal"),
        (Address(text="PL 123, 00101 Helsinki"), "address.personal"),  # a post-office box
        (Address(text="Testikatu 1 A 2, 00100 Helsinki"), None),  # the registry's
        (Address(text="Testipolku 12"), None),  # the policy's pattern
        (Address(text="00100 Helsinki"), None),
        (Address((), "00100", "Helsinki", "Suomi", text="00100 Helsinki Suomi"), None),
    ],
)
def test_addresses(address: Address, rule: str | None) -> None:
    """A person's street address passes only if listed or matching a test pattern."""
    hits = judged(person(addresses=(address,)))
    assert [r for r, _ in hits] == ([rule] if rule else [])
    for _, masked in hits:
        assert "Mannerheimintie" not in masked


@pytest.mark.parametrize(
    "affixes",
    [
        {"suffix": ("LL",)},
        {"suffix": ("LT", "MD")},
        {"suffix": ("jr.",)},
        {"suffix": ("Tes",)},
        {"suffix": ("laillistettu farmaseutti",)},  # the corpus's (KantaCDA-API)
        {"suffix": ("006 proviisori, provisor",)},
        {"suffix": ("Tohtori",)},
        {"prefix": ("Tri",)},
        {"prefix": ("von",)},
        {"suffix": ("Liisa",)},  # a registered given name in a suffix: still the same person
    ],
)
def test_titles_in_affixes_are_no_name(affixes: dict[str, tuple[str, ...]]) -> None:
    """Titles, degrees, generations and the ` Tes` card suffix in a prefix or suffix are no
    name part, though the DVV lists hold some (md, jr, tri are given names there)."""
    name = PersonName(("Maija",), ("Testinen",), **affixes)  # type: ignore[arg-type]
    assert judged(person(name, code=MAIJA)) == []
    assert judged(person(name)) == []


@pytest.mark.parametrize(
    "affixes",
    [
        {"suffix": ("Korhonen",)},
        {"suffix": ("MÄKINEN",)},
        {"suffix": ("Maekinen",)},
        {"prefix": ("Virtanen",)},
        {"suffix": ("LL", "Korhonen")},
    ],
)
def test_a_name_in_an_affix_is_judged(affixes: dict[str, tuple[str, ...]]) -> None:
    """A surname in a prefix or suffix (not a title) is a name part of its own: on a registered
    code a mismatch, without a code no registered name (it passed as a title)."""
    name = PersonName(("Maija",), ("Testinen",), **affixes)  # type: ignore[arg-type]
    assert [rule for rule, _ in judged(person(name, code=MAIJA))] == ["name.mismatch"]
    assert [rule for rule, _ in judged(person(name))] == ["name.unregistered"]
    texted = PersonName(
        ("Maija",), ("Testinen",), text="Maija Testinen Korhonen", suffix=("Korhonen",)
    )
    assert [rule for rule, _ in judged(person(texted, code=MAIJA))] == ["name.mismatch"]
