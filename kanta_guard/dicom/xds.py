"""The patient an IHE XDS document entry describes: its ``sourcePatientInfo`` and
``sourcePatientId`` slots (ITI TF-3 4.2.3.2.23 and .24), as the personal-data rules' parties.

A RAD-68 (XDS-I.b Provide and Register Imaging Document Set) request, like any ITI-41, carries
the KOS manifest's metadata as an ebRIM ``ExtrinsicObject``. Its ``sourcePatientInfo`` slot holds
the patient's demographics as the source system knows them, one HL7 v2 PID field per value:
``PID-3|id^^^&1.2.246.21&ISO`` (identifiers, CX), ``PID-5|Family^Given^Second`` (the name, XPN),
``PID-7|19520101`` (birth date), ``PID-11|street^^city^^zip^country`` (address, XAD),
``PID-13|phone`` (XTN). The XML parser reads every value as text, so a code there is found as
anywhere; a name written ``Virtanen^Matti`` is no narrative the name rules recognise, so it is
read here as what it is: the patient's name, with the patient's codes, addresses and phones,
one :class:`~kanta_guard.model.Party` per slot. ``sourcePatientId`` (CX) is the same patient's
identifier.

Read leniently, as a registry would: the ``PID-n|`` prefix with or without spaces, repetitions
(``~``), the v2 escape sequences (``\\F\\`` for ``|`` and the like). What is not a PID field
(another segment, a field of no meaning here) is left to the text rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from lxml import etree

from .. import idcode
from ..model import HETU_OID, Address, Party, PartyKind, PersonName, Role, Telecom
from .names import name_of_parts
from .settings import DEFAULT_DUMMIES

__all__ = ["RIM_NS", "pid_party", "xds_parties"]

RIM_NS = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
_SLOT_TAGS = ("{" + RIM_NS + "}Slot", "Slot")
_INFO = "sourcepatientinfo"
_ID = "sourcepatientid"
_FIELD = re.compile(r"\s*PID\s*-\s*(\d{1,2})\s*\|(.*)", re.IGNORECASE | re.DOTALL)
#: PID fields holding identifiers (CX): patient ID (external, internal, alternate), SSN,
#: driver's licence, mother's identifier.
_IDENTIFIERS = frozenset({2, 3, 4, 19, 20, 21})
#: PID fields holding the patient's names (XPN): name, alias.
_NAMES = frozenset({5, 9})
#: PID-6, mother's maiden name: another person's.
_MOTHER = 6
_ADDRESSES = frozenset({11})
_PHONES = frozenset({13, 14})
_ESCAPES = {"F": "|", "S": "^", "T": "&", "R": "~", "E": "\\"}
_ESCAPE = re.compile(r"\\([FSTRE])\\")


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _values(slot: etree._Element) -> list[str]:
    """The texts of a slot's ``ValueList/Value`` elements."""
    return [
        "".join(str(t) for t in v.itertext())
        for v in slot.iter()
        if _local(v.tag) == "Value" and len(v) == 0
    ]


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group(1)], text)


def _components(value: str) -> list[str]:
    return value.split("^")


def _sub(component: str) -> list[str]:
    return [_unescape(s).strip() for s in component.split("&")]


def _cx(value: str) -> tuple[str, str] | None:
    """An HL7 v2 CX (``id^check^scheme^namespace&oid&ISO``) as (system, id)."""
    parts = _components(value)
    ident = _unescape(parts[0]).strip()
    if not ident:
        return None
    authority = _sub(parts[3]) if len(parts) > 3 else []
    oid = authority[1] if len(authority) > 1 else ""
    system = oid.removeprefix("urn:oid:") or (authority[0] if authority else "")
    if not system and idcode.classify(idcode.normalise(ident)) in (
        idcode.Kind.TEST,
        idcode.Kind.REAL,
    ):
        system = HETU_OID  # (an identity code under no authority is one all the same)
    return system, ident


def _xpn(value: str) -> PersonName | None:
    """An HL7 v2 XPN (``Family&prefix&own^Given^Second names^Suffix^Prefix^Degree``)."""
    parts = [*_components(value), "", "", "", "", ""]
    family = " ".join(p for p in _sub(parts[0]) if p)
    given = _unescape(parts[1]).strip()
    seconds = [p for p in _unescape(parts[2]).split() if p]
    suffix = _unescape(parts[3]).strip()
    prefix = _unescape(parts[4]).strip()
    givens = tuple(p for p in (given, *seconds) if p)
    if not (family or givens):
        return None
    return name_of_parts(family, givens, prefix, suffix)


def _xad(value: str) -> Address | None:
    """An HL7 v2 XAD (``street^other^city^state^zip^country``)."""
    parts = [_unescape(p).strip() for p in [*_components(value), "", "", "", "", "", ""]]
    street = " ".join(p for p in _sub(_components(value)[0]) if p)
    lines = tuple(p for p in (street, parts[1]) if p)
    city, _, postal, country = parts[2], parts[3], parts[4], parts[5]
    if not (lines or city or postal):
        return None
    text = " ".join(p for p in (*lines, postal, city, country) if p)
    return Address(lines, postal, city, country, None, text)


def _xtn(value: str) -> list[Telecom]:
    """An HL7 v2 XTN: the number (component 1, or the unformatted 12th), the e-mail (4th)."""
    parts = [_unescape(p).strip() for p in [*_components(value), *[""] * 12]]
    found = []
    for number in (parts[0], parts[11]):
        if number:
            found.append(Telecom(number, "phone"))
    if parts[3]:
        found.append(Telecom(parts[3], "email"))
    return found


def pid_party(
    values: list[str],
    where: str | Callable[[], str],
    dummies: frozenset[str] = DEFAULT_DUMMIES,
) -> list[Party]:
    """The patient (and the mother, where PID-6 names her) of one ``sourcePatientInfo`` slot's
    values; nothing if they name no one. A name that is one of ``dummies`` (case-folded:
    ``ANONYMIZED``) is nobody's."""
    identifiers: list[tuple[str, str]] = []
    names: list[PersonName] = []
    telecoms: list[Telecom] = []
    addresses: list[Address] = []
    mother: list[PersonName] = []
    for raw in values:
        match = _FIELD.match(raw)
        if match is None:
            continue
        number, value = int(match.group(1)), match.group(2).strip()
        for repetition in value.split("~"):
            if not repetition.strip():
                continue
            if number in _IDENTIFIERS:
                found = _cx(repetition)
                if found is not None:
                    identifiers.append(found)
            elif number in _NAMES or number == _MOTHER:
                name = _xpn(repetition)
                if name is not None and name.text.casefold() not in dummies:
                    (mother if number == _MOTHER else names).append(name)
            elif number in _ADDRESSES:
                address = _xad(repetition)
                if address is not None:
                    addresses.append(address)
            elif number in _PHONES:
                telecoms.extend(_xtn(repetition))
    parties: list[Party] = []
    if names or telecoms or addresses or identifiers:
        parties.append(
            Party(
                PartyKind.PERSON,
                Role.PATIENT,
                where,
                tuple(identifiers),
                tuple(names),
                tuple(telecoms),
                tuple(addresses),
            )
        )
    if mother:
        parties.append(Party(PartyKind.PERSON, Role.RELATED_PERSON, where, (), tuple(mother)))
    return parties


def xds_parties(
    root: etree._Element,
    locate: Callable[[etree._Element], str],
    dummies: frozenset[str] = DEFAULT_DUMMIES,
) -> Iterator[Party]:
    """The patients of every ``sourcePatientInfo`` slot in the document (an ebRIM
    ``ExtrinsicObject`` of any XDS transaction, RAD-68 included), each with the
    ``sourcePatientId`` of the same object; ``locate`` gives an element's location (called
    lazily); names in ``dummies`` (the policy's ``[dicom] dummies``) are nobody's."""
    for slot in root.iter(*_SLOT_TAGS):
        if (slot.get("name") or "").strip().casefold() != _INFO:
            continue
        values = _values(slot)
        holder = slot.getparent()
        if holder is not None:
            for sibling in holder:
                if (
                    _local(sibling.tag) == "Slot"
                    and (sibling.get("name") or "").strip().casefold() == _ID
                ):
                    values.extend("PID-3|" + value for value in _values(sibling))

        def where(slot: etree._Element = slot) -> str:
            return locate(slot)

        yield from pid_party(values, where, dummies)
