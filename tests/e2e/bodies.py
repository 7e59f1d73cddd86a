"""Request bodies for the end-to-end tests, in the image of Kela's Kanta test documents.

A CDA R2 ClinicalDocument (``urn:hl7-org:v3`` with the ``hl7fi:`` extension namespace) as Kela's
prescription test documents have it, wrapped in a SOAP 1.1 or 1.2 envelope; a FHIR R4 Patient as
the Kanta PHR examples have it. Every code here is a 900-series test code unless a caller passes
another one.
"""

from __future__ import annotations

import json

#: 900-series test codes (valid check characters).
PATIENT = "010181-900C"
PRESCRIBER = "231069-9711"
RELATIVE = "020516C903K"
#: 900-series, wrong check character (the right one is C): a warning, not a block.
MALFORMED_TEST = "250810A999Y"

HETU_OID = "1.2.246.21"
SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"

SOAP11_TYPE = "text/xml; charset=utf-8"
SOAP12_TYPE = 'application/soap+xml; charset=utf-8; action="urn:hl7-org:v3:RCMR_IN100016FI01"'
SOAP_ACTION = '"urn:hl7-org:v3:RCMR_IN100016FI01"'
FHIR_JSON_TYPE = "application/fhir+json; charset=utf-8"


def cda(patient: str = PATIENT, prescriber: str = PRESCRIBER, relative: str = RELATIVE) -> str:
    """A prescription-reservation CDA like Kela's ``LM_varaus.xml``, with the given codes."""
    return f"""\
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:hl7fi="urn:hl7finland" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" moodCode="EVN">
  <realmCode code="FI"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="1.2.246.777.11.2015.11"/>
  <id root="1.2.246.537.25.1.9991.93.2016.803.92422"/>
  <code code="6" codeSystem="1.2.246.537.5.40105.2006" codeSystemName="Reseptisanoman tyyppi" \
displayName="Lääkemääräyksen varaus"/>
  <title>Lääkemääräyksen varaus</title>
  <effectiveTime value="20160803092422"/>
  <confidentialityCode code="5" codeSystem="1.2.246.777.5.99902.2006" \
codeSystemName="Luottamuksellisuus" displayName="Salassapidettävä"/>
  <languageCode code="fi"/>
  <setId root="1.2.246.537.25.1.9991.93.2016.803.92422"/>
  <versionNumber value="1"/>
  <recordTarget>
    <patientRole classCode="PAT">
      <id root="{HETU_OID}" extension="{patient}"/>
      <patient classCode="PSN" determinerCode="INSTANCE">
        <name><given>Toni</given><given>Sakari</given><family>Jöttanen</family></name>
        <administrativeGenderCode code="1" codeSystem="1.2.246.537.5.1.1997" displayName="Mies"/>
        <birthTime value="19810101"/>
      </patient>
    </patientRole>
  </recordTarget>
  <author typeCode="AUT" contextControlCode="OP">
    <time value="20160803092422"/>
    <assignedAuthor>
      <id root="{HETU_OID}" extension="{prescriber}"/>
      <assignedPerson><name><given>Uno</given><family>Lähdekivi Tes</family></name></assignedPerson>
      <representedOrganization>
        <id root="1.2.246.556.10.32"/>
        <name>Kelan MAXX apteekki</name>
        <addr><streetAddressLine>Strömbergintie 4 E</streetAddressLine>\
<postalCode>00380</postalCode><city>HELSINKI</city></addr>
      </representedOrganization>
    </assignedAuthor>
  </author>
  <custodian>
    <assignedCustodian>
      <representedCustodianOrganization>
        <id root="1.2.246.10.2462460.19.1"/>
        <name>Kansaneläkelaitos</name>
      </representedCustodianOrganization>
    </assignedCustodian>
  </custodian>
  <participant typeCode="IND">
    <associatedEntity classCode="PRS">
      <id root="{HETU_OID}" extension="{relative}"/>
      <code code="7" codeSystem="1.2.246.537.5.40183.2008" displayName="Puoliso"/>
    </associatedEntity>
  </participant>
  <component>
    <structuredBody>
      <component>
        <section>
          <title>Lääkemääräys</title>
          <text>Potilas {patient}: Diapam 5 mg tabletti, 1 x 1 tarvittaessa.</text>
        </section>
      </component>
    </structuredBody>
  </component>
  <hl7fi:localHeader><hl7fi:softwareSupport product="kanta-guard e2e 1.0"/></hl7fi:localHeader>
</ClinicalDocument>"""


def _hl7_message(document: str) -> str:
    """The HL7 V3 message that carries the CDA in the SOAP Body."""
    return f"""\
<RCMR_IN100016FI01 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0">
      <id root="1.2.246.537.25.1.9991.93.2016.803.92423"/>
      <creationTime value="20160803092422"/>
      <interactionId root="2.16.840.1.113883.1.6" extension="RCMR_IN100016FI01"/>
      <controlActProcess classCode="CACT" moodCode="EVN">
        <subject typeCode="SUBJ">
{document}
        </subject>
      </controlActProcess>
    </RCMR_IN100016FI01>"""


def soap11(**codes: str) -> bytes:
    """A SOAP 1.1 envelope carrying the CDA (send with ``SOAP11_TYPE`` and ``SOAPAction``)."""
    return f"""\
<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="{SOAP11_NS}">
  <soap:Header/>
  <soap:Body>
    {_hl7_message(cda(**codes))}
  </soap:Body>
</soap:Envelope>
""".encode()


def soap12(**codes: str) -> bytes:
    """A SOAP 1.2 envelope carrying the CDA (send with ``SOAP12_TYPE``)."""
    return f"""\
<?xml version="1.0" encoding="utf-8"?>
<env:Envelope xmlns:env="{SOAP12_NS}">
  <env:Header/>
  <env:Body>
    {_hl7_message(cda(**codes))}
  </env:Body>
</env:Envelope>
""".encode()


def fhir_patient(code: str = PATIENT) -> bytes:
    """A FHIR R4 Patient like the Kanta PHR example, identified by ``code`` under the HETU OID."""
    patient = {
        "resourceType": "Patient",
        "meta": {"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-patient"]},
        "identifier": [{"system": f"urn:oid:{HETU_OID}", "value": code}],
        "active": True,
        "name": [{"family": "Jöttanen", "given": ["Toni"]}],
        "gender": "male",
        "birthDate": "1981-01-01",
    }
    return json.dumps(patient, ensure_ascii=False, indent=2).encode()


def plain_json(code: str = PATIENT) -> bytes:
    """A JSON body that is neither SOAP nor FHIR: a booking request naming the patient."""
    booking = {"service": "ajanvaraus", "patient": {"hetu": code, "name": "Toni Jöttanen"}}
    return json.dumps(booking, ensure_ascii=False).encode()
