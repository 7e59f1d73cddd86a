"""Parsers yield the persons and organisations of a document, each with its role, identifiers,
names (parts, use, qualifiers), telecoms and addresses, and where it is."""

from __future__ import annotations

import json

import pytest
from helpers import TEST_CODES, bundle, cda, render

from kanta_guard.mediatype import parse_media_type
from kanta_guard.model import Address, Context, Party, PartyKind, Payload, PersonName, Role
from kanta_guard.parsers import PARSERS
from kanta_guard.parsers.base import ScanState
from kanta_guard.parsers.parties import fhir_search_parties, search_resource
from kanta_guard.policy import default_policy


def parties(body: str, content_type: str = "application/xml") -> list[Party]:
    """Every party the parsers yield for ``body`` (nested payloads not followed)."""
    payload = Payload(body.encode("utf-8"), content_type, "", Context())
    media = parse_media_type(content_type)
    parser = next(p for p in PARSERS if p.claims(media, payload))
    state = ScanState(default_policy().limits)
    return [item for item in parser.parse(payload, media, state) if isinstance(item, Party)]


def by_role(found: list[Party], role: Role) -> list[Party]:
    return [p for p in found if p.role is role]


def test_cda_patient_guardian_author_and_organisations() -> None:
    found = parties(cda())
    patient = by_role(found, Role.PATIENT)
    assert len(patient) == 1
    assert ("1.2.246.21", TEST_CODES["patient"]) in patient[0].identifiers
    (name,) = patient[0].names
    assert name.given == ("Testi",) and name.family == ("Lapsi-Potilas",)
    guardian = by_role(found, Role.GUARDIAN)
    assert [n.family for p in guardian for n in p.names] == [("Huoltaja",)]
    authors = by_role(found, Role.AUTHOR)
    assert any(n.family == ("Testinen Tes",) for p in authors for n in p.names)
    organisations = [p for p in found if p.kind is PartyKind.ORGANISATION]
    assert organisations and all(p.role is Role.ORGANISATION for p in organisations)
    # The organisation keeps its own telecom: a switchboard is not a person's.
    assert any(t.value.startswith("tel:") for p in organisations for t in p.telecoms)
    assert all(not p.telecoms for p in found if p.kind is PartyKind.PERSON)


def test_cda_person_contacts_and_address_belong_to_the_person() -> None:
    doc = cda().replace(
        "<patient>",
        '<addr use="H"><streetAddressLine>Testikatu 1</streetAddressLine>'
        "<postalCode>00100</postalCode><city>Helsinki</city></addr>"
        '<telecom value="mailto:testi@example.com" use="HP"/><patient>',
        1,
    )
    (patient,) = by_role(parties(doc), Role.PATIENT)
    assert patient.kind is PartyKind.PERSON
    assert [t.value for t in patient.telecoms] == ["mailto:testi@example.com"]
    (address,) = patient.addresses
    assert address.lines == ("Testikatu 1",)
    assert (address.postal_code, address.city, address.use) == ("00100", "Helsinki", "H")
    assert "/patientRole" in patient.location


def test_cda_name_use_and_qualifiers() -> None:
    doc = cda().replace(
        "<name><given>Testi</given><family>Lapsi-Potilas</family></name>",
        '<name use="L"><prefix>Dr</prefix><given qualifier="CL">Testi</given>'
        "<given>Toinen</given><family>Lapsi-Potilas</family></name>",
        1,
    )
    (patient,) = by_role(parties(doc), Role.PATIENT)
    (name,) = patient.names
    assert name.use == "L" and name.prefix == ("Dr",)
    assert name.given == ("Testi", "Toinen") and name.qualifiers == ("CL",)
    assert name.text == "Dr Testi Toinen Lapsi-Potilas"


def test_fhir_json_patient_contact_contained_and_organisation() -> None:
    doc = json.loads(bundle())
    patient = doc["entry"][0]["resource"]
    patient["telecom"] = [{"system": "phone", "value": "+358 40 0000001", "use": "mobile"}]
    patient["address"] = [{"line": ["Testikatu 1"], "postalCode": "00100", "city": "Helsinki"}]
    doc["entry"].append(
        {
            "resource": {
                "resourceType": "Organization",
                "name": "Testisairaala",
                "telecom": [{"system": "email", "value": "kirjaamo@sairaala.fi"}],
            }
        }
    )
    found = parties(json.dumps(doc), "application/fhir+json")
    (person,) = [p for p in found if p.role is Role.PATIENT]
    assert person.names[0].family == ("Testinen",) and person.names[0].given == ("Testi",)
    assert person.telecoms[0].system == "phone" and person.telecoms[0].use == "mobile"
    assert person.addresses[0].lines == ("Testikatu 1",)
    assert person.location == "/entry/0/resource"
    assert ("1.2.246.21", TEST_CODES["patient"]) in person.identifiers
    contact = [p for p in found if p.location == "/entry/0/resource/contact/0"]
    assert contact and contact[0].role is Role.RELATED_PERSON
    assert contact[0].names[0].family == ("Huoltaja",)
    contained = [p for p in found if p.location.endswith("/contained/0")]
    assert contained and ("1.2.246.21", TEST_CODES["contained"]) in contained[0].identifiers
    (organisation,) = [p for p in found if p.kind is PartyKind.ORGANISATION]
    assert organisation.names[0].text == "Testisairaala"


def test_fhir_xml_patient() -> None:
    found = parties(render("fhir_patient.xml"), "application/fhir+xml")
    persons = [p for p in found if p.kind is PartyKind.PERSON]
    assert persons and persons[0].role is Role.PATIENT
    assert any(p.names for p in persons)


def test_hl7v3_wrapper_persons() -> None:
    """An HL7 V3 message's own persons (controlAct authorOrPerformer, patientPerson)."""
    doc = (
        '<PRPA_IN201305 xmlns="urn:hl7-org:v3"><controlActProcess><authorOrPerformer>'
        '<assignedPerson><id root="1.2.246.21" extension="010181-900C"/>'
        "<assignedPerson><name><given>Testi</given><family>Ammattilainen</family></name>"
        "</assignedPerson></assignedPerson></authorOrPerformer>"
        '<subject><patient><id root="1.2.246.21" extension="020516C903K"/>'
        "<patientPerson><name><given>Testi</given><family>Potilas</family></name>"
        '<telecom value="tel:+358400000001"/></patientPerson></patient></subject>'
        "</controlActProcess></PRPA_IN201305>"
    )
    found = parties(doc)
    names = {(p.role, n.family) for p in found for n in p.names}
    assert (Role.PATIENT, ("Potilas",)) in names
    assert any(family == ("Ammattilainen",) for _, family in names)
    (patient,) = [p for p in found if p.role is Role.PATIENT]
    assert ("1.2.246.21", "020516C903K") in patient.identifiers
    assert [t.value for t in patient.telecoms] == ["tel:+358400000001"]


def test_the_walk_and_the_fast_path_yield_the_same_parties() -> None:
    """Parties come from the tree whichever way the fields are read (a document with a real
    code walks it; a clean one does not)."""
    clean = parties(cda())
    names = [(p.role, n.family) for p in clean for n in p.names]
    assert names
    assert names == [(p.role, n.family) for p in parties(cda() + " ") for n in p.names]


def test_hl7v3_query_parameters_are_the_patient_sought_and_the_mother() -> None:
    """A PDQ query's parameters (PRPA_MT201306UV02) describe a person: the patient sought (name,
    address, telecom, identifier) and the mother whose maiden name it gives."""
    doc = (
        '<PRPA_IN201305UV02 xmlns="urn:hl7-org:v3"><controlActProcess><queryByParameter>'
        "<parameterList>"
        '<livingSubjectId><value root="1.2.246.21" extension="010181-900C"/></livingSubjectId>'
        "<livingSubjectName><value><given>Testi</given><family>Potilas</family></value>"
        "<semanticsText>LivingSubject.name</semanticsText></livingSubjectName>"
        "<mothersMaidenName><value><family>Testiäiti</family></value></mothersMaidenName>"
        "<patientAddress><value><streetAddressLine>Testitie 1</streetAddressLine>"
        "<city>Helsinki</city></value></patientAddress>"
        '<patientTelecom><value value="tel:+358400000001"/></patientTelecom>'
        "</parameterList></queryByParameter></controlActProcess></PRPA_IN201305UV02>"
    )
    found = parties(doc)
    (patient,) = by_role(found, Role.PATIENT)
    assert patient.identifiers == (("1.2.246.21", "010181-900C"),)
    assert [(n.given, n.family) for n in patient.names] == [(("Testi",), ("Potilas",))]
    assert [a.lines for a in patient.addresses] == [("Testitie 1",)]
    assert [t.value for t in patient.telecoms] == ["tel:+358400000001"]
    (mother,) = by_role(found, Role.RELATED_PERSON)
    assert [n.family for n in mother.names] == [("Testiäiti",)]
    assert mother.kind is PartyKind.PERSON and not mother.identifiers


SAML = (
    '<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="a" Version="2.0">'
    "<Subject><NameID>{name_id}</NameID></Subject><AttributeStatement>{attributes}"
    "</AttributeStatement></Assertion>"
)


def _attribute(name: str, value: str, friendly: str = "") -> str:
    extra = f' FriendlyName="{friendly}"' if friendly else ""
    return f'<Attribute Name="{name}"{extra}><AttributeValue>{value}</AttributeValue></Attribute>'


def test_saml_subject_is_a_person() -> None:
    """A SAML assertion's subject: the NameID (an identity code: the identity-code system) and
    identifier attributes as codes; sn and givenName (by OID and by friendly name), Suomi.fi's
    given names, cn and displayName as names; mail and telephoneNumber as telecoms."""
    attributes = (
        _attribute("urn:oid:1.2.246.21", "030875-999Y")
        + _attribute("urn:oid:2.5.4.4", "Lääkäri Tes")
        + _attribute("urn:x:given", "Hannu", friendly="givenName")
        + _attribute("urn:oid:2.16.840.1.113730.3.1.241", "Hannu Lääkäri")
        + _attribute("mail", "hannu@example.com")
        + _attribute("urn:oid:2.5.4.20", "+358 40 0000001")
        + _attribute("urn:oid:1.2.246.575.1.14", "Hannu")
    )
    (subject,) = parties(SAML.format(name_id="030875-999Y", attributes=attributes))
    assert subject.kind is PartyKind.PERSON and subject.role is Role.USER
    assert subject.identifiers == (("1.2.246.21", "030875-999Y"), ("1.2.246.21", "030875-999Y"))
    assert [(n.given, n.family, n.text) for n in subject.names] == [
        (("Hannu", "Hannu"), ("Lääkäri Tes",), ""),
        ((), (), "Hannu Lääkäri"),
    ]
    assert [(t.system, t.value) for t in subject.telecoms] == [
        ("email", "hannu@example.com"),
        ("phone", "+358 40 0000001"),
    ]


def test_saml_without_subject_data_is_no_party_and_nameid_keeps_its_format() -> None:
    """An assertion with nothing about its subject yields no party; a NameID that is no identity
    code is a code of its Format."""
    assert parties(SAML.format(name_id="", attributes="")) == []
    doc = SAML.replace("<NameID>", '<NameID Format="urn:x:persistent">')
    (subject,) = parties(doc.format(name_id="abc123", attributes=""))
    assert subject.identifiers == (("urn:x:persistent", "abc123"),)


# -- FHIR search parameters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/fhir/Patient", "Patient"),
        ("/fhir/Patient/_search", "Patient"),
        ("/fhir/r4/Practitioner/", "Practitioner"),
        ("/fhir/Patient/123", ""),
        ("/", ""),
    ],
)
def test_search_resource(path: str, resource: str) -> None:
    assert search_resource(path) == resource


def test_fhir_search_parties_group_by_chain() -> None:
    """Unchained parameters are the searched person's; a chain's are its reference's person,
    with that reference's role; repeats are one name, comma alternatives its parts."""
    pairs = [
        ("family", "Korhonen"),
        ("given", "Liisa"),
        ("given", "Maija\\,Anna,Sofia"),
        ("identifier", "urn:oid:1.2.246.21|010181-900C"),
        ("general-practitioner.family", "Virtanen"),
        ("organization.name", "Testiterveyskeskus"),
        ("address", "Mannerheimintie 5"),
        ("address-city", "Helsinki"),
        ("birthdate", "1981-01-01"),
    ]
    patient, doctor = list(fhir_search_parties("Patient", pairs, "url:query"))
    assert patient.role is Role.PATIENT and patient.kind is PartyKind.PERSON
    assert patient.names == (PersonName(("Liisa", "Maija,Anna", "Sofia"), ("Korhonen",)),)
    assert patient.identifiers == (("1.2.246.21", "010181-900C"),)
    assert patient.addresses == (Address((), "", "Helsinki", text="Mannerheimintie 5"),)
    assert doctor.names == (PersonName((), ("Virtanen",)),)
    assert doctor.role is Role.UNKNOWN  # (a reference of unknown kind: person-only parts)


@pytest.mark.parametrize(
    ("resource", "pairs"),
    [
        ("Organization", [("name", "Testiterveyskeskus"), ("address", "Sairaalakatu 4")]),
        ("Observation", [("performer.name", "Helsingin kaupunki")]),
        ("Observation", [("subject:Group.name", "Ryhmä")]),
        ("Patient", [("identifier", "010181-900C")]),  # no name: the code rules read it
        ("Patient", [("family:missing", "true")]),
    ],
)
def test_fhir_search_parties_of_no_person(resource: str, pairs: list[tuple[str, str]]) -> None:
    assert list(fhir_search_parties(resource, pairs, "url:query")) == []
