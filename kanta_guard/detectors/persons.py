"""Detector for the rules on persons: ``name.unregistered``, ``name.mismatch``,
``address.personal``.

The guard cannot know who is real from a name alone; it can know who is *allowed*: the
supplier's registry of its test identities. Each person a document names (a
:class:`~kanta_guard.model.Party`, with its codes, names and addresses together) is judged:

* a name on a registered test code must be that code's registered name (``name.mismatch``: a
  real person's name on a test code);
* any other person's name must be a registered identity's (``name.unregistered``); a
  professional's, a registered professional's. Names are compared as Finnish names vary
  (``kanta_guard.names``). Without a registry every name is unregistered: the rule warns by
  default and says how to configure one;
* a person's street address must be listed in the policy or the registry, or match one of the
  policy's test patterns (``address.personal``).

Organisations are not judged: a hospital's name, switchboard and street address are not
personal data. E-mail addresses and phone numbers are judged wherever they stand, persons'
contact points included, by ``kanta_guard.detectors.contacts``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

from .. import idcode, lexicon
from ..contacts import mask_address, mask_name, normalise_address
from ..model import HETU_OID, Address, Context, Field, Hit, Party, PartyKind, PersonName, Role
from ..names import WrittenName, fold, name_parts, readings, same_name
from ..policy import ContactSettings
from ..registry import Registry, TestIdentity
from ..rules import RuleSpec, rule

__all__ = ["PersonDetector"]

#: Roles whose names are judged against the registry's professionals.
PROFESSIONAL_ROLES = frozenset(
    {
        Role.PROFESSIONAL,
        Role.AUTHOR,
        Role.AUTHENTICATOR,
        Role.LEGAL_AUTHENTICATOR,
        Role.DATA_ENTERER,
    }
)
#: Roles whose names are judged against the registry's other identities.
CITIZEN_ROLES = frozenset({Role.PATIENT, Role.GUARDIAN, Role.RELATED_PERSON, Role.SUBJECT})
_NO_REGISTRY = (
    "no registry of test identities is configured, so no name can be shown to be a test "
    "identity's: set [registry] file in the policy (or --registry) to a list of your "
    "Kela-issued test identities"
)


class PersonDetector:
    """Judges the persons of a document: their names and street addresses."""

    name = "persons"
    systems: frozenset[str] = frozenset()
    rules: tuple[RuleSpec, ...] = (
        rule("name.unregistered"),
        rule("name.mismatch"),
        rule("address.personal"),
    )

    def __init__(self, registry: Registry | None, contacts: ContactSettings) -> None:
        self.registry = registry
        _folded_names()  # (loaded now, not on the first name with an affix)
        self._addresses = frozenset(normalise_address(a) for a in contacts.addresses)
        self._patterns = tuple(re.compile(p, re.IGNORECASE) for p in contacts.address_patterns)

    # Fields are judged by the other detectors; persons come as parties.
    def detect(self, field: Field) -> Iterator[Hit]:
        return iter(())

    def screen(self, data: bytes, *, joined: bool = False) -> frozenset[bytes] | None:
        return frozenset()

    def judge(self, party: Party) -> Iterator[Hit]:
        """Hits for one party (persons only)."""
        if party.kind is not PartyKind.PERSON:
            return
        registered = self._registered(party)
        for name in party.names:
            hit = self._name(party, name, registered)
            if hit is not None:
                yield hit
        for address in party.addresses:
            hit = self._address(party, address)
            if hit is not None:
                yield hit

    def _registered(self, party: Party) -> list[TestIdentity]:
        """The registered identities of the party's test codes."""
        if self.registry is None:
            return []
        found: list[TestIdentity] = []
        for system, value in party.identifiers:
            if system != HETU_OID or idcode.classify(value) is not idcode.Kind.TEST:
                continue
            identity = self.registry.get(value)
            if identity is not None:
                found.append(identity)
        return found

    def _name(self, party: Party, name: PersonName, registered: list[TestIdentity]) -> Hit | None:
        written = _written(name)
        if not written:
            return None
        shown = name.text or " ".join((*name.given, *name.family))
        field = Field(shown, Context(party.role, "name"), party.where)
        if registered:
            if any(all(_any_is(identity, g) for g in written) for identity in registered):
                return None
            return Hit(
                "name.mismatch",
                field,
                shown,
                mask_name(shown),
                "the name on this registered test code is not the code's registered name: a "
                "real person's name on a test code? Use the registered identity's name",
            )
        if self.registry is None:
            return Hit("name.unregistered", field, shown, mask_name(shown), _NO_REGISTRY)
        professional: bool | None = None
        if party.role in PROFESSIONAL_ROLES:
            professional = True
        elif party.role in CITIZEN_ROLES:
            professional = False
        # Every group must be the name of one and the same registered identity.
        matched: set[str] | None = None
        for group in written:
            codes = {
                identity.code
                for w in group
                for identity in self.registry.named(w.given, w.family, professional=professional)
            }
            matched = codes if matched is None else matched & codes
            if not matched:
                break
        if matched:
            return None
        whom = "professional" if professional else "test identity"
        return Hit(
            "name.unregistered",
            field,
            shown,
            mask_name(shown),
            f"a {party.role} name that is no registered {whom}'s: use a registered test "
            "identity (or register this one, if it is one of yours)",
        )

    def _address(self, party: Party, address: Address) -> Hit | None:
        if not address.lines and not _street_in(address):
            return None  # no street: a city or country alone identifies no one
        text = address.text or ", ".join(
            part for part in (" ".join(address.lines), address.postal_code, address.city) if part
        )
        normal = normalise_address(text)
        if normal in self._addresses or any(p.fullmatch(text.strip()) for p in self._patterns):
            return None
        street = normalise_address(" ".join(address.lines))
        if street in self._addresses:
            return None
        if self.registry is not None and (
            self.registry.address_allowed(text)
            or self.registry.address_allowed(" ".join(address.lines))
        ):
            return None
        field = Field(text, Context(party.role, "addr"), party.where)
        return Hit(
            "address.personal",
            field,
            text,
            mask_address(text),
            "a person's street address that is not a listed test address (policy [contacts] "
            "addresses or address_patterns, or the registry)",
        )


#: A postal code as Finland writes it (and most of Europe: four or five digits, a prefix).
_POSTAL_CODE = re.compile(r"\b(?:[A-Z]{1,2}-)?\d{4,5}\b")
#: A street and its number: a word of letters, then (a dot or blanks between) a digit.
_STREET = re.compile(r"[^\W\d_]{2,}\.?\s*\d")


def _street_in(address: Address) -> bool:
    """Whether an address with no street lines writes a street in its text all the same (FHIR
    ``Address.text`` alone, a CDA ``addr`` of loose text: ``Mannerheimintie 5 B 7, 00100
    Helsinki``): what is left of it without its postal code, city and country holds a word
    followed by a number. ``00100 Helsinki`` holds none."""
    rest = address.text
    for part in (address.postal_code, address.city, address.country):
        if part.strip():
            rest = rest.replace(part.strip(), " ")
    return _STREET.search(_POSTAL_CODE.sub(" ", rest)) is not None


def _written(name: PersonName) -> list[list[WrittenName]]:
    """The readings of a name, in groups that must each be a registered name: its parts as
    given; its one string read every way, when it has no parts or names someone beyond them.

    A name with parts whose ``text`` says more (FHIR ``HumanName`` with ``given``/``family``
    and a ``text`` of another person, a CDA ``name`` with a real name as loose text beside
    registered parts) is judged on both: the registered parts do not carry a name they do not
    hold. Words of the prefixes and suffixes are titles (``LL``, ``Tohtori``, ``laillistettu
    farmaseutti``), no name, and the ``Tes`` suffix is none; but an affix word that is a name
    of the DVV lists and no title (``<suffix>Korhonen</suffix>``) is read as a name part,
    given or family (a surname in a suffix passed as a title).
    """
    groups: list[list[WrittenName]] = []
    held: set[str] = set()
    affixes = {p for a in (*name.prefix, *name.suffix) for p in name_parts(_PUNCT.sub(" ", a))}
    named = {p for p in affixes if _is_name(p)} if affixes else set()
    if name.given or name.family or named:
        given = tuple(p for g in name.given for p in name_parts(g))
        family = tuple(p for f in name.family for p in name_parts(f))
        if named:
            extra = tuple(sorted(named - {*given, *family}))
            if extra:
                groups.append(
                    [WrittenName(given, (*family, *extra)), WrittenName((*given, *extra), family)]
                )
            held = {*given, *family, *named, "tes"}
        elif given or family:
            groups.append([WrittenName(given, family)])
            held = {*given, *family, "tes"}
    if not name.text.strip():
        return groups
    if not groups:
        return [found] if (found := readings(name.text)) else []
    titles = affixes - named
    kept = [w for w in name.text.split() if not set(_parts(w)) <= titles - held or w == ","]
    if any(part not in held for w in kept for part in _parts(w)):
        text = " ".join(kept)
        found = readings(text)
        groups.append(found or [WrittenName((), ())])
    return groups


#: Titles, degrees and generational suffixes that the DVV lists also hold as a name (``md``,
#: ``jr``, ``tri`` are given names there; ``piispa``, ``majuri``, ``mestari`` surnames), and
#: the particles of noble names (``von``, ``af``, ``de``: a part of a family name, which alone
#: names no one): an affix of these is a title, not a name (folded).
_TITLES = frozenset(
    {
        # degrees and their abbreviations (Finnish, Latin, English)
        *("ba", "ma", "md", "med", "el", "lis", "tri", "dr", "phd", "msc", "bsc", "mba"),
        # generations and ordinals
        *("jr", "jnr", "junior", "jun", "sr", "sen", "senior", "ii", "iii", "iv", "vi"),
        # Finnish titles and ranks that are also surnames
        *("piispa", "lukkari", "pappi", "mestari", "kenraali", "majuri", "rovasti"),
        *("kanttori", "tuomari", "neuvos", "kapteeni", "eversti", "luutnantti", "pa"),
        # particles of family names
        *("von", "af", "de", "van", "der", "la", "le", "du", "da", "del", "di", "dos"),
    }
)


def _is_name(part: str) -> bool:
    """True if a folded affix part is a name of the DVV lists and no title."""
    if part in _TITLES or len(part) < 2 or not part.isalpha():
        return False
    return part in _folded_names()


@cache
def _folded_names() -> frozenset[str]:
    """The DVV first names and surnames, folded as name parts are (ä→a, ae→a)."""
    return frozenset(fold(n) for n in (*lexicon.given_names(), *lexicon.surnames()))


_PUNCT = re.compile(r"[^\w\s-]+")


def _parts(word: str) -> tuple[str, ...]:
    """A written word's folded name parts, punctuation off ("Testinen," is "testinen")."""
    return name_parts(_PUNCT.sub(" ", word))


def _is(identity: TestIdentity, written: WrittenName) -> bool:
    return same_name(identity.given_parts, identity.family_parts, written.given, written.family)


def _any_is(identity: TestIdentity, group: list[WrittenName]) -> bool:
    return any(_is(identity, written) for written in group)
