"""Attacks on the personal-data rules (issue 8), kept as tests: each attack with a clean twin.

Holes found and not yet fixed are strict xfails naming the file their fix belongs in."""

from __future__ import annotations

import pytest
from test_personal import HANNU, MAIJA, Verdict, assert_masked, cda, scan

S = "text/xml; charset=utf-8"
NAME = "<name><given>Liisa</given><family>Korhonen</family></name>"
CLEAN = "<name><given>Hannu</given><family>Lääkäri Tes</family></name>"
#: A registered citizen (related persons are judged against the non-professionals).
CITIZEN = "<name><given>Arto</given><family>Testaaja</family></name>"


def _cda_with(fragment: str) -> str:
    return cda().replace("<component>", fragment + "<component>", 1)


CDA_ROLES = {
    "legalAuthenticator": "<legalAuthenticator><assignedEntity><assignedPerson>{}"
    "</assignedPerson></assignedEntity></legalAuthenticator>",
    "informant-relatedEntity": "<informant><relatedEntity classCode='PRS'><relatedPerson>{}"
    "</relatedPerson></relatedEntity></informant>",
    "participant-associatedEntity": "<participant typeCode='IND'><associatedEntity "
    "classCode='NOK'><associatedPerson>{}</associatedPerson></associatedEntity></participant>",
    "dataEnterer": "<dataEnterer><assignedEntity><assignedPerson>{}</assignedPerson>"
    "</assignedEntity></dataEnterer>",
    "responsibleParty": "<componentOf><encompassingEncounter><responsibleParty><assignedEntity>"
    "<assignedPerson>{}</assignedPerson></assignedEntity></responsibleParty>"
    "</encompassingEncounter></componentOf>",
}


@pytest.mark.parametrize("role", CDA_ROLES)
def test_cda_role_real_name_blocks_registered_passes(role: str) -> None:
    report = scan(_cda_with(CDA_ROLES[role].format(NAME)), "application/xml")
    assert report.verdict is Verdict.BLOCK
    assert_masked(report)
    clean = CITIZEN if role.startswith(("informant", "participant")) else CLEAN
    twin = scan(_cda_with(CDA_ROLES[role].format(clean)), "application/xml")
    assert twin.verdict is Verdict.PASS, twin.as_dict()


def test_cda_surname_in_suffix_blocks() -> None:
    body = cda().replace(
        "<family>Testinen</family>", "<family>Testinen</family><suffix>Korhonen</suffix>"
    )
    assert scan(body, "application/xml").verdict is Verdict.BLOCK


def test_cda_title_suffix_passes() -> None:
    body = cda().replace(
        "<family>Testinen</family>", "<family>Testinen</family><suffix>LL</suffix>"
    )
    assert scan(body, "application/xml").verdict is Verdict.PASS


_V3Q = (
    '<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>'
    '<PRPA_IN201305UV02 xmlns="urn:hl7-org:v3"><controlActProcess><queryByParameter>'
    "<parameterList>{}</parameterList></queryByParameter></controlActProcess>"
    "</PRPA_IN201305UV02></soap:Body></soap:Envelope>"
)


@pytest.mark.parametrize(
    "param",
    [
        "<livingSubjectName><value><given>Liisa</given><family>Korhonen</family></value>"
        "</livingSubjectName>",
        "<patientAddress><value><streetAddressLine>Mannerheimintie 5 B 7</streetAddressLine>"
        "<postalCode>00100</postalCode><city>Helsinki</city></value></patientAddress>",
    ],
    ids=["name", "address"],
)
def test_v3_query_parameters_block(param: str) -> None:
    assert scan(_V3Q.format(param), S).verdict is Verdict.BLOCK


def test_v3_query_registered_name_passes() -> None:
    param = (
        "<livingSubjectName><value><given>Maija</given><family>Testinen</family></value>"
        "</livingSubjectName>"
    )
    assert scan(_V3Q.format(param), S).verdict is Verdict.PASS


_SAML = (
    '<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Header>'
    '<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Subject>'
    f"<saml:NameID>{HANNU}</saml:NameID></saml:Subject><saml:AttributeStatement>{{}}"
    "</saml:AttributeStatement></saml:Assertion></soap:Header><soap:Body><x/></soap:Body>"
    "</soap:Envelope>"
)


def _attr(name: str, value: str) -> str:
    return (
        f'<saml:Attribute Name="{name}"><saml:AttributeValue>{value}'
        "</saml:AttributeValue></saml:Attribute>"
    )


def test_saml_common_name_blocks_registered_passes() -> None:
    assert scan(_SAML.format(_attr("urn:oid:2.5.4.3", "Liisa Korhonen")), S).verdict is (
        Verdict.BLOCK
    )
    clean = scan(_SAML.format(_attr("urn:oid:2.5.4.3", "Hannu Lääkäri Tes")), S)
    assert clean.verdict is Verdict.PASS


@pytest.mark.parametrize(
    "attrs",
    [
        pytest.param(
            _attr("urn:oid:2.5.4.4", "Korhonen") + _attr("urn:oid:2.5.4.42", "Liisa"),
            id="sn-givenName",
        ),
        pytest.param(_attr("displayName", "Korhonen Liisa"), id="displayName"),
        # (Both passed as identifiers: an AttributeValue was one under any attribute Name.)
        pytest.param(_attr("mail", "liisa.korhonen@gmail.com"), id="mail"),
        pytest.param(
            _attr("urn:oid:0.9.2342.19200300.100.1.3", "liisa.korhonen@gmail.com"), id="mail-oid"
        ),
        pytest.param(_attr("telephoneNumber", "040 111 2233"), id="telephoneNumber"),
    ],
)
def test_saml_subject_attributes_block(attrs: str) -> None:
    assert scan(_SAML.format(attrs), S).verdict is Verdict.BLOCK


def test_saml_registered_attributes_pass() -> None:
    attrs = _attr("urn:oid:2.5.4.4", "Lääkäri") + _attr("urn:oid:2.5.4.42", "Hannu")
    assert scan(_SAML.format(attrs), S).verdict is Verdict.PASS


def test_registered_code_under_other_registered_name_blocks() -> None:
    from test_personal import Person

    report = scan(cda(Person(("Väinö",), "Äijälä", code=MAIJA)), "application/xml")
    assert "name.mismatch" in report.rules
    assert scan(cda(), "application/xml").verdict is Verdict.PASS
