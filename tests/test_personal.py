"""The personal-data rules through the real pipeline (``Scanner.scan_bytes``, real parsers):
each rule over CDA R2, HL7 V3 SOAP, FHIR JSON and XML and narrative text, with a clean twin;
the registry rules in both testing modes; masking; and the ways a careless system leaks."""

from __future__ import annotations

import base64
import gzip
import json
import re
from dataclasses import dataclass
from functools import cache
from string import Template

import pytest
from helpers import FIXTURES, b64, code, soap_with_cda

from kanta_guard import Action, KeyedHasher, Request, Scanner, Verdict
from kanta_guard.answer import blocked_answer
from kanta_guard.model import Report
from kanta_guard.policy import TestingMode as Mode
from kanta_guard.policy import default_policy
from kanta_guard.registry import load_registry

PERSONAL = FIXTURES / "personal"
REGISTRY = PERSONAL / "registry.toml"
KEY = b"kanta-guard-test-key-0123456789"

# The registered test identities (tests/fixtures/personal/registry.toml).
MAIJA = "010181-900C"  # Maija Liisa Testinen, independent patient, own test contacts
VAINO = "040594V9030"  # Väinö Äijälä, independent patient
ANNA = "020516C903K"  # Anna-Liisa Sofia Virtanen-Mäkinen, joint TC-101 and TC-102
ARTO = "231069-9711"  # Arto Alvar Testaaja, joint TC-101
HANNU = "030875-999Y"  # Hannu Lääkäri, independent professional
#: A valid 900-series code no registry lists.
UNKNOWN = code("150390", "-", 950)

#: Invented "real-looking" personal data a careless system might copy from production.
REAL_NAME = ("Liisa", "Korhonen")
REAL_PHONE = "040 111 2233"
REAL_EMAIL = "liisa.korhonen@gmail.com"
REAL_STREET = "Mannerheimintie 5 B 7"
#: Raw strings that must never appear in a report or an answer.
RAW = ("Liisa", "Korhonen", "111 2233", "1112233", "liisa.korhonen", "Mannerheimintie")


# -- scanners -------------------------------------------------------------------------------------


@cache
def scanner(mode: str | None = None) -> Scanner:
    """A scanner on the embedded default policy: without a registry (``mode`` None), or with
    the fixture registry in ``independent`` testing or joint testing of the case ``mode``."""
    hasher = KeyedHasher(KEY)
    if mode is None:
        return Scanner(default_policy(), hasher)
    policy = default_policy().with_registry(REGISTRY)
    testing = Mode() if mode == "independent" else Mode(True, mode)
    return Scanner(policy.with_testing(testing), hasher, registry=load_registry(REGISTRY))


def scan(body: str, content_type: str, mode: str | None = "independent") -> Report:
    return scanner(mode).scan_bytes(body.encode("utf-8"), content_type)


def rules(report: Report) -> set[str]:
    return set(report.rules)


def assert_masked(report: Report, raws: tuple[str, ...] = RAW) -> None:
    """No raw personal value in the report or the blocked answer; every finding hashed."""
    shown = json.dumps(report.as_dict(), ensure_ascii=False)
    answer = blocked_answer(report).body.decode("utf-8")
    for raw in raws:
        assert raw not in shown, (raw, shown)
        assert raw not in answer, (raw, answer)
    for finding in report.findings:
        assert finding.value_hash.startswith("hmac:"), finding


# -- documents ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A patient as the test writes it: a name (given names and family, or one string), a code
    (None: none), and contact details (None: none)."""

    given: tuple[str, ...] = ("Maija",)
    family: str = "Testinen"
    text: str | None = None  # the name as one string (CDA name without parts, HumanName.text)
    code: str | None = MAIJA
    phone: str | None = None
    email: str | None = None
    street: str | None = None
    postal: str = "00100"
    city: str = "Helsinki"


REGISTERED_AUTHOR = "<given>Hannu</given><family>Lääkäri Tes</family>"
CLEAN_TEXT = "Panadol Forte 1 g tarvittaessa. Kontrolli Lahden terveysasemalla."


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def cda(p: Person = Person(), narrative: str = CLEAN_TEXT, author: bool = True) -> str:
    """The personal-data CDA (tests/fixtures/personal/cda.xml) with this patient."""
    if p.text is not None:
        name = _xml(p.text)
    else:
        name = "".join(f"<given>{_xml(g)}</given>" for g in p.given)
        name += f"<family>{_xml(p.family)}</family>"
    contact = ""
    if p.street is not None:
        contact += (
            f'<addr use="H"><streetAddressLine>{_xml(p.street)}</streetAddressLine>'
            f"<postalCode>{p.postal}</postalCode><city>{p.city}</city></addr>"
        )
    if p.phone is not None:
        contact += f'<telecom use="HP" value="tel:{_xml(p.phone)}"/>'
    if p.email is not None:
        contact += f'<telecom use="HP" value="mailto:{_xml(p.email)}"/>'
    author_xml = ""
    if author:
        author_xml = (
            "<author><time value='20261129101500'/><assignedAuthor>"
            '<id root="1.2.246.537.26" extension="10012345678"/>'
            f'<id root="1.2.246.21" extension="{HANNU}"/>'
            f"<assignedPerson><name>{REGISTERED_AUTHOR}</name></assignedPerson>"
            "<representedOrganization><id root='1.2.246.10.1234567.10.0'/>"
            "<name>Testiterveyskeskus</name>"
            '<telecom use="WP" value="tel:+358 9 123 4567"/>'
            '<telecom use="WP" value="mailto:kirjaamo@terveyskeskus.fi"/>'
            "<addr><streetAddressLine>Sairaalakatu 4</streetAddressLine>"
            "<postalCode>00290</postalCode><city>Helsinki</city></addr>"
            "</representedOrganization></assignedAuthor></author>"
        )
    patient_id = f'<id root="1.2.246.21" extension="{p.code}"/>' if p.code else ""
    return Template((PERSONAL / "cda.xml").read_text("utf-8")).substitute(
        patient_id=patient_id,
        patient_contact=contact,
        patient_name=name,
        author=author_xml,
        narrative=_xml(narrative),
    )


def soap(p: Person = Person(), narrative: str = CLEAN_TEXT) -> str:
    """The HL7 V3 SOAP message (tests/fixtures/hl7v3_soap.xml) carrying that CDA in Base64; the
    SAML user and the message's subject are registered independent identities."""
    return soap_with_cda(cda(p, narrative), saml=HANNU, subject=VAINO)


def _human_name(p: Person) -> dict[str, object]:
    if p.text is not None:
        return {"text": p.text}
    return {"family": p.family, "given": list(p.given)}


def _contact_points(p: Person) -> list[dict[str, str]]:
    points = []
    if p.phone is not None:
        points.append({"system": "phone", "value": p.phone, "use": "home"})
    if p.email is not None:
        points.append({"system": "email", "value": p.email})
    return points


def fhir_patient(p: Person = Person()) -> dict[str, object]:
    patient: dict[str, object] = {"resourceType": "Patient", "name": [_human_name(p)]}
    if p.code:
        patient["identifier"] = [{"system": "urn:oid:1.2.246.21", "value": p.code}]
    if points := _contact_points(p):
        patient["telecom"] = points
    if p.street is not None:
        patient["address"] = [{"line": [p.street], "postalCode": p.postal, "city": p.city}]
    return patient


ORGANIZATION = {
    "resourceType": "Organization",
    "name": "Testiterveyskeskus",
    "telecom": [
        {"system": "phone", "value": "+358 9 123 4567", "use": "work"},
        {"system": "email", "value": "kirjaamo@terveyskeskus.fi", "use": "work"},
    ],
    "address": [{"line": ["Sairaalakatu 4"], "postalCode": "00290", "city": "Helsinki"}],
}
PRACTITIONER = {
    "resourceType": "Practitioner",
    "identifier": [{"system": "urn:oid:1.2.246.21", "value": HANNU}],
    "name": [{"family": "Lääkäri Tes", "given": ["Hannu"]}],
}


def observation(value: str) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "Huomio"},
        "valueString": value,
    }


def fhir_bundle(*resources: object) -> str:
    entries = [{"resource": r, "request": {"method": "POST", "url": "x"}} for r in resources]
    return json.dumps(
        {"resourceType": "Bundle", "type": "transaction", "entry": entries}, ensure_ascii=False
    )


def fhir_json(p: Person = Person(), narrative: str = CLEAN_TEXT) -> str:
    """A FHIR transaction Bundle: the patient (with a Narrative div), the registered
    practitioner, the organisation with its switchboard, mailbox and address."""
    patient = fhir_patient(p)
    patient["text"] = {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{_xml(narrative)}</div>',
    }
    return fhir_bundle(patient, PRACTITIONER, ORGANIZATION)


def fhir_xml(p: Person = Person(), narrative: str = CLEAN_TEXT) -> str:
    """The FHIR XML Patient (tests/fixtures/personal/fhir_patient.xml) with this patient."""
    if p.text is not None:
        name = f'<text value="{_xml(p.text)}"/>'
    else:
        name = f'<family value="{_xml(p.family)}"/>'
        name += "".join(f'<given value="{_xml(g)}"/>' for g in p.given)
    contact = ""
    if p.phone is not None:
        contact += f'<telecom><system value="phone"/><value value="{_xml(p.phone)}"/></telecom>'
    if p.email is not None:
        contact += f'<telecom><system value="email"/><value value="{_xml(p.email)}"/></telecom>'
    if p.street is not None:
        contact += (
            f'<address><line value="{_xml(p.street)}"/><postalCode value="{p.postal}"/>'
            f'<city value="{p.city}"/></address>'
        )
    patient_id = ""
    if p.code:
        patient_id = (
            '<identifier><system value="urn:oid:1.2.246.21"/>'
            f'<value value="{p.code}"/></identifier>'
        )
    return Template((PERSONAL / "fhir_patient.xml").read_text("utf-8")).substitute(
        patient_id=patient_id, patient_name=name, patient_contact=contact, narrative=_xml(narrative)
    )


#: The formats a person travels in: (builder, content type).
FORMATS = {
    "cda": (cda, "application/xml"),
    "hl7v3-soap": (soap, "text/xml; charset=utf-8"),
    "fhir-json": (fhir_json, "application/fhir+json"),
    "fhir-xml": (fhir_xml, "application/fhir+xml"),
}
# FHIR ContactPoint {system, value}: the parsers mark the value an identifier of the system
# "phone"/"email"; detectors/contacts.py judges identifiers of those systems as contacts (they
# were once skipped as identifiers, so no FHIR ContactPoint was judged).


def formats(*formats_: str) -> list[object]:
    """The format ids as parameters (every format: none is known to leak any more)."""
    return list(FORMATS)


def doc(fmt: str, p: Person = Person(), narrative: str = CLEAN_TEXT) -> tuple[str, str]:
    build, content_type = FORMATS[fmt]
    return build(p, narrative), content_type


# -- the base documents are clean -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_registered_document_passes_with_registry(fmt: str) -> None:
    """Registered patient and professional (with ` Tes`), an organisation's switchboard,
    functional mailbox and street address, a drug and a place: nothing to report."""
    report = scan(*doc(fmt))
    assert report.verdict is Verdict.PASS, report.as_dict()


@pytest.mark.parametrize("fmt", FORMATS)
def test_registered_document_without_registry_only_warns(fmt: str) -> None:
    """Without a registry no name can be shown to be a test identity's: names warn, saying how
    to configure one; nothing blocks, and the organisation's contacts are not reported."""
    report = scan(*doc(fmt), mode=None)
    assert report.verdict is Verdict.WARN, report.as_dict()
    assert rules(report) == {"name.unregistered"}
    assert all("registry" in f.explanation for f in report.findings)
    assert all(f.role != "organisation" for f in report.findings)


# -- name.mismatch --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_other_name_on_registered_code_blocks(fmt: str) -> None:
    """Maija Virtanen on the code of the registered Maija Testinen: a real name on a test code."""
    report = scan(*doc(fmt, Person(("Maija",), "Virtanen")))
    assert report.verdict is Verdict.BLOCK
    assert "name.mismatch" in rules(report)
    (finding,) = [f for f in report.findings if f.rule == "name.mismatch"]
    assert finding.evidence == "M**** V*******" and finding.role == "patient"
    assert_masked(report, ("Virtanen",))


REGISTERED_VARIANTS = [
    pytest.param(Person(("MAIJA", "LIISA"), "TESTINEN"), id="upper-case"),
    pytest.param(Person(("Liisa", "Maija", "Liisa"), "Testinen"), id="given-subset-repeat"),
    pytest.param(Person((), "Testinen"), id="family-only"),
    pytest.param(Person(text="Testinen, Maija Liisa"), id="family-comma-given"),
    pytest.param(Person(text="MAIJA TESTINEN"), id="text-upper"),
    pytest.param(Person(("Väinö",), "Äijälä", code=VAINO), id="diacritics"),
    pytest.param(Person(("Vaino",), "Aijala", code=VAINO), id="a-for-ä"),
    pytest.param(Person(("Vaeinoe",), "Aeijaelae", code=VAINO), id="ae-oe"),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("person", REGISTERED_VARIANTS)
def test_registered_name_variants_pass(fmt: str, person: Person) -> None:
    """The registered name as Finnish names vary in writing passes on its own code."""
    report = scan(*doc(fmt, person))
    assert report.verdict is Verdict.PASS, report.as_dict()


JOINT_VARIANTS = [
    Person(("Anna-Liisa",), "Virtanen-Mäkinen", code=ANNA),
    Person(("ANNA", "LIISA"), "VIRTANEN", code=ANNA),
    Person(("Sofia",), "Virtanen-Maekinen", code=ANNA),
    Person(("ARTO", "ALVAR", "ARTO"), "TESTAAJA", code=ARTO),
]


@pytest.mark.parametrize("fmt", ["cda", "fhir-json", "fhir-xml"])
@pytest.mark.parametrize("person", JOINT_VARIANTS)
def test_joint_names_in_their_variants_pass(fmt: str, person: Person) -> None:
    """Hyphenated and double-barrelled names, ae spellings and Kela's repeated calling name
    (ARTO ALVAR ARTO) pass on their joint codes, in their case (TC-101)."""
    build, content_type = FORMATS[fmt]
    body = cda(person, author=False) if fmt == "cda" else build(person)
    if fmt == "fhir-json":
        body = fhir_bundle(fhir_patient(person), ORGANIZATION)
    report = scan(body, content_type, mode="TC-101")
    assert report.verdict is Verdict.PASS, report.as_dict()


# -- name.unregistered ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_unregistered_name_blocks_with_registry(fmt: str) -> None:
    """A patient with no code whose name is no registered identity's blocks with a registry,
    and only warns without one."""
    person = Person(REAL_NAME[:1], REAL_NAME[1], code=None)
    report = scan(*doc(fmt, person))
    assert report.verdict is Verdict.BLOCK
    assert rules(report) == {"name.unregistered"}
    assert_masked(report)
    default = scan(*doc(fmt, person), mode=None)
    assert default.verdict is Verdict.WARN
    assert_masked(default)


@pytest.mark.parametrize("fmt", FORMATS)
def test_registered_name_without_code_passes(fmt: str) -> None:
    """The clean twin: a registered name in variant spelling, with no code, passes."""
    report = scan(*doc(fmt, Person(("LIISA",), "Testinen", code=None)))
    assert report.verdict is Verdict.PASS, report.as_dict()


def test_professional_name_is_judged_against_professionals() -> None:
    """A practitioner named like a registered patient is no registered professional; the
    registered professional with the test card's ` Tes` passes as `Family, Given` text too."""
    patient_named = {"resourceType": "Practitioner", "name": [{"family": "Testinen"}]}
    report = scan(fhir_bundle(fhir_patient(), patient_named), "application/fhir+json")
    assert rules(report) == {"name.unregistered"}
    assert report.findings[0].role == "professional"
    card = {"resourceType": "Practitioner", "name": [{"text": "LÄÄKÄRI TES, HANNU"}]}
    assert scan(fhir_bundle(card), "application/fhir+json").verdict is Verdict.PASS


# -- address.personal -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_personal_street_address(fmt: str) -> None:
    """A patient's street address that no registry or policy lists: warns without a registry,
    blocks with one."""
    person = Person(street=REAL_STREET)
    report = scan(*doc(fmt, person))
    assert report.verdict is Verdict.BLOCK
    assert rules(report) == {"address.personal"}
    assert report.findings[0].evidence.startswith("M************** *")
    assert_masked(report)
    default = scan(*doc(fmt, person), mode=None)
    assert "address.personal" in rules(default)
    assert {f.action for f in default.findings} == {Action.WARN}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "street", ["Testikatu 1 A 2", "TESTIKATU 1 a 2", "Testitie 1"], ids=["own", "case", "shared"]
)
def test_registered_address_passes(fmt: str, street: str) -> None:
    """The registered identity's own address, and the registry's shared test address, pass."""
    report = scan(*doc(fmt, Person(street=street)))
    assert report.verdict is Verdict.PASS, report.as_dict()


# -- phone.personal and email.personal in structured contacts -------------------------------------


@pytest.mark.parametrize("fmt", formats("fhir-json", "fhir-xml"))
def test_personal_phone(fmt: str) -> None:
    """A patient's phone number that is no test number: warns without a registry, blocks with
    one, masked."""
    person = Person(phone=REAL_PHONE)
    report = scan(*doc(fmt, person))
    assert report.verdict is Verdict.BLOCK
    assert rules(report) == {"phone.personal"}
    assert report.findings[0].evidence == "+358 40 *** **33"
    assert_masked(report)
    default = scan(*doc(fmt, person), mode=None)
    assert {f.action for f in default.findings if f.rule == "phone.personal"} == {Action.WARN}


@pytest.mark.parametrize("fmt", formats("fhir-json", "fhir-xml"))
def test_personal_email(fmt: str) -> None:
    """A patient's e-mail address outside the reserved domains blocks, registry or not."""
    person = Person(email=REAL_EMAIL)
    for mode in (None, "independent"):
        report = scan(*doc(fmt, person), mode=mode)
        assert report.verdict is Verdict.BLOCK
        assert "email.personal" in rules(report)
        assert "*@gmail.com" in {f.evidence for f in report.findings}
        assert_masked(report)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("phone", "email"),
    [
        ("040 123 4567", "maija.testinen@testiposti.fi"),  # the identity's own
        ("+358 40 0000001", "Testi@Testiposti.fi"),  # the registry's shared ones
        ("+358401234567", "maija@example.com"),  # E.164; a reserved domain
    ],
    ids=["own", "shared", "e164-reserved"],
)
def test_registered_contacts_pass(fmt: str, phone: str, email: str) -> None:
    """The registered identity's own phone and e-mail, the registry's shared test contacts and
    the reserved domains pass."""
    report = scan(*doc(fmt, Person(phone=phone, email=email)))
    assert report.verdict is Verdict.PASS, report.as_dict()


def test_fhir_contact_point_without_system_is_judged() -> None:
    """A ContactPoint with no system is judged (the FHIR leak above is the system's doing)."""
    patient = fhir_patient()
    patient["telecom"] = [{"value": REAL_EMAIL}, {"value": REAL_PHONE}]
    report = scan(fhir_bundle(patient), "application/fhir+json")
    assert rules(report) == {"email.personal", "phone.personal"}
    assert_masked(report)


def test_patient_contact_and_contained_related_person() -> None:
    """A Patient.contact and a contained RelatedPerson are persons: an unregistered name and
    address block; the registered guardian (ARTO ALVAR ARTO) in a contact passes."""
    patient = fhir_patient()
    patient["contact"] = [
        {
            "name": {"family": REAL_NAME[1], "given": [REAL_NAME[0]]},
            "address": {"line": [REAL_STREET], "city": "Helsinki"},
            "telecom": [{"value": REAL_PHONE}],
        }
    ]
    patient["contained"] = [
        {"resourceType": "RelatedPerson", "id": "rp", "name": [{"text": "Korhonen, Liisa"}]}
    ]
    report = scan(fhir_bundle(patient), "application/fhir+json")
    # (The one-string name is free text too: name.narrative reports it as well.)
    assert rules(report) - {"name.narrative"} == {
        "name.unregistered",
        "address.personal",
        "phone.personal",
    }
    assert {f.role for f in report.findings} == {"related-person"}
    assert len([f for f in report.findings if f.rule == "name.unregistered"]) == 2
    assert_masked(report)
    twin = fhir_patient()
    twin["contact"] = [{"name": {"family": "Testaaja", "given": ["ARTO", "ALVAR", "ARTO"]}}]
    assert scan(fhir_bundle(twin), "application/fhir+json").verdict is Verdict.PASS


# -- narrative text -------------------------------------------------------------------------------

#: Free text carriers: (id, builder of a body with ``text`` in it, content type).
NARRATIVES = {
    "cda-section-text": (lambda t: cda(narrative=t), "application/xml"),
    "soap-cda-text": (lambda t: soap(narrative=t), "text/xml; charset=utf-8"),
    "fhir-div": (lambda t: fhir_json(narrative=t), "application/fhir+json"),
    "fhir-xml-div": (lambda t: fhir_xml(narrative=t), "application/fhir+xml"),
    "observation-valuestring": (
        lambda t: fhir_bundle(fhir_patient(), observation(t)),
        "application/fhir+json",
    ),
}


@pytest.mark.parametrize("carrier", NARRATIVES)
@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("Puoliso Liisa Korhonen soitti iltapäivällä.", "name.narrative"),
        ("Lääkäri Heikkinen määräsi Panadolia.", "name.narrative"),
        (f"Omainen pyysi soittamaan numeroon {REAL_PHONE}.", "phone.personal"),
        (f"Tulokset sähköpostiin {REAL_EMAIL}.", "email.personal"),
    ],
    ids=["full-name", "title-surname", "phone", "email"],
)
def test_narrative_personal_data(carrier: str, text: str, rule: str) -> None:
    """A person's name, phone or e-mail in free text blocks with a registry; names and phones
    warn without one, e-mails block."""
    build, content_type = NARRATIVES[carrier]
    report = scan(build(text), content_type)
    assert report.verdict is Verdict.BLOCK
    assert rules(report) == {rule}, report.as_dict()
    assert_masked(report, (*RAW, "Heikkinen"))
    default = scan(build(text), content_type, mode=None)
    expected = Action.BLOCK if rule == "email.personal" else Action.WARN
    assert {f.action for f in default.findings if f.rule == rule} == {expected}


@pytest.mark.parametrize("carrier", NARRATIVES)
@pytest.mark.parametrize(
    "text",
    [
        "Potilas Maija Testinen sai Panadol Forte -tabletin. Parkinsonin tauti seurannassa.",
        "MAIJA TESTINEN ja Väinö Äijälä (Vaino Aijala) kävivät Salossa ja Lahdessa.",
        "Arto Alvar Arto Testaaja soitti. Kivi ja Mäki Koskella, Laine.",
        "Soita numeroon +358 40 0000001 tai 040 123 4567, testi@example.com.",
    ],
    ids=["registered-drug-eponym", "variants-places", "kela-repeat-words", "test-contacts"],
)
def test_narrative_clean_twins(carrier: str, text: str) -> None:
    """Registered names in their variants, drugs, places, eponyms, everyday words that are
    surnames, and the registry's test numbers and reserved domains pass in free text."""
    build, content_type = NARRATIVES[carrier]
    report = scan(build(text), content_type)
    assert report.verdict is Verdict.PASS, report.as_dict()


@pytest.mark.parametrize(
    "text",
    [
        "Anna-Liisa Virtanen-Mäkinen soitti.",
        "Sofia Virtanen-Mäkinen soitti.",
        "Hoitaja Hannu Lääkäri soitti.",
    ],
)
def test_narrative_registered_hyphenated_and_titled(text: str) -> None:
    """Registered names with hyphens, and after a title, pass in free text."""
    assert scan(cda(narrative=text), "application/xml").verdict is Verdict.PASS


# -- registry rules, both modes -------------------------------------------------------------------


def _structured_cda(patient_code: str) -> str:
    """A CDA whose only code is the patient's, with that identity's registered name."""
    names = {
        MAIJA: ("Maija", "Testinen"),
        ANNA: ("Anna-Liisa", "Virtanen-Mäkinen"),
        ARTO: ("Arto", "Testaaja"),
        UNKNOWN: ("Maija", "Testinen"),
    }
    given, family = names[patient_code]
    return cda(Person((given,), family, code=patient_code), author=False)


def _free_text_cda(text_code: str) -> str:
    """A CDA with no structured code, the code only in the section text."""
    return cda(Person(code=None), f"Huoltajan hetu {text_code}, suostumus annettu.", author=False)


def _fhir_identifier(patient_code: str) -> str:
    return fhir_bundle(
        {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:1.2.246.21", "value": patient_code}],
        }
    )


def _fhir_free_text(text_code: str) -> str:
    return fhir_bundle(observation(f"Potilaan henkilötunnus {text_code}"))


PLACEMENTS = {
    "cda-structured": (_structured_cda, "application/xml"),
    "cda-free-text": (_free_text_cda, "application/xml"),
    "soap-structured": (lambda c: soap_with_cda(_structured_cda(c), saml=c, subject=c), "text/xml"),
    "fhir-identifier": (_fhir_identifier, "application/fhir+json"),
    "fhir-free-text": (_fhir_free_text, "application/fhir+json"),
}


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize(
    ("mode", "test_code", "rule"),
    [
        ("TC-101", MAIJA, "registry.wrong_pool"),  # independent code in joint testing
        ("independent", ANNA, "registry.wrong_pool"),  # joint code in independent testing
        ("TC-102", ARTO, "registry.wrong_case"),  # joint code of TC-101 in TC-102
        ("independent", UNKNOWN, "registry.unknown_code"),
        ("TC-101", UNKNOWN, "registry.unknown_code"),
    ],
    ids=["independent-in-joint", "joint-in-independent", "other-case", "unknown", "unknown-j"],
)
def test_registry_rules(placement: str, mode: str, test_code: str, rule: str) -> None:
    """Cross-use of the pools, a joint code outside its cases and an unregistered 900-series
    code block, in free text and in structured identity fields; the evidence is the test code
    (not personal data), and the explanation says which pool or cases it belongs to."""
    build, content_type = PLACEMENTS[placement]
    report = scan(build(test_code), content_type, mode=mode)
    assert report.verdict is Verdict.BLOCK
    assert rules(report) == {rule}, report.as_dict()
    assert {f.evidence for f in report.findings} == {test_code}
    assert all(f.value_hash.startswith("hmac:") for f in report.findings)
    if rule == "registry.wrong_case":
        assert all("TC-101" in f.explanation for f in report.findings)


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize(
    ("mode", "test_code"),
    [("independent", MAIJA), ("TC-101", ANNA), ("TC-102", ANNA), ("TC-101", ARTO)],
)
def test_registry_right_pool_and_case_pass(placement: str, mode: str, test_code: str) -> None:
    """A code in its own pool (and, for a joint code, one of its cases) passes."""
    build, content_type = PLACEMENTS[placement]
    report = scan(build(test_code), content_type, mode=mode)
    assert report.verdict is Verdict.PASS, report.as_dict()


def test_registry_rules_need_a_registry() -> None:
    """Without a registry no code is judged against one."""
    report = scan(_fhir_identifier(UNKNOWN), "application/fhir+json", mode=None)
    assert report.verdict is Verdict.PASS


# -- without and with a registry ------------------------------------------------------------------

EVERYTHING = Person(
    REAL_NAME[:1], REAL_NAME[1], code=None, phone=REAL_PHONE, email=REAL_EMAIL, street=REAL_STREET
)


def test_default_policy_warns_on_names_phones_addresses_blocks_emails() -> None:
    """Without a registry: names, phones and addresses warn; e-mails block."""
    report = scan(cda(EVERYTHING, author=False), "application/xml", mode=None)
    actions = {f.rule: f.action for f in report.findings}
    assert actions == {
        "name.unregistered": Action.WARN,
        "phone.personal": Action.WARN,
        "address.personal": Action.WARN,
        "email.personal": Action.BLOCK,
    }
    assert_masked(report)


def test_registry_blocks_every_personal_rule() -> None:
    """With a registry every one of them blocks."""
    report = scan(cda(EVERYTHING, author=False), "application/xml")
    assert {f.rule: f.action for f in report.findings} == {
        "name.unregistered": Action.BLOCK,
        "phone.personal": Action.BLOCK,
        "address.personal": Action.BLOCK,
        "email.personal": Action.BLOCK,
    }
    assert_masked(report)


def test_registered_identity_own_contacts_pass() -> None:
    """Maija Testinen with her own registered phone, e-mail and address passes."""
    own = Person(
        ("Maija",),
        "Testinen",
        phone="+358 40 123 4567",
        email="maija.testinen@testiposti.fi",
        street="Testikatu 1 A 2",
    )
    assert scan(cda(own), "application/xml").verdict is Verdict.PASS


# -- masking --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["cda", "hl7v3-soap", "fhir-json", "fhir-xml"])
def test_masked_everywhere(fmt: str) -> None:
    """Evidence and explanations of every finding are masked in the report and in the blocked
    answer of each protocol; the keyed hash is present; the rule and role are named."""
    body, content_type = doc(fmt, EVERYTHING, "Puoliso Liisa Korhonen soitti, p. 040 111 2233.")
    report = scan(body, content_type)
    assert report.verdict is Verdict.BLOCK
    assert {"name.unregistered", "address.personal"} <= rules(report)
    assert_masked(report)
    answer = blocked_answer(report).body.decode("utf-8")
    assert "name.unregistered" in answer and "hmac:" in answer
    hashes = {f.value_hash for f in report.findings}
    assert len(hashes) > 1 and all(re.fullmatch(r"hmac:[0-9a-f]{16}", h) for h in hashes)


# -- attacks: a real person past the guard the way a careless system would send it ----------------


def test_base64_non_xml_body() -> None:
    """Personal data in a Base64 nonXMLBody is decoded and judged."""
    text = f"Puoliso {' '.join(REAL_NAME)}, puh. {REAL_PHONE}, {REAL_EMAIL}"
    body = cda().replace(
        f"<text>{CLEAN_TEXT}</text>",
        f'<text mediaType="text/plain" representation="B64">{b64(text)}</text>',
    )
    assert b64(text) in body
    report = scan(body, "application/xml")
    assert rules(report) == {"email.personal", "phone.personal", "name.narrative"}
    assert_masked(report)


def test_cda_inside_soap_mismatch() -> None:
    """A real name on a test code inside the Base64 CDA of an HL7 V3 SOAP message."""
    report = scan(soap(Person(("Maija",), "Virtanen")), "text/xml")
    assert rules(report) == {"name.mismatch"}
    assert "!base64" in report.findings[0].location


def test_fhir_xml_bundle_and_fhir_xml_in_json_binary() -> None:
    """FHIR XML in an XML Bundle, and inside a JSON Bundle's Binary (Base64), is read."""
    patient = fhir_xml(Person(("Maija",), "Virtanen")).split("?>", 1)[1]
    inner = patient.replace(' xmlns="http://hl7.org/fhir"', "", 1)
    xml_bundle = (
        '<Bundle xmlns="http://hl7.org/fhir"><type value="transaction"/>'
        f"<entry><resource>{inner}</resource></entry></Bundle>"
    )
    assert rules(scan(xml_bundle, "application/fhir+xml")) == {"name.mismatch"}
    binary = {"resourceType": "Binary", "contentType": "application/fhir+xml", "data": b64(patient)}
    assert rules(scan(fhir_bundle(binary), "application/fhir+json")) == {"name.mismatch"}


@pytest.mark.parametrize(
    "name",
    [
        "<given>Maija</given><family>Vir&#116;anen</family>",  # a character reference
        "<given>Maija</given><family>&#x56;IRTANEN</family>",  # hex reference, upper case
        "<given>MAIJA</given><family>VIRTANEN</family>",
        "<given>Mai</given><given>ja</given><family>Testinen</family>",  # split given
        "<given>Maija</given><family>Testinen</family><family>Virtanen</family>",
        "Virtanen <given>Maija</given><family>Testinen</family>",  # loose text beside parts
        "Jonathan Brightwater <given>Maija</given><family>Testinen</family>",
    ],
)
def test_cda_name_tricks_on_registered_code(name: str) -> None:
    """Ways of writing another name on a registered code still block."""
    body = cda().replace("<given>Maija</given><family>Testinen</family>", name, 1)
    report = scan(body, "application/xml")
    assert report.verdict is Verdict.BLOCK, report.as_dict()
    assert rules(report) & {"name.mismatch", "name.narrative"}, report.as_dict()
    assert_masked(report, ("Virtanen", "VIRTANEN", "Brightwater"))


def test_fhir_human_name_text_beside_registered_parts() -> None:
    """HumanName.text of another person beside registered parts blocks (regression: the parts
    alone were judged, and a name not in DVV's lists passed)."""
    person = fhir_patient()
    person["name"] = [{"family": "Testinen", "given": ["Maija"], "text": "Jonathan Brightwater"}]
    report = scan(fhir_bundle(person), "application/fhir+json")
    assert rules(report) == {"name.mismatch"}
    twin = fhir_patient()
    twin["name"] = [{"family": "Testinen", "given": ["Maija"], "text": "Dr. Testinen, Maija L."}]
    twin["name"][0]["prefix"] = ["Dr."]  # type: ignore[index]
    twin["name"][0]["text"] = "Dr. Testinen, Maija Liisa"  # type: ignore[index]
    assert scan(fhir_bundle(twin), "application/fhir+json").verdict is Verdict.PASS


def test_cda_without_namespace() -> None:
    """A CDA sent without its xmlns still has people (regression: no party was found)."""
    body = cda(Person(("Maija",), "Virtanen")).replace(' xmlns="urn:hl7-org:v3"', "", 1)
    assert rules(scan(body, "application/xml")) == {"name.mismatch"}


def test_drug_playing_entity_is_no_person() -> None:
    """A drug as a participant's playingEntity (classCode MMAT) is no person (regression:
    its name was judged as one); a person playing it (PSN) is."""
    entry = (
        '<entry><substanceAdministration classCode="SBADM" moodCode="INT">'
        '<participant typeCode="CSM"><participantRole classCode="MANU">'
        '<playingEntity classCode="{cls}"><name>{name}</name></playingEntity>'
        "</participantRole></participant></substanceAdministration></entry>"
    )
    drug = cda().replace("<entry>", entry.format(cls="MMAT", name="Burana Virtanen") + "<entry>")
    assert scan(drug, "application/xml").verdict is Verdict.PASS
    person = cda().replace("<entry>", entry.format(cls="PSN", name="Liisa Korhonen") + "<entry>")
    assert "name.unregistered" in rules(scan(person, "application/xml"))


def test_persons_inside_organisations() -> None:
    """The organisation's contact person (V3 contactParty, FHIR Organization.contact) and a
    document's recipient person (informationRecipient) are persons (regression: taken for the
    organisation, their names passed)."""
    contact_party = cda().replace(
        "<name>Testiterveyskeskus</name>",
        "<name>Testiterveyskeskus</name><contactParty><contactPerson><name>"
        "<given>Liisa</given><family>Korhonen</family></name></contactPerson></contactParty>",
        1,
    )
    report = scan(contact_party, "application/xml")
    assert rules(report) == {"name.unregistered"} and report.findings[0].role == "professional"
    recipient = cda().replace(
        "<recordTarget>",
        "<informationRecipient><intendedRecipient><informationRecipient><name>"
        "<given>Liisa</given><family>Korhonen</family></name></informationRecipient>"
        "<receivedOrganization><name>HUS</name></receivedOrganization></intendedRecipient>"
        "</informationRecipient><recordTarget>",
        1,
    )
    assert rules(scan(recipient, "application/xml")) == {"name.unregistered"}
    organisation = dict(ORGANIZATION)
    organisation["contact"] = [{"name": {"family": "Korhonen", "given": ["Liisa"]}}]
    assert rules(scan(fhir_bundle(organisation), "application/fhir+json")) == {"name.unregistered"}
    registered = dict(ORGANIZATION)
    registered["contact"] = [{"name": {"text": "Hannu Lääkäri"}}]
    assert scan(fhir_bundle(registered), "application/fhir+json").verdict is Verdict.PASS


def test_fhir_xml_inside_soap() -> None:
    """A FHIR XML resource in a SOAP body is read (regression: only resources under a FHIR
    holder element were)."""
    patient = fhir_xml(Person(("Maija",), "Virtanen")).split("?>", 1)[1]
    body = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f"<soap:Body>{patient}</soap:Body></soap:Envelope>"
    )
    assert rules(scan(body, "text/xml")) == {"name.mismatch"}


@pytest.mark.parametrize(
    "telecom",
    [
        f"tel:{REAL_EMAIL}",  # an e-mail in a tel: telecom
        f"MAILTO:{REAL_EMAIL}",  # upper-case scheme
        f"mailto:{REAL_EMAIL.upper()}",
        f"TEL:{REAL_PHONE}",
        "tel:+358-40-111-2233",
    ],
)
def test_cda_telecom_tricks(telecom: str) -> None:
    """E-mails and phones in CDA telecoms are found whatever the scheme says."""
    body = cda().replace("<patient>", f'<telecom value="{telecom}"/><patient>', 1)
    report = scan(body, "application/xml")
    assert report.verdict is Verdict.BLOCK
    assert rules(report) & {"email.personal", "phone.personal"}
    assert_masked(report, (*RAW, "LIISA.KORHONEN"))


@pytest.mark.parametrize("system", ["phone", "email", "other"])
def test_fhir_contact_point_with_mismatched_system(system: str) -> None:
    """An e-mail in a ContactPoint whose system says phone (or email, or other) is judged."""
    patient = fhir_patient()
    patient["telecom"] = [{"system": system, "value": REAL_EMAIL}]
    assert "email.personal" in rules(scan(fhir_bundle(patient), "application/fhir+json"))


def test_phone_in_a_note() -> None:
    """A phone number in an annotation note is judged."""
    note = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "note": [{"text": f"Soita tyttärelle {REAL_PHONE.replace(' ', '')}"}],
    }
    report = scan(fhir_bundle(note), "application/fhir+json")
    assert rules(report) == {"phone.personal"}
    assert_masked(report)


# -- attacks kept as tests: other places, encodings and protocols -----------------------------

_ATTACK_SCANNER = Scanner(default_policy(), KeyedHasher(b"kanta-guard-test-key-0123456789"))
_PATIENT_JSON = (
    '{"resourceType":"Patient","name":[{"family":"Virt\\u0061nen","given":["Maija"]}],'
    '"telecom":[{"system":"email","value":"maija\\u0040gmail.com"}]}'
)
_CDA_CONTACT = (
    b'<ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole>'
    b'<telecom value="mailto:MAIJA@GMAIL.COM"/><patient><name><given>Maija</given>'
    b"<family>Virtanen</family></name></patient></patientRole></recordTarget></ClinicalDocument>"
)
_ATTACKS: list[tuple[str, Request, set[str]]] = [
    ("e-mail in a From header", Request("GET", "/x", (("From", "maija.virtanen@gmail.com"),)),
     {"email.personal"}),
    ("e-mail percent-encoded in a query", Request("GET", "/x?c=maija.virtanen%40gmail.com"),
     {"email.personal"}),
    ("name in a query", Request("GET", "/Patient?note=Potilas+Maija+Virtanen+soitti"),
     {"name.narrative"}),
    ("phone in a header", Request("GET", "/x", (("X-Callback", "040 123 4567"),)),
     {"phone.personal"}),
    ("FHIR JSON with \\u escapes",
     Request("POST", "/fhir/Patient", (("Content-Type", "application/fhir+json"),),
             _PATIENT_JSON.encode()),
     {"name.unregistered", "email.personal"}),
    ("FHIR JSON gzipped",
     Request("POST", "/fhir/Patient",
             (("Content-Type", "application/fhir+json"), ("Content-Encoding", "gzip")),
             gzip.compress(_PATIENT_JSON.encode())),
     {"name.unregistered", "email.personal"}),
    ("CDA in a FHIR attachment",
     Request("POST", "/fhir/DocumentReference", (("Content-Type", "application/fhir+json"),),
             json.dumps({"resourceType": "DocumentReference", "content": [{"attachment": {
                 "contentType": "application/xml",
                 "data": base64.b64encode(_CDA_CONTACT).decode()}}]}).encode()),
     {"name.unregistered", "email.personal"}),
    ("name in a multipart form field",
     Request("POST", "/x", (("Content-Type", "multipart/form-data; boundary=b"),),
             b'--b\r\nContent-Disposition: form-data; name="n"\r\n\r\n'
             b"Soitettu: Maija Virtanen\r\n--b--\r\n"),
     {"name.narrative"}),
    ("name in UTF-16 text",
     Request("POST", "/x", (("Content-Type", "text/plain; charset=utf-16"),),
             "Potilas Maija Virtanen soitti".encode("utf-16")),
     {"name.narrative"}),
    ("e-mail in a FHIR XML ContactPoint",
     Request("POST", "/fhir/Patient", (("Content-Type", "application/fhir+xml"),),
             b'<Patient xmlns="http://hl7.org/fhir"><telecom><system value="email"/>'
             b'<value value="maija.virtanen@gmail.com"/></telecom></Patient>'),
     {"email.personal"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "request_", "rules"), _ATTACKS, ids=[a[0] for a in _ATTACKS])
def test_personal_data_in_other_places_and_encodings(
    name: str, request_: Request, rules: set[str]
) -> None:
    """Names, e-mails and phones where a careless system puts them: headers, queries, escapes,
    compression, a document inside an attachment, forms, UTF-16."""
    report = _ATTACK_SCANNER.scan(request_)
    assert rules <= set(report.rules), (name, report.rules)
    assert "maija.virtanen" not in json.dumps(report.as_dict()).lower()


_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.mark.parametrize(
    "place",
    ["fullwidth text", "lower case header", "Base64url path", "split by markup"],
)
def test_joint_code_in_independent_testing_in_any_form(place: str) -> None:
    """A joint-testing code used in independent testing is found however it is written."""
    registry = load_registry(FIXTURES / "registry.toml")
    policy = default_policy().with_registry(FIXTURES / "registry.toml")
    scanner = Scanner(policy, KeyedHasher(b"kanta-guard-test-key-0123456789"), registry=registry)
    joint = "020516C903K"  # the example registry's joint-testing patient
    requests = {
        "fullwidth text": Request(
            "POST", "/x", (("Content-Type", "text/plain"),),
            f"potilas {joint.translate(_FULLWIDTH)}".encode(),
        ),
        "lower case header": Request("GET", "/x", (("X-Patient", joint.lower()),)),
        "Base64url path": Request(
            "GET",
            "/Patient/" + base64.urlsafe_b64encode(f'{{"id":"{joint}"}}'.encode()).decode(),
        ),
        "split by markup": Request(
            "POST", "/x", (("Content-Type", "application/xml"),),
            f"<a><p>{joint[:5]}<b/>{joint[5:]}</p></a>".encode(),
        ),
    }  # fmt: skip
    assert "registry.wrong_pool" in scanner.scan(requests[place]).rules
