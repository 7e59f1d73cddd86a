"""Persons and organisations a document names, with what belongs to each of them.

The personal-data rules judge a name, a code, a phone number and an address together ("a real
name on a registered test code" can only be seen knowing which belong to one person), so parsers
yield a :class:`~kanta_guard.model.Party` for each, besides the fields:

* **CDA R2 and HL7 V3** (namespace ``urn:hl7-org:v3``, with ``hl7fi:`` extensions): the role
  element (``patientRole``, ``assignedAuthor``, ``assignedEntity``, ``relatedSubject``,
  ``relatedEntity``, ``associatedEntity``, ``guardian``, V3 ``patient``…) holds ``id``,
  ``telecom`` and ``addr``; its player (``patient``, ``assignedPerson``, ``guardianPerson``,
  ``subject``, ``relatedPerson``, ``associatedPerson``, ``patientPerson``…) holds ``name``. An
  element whose name ends in ``Organization`` (``representedOrganization``,
  ``serviceProviderOrganization``, ``representedCustodianOrganization``…) is an organisation;
  a person playing a role inside one (V3 ``contactParty/contactPerson``, CDA
  ``intendedRecipient/informationRecipient``) is a person. A ``playingEntity`` is a person only
  with ``classCode="PSN"`` or a name in parts (it is mostly a drug or a device). Elements of no
  namespace are read as HL7 V3 ones (a CDA sent without its ``xmlns``). The parties are found by
  lxml's C-level tag filter over the ``name``, ``telecom`` and ``addr`` elements, so a document
  is not walked in Python to find them.
* **FHIR R4/STU3 XML and JSON**: ``Patient`` (and each ``Patient.contact``), ``RelatedPerson``,
  ``Practitioner``, ``Person`` and ``PractitionerRole`` are persons; ``Organization``,
  ``Location`` and ``HealthcareService`` organisations (each ``Organization.contact`` a person);
  contained resources and Bundle entries included (every resource of the document, at any
  depth, FHIR XML inside another XML format too).
* **HL7 V3 queries** (``queryByParameter/parameterList``): the patient sought, from PDQ's
  ``livingSubjectName``, ``patientAddress``, ``patientTelecom``, ``livingSubjectId`` and PIX's
  ``patientIdentifier`` values; the mother of ``mothersMaidenName``, a person of her own.
* **SAML** (2.0 and 1.x assertions, 2.0 attribute queries): the subject, with its ``NameID``
  and identifier attributes, its name, mail, phone and street attributes.

The role is the one the fields get (``roles``): the nearest enclosing element or resource that
names one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

from lxml import etree

from .. import idcode
from ..model import HETU_OID, Address, Party, PartyKind, PersonName, Role, Telecom
from ..roles import FHIR_KEY_ROLES, FHIR_RESOURCE_ROLES
from .base import normalise_system

__all__ = [
    "fhir_json_parties",
    "fhir_search_parties",
    "fhir_xml_parties",
    "oidc_parties",
    "saml_parties",
    "search_resource",
    "v3_parties",
]

V3_NS = "urn:hl7-org:v3"
FHIR_NS = "http://hl7.org/fhir"
_V3 = "{" + V3_NS + "}"
_FHIR = "{" + FHIR_NS + "}"

#: The players of CDA/V3 roles: elements holding a person's ``name`` whose parent (the role)
#: holds the person's ``id``, ``telecom`` and ``addr``.
_PLAYERS = frozenset(
    {
        "patient",
        "assignedPerson",
        "guardianPerson",
        "subject",
        "relatedPerson",
        "associatedPerson",
        "patientPerson",
        "informationRecipient",
        "assignedPrincipalPerson",
        "person",
        "contactPerson",
    }
)
#: Players that are persons only when they say so (``classCode="PSN"``) or hold a person name
#: (``given``/``family`` parts): a CDA ``participantRole/playingEntity`` is mostly a thing (a
#: drug, ``classCode="MMAT"``; a device), whose name is no person's.
_MAYBE_PLAYERS = frozenset({"playingEntity"})
#: Roles inside an organisation that a person plays: HL7 V3 ``contactParty`` (the organisation's
#: contact person), CDA ``intendedRecipient`` (played by an ``informationRecipient`` person).
#: Their people are persons, not the organisation.
_PERSON_ROLES = {"contactParty": Role.PROFESSIONAL, "intendedRecipient": Role.PARTICIPANT}
#: FHIR resource types whose content is a person, and an organisation.
FHIR_PERSONS = frozenset({"Patient", "RelatedPerson", "Practitioner", "Person", "PractitionerRole"})
FHIR_ORGANISATIONS = frozenset({"Organization", "Location", "HealthcareService"})
#: Resources whose ``contact`` elements are persons, and their role: ``Patient.contact`` (a
#: guardian, a next of kin) and ``Organization.contact`` (FHIR R4: a named contact person,
#: ``HumanName``, ``ContactPoint``, ``Address``: the organisation's staff, as the JSON parser's
#: fields have it).
_CONTACT_ROLES = {"Patient": Role.RELATED_PERSON, "Organization": Role.PROFESSIONAL}
#: FHIR XML elements that hold a resource (R4, STU3).
_FHIR_HOLDERS = frozenset({"resource", "contained", "outcome"})


def _local(tag: object) -> str:
    """A Clark name's local part ("" for a comment's or PI's tag), remembered: a document has
    few distinct tags, and this is asked of every element the parties are read from."""
    local = _LOCALS.get(tag)
    if local is None:
        local = tag.rpartition("}")[2] if isinstance(tag, str) else ""
        if len(_LOCALS) < 4096:
            _LOCALS[tag] = local
    return local


_LOCALS: dict[object, str] = {}


def _text(el: etree._Element) -> str:
    """An element's text as a reader joins it (its string value), whitespace collapsed."""
    if len(el) == 0:  # (a name part, mostly: its text alone)
        return " ".join((el.text or "").split())
    return " ".join("".join(str(t) for t in el.itertext()).split())


#: CDA/V3 elements that are organisations or places, whatever their role: their name, telecom
#: and address are no person's.
_ORGANISATIONS = frozenset(
    {
        "custodian",
        "assignedCustodian",
        "location",
        "place",
        "healthCareFacility",
        "serviceDeliveryLocation",
        "device",
        "assignedAuthoringDevice",
        "manufacturedProduct",
        "manufacturedLabeledDrug",
        "manufacturedMaterial",
    }
)


def _is_organisation(local: str) -> bool:
    return local.endswith("Organization") or local in _ORGANISATIONS


def _v3(tag: object) -> bool:
    """True for an element of HL7 V3 (CDA R2), or of no namespace: a careless system sends a
    CDA without its ``xmlns``, and its people are no less real."""
    return isinstance(tag, str) and (tag.startswith(_V3) or not tag.startswith("{"))


def _player(el: etree._Element) -> bool:
    """True if ``el`` plays a person in its parent role (see ``_PLAYERS``, ``_MAYBE_PLAYERS``)."""
    local = _local(el.tag)
    if local in _PLAYERS:
        return True
    if local not in _MAYBE_PLAYERS:
        return False
    if (el.get("classCode") or "").upper() == "PSN":
        return True
    # A name written in parts (PN) is a person's, whatever the classCode says.
    return any(
        _local(part.tag) in ("given", "family")
        for name in el
        if _local(name.tag) == "name"
        for part in name
    )


def v3_parties(
    root: etree._Element,
    locate: Callable[[etree._Element], str],
    role_of: Callable[[etree._Element], Role],
) -> Iterator[Party]:
    """The parties of a CDA R2 or HL7 V3 document (see the module docstring), in document order.

    ``locate`` gives an element's location (lazily called); ``role_of`` its role. Elements of
    no namespace count as HL7 V3 ones (a CDA sent without its ``xmlns``).
    """
    entities: dict[etree._Element, None] = {}
    queries: list[etree._Element] = []
    for el in root.iter(*_V3_TAGS):
        if el.tag in _PARAMETER_LISTS:
            queries.append(el)
            continue
        holder = el.getparent()
        if holder is None:
            continue
        local = _local(holder.tag)
        if _player(holder) and (role := holder.getparent()) is not None:
            entities[role] = None  # the player's name and contacts belong to its role
        elif _local(el.tag) != "name" or _is_organisation(local):
            entities[holder] = None
        # (Any other name is a thing's: a drug, a material, a device, a section.)
    for entity in entities:
        yield _v3_party(entity, locate, role_of)
    for query in queries:
        yield from _query_parties(query, locate)


_PARAMETER_LISTS = frozenset({_V3 + "parameterList", "parameterList"})
#: The elements the parties are found by, in one pass of lxml's tag filter: a person's or
#: organisation's ``name``, ``telecom`` and ``addr``, and an HL7 V3 query's ``parameterList``.
_V3_TAGS = (
    *(_V3 + t for t in ("name", "telecom", "addr", "parameterList")),
    *("name", "telecom", "addr", "parameterList"),
)
#: The parameters of an HL7 V3 query (PRPA_MT201306UV02 patient demographics, PRPA_MT201307UV02
#: identifiers) that describe the patient sought, and the data type of their ``value``: PN,
#: AD, TEL, II. (``mothersMaidenName`` is the mother's name: a person of its own.)
_QUERY_PATIENT = {
    "livingSubjectName": "name",
    "patientAddress": "addr",
    "livingSubjectBirthPlaceAddress": "addr",
    "patientTelecom": "telecom",
    "livingSubjectId": "id",
    "patientIdentifier": "id",
}
_QUERY_MOTHER = "mothersMaidenName"


def _query_parties(
    query: etree._Element, locate: Callable[[etree._Element], str]
) -> Iterator[Party]:
    """The persons an HL7 V3 query's parameter list describes: the patient sought (PDQ's
    ``livingSubjectName``, ``patientAddress``, ``patientTelecom``, ``livingSubjectId``; PIX's
    ``patientIdentifier``), and the mother whose maiden name it gives (``mothersMaidenName``).
    A query's person is no less real than a document's: a real name searched for in the test
    environment is a real person's data sent there."""
    identifiers: list[tuple[str, str]] = []
    names: list[PersonName] = []
    telecoms: list[Telecom] = []
    addresses: list[Address] = []
    mother: list[PersonName] = []
    for parameter in query:
        local = _local(parameter.tag)
        kind = _QUERY_PATIENT.get(local)
        if (kind is None and local != _QUERY_MOTHER) or not _v3(parameter.tag):
            continue
        for value in parameter:
            if _local(value.tag) != "value" or not _v3(value.tag):
                continue
            if local == _QUERY_MOTHER:
                mother.append(_v3_name(value))
            elif kind == "name":
                names.append(_v3_name(value))
            elif kind == "addr":
                addresses.append(_v3_address(value))
            elif kind == "telecom":
                if value.get("value"):
                    telecoms.append(Telecom(value.get("value", ""), None, value.get("use")))
            elif value.get("root"):
                identifiers.append(
                    (normalise_system(value.get("root", "")), value.get("extension", ""))
                )
    if identifiers or names or telecoms or addresses:
        yield Party(
            PartyKind.PERSON,
            Role.PATIENT,
            lambda: locate(query),
            tuple(identifiers),
            tuple(names),
            tuple(telecoms),
            tuple(addresses),
        )
    if mother:
        yield Party(PartyKind.PERSON, Role.RELATED_PERSON, lambda: locate(query), (), tuple(mother))


def _v3_party(
    entity: etree._Element,
    locate: Callable[[etree._Element], str],
    role_of: Callable[[etree._Element], Role],
) -> Party:
    identifiers: list[tuple[str, str]] = []
    names: list[PersonName] = []
    telecoms: list[Telecom] = []
    addresses: list[Address] = []
    players: list[etree._Element] = []

    def read(child: etree._Element, part: str) -> None:
        if part == "id":
            root_oid = child.get("root")
            if root_oid:
                identifiers.append((normalise_system(root_oid), child.get("extension", "")))
        elif part == "name":
            names.append(_v3_name(child))
        elif part == "telecom":
            value = child.get("value")
            if value:
                telecoms.append(Telecom(value, None, child.get("use")))
        else:
            addresses.append(_v3_address(child))

    # The role's own parts, and its players (one pass over its children); then the players'.
    for child in entity:
        part = _V3_PARTS.get(child.tag)
        if part is not None:
            read(child, part)
        elif _player(child):
            players.append(child)
    for player in players:
        for child in player:
            part = _V3_PARTS.get(child.tag)
            if part is not None:
                read(child, part)
    local = _local(entity.tag)
    role = role_of(entity)
    organisation = _is_organisation(local) or (role is Role.ORGANISATION and not players)
    if not organisation and role is Role.ORGANISATION:
        # A person playing a role inside an organisation (its contact person, a document's
        # recipient): a person, whatever the organisation around it.
        role = _PERSON_ROLES.get(local, Role.PARTICIPANT)
    return Party(
        PartyKind.ORGANISATION if organisation else PartyKind.PERSON,
        Role.ORGANISATION if organisation else role,
        lambda: locate(entity),
        tuple(identifiers),
        tuple(names),
        tuple(telecoms),
        tuple(addresses),
    )


#: The children of a CDA/V3 role or player that hold a party's data (HL7 V3 namespace, or none).
_V3_PARTS = {
    tag: local for local in ("id", "name", "telecom", "addr") for tag in (_V3 + local, local)
}
_NAME_PARTS = frozenset({"given", "family", "prefix", "suffix"})
_ADDRESS_FIELDS = frozenset({"postalCode", "city", "country"})
_ADDRESS_LINES = frozenset({"streetAddressLine", "streetName", "houseNumber", "additionalLocator"})


def _v3_name(el: etree._Element) -> PersonName:
    """A PN (EN): its parts, their qualifiers, and its text with the parts apart
    (``<given>A</given><family>B</family>`` reads "A B", as it is shown), in one pass."""
    parts: dict[str, list[str]] = {"given": [], "family": [], "prefix": [], "suffix": []}
    qualifiers: list[str] = []
    pieces = [el.text or ""]
    for child in el:
        if isinstance(child.tag, str):
            text = _text(child)
            pieces.append(text)
            local = _local(child.tag)
            if local in _NAME_PARTS:
                if text:
                    parts[local].append(text)
                qualifier = child.get("qualifier")
                if qualifier:
                    qualifiers.append(qualifier)
        pieces.append(child.tail or "")
    return PersonName(
        tuple(parts["given"]),
        tuple(parts["family"]),
        tuple(parts["prefix"]),
        tuple(parts["suffix"]),
        el.get("use"),
        tuple(qualifiers),
        " ".join(" ".join(pieces).split()),
    )


def _v3_address(el: etree._Element) -> Address:
    """An AD: its street lines, postal code, city and country, and its text with the parts apart
    (as it is shown), in one pass."""
    lines: list[str] = []
    fields = {"postalCode": "", "city": "", "country": ""}
    pieces = [el.text or ""]
    for child in el:
        if isinstance(child.tag, str):
            text = _text(child)
            pieces.append(text)
            local = _local(child.tag)
            if local in _ADDRESS_FIELDS:
                fields[local] = text
            elif text and local in _ADDRESS_LINES:
                lines.append(text)
        pieces.append(child.tail or "")
    return Address(
        tuple(lines),
        fields["postalCode"],
        fields["city"],
        fields["country"],
        el.get("use"),
        " ".join(" ".join(pieces).split()),
    )


# -- FHIR XML --------------------------------------------------------------------------------


def _value(el: etree._Element | None) -> str:
    return (el.get("value") or "") if el is not None else ""


def _fhir_kids(el: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in el if c.tag == _FHIR + name]


def fhir_xml_parties(
    root: etree._Element,
    locate: Callable[[etree._Element], str],
    role_of: Callable[[etree._Element], Role],
) -> Iterator[Party]:
    """The parties of a FHIR XML document: each person and organisation resource at any depth
    (contained, Bundle entries, FHIR inside another XML format), each ``Patient.contact`` and
    ``Organization.contact``, a patient's mother's maiden name; and, outside an organisation,
    a HumanName, Address or ContactPoint as an extension's or parameter's value and a
    Reference's ``display`` of a person (as ``_json_extras``)."""
    for el in root.iter(*_FHIR_TAGS):
        resource = _local(el.tag)
        if resource in _FHIR_PLAIN:
            party = _fhir_xml_extra(el, resource, locate, role_of)
            if party is not None:
                yield party
            continue
        # A resource is the element of that name directly under a resource holder (Bundle
        # entry/resource and response/outcome, Parameters parameter/resource, contained), or
        # the root of the FHIR content: the document's, or FHIR XML inside another format (a
        # SOAP body, an Atom entry), whose parent is of another namespace.
        parent = el.getparent()
        if (
            parent is not None
            and parent.tag.startswith(_FHIR)
            and _local(parent.tag) not in _FHIR_HOLDERS
        ):
            continue
        organisation = resource in FHIR_ORGANISATIONS
        yield _fhir_xml_party(el, organisation, FHIR_RESOURCE_ROLES.get(resource), locate, role_of)
        contact_role = _CONTACT_ROLES.get(resource)
        if contact_role is not None:
            for contact in _fhir_kids(el, "contact"):
                yield _fhir_xml_party(contact, False, contact_role, locate, role_of)
        if resource == "Patient":
            for extension in _fhir_kids(el, "extension"):
                maiden = _value(_first(extension, "valueString"))
                if maiden and extension.get("url") == MOTHERS_MAIDEN_NAME:
                    yield Party(
                        PartyKind.PERSON,
                        Role.RELATED_PERSON,
                        partial(locate, extension),
                        names=(PersonName((), (maiden,)),),
                    )


_FHIR_PLAIN = frozenset({"valueHumanName", "valueAddress", "valueContactPoint", "display"})
_FHIR_TAGS = tuple(_FHIR + t for t in (*FHIR_PERSONS, *FHIR_ORGANISATIONS, *_FHIR_PLAIN))


def _fhir_xml_extra(
    el: etree._Element,
    local: str,
    locate: Callable[[etree._Element], str],
    role_of: Callable[[etree._Element], Role],
) -> Party | None:
    """A person a FHIR XML element holds outside a person resource's own parts (as
    ``_json_extras``): ``valueHumanName``, ``valueAddress``, ``valueContactPoint``, a person
    Reference's ``display``; None if it is none, or an organisation's."""
    where = partial(locate, el)
    if local == "display":
        parent = el.getparent()
        text = _value(el)
        if parent is None or not text.strip():
            return None
        target = _value(_first(parent, "type")).rpartition("/")[2]
        if not target:
            reference = _value(_first(parent, "reference"))
            target = (
                next((t for t in reversed(reference.split("/")) if t in FHIR_PERSONS), "")
                if "/" in reference
                else ""
            )
        if target not in FHIR_PERSONS:
            return None
        identifier = _first(parent, "identifier")
        identifiers = (
            (
                (
                    normalise_system(_value(_first(identifier, "system"))),
                    _value(_first(identifier, "value")),
                ),
            )
            if identifier is not None
            else ()
        )
        role = FHIR_RESOURCE_ROLES.get(target) or role_of(el)
        return Party(PartyKind.PERSON, role, where, identifiers, (PersonName(text=text),))
    role = role_of(el)
    if role is Role.ORGANISATION:
        return None
    if local == "valueHumanName":
        return Party(PartyKind.PERSON, role, where, names=(_fhir_xml_name(el),))
    if local == "valueAddress":
        return Party(PartyKind.PERSON, role, where, addresses=(_fhir_xml_address(el),))
    telecom = _fhir_xml_telecom(el)
    return Party(PartyKind.PERSON, role, where, telecoms=(telecom,)) if telecom.value else None


def _fhir_xml_party(
    el: etree._Element,
    organisation: bool,
    role: Role | None,
    locate: Callable[[etree._Element], str],
    role_of: Callable[[etree._Element], Role],
) -> Party:
    identifiers = tuple(
        (normalise_system(_value(_first(i, "system"))), _value(_first(i, "value")))
        for i in _fhir_kids(el, "identifier")
    )
    names: list[PersonName] = []
    for name in _fhir_kids(el, "name"):
        if organisation:
            names.append(PersonName(text=_value(name)))
            continue
        names.append(_fhir_xml_name(name))
    telecoms = tuple(
        telecom for t in _fhir_kids(el, "telecom") if (telecom := _fhir_xml_telecom(t)).value
    )
    addresses = tuple(
        _fhir_xml_address(a) for a in [*_fhir_kids(el, "address"), *_fhir_kids(el, "addr")]
    )
    kind = PartyKind.ORGANISATION if organisation else PartyKind.PERSON
    return Party(
        kind,
        Role.ORGANISATION if organisation else (role or role_of(el)),
        lambda: locate(el),
        identifiers,
        tuple(names),
        telecoms,
        addresses,
    )


def _fhir_xml_name(name: etree._Element) -> PersonName:
    """A HumanName, with the names its parts' extensions hold (as ``_json_name``)."""
    parts: dict[str, list[str]] = {"given": [], "family": [], "prefix": [], "suffix": []}
    for child in name:
        local = _local(child.tag)
        if local not in parts or not child.tag.startswith(_FHIR):
            continue
        value = _value(child)
        if value:
            parts[local].append(value)
        for extension in _fhir_kids(child, "extension"):
            extra = _value(_first(extension, "valueString"))
            if extra:
                prefix = (extension.get("url") or "").endswith("-prefix")
                parts["prefix" if prefix and local == "family" else local].append(extra)
    return PersonName(
        tuple(parts["given"]),
        tuple(parts["family"]),
        tuple(parts["prefix"]),
        tuple(parts["suffix"]),
        _value(_first(name, "use")) or None,
        (),
        _value(_first(name, "text")),
    )


def _fhir_xml_telecom(t: etree._Element) -> Telecom:
    return Telecom(
        _value(_first(t, "value")),
        _value(_first(t, "system")) or None,
        _value(_first(t, "use")) or None,
    )


def _fhir_xml_address(a: etree._Element) -> Address:
    return Address(
        tuple(_value(line) for line in _fhir_kids(a, "line") if _value(line)),
        _value(_first(a, "postalCode")),
        _value(_first(a, "city")),
        _value(_first(a, "country")),
        _value(_first(a, "use")) or None,
        _value(_first(a, "text")),
    )


def _first(el: etree._Element, name: str) -> etree._Element | None:
    for child in el:
        if child.tag == _FHIR + name:
            return child
    return None


# -- FHIR JSON -------------------------------------------------------------------------------


def fhir_json_parties(doc: object, base: str = "") -> Iterator[Party]:
    """The parties of a FHIR JSON document (plain ``json.loads`` objects): every person and
    organisation resource at any depth, and each ``Patient.contact`` and
    ``Organization.contact``; and, outside an organisation, a HumanName, Address or
    ContactPoint as an extension's or parameter's value, a mother's maiden name, a person
    Reference's ``display`` (``_json_extras``). Located by JSON pointer (``base`` before it:
    the payload's location), written out only for the parties found."""
    stack: list[tuple[object, _Chain, Role]] = [(doc, None, Role.UNKNOWN)]
    containers = (dict, list)
    while stack:
        node, chain, role = stack.pop()
        if isinstance(node, dict):
            resource = node.get("resourceType")
            if isinstance(resource, str):
                if resource in FHIR_PERSONS or resource in FHIR_ORGANISATIONS:
                    pointer = _pointer(chain)
                    organisation = resource in FHIR_ORGANISATIONS
                    own = FHIR_RESOURCE_ROLES.get(resource, role)
                    yield _json_party(node, organisation, own, base, pointer)
                    contact_role = _CONTACT_ROLES.get(resource)
                    if contact_role is not None:
                        for index, contact in enumerate(_list(node.get("contact"))):
                            if isinstance(contact, dict):
                                where = f"{pointer}/contact/{index}"
                                yield _json_party(contact, False, contact_role, base, where)
                role = FHIR_RESOURCE_ROLES.get(resource, Role.DOCUMENT)
            values = plain = False
            for key, value in reversed(list(node.items())):
                if isinstance(value, containers):
                    stack.append((value, (chain, key), FHIR_KEY_ROLES.get(key, role)))
                    if key in _VALUES:
                        values = True
                elif key in _PLAIN:
                    plain = True
            # (A plain display or valueString is a person's only in a Reference or an
            # extension: a Coding's display is not looked at.)
            if plain and not values:
                values = "reference" in node or "type" in node or "url" in node
            if values and role is not Role.ORGANISATION and not isinstance(resource, str):
                yield from _json_extras(node, _pointer(chain), role, base)
        elif isinstance(node, list):
            for index in range(len(node) - 1, -1, -1):
                value = node[index]
                if isinstance(value, containers):
                    stack.append((value, (chain, index), role))


#: A JSON pointer as the walk builds it: the parent's, and the key or index (None: the root).
type _Chain = tuple[_Chain, str | int] | None


def _pointer(chain: _Chain) -> str:
    """The JSON pointer (RFC 6901) of a walk's chain ("" for the root)."""
    tokens: list[str] = []
    while chain is not None:
        chain, token = chain
        tokens.append(_escape(token) if isinstance(token, str) else str(token))
    return "".join("/" + t for t in reversed(tokens))


#: The keys of an element that may hold a person outside a person resource (``_json_extras``).
_VALUES = frozenset({"valueHumanName", "valueAddress", "valueContactPoint"})
_PLAIN = frozenset({"valueString", "display"})


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,) if value else ()
    return tuple(v for v in _list(value) if isinstance(v, str) and v)


def _str(mapping: Mapping[str, object], key: str) -> str:
    value = mapping.get(key)
    return value if isinstance(value, str) else ""


def _json_party(
    node: dict[str, Any], organisation: bool, role: Role, base: str, pointer: str
) -> Party:
    identifiers = tuple(
        (normalise_system(_str(i, "system")), _str(i, "value"))
        for i in _list(node.get("identifier"))
        if isinstance(i, dict)
    )
    names: list[PersonName] = []
    raw_names = node.get("name")
    if organisation:
        names.extend(PersonName(text=n) for n in _strings(raw_names))
    else:
        for name in _list(raw_names) if not isinstance(raw_names, dict) else [raw_names]:
            if not isinstance(name, dict):
                continue
            names.append(_json_name(name))
    telecoms = tuple(
        _json_telecom(t)
        for t in _list(node.get("telecom"))
        if isinstance(t, dict) and _str(t, "value")
    )
    raw_addresses = node.get("address")
    address_list = [raw_addresses] if isinstance(raw_addresses, dict) else _list(raw_addresses)
    addresses = tuple(_json_address(a) for a in address_list if isinstance(a, dict))
    where = f"{base}:{pointer or '/'}" if base else (pointer or "/")
    kind = PartyKind.ORGANISATION if organisation else PartyKind.PERSON
    return Party(
        kind,
        Role.ORGANISATION if organisation else role,
        where,
        identifiers,
        tuple(names),
        telecoms,
        addresses,
    )


def _json_name(name: dict[str, Any]) -> PersonName:
    """A HumanName, with the names its parts' extensions hold (``_family``: FHIR's
    ``humanname-own-name``, ``humanname-partner-name``, ``humanname-fathers-family``…; the
    ``…-prefix`` ones are prefixes)."""
    given = _strings(name.get("given"))
    family = _strings(name.get("family"))  # (STU3/R4: one string; older: a list)
    prefix = _strings(name.get("prefix"))
    suffix = _strings(name.get("suffix"))
    if "_given" in name or "_family" in name or "_prefix" in name or "_suffix" in name:
        given += _extension_strings(name.get("_given"))
        prefix += _extension_strings(name.get("_prefix"))
        suffix += _extension_strings(name.get("_suffix"))
        for url, value in _extension_values(name.get("_family")):
            if url.endswith("-prefix"):
                prefix += (value,)
            else:
                family += (value,)
    return PersonName(
        given, family, prefix, suffix, _str(name, "use") or None, (), _str(name, "text")
    )


def _json_telecom(point: dict[str, Any]) -> Telecom:
    return Telecom(_str(point, "value"), _str(point, "system") or None, _str(point, "use") or None)


def _json_address(a: dict[str, Any]) -> Address:
    return Address(
        _strings(a.get("line")),
        _str(a, "postalCode"),
        _str(a, "city"),
        _str(a, "country"),
        _str(a, "use") or None,
        _str(a, "text"),
    )


def _extension_values(element: object) -> Iterator[tuple[str, str]]:
    """The ``(url, valueString)`` of a primitive's extensions (``{"extension": [...]}``), or of
    each item of a list of them (``_given``: ``[null, {"extension": [...]}]``)."""
    for item in _list(element) if isinstance(element, list) else [element]:
        if not isinstance(item, dict):
            continue
        for extension in _list(item.get("extension")):
            if isinstance(extension, dict):
                value = extension.get("valueString")
                if isinstance(value, str) and value:
                    yield _str(extension, "url"), value


def _extension_strings(element: object) -> tuple[str, ...]:
    if element is None:
        return ()
    return tuple(value for _, value in _extension_values(element))


#: The extension of a patient's mother's maiden name (FHIR core): a person of its own.
MOTHERS_MAIDEN_NAME = "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"


def _json_extras(node: dict[str, Any], pointer: str, role: Role, base: str) -> Iterator[Party]:
    """Persons a FHIR JSON element holds outside a person resource's own ``name``,
    ``telecom`` and ``address``: a HumanName, Address or ContactPoint as an extension's or a
    parameter's value (``valueHumanName``…: the person of the resource around it), a mother's
    maiden name, a Reference's ``display`` of a person (``Practitioner/1``: its name as
    written)."""
    where = f"{base}:{pointer or '/'}" if base else (pointer or "/")
    human = node.get("valueHumanName")
    if isinstance(human, dict):
        yield Party(PartyKind.PERSON, role, where, names=(_json_name(human),))
    address = node.get("valueAddress")
    if isinstance(address, dict):
        yield Party(PartyKind.PERSON, role, where, addresses=(_json_address(address),))
    point = node.get("valueContactPoint")
    if isinstance(point, dict) and _str(point, "value"):
        yield Party(PartyKind.PERSON, role, where, telecoms=(_json_telecom(point),))
    maiden = node.get("valueString")
    if isinstance(maiden, str) and maiden and node.get("url") == MOTHERS_MAIDEN_NAME:
        yield Party(
            PartyKind.PERSON, Role.RELATED_PERSON, where, names=(PersonName((), (maiden,)),)
        )
    display = node.get("display")
    if isinstance(display, str) and display.strip():
        target = _reference_type(node)
        if target in FHIR_PERSONS:
            identifier = node.get("identifier")
            identifiers = (
                ((normalise_system(_str(identifier, "system")), _str(identifier, "value")),)
                if isinstance(identifier, dict)
                else ()
            )
            own = FHIR_RESOURCE_ROLES.get(target, role)
            yield Party(PartyKind.PERSON, own, where, identifiers, (PersonName(text=display),))


def _reference_type(node: dict[str, Any]) -> str:
    """The resource type a FHIR Reference points at: its ``type``, or the type in its
    ``reference`` (``Practitioner/1``, ``https://x/fhir/Patient/2/_history/1``); "" if none."""
    kind = _str(node, "type")
    if kind:
        return kind.rpartition("/")[2]  # (R4: a type or its StructureDefinition URL)
    reference = _str(node, "reference")
    if "/" not in reference:
        return ""
    found = ""
    for segment in reference.split("/"):
        if segment in FHIR_PERSONS or segment in FHIR_ORGANISATIONS:
            found = segment
    return found


# -- SAML ------------------------------------------------------------------------------------

_SAML2 = "{urn:oasis:names:tc:SAML:2.0:assertion}"
_SAML1 = "{urn:oasis:names:tc:SAML:1.0:assertion}"
_SAMLP = "{urn:oasis:names:tc:SAML:2.0:protocol}"
#: The elements that hold one subject's statements: an assertion (SAML 2.0, 1.x), or a SAML
#: 2.0 attribute query (its ``Subject`` and the ``Attribute`` values asked about).
_SAML_SUBJECTS = frozenset({_SAML2 + "Assertion", _SAML1 + "Assertion", _SAMLP + "AttributeQuery"})
_SAML_NAME_IDS = frozenset({_SAML2 + "NameID", _SAML1 + "NameIdentifier"})
_SAML_TAGS = (*_SAML_NAME_IDS, _SAML2 + "Attribute", _SAML1 + "Attribute")
_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
_EIDAS = "http://eidas.europa.eu/attributes/naturalperson/"
#: What a SAML attribute about the subject holds, by its ``Name`` (an OID, bare or as a URN;
#: a URI) or ``FriendlyName`` (SAML 1: ``AttributeName``), folded to lower case: the X.500 and
#: LDAP attribute types (RFC 4519, RFC 4524, inetOrgPerson RFC 2798), Suomi.fi's and the
#: Finnish trust network's given names (``1.2.246.575.1.14``), the WS-Federation claim types,
#: eIDAS natural-person attributes.
_SAML_ATTRIBUTES = {
    **dict.fromkeys(
        ("2.5.4.4", "sn", "surname", _CLAIMS + "surname", _EIDAS + "currentfamilyname"),
        "family",
    ),
    **dict.fromkeys(
        (
            "2.5.4.42",
            "givenname",
            "1.2.246.575.1.14",
            "firstname",
            _CLAIMS + "givenname",
            _EIDAS + "currentgivenname",
        ),
        "given",
    ),
    **dict.fromkeys(
        (
            "2.5.4.3",
            "cn",
            "commonname",
            "2.16.840.1.113730.3.1.241",
            "displayname",
            "fullname",
            _CLAIMS + "name",
        ),
        "name",
    ),
    **dict.fromkeys(
        (
            "0.9.2342.19200300.100.1.3",
            "mail",
            "email",
            "emailaddress",
            _CLAIMS + "emailaddress",
        ),
        "email",
    ),
    **dict.fromkeys(
        (
            "2.5.4.20",
            "telephonenumber",
            "0.9.2342.19200300.100.1.41",
            "mobile",
            "0.9.2342.19200300.100.1.20",
            "homephone",
            _CLAIMS + "mobilephone",
            _CLAIMS + "homephone",
            _CLAIMS + "otherphone",
        ),
        "phone",
    ),
    **dict.fromkeys(
        (
            "2.5.4.9",
            "street",
            "2.5.4.16",
            "postaladdress",
            "0.9.2342.19200300.100.1.39",
            "homepostaladdress",
            _CLAIMS + "streetaddress",
            _EIDAS + "currentaddress",
        ),
        "street",
    ),
}
_OID = frozenset("0123456789.")


def saml_parties(
    root: etree._Element,
    locate: Callable[[etree._Element], str],
    role_of: Callable[[etree._Element], Role],
) -> Iterator[Party]:
    """The subject of each SAML assertion (2.0, 1.x) or attribute query, as a person: its
    ``NameID`` (``NameIdentifier``) and identifier attributes (an OID name that is no name or
    contact attribute: the identity code under ``urn:oid:1.2.246.21``) as its codes, the name
    attributes (``sn``, ``givenName``, Suomi.fi's given names, ``cn``, ``displayName``, by
    friendly name and by OID) as its names, ``mail`` and the phone attributes as its telecoms,
    the street attributes as its addresses. Its role is the subject's (the user of the system
    under test, for an assertion)."""
    subjects: dict[etree._Element, list[etree._Element]] = {}
    for el in root.iter(*_SAML_TAGS):
        holder = el.getparent()
        while holder is not None and holder.tag not in _SAML_SUBJECTS:
            holder = holder.getparent()
        if holder is not None:
            subjects.setdefault(holder, []).append(el)
    for subject, elements in subjects.items():
        party = _saml_party(subject, elements, locate, role_of)
        if party is not None:
            yield party


def _saml_party(
    subject: etree._Element,
    elements: list[etree._Element],
    locate: Callable[[etree._Element], str],
    role_of: Callable[[etree._Element], Role],
) -> Party | None:
    identifiers: list[tuple[str, str]] = []
    given: list[str] = []
    family: list[str] = []
    names: list[PersonName] = []
    telecoms: list[Telecom] = []
    streets: list[str] = []
    for el in elements:
        if el.tag in _SAML_NAME_IDS:
            value = _text(el)
            if value:
                system = HETU_OID if idcode.classify(value) is not idcode.Kind.INVALID else ""
                identifiers.append((system or el.get("Format", ""), value))
            continue
        keys = [
            normalise_system(key).lower()
            for key in (el.get("Name"), el.get("FriendlyName"), el.get("AttributeName"))
            if key
        ]
        kind = next((k for k in map(_SAML_ATTRIBUTES.get, keys) if k), None)
        values = [
            text for child in el if _local(child.tag) == "AttributeValue" and (text := _text(child))
        ]
        if kind is None:
            oid = next((k for k in keys if k and set(k) <= _OID and "." in k), None)
            if oid is not None:
                identifiers.extend((oid, value) for value in values)
        elif kind == "family":
            family.extend(values)
        elif kind == "given":
            given.extend(values)
        elif kind == "name":
            names.extend(PersonName(text=value) for value in values)
        elif kind in ("email", "phone"):
            telecoms.extend(Telecom(value, kind) for value in values)
        else:
            streets.extend(values)
    if given or family:
        names.insert(0, PersonName(tuple(given), tuple(family)))
    addresses = tuple(Address((street,), text=street) for street in streets)
    if not (identifiers or names or telecoms or addresses):
        return None
    return Party(
        PartyKind.PERSON,
        role_of(subject),
        lambda: locate(subject),
        tuple(identifiers),
        tuple(names),
        tuple(telecoms),
        addresses,
    )


# -- FHIR search: the person a query asks about --------------------------------------------------

#: FHIR search parameters (R4 and STU3) that exist on person resources only (Patient,
#: Practitioner, RelatedPerson, Person), those that organisations have as well, and the
#: address's parts.
_SEARCH_PERSON_ONLY = frozenset({"family", "given", "phonetic"})
_SEARCH_SHARED = frozenset({"name", "address", "identifier"})
_SEARCH_ADDRESS_PARTS = frozenset({"address-postalcode", "address-city", "address-country"})
#: Search parameters of references that name persons only (R4: ``Observation.patient`` is a
#: Patient, ``Coverage.beneficiary`` too, ``PractitionerRole.practitioner`` a Practitioner).
_PERSON_REFERENCES = frozenset({"patient", "beneficiary", "practitioner"})
#: Values taken of one parameter (its repeats and comma-separated alternatives): bounded.
_SEARCH_VALUES = 64


def search_resource(path: str) -> str:
    """The resource type a FHIR search targets from a request path (``[base]/Patient``,
    ``[base]/Patient/_search``): the last segment if it is a type's name, else ""."""
    segments = [segment for segment in path.split("/") if segment]
    if segments and segments[-1] == "_search":
        segments.pop()
    last = segments[-1] if segments else ""
    return last if last[:1].isupper() and last.isascii() and last.isalpha() else ""


def fhir_search_parties(resource: str, pairs: list[tuple[str, str]], where: str) -> Iterator[Party]:
    """The persons a FHIR search asks about (R4 §3.1.1 Search): ``Patient?family=…&given=…``,
    ``Observation?subject:Patient.name=…``. A search for a real person by name or street
    address sends that person's data to Kanta as surely as a document does, and the name
    parts stand in separate parameters no field holds together.

    Parameters group by their chain (``patient.family`` and ``patient.given`` are one person;
    unchained ones are the searched resource's, a person type's only). A chain ending in a
    reference whose role is known (``patient``, ``subject``, ``performer``; a ``:Type``
    modifier naming a person type) takes that role, an organisation's is no person's; any
    other chain is read only for the parameters that persons alone have (``family``,
    ``given``, ``phonetic``). Repeated parameters are all of one name (AND); a value's
    comma-separated alternatives (OR) are each a part it could be: all are judged together,
    as the name's parts. ``:missing`` asks no value.
    """
    groups: dict[str, dict[str, list[str]]] = {}
    roles: dict[str, Role] = {}
    for raw_name, value in pairs:
        name = raw_name.strip()
        chain, _, last = name.rpartition(".")
        param, _, modifier = last.partition(":")
        if modifier == "missing" or not value:
            continue
        person_only = param in _SEARCH_PERSON_ONLY
        if not (person_only or param in _SEARCH_SHARED or param in _SEARCH_ADDRESS_PARTS):
            continue
        role = _search_role(resource, chain, person_only)
        if role is None:
            continue
        roles[chain] = role
        values = groups.setdefault(chain, {}).setdefault(param, [])
        if len(values) < _SEARCH_VALUES:
            values.extend(_alternatives(value)[: _SEARCH_VALUES - len(values)])
    for chain, group in groups.items():
        party = _search_party(group, roles[chain], where)
        if party is not None:
            yield party


def _search_role(resource: str, chain: str, person_only: bool) -> Role | None:
    if not chain:
        if resource in FHIR_PERSONS:
            return FHIR_RESOURCE_ROLES.get(resource, Role.UNKNOWN)
        return None
    head, _, target = chain.rpartition(".")[2].partition(":")
    if target:
        return FHIR_RESOURCE_ROLES.get(target) if target in FHIR_PERSONS else None
    if head in _PERSON_REFERENCES:
        return FHIR_KEY_ROLES[head]
    # (Any other reference may be an organisation's, a group's or a device's, which have a
    # name and an address too: only what persons alone have is a person's.)
    if not person_only:
        return None
    role = FHIR_KEY_ROLES.get(head, Role.UNKNOWN)
    return None if role in (Role.ORGANISATION, Role.NARRATIVE) else role


def _alternatives(value: str) -> list[str]:
    """A search value's comma-separated alternatives, ``\\,`` and the other escapes undone."""
    if "\\" not in value:
        return [text for part in value.split(",") if (text := part.strip())]
    out: list[str] = []
    piece: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            piece.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            out.append("".join(piece))
            piece = []
        else:
            piece.append(char)
    out.append("".join(piece))
    return [text for part in out if (text := part.strip())]


def _search_party(group: dict[str, list[str]], role: Role, where: str) -> Party | None:
    given = tuple(group.get("given", ()))
    names = [PersonName(given, (family,)) for family in group.get("family", ())]
    if given and not names:
        names.append(PersonName(given))
    names.extend(
        PersonName(text=text) for text in (*group.get("name", ()), *group.get("phonetic", ()))
    )
    first = {part: values[0] for part in _SEARCH_ADDRESS_PARTS if (values := group.get(part))}
    addresses = tuple(
        Address(
            (),
            first.get("address-postalcode", ""),
            first.get("address-city", ""),
            first.get("address-country", ""),
            text=text,
        )
        for text in group.get("address", ())
    )
    identifiers: list[tuple[str, str]] = []
    for token in group.get("identifier", ()):
        system, bar, code = token.rpartition("|")
        if bar:
            identifiers.append((normalise_system(system), code.strip()))
        elif idcode.classify(code) is not idcode.Kind.INVALID:
            identifiers.append((HETU_OID, code.strip()))  # a bare code: its system unsaid
    if not (names or addresses):
        return None  # (an identifier alone: the identity-code rules read it as a field)
    return Party(PartyKind.PERSON, role, where, tuple(identifiers), tuple(names), (), addresses)


# -- OpenID Connect claims: the subject of an ID token or a userinfo answer ----------------------

#: OpenID Connect Core 1.0 §5.1 standard claims that name a person.
_OIDC_GIVEN = ("given_name", "middle_name")


def oidc_parties(doc: object, location: str) -> Iterator[Party]:
    """The persons OpenID Connect standard claims name (Core 1.0 §5.1): each JSON object with
    ``given_name``, ``family_name`` or ``middle_name`` (an ID token's or a userinfo answer's
    subject, in a JWT a client sends as its bearer token), its ``address`` claim
    (``street_address``, ``postal_code``, ``locality``, ``country``, ``formatted``) with it.
    A ``name`` claim alone is free text the narrative rule reads. Every object once: linear.
    """
    base = location or ""
    stack: list[tuple[object, str]] = [(doc, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, list):
            stack.extend((item, f"{path}/{number}") for number, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        given = tuple(v for k in _OIDC_GIVEN if isinstance(v := node.get(k), str) and v.strip())
        family = node.get("family_name")
        families = (family,) if isinstance(family, str) and family.strip() else ()
        if given or families:
            addresses: tuple[Address, ...] = ()
            address = node.get("address")
            if isinstance(address, dict):
                part = {k: v for k, v in address.items() if isinstance(v, str)}
                street = part.get("street_address", "").strip()
                addresses = (
                    Address(
                        (street,) if street else (),
                        part.get("postal_code", ""),
                        part.get("locality", ""),
                        part.get("country", ""),
                        text=part.get("formatted", ""),
                    ),
                )
            where = f"{base}:{path or '/'}" if base else (path or "/")
            yield Party(
                PartyKind.PERSON,
                Role.USER,
                where,
                (),
                (PersonName(given, families),),
                (),
                addresses,
            )
        stack.extend((value, f"{path}/{key}") for key, value in node.items())
