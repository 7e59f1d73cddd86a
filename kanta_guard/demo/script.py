"""The demo's system under test: a realistic mix of clean and dirty messages, and how one is sent.

Every message is built from the same few templates (a Finnish CDA R2 document in an HL7 V3 SOAP
1.2 message, inline or Base64; a FHIR R4 Patient or Observation), so a clean message and its
dirty twin differ only in the one thing the guard must catch:

- clean: the 900-series test identities of :data:`PEOPLE` (valid check characters, checked with
  :func:`kanta_guard.idcode.classify` when the module loads), with the names and phone they are
  registered under in the demo's registry (:func:`registry_text`);
- dirty: a real-range identity code (computed here from its parts, never written out), a
  real-looking name and phone, a personal e-mail address, a production certificate (DVV's
  production CA certificate shipped in ``kanta_guard/data/certs``) in the document's signature.

:func:`send` sends one message through the guard (an explicit proxy, plain HTTP) and reads who
answered: the fake endpoint (``X-Fake-Kanta``) or the guard (``X-Kanta-Guard: blocked``).
Nothing printed holds an identity code unmasked (:func:`kanta_guard.idcode.mask_text`).
"""

from __future__ import annotations

import base64
import html
import http.client
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources
from xml.sax.saxutils import escape, quoteattr

from ..idcode import Kind, classify, mask_text
from .endpoint import ANSWER_HEADER

__all__ = [
    "PEOPLE",
    "Message",
    "Outcome",
    "Person",
    "messages",
    "registry_text",
    "send",
    "summary",
]

_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"  # DVV: int(DDMMYYZZZ) % 31 indexes this
_HETU_OID = "1.2.246.21"
_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
_SOAP12_TYPE = 'application/soap+xml; charset=utf-8; action="urn:hl7-org:v3:{}"'
_FHIR_TYPE = "application/fhir+json; charset=utf-8"
_PRODUCTION_CERT = "production-DVV-Citizen-Certificates-G4E.der"


def _code(date: str, sign: str, number: int, kind: Kind) -> str:
    """A valid identity code from its parts (DVV's check character), of the ``kind`` asked."""
    code = f"{date}{sign}{number:03d}{_CHECK[int(f'{date}{number:03d}') % 31]}"
    if classify(code) is not kind:  # pragma: no cover - a typo in the parts below
        raise ValueError(f"{mask_text(code)} is not a {kind.value} code")
    return code


@dataclass(frozen=True, slots=True)
class Person:
    """Someone a message names: identity code, names, birth date, gender, contact details."""

    code: str
    given: tuple[str, ...]
    family: str
    birth: str  # YYYYMMDD
    female: bool
    phone: str = ""
    email: str = ""
    role: str = "patient"

    def with_code(self, code: str) -> Person:
        return replace(self, code=code)


_TEST = Kind.TEST
#: The demo's test identities: 900-series codes (valid check characters) and invented people, as
#: the registry of test identities lists them (Kela issues such codes for independent testing).
PATIENT = Person(
    _code("010181", "-", 900, _TEST), ("Maija", "Liisa"), "Testinen", "19810101", True,
    phone="+358401234567", email="maija.testinen@example.com",
)  # fmt: skip
CHILD = Person(_code("020516", "C", 903, _TEST), ("Oona",), "Testinen", "20160502", True)
GUARDIAN = Person(
    _code("231069", "-", 971, _TEST), ("Arto", "Alvar"), "Testaaja", "19691023", False,
    role="guardian",
)  # fmt: skip
DOCTOR = Person(
    _code("030875", "-", 999, _TEST), ("Hannu",), "Lääkäri", "19750803", False,
    role="professional",
)  # fmt: skip
PEOPLE = (PATIENT, CHILD, GUARDIAN, DOCTOR)

#: A real-range code (individual number 002-899): a real person's, as a careless copy from
#: production would bring. Computed from its parts; it never leaves loopback and is shown masked.
_REAL = _code("150362", "-", 417, Kind.REAL)
_REAL_GUARDIAN = _code("280758", "-", 226, Kind.REAL)
#: A real-looking person who is in no registry of test identities (a next of kin copied from
#: production data).
_STRANGER = Person("", ("Mikko", "Juhani"), "Korhonen", "19620315", False, phone="040 765 4321")


def registry_text() -> str:
    """The demo's registry of test identities (TOML, ``kanta-guard registry check`` format)."""
    lines = [
        "# kanta-guard demo: the test identities the scripted system under test may use.",
        "# All codes are 900-series test codes; all people are invented.",
    ]
    for person in PEOPLE:
        lines += [
            "",
            "[[identity]]",
            f'code = "{person.code}"',
            f"given = {json.dumps(' '.join(person.given), ensure_ascii=False)}",
            f"family = {json.dumps(person.family, ensure_ascii=False)}",
            'pool = "independent"',
            f'role = "{person.role}"',
        ]
        if person.phone:
            lines.append(f'phones = ["{person.phone}"]')
        if person.email:
            lines.append(f'emails = ["{person.email}"]')
    return "\n".join(lines) + "\n"


# --- the templates --------------------------------------------------------------------------------


def _name(person: Person, suffix: str = "") -> str:
    given = "".join(f"<given>{escape(g)}</given>" for g in person.given)
    return f"<name>{given}<family>{escape(person.family + suffix)}</family></name>"


def _cda(
    patient: Person,
    *,
    title: str,
    narrative: str,
    guardian: Person | None = None,
    signature: str = "",
) -> str:
    """A Finnish CDA R2 document (``urn:hl7-org:v3`` + ``hl7fi:``) written by :data:`DOCTOR`
    (a test professional card: the surname ends in `` Tes``) about ``patient``."""
    guardian_xml = ""
    if guardian is not None:
        guardian_xml = f"""
      <guardian classCode="GUARD">
        <id root="{_HETU_OID}" extension="{guardian.code}"/>
        <guardianPerson>{_name(guardian)}</guardianPerson>
      </guardian>"""
    gender = "2" if patient.female else "1"
    return f"""\
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:hl7fi="urn:hl7finland" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <realmCode code="FI"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="1.2.246.777.11.2016.11"/>
  <id root="1.2.246.10.1234567.93.2026.1201.1"/>
  <code code="6" codeSystem="1.2.246.537.5.40105.2006" displayName={quoteattr(title)}/>
  <title>{escape(title)}</title>
  <effectiveTime value="20261201100000"/>
  <confidentialityCode code="5" codeSystem="1.2.246.777.5.99902.2006"/>
  <languageCode code="fi"/>
  <recordTarget>
    <patientRole>
      <id root="{_HETU_OID}" extension="{patient.code}"/>
      <patient>
        {_name(patient)}
        <administrativeGenderCode code="{gender}" codeSystem="1.2.246.537.5.1.1997"/>
        <birthTime value="{patient.birth}"/>{guardian_xml}
      </patient>
    </patientRole>
  </recordTarget>
  <author>
    <time value="20261201100000"/>
    <assignedAuthor>
      <id root="{_HETU_OID}" extension="{DOCTOR.code}"/>
      <assignedPerson>{_name(DOCTOR, " Tes")}</assignedPerson>
      <representedOrganization>
        <id root="1.2.246.10.1234567.10.0"/>
        <name>Demon terveyskeskus</name>
      </representedOrganization>
    </assignedAuthor>
  </author>
  <custodian><assignedCustodian><representedCustodianOrganization>
    <id root="1.2.246.10.1234567.10.0"/><name>Demon terveyskeskus</name>
  </representedCustodianOrganization></assignedCustodian></custodian>
  <component>
    <structuredBody>
      <component>
        <section>
          <title>{escape(title)}</title>
          <text>{escape(narrative)}</text>
        </section>
      </component>
    </structuredBody>
  </component>
  <hl7fi:localHeader>
    <hl7fi:softwareSupport product="kanta-guard demo 1.0"/>{signature}
  </hl7fi:localHeader>
</ClinicalDocument>"""


def _signature(der: bytes) -> str:
    """An XML-DSig signature block (as Finnish CDA's ``hl7fi:signatureCollection`` holds one)
    carrying ``der`` as its signing certificate."""
    cert = base64.b64encode(der).decode("ascii")
    return f"""
    <hl7fi:signatureCollection><hl7fi:signature>
      <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:SignedInfo>
          <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
          <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
        </ds:SignedInfo>
        <ds:SignatureValue>AAAA</ds:SignatureValue>
        <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data>
        </ds:KeyInfo>
      </ds:Signature>
    </hl7fi:signature></hl7fi:signatureCollection>"""


def _production_certificate() -> bytes:
    """DVV's production CA certificate "DVV Citizen Certificates - G4E" (package data)."""
    folder = resources.files("kanta_guard") / "data" / "certs"
    return folder.joinpath(_PRODUCTION_CERT).read_bytes()


def _soap(interaction: str, message_id: str, patient: Person, cda: str, *, b64: bool) -> bytes:
    """An HL7 V3 message ``interaction`` in a SOAP 1.2 envelope, the CDA inline or Base64."""
    if b64:
        encoded = base64.b64encode(cda.encode("utf-8")).decode("ascii")
        document = f'<text mediaType="text/xml" representation="B64">{encoded}</text>'
    else:
        document = cda
    return f"""\
<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="{_SOAP12}">
  <env:Header/>
  <env:Body>
    <{interaction} xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0">
      <id root="1.2.246.10.1234567.14.2026.1201.{message_id}"/>
      <creationTime value="20261201100000"/>
      <interactionId root="2.16.840.1.113883.1.6" extension="{interaction}"/>
      <processingCode code="T"/>
      <processingModeCode code="T"/>
      <acceptAckCode code="AL"/>
      <receiver typeCode="RCV"><device classCode="DEV" determinerCode="INSTANCE">
        <id root="1.2.246.10.2462460.19.1"/></device></receiver>
      <sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE">
        <id root="1.2.246.10.1234567.10.0"/></device></sender>
      <controlActProcess classCode="CACT" moodCode="EVN">
        <subject typeCode="SUBJ">
          <patient><id root="{_HETU_OID}" extension="{patient.code}"/></patient>
          <document>{document}</document>
        </subject>
      </controlActProcess>
    </{interaction}>
  </env:Body>
</env:Envelope>
""".encode()


def _identifier(code: str) -> dict[str, object]:
    """A FHIR identifier holding an identity code (HL7 Finland: NNFIN, urn:oid:1.2.246.21)."""
    return {
        "use": "official",
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNFIN"}]
        },
        "system": f"urn:oid:{_HETU_OID}",
        "value": code,
    }


def _patient(
    person: Person, rid: str | None = None, email: str = "", contact: Person | None = None
) -> bytes:
    """A FHIR R4 Patient (Kanta PHR profile) for ``person``, with a next of kin ``contact``."""
    telecom = [{"system": "phone", "value": person.phone, "use": "mobile"}] if person.phone else []
    if email:
        telecom.append({"system": "email", "value": email})
    resource: dict[str, object] = {"resourceType": "Patient"}
    if rid:
        resource["id"] = rid
    b = person.birth
    resource.update(
        meta={"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-patient"]},
        identifier=[_identifier(person.code)],
        active=True,
        name=[{"use": "official", "family": person.family, "given": list(person.given)}],
        telecom=telecom,
        gender="female" if person.female else "male",
        birthDate=f"{b[:4]}-{b[4:6]}-{b[6:]}",
    )
    if contact is not None:
        resource["contact"] = [{
            "relationship": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N",
            }]}],
            "name": {"family": contact.family, "given": list(contact.given)},
            "telecom": [{"system": "phone", "value": contact.phone}],
        }]  # fmt: skip
    return _json(resource)


def _weight(code: str, kilograms: float) -> bytes:
    """A FHIR R4 body-weight Observation (Kanta PHR) whose subject is identified by ``code``."""
    observation = {
        "resourceType": "Observation",
        "meta": {"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyweight"]},
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
        }]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7",
                             "display": "Body weight"}]},
        "subject": {"identifier": _identifier(code)},
        "effectiveDateTime": "2026-12-01T10:00:00+02:00",
        "valueQuantity": {"value": kilograms, "unit": "kg", "system": "http://unitsofmeasure.org",
                          "code": "kg"},
    }  # fmt: skip
    return _json(observation)


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8")


# --- the messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One request of the script: what it is, whether the guard must stop it, and the bytes."""

    api: str  # "SOAP" or "FHIR"
    title: str  # what it is, in words (never an identity code, a name or a number)
    dirty: bool
    #: The rules a dirty message must be blocked by (all of them must fire).
    rules: tuple[str, ...]
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


_PRESCRIPTION = "RCMR_IN100016FI01"  # eResepti: a new prescription
_ARCHIVE = "RCMR_IN010000FI01"  # eArkisto: a patient-record document to the archive
_PRESCRIPTION_PATH = "/soap/eresepti"
_ARCHIVE_PATH = "/soap/earkisto"


def _soap_message(
    title: str, dirty: bool, rules: tuple[str, ...], interaction: str, patient: Person,
    cda: str, *, b64: bool = False, message_id: str = "1",
) -> Message:  # fmt: skip
    path = _PRESCRIPTION_PATH if interaction == _PRESCRIPTION else _ARCHIVE_PATH
    headers = (("Content-Type", _SOAP12_TYPE.format(interaction)),)
    body = _soap(interaction, message_id, patient, cda, b64=b64)
    return Message("SOAP", title, dirty, rules, "POST", path, headers, body)


def _fhir_message(
    title: str, dirty: bool, rules: tuple[str, ...], method: str, path: str, body: bytes
) -> Message:
    headers = (("Content-Type", _FHIR_TYPE), ("Accept", "application/fhir+json"))
    return Message("FHIR", title, dirty, rules, method, path, headers, body)


def messages() -> tuple[Message, ...]:
    """The script, clean and dirty messages interleaved (a round takes ~11 requests)."""
    prescription = "Diapam 5 mg tabletti, 1 x 1 tarvittaessa. Ei aiempia lääkeallergioita."
    visit = "Kontrollikäynti. Verenpaine 128/82. Jatketaan nykyistä lääkitystä."
    child_visit = "Neuvolakäynti. Kasvu käyrällään, rokotukset ajan tasalla."
    cases = [
        _soap_message(
            "eResepti prescription, test patient and test doctor",
            False, (), _PRESCRIPTION, PATIENT,
            _cda(PATIENT, title="Lääkemääräys", narrative=prescription), message_id="1",
        ),
        _soap_message(
            "eResepti prescription, patient's real identity code",
            True, ("hetu.real",), _PRESCRIPTION, PATIENT.with_code(_REAL),
            _cda(PATIENT.with_code(_REAL), title="Lääkemääräys", narrative=prescription),
            message_id="2",
        ),
        _fhir_message(
            "Patient create, registered test person",
            False, (), "POST", "/fhir/Patient", _patient(PATIENT),
        ),
        _fhir_message(
            "Patient create, next of kin: real-looking name and phone",
            True, ("name.unregistered", "phone.personal"), "POST", "/fhir/Patient",
            _patient(CHILD, contact=_STRANGER),
        ),
        _fhir_message(
            "Observation (body weight), test patient",
            False, (), "POST", "/fhir/Observation", _weight(PATIENT.code, 64.5),
        ),
        _soap_message(
            "eArkisto visit note (Base64 CDA), real code in the text",
            True, ("hetu.real",), _ARCHIVE, CHILD,
            _cda(CHILD, title="Käyntikertomus", guardian=GUARDIAN,
                 narrative=f"{child_visit} Huoltajan henkilötunnus {_REAL_GUARDIAN}."),
            b64=True, message_id="3",
        ),
        _soap_message(
            "eArkisto visit note (Base64 CDA), child and guardian",
            False, (), _ARCHIVE, CHILD,
            _cda(CHILD, title="Käyntikertomus", guardian=GUARDIAN, narrative=child_visit),
            b64=True, message_id="4",
        ),
        _fhir_message(
            "Patient create, personal e-mail address",
            True, ("email.personal",), "POST", "/fhir/Patient",
            _patient(PATIENT, email="maija.liisa.t" + "@gmail.com"),
        ),
        _soap_message(
            "eArkisto visit note signed with a production certificate",
            True, ("cert.production",), _ARCHIVE, PATIENT,
            _cda(PATIENT, title="Käyntikertomus", narrative=visit,
                 signature=_signature(_production_certificate())),
            message_id="5",
        ),
        _fhir_message(
            "Patient update, registered test person",
            False, (), "PUT", "/fhir/Patient/demo-patient-1",
            _patient(PATIENT, rid="demo-patient-1"),
        ),
        _fhir_message(
            "Observation (body weight), real identity code",
            True, ("hetu.real",), "POST", "/fhir/Observation", _weight(_REAL, 82.0),
        ),
    ]  # fmt: skip
    return tuple(cases)


# --- sending --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message: who answered, the status, and the rules that fired."""

    message: Message
    status: int | None  # None: no answer at all (the connection failed)
    #: "passed" (the endpoint answered), "warned" (it did, with the guard's warning header),
    #: "blocked" (the guard answered), "error" (anything else).
    verdict: str
    rules: tuple[str, ...] = ()
    detail: str = ""  # masked: the first finding's evidence, or what went wrong

    @property
    def expected(self) -> bool:
        """Whether the guard did what the message expects: a dirty one blocked by every rule it
        names, a clean one passed (not warned) and accepted by the endpoint."""
        if self.message.dirty:
            return self.verdict == "blocked" and set(self.message.rules) <= set(self.rules)
        return self.verdict == "passed" and self.status is not None and self.status < 300

    def line(self, number: int, total: int) -> str:
        """One line for the terminal, masked."""
        message = self.message
        kind = "dirty" if message.dirty else "clean"
        head = f"{number:>3}/{total}  {message.api}  {kind}  {message.title:<58}"
        status = "---" if self.status is None else str(self.status)
        if self.verdict == "blocked":
            tail = f"{status} BLOCKED by the guard: {', '.join(self.rules)}"
            if self.detail:
                tail += f" ({self.detail})"
        elif self.verdict in ("passed", "warned"):
            tail = f"{status} {self.verdict}, reached the fake Kanta endpoint"
            if self.rules:
                tail += f" (warnings: {', '.join(self.rules)})"
        else:
            tail = f"{status} ERROR: {self.detail}"
        if not self.expected:
            tail += "  <-- unexpected"
        return mask_text(f"{head} -> {tail}")


def send(message: Message, proxy: tuple[str, int], endpoint: str, timeout: float = 30) -> Outcome:
    """Send ``message`` to the ``endpoint`` base URL through the explicit ``proxy`` (host, port).

    Plain HTTP in absolute form (``POST http://127.0.0.1:PORT/path``), as a client configured
    with an HTTP proxy sends it; no environment proxy settings are read.
    """
    url = endpoint.rstrip("/") + message.path
    connection = http.client.HTTPConnection(*proxy, timeout=timeout)
    try:
        connection.request(message.method, url, message.body, dict(message.headers))
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(message, None, "error", detail=mask_text(f"{type(exc).__name__}: {exc}"))
    finally:
        connection.close()
    guard = response.getheader("X-Kanta-Guard", "")
    rules = _rules(response.getheader("X-Kanta-Guard-Rules", ""))
    if response.getheader(ANSWER_HEADER[0]) == ANSWER_HEADER[1]:
        if guard.startswith("warned"):
            return Outcome(message, response.status, "warned", _warned_rules(guard))
        return Outcome(message, response.status, "passed")
    if guard == "blocked":
        detail = _evidence(response.getheader("Content-Type", ""), body)
        return Outcome(message, response.status, "blocked", rules, detail)
    return Outcome(
        message, response.status, "error", detail=f"answered by neither ({response.reason})"
    )


def _rules(text: str) -> tuple[str, ...]:
    return tuple(r.strip() for r in text.split(",") if r.strip())


def _warned_rules(header: str) -> tuple[str, ...]:
    """The rules of ``X-Kanta-Guard: warned; rules=a,b``."""
    _, _, rest = header.partition("rules=")
    return _rules(rest.split(";", 1)[0])


_EVIDENCE = re.compile(r"evidence ([^,)]+)")


def _evidence(content_type: str, body: bytes) -> str:
    """The first finding's role and evidence from the guard's answer (a SOAP Fault's
    ``kg:finding``, an OperationOutcome issue), clipped and masked once more."""
    text = body.decode("utf-8", "replace")
    if "json" in content_type:
        try:
            issues = json.loads(text).get("issue", [])
        except (ValueError, AttributeError):
            return ""
        # The first issue is the summary; a finding's diagnostics say "(evidence …, …)".
        found = _EVIDENCE.search(str(issues[1].get("diagnostics", ""))) if issues[1:] else None
        return _clip(found.group(1)) if found else ""
    tag = re.search(r"<kg:finding\b[^>]*>", text)
    if tag is None:
        return ""
    attrs = dict(re.findall(r'\b(role|evidence)="([^"]*)"', tag.group(0)))
    return _clip(
        " ".join(v for k in ("role", "evidence") if (v := html.unescape(attrs.get(k, ""))))
    )


def _clip(text: str, limit: int = 60) -> str:
    text = mask_text(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary(outcomes: Sequence[Outcome]) -> str:
    """One line summing up a run of the script."""
    blocked = sum(o.verdict == "blocked" for o in outcomes)
    reached = sum(o.verdict in ("passed", "warned") for o in outcomes)
    errors = sum(o.verdict == "error" for o in outcomes)
    wrong = sum(not o.expected for o in outcomes)
    text = f"{len(outcomes)} sent: {reached} reached the fake Kanta endpoint, {blocked} blocked"
    if errors:
        text += f", {errors} failed"
    text += "; every verdict as expected" if not wrong else f"; {wrong} NOT as expected"
    return text
