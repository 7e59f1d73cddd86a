"""Tests for kanta_guard.dicom.xds: the patient of an XDS document entry's ``sourcePatientInfo``
(HL7 v2 PID fields) and ``sourcePatientId`` slots, as a RAD-68 request's metadata carries them,
read as the personal-data rules' parties; and the scan of a RAD-68 request whose metadata names
a real-looking patient."""

from __future__ import annotations

from xml.sax.saxutils import escape

import dicomgen
from dicomgen import kos, part10
from helpers import REAL, TEST
from lxml import etree

from kanta_guard.dicom.xds import pid_party, xds_parties
from kanta_guard.model import HETU_OID, Address, Party, PartyKind, Role, Telecom, Verdict

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
MTOM = 'multipart/related; type="application/xop+xml"; start="<root>"; boundary=MIME'


def metadata(info: list[str], source_id: str = f"{TEST}^^^&1.2.246.21&ISO") -> str:
    """An ITI-41/RAD-68 SubmitObjectsRequest with one KOS DocumentEntry."""
    values = "".join(f"<rim:Value>{escape(v)}</rim:Value>" for v in info)
    return (
        '<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" '
        f'xmlns:rim="{RIM}"><rim:RegistryObjectList>'
        '<rim:ExtrinsicObject id="kos" mimeType="application/dicom">'
        '<rim:Slot name="sourcePatientId"><rim:ValueList>'
        f"<rim:Value>{escape(source_id)}</rim:Value></rim:ValueList></rim:Slot>"
        f'<rim:Slot name="sourcePatientInfo"><rim:ValueList>{values}</rim:ValueList></rim:Slot>'
        "</rim:ExtrinsicObject></rim:RegistryObjectList></lcm:SubmitObjectsRequest>"
    )


def rad68(info: list[str], manifest: bytes | None = None, source_id: str = "") -> bytes:
    """A RAD-68 MTOM/XOP request: the SOAP part with the metadata, the KOS manifest part."""
    manifest = manifest if manifest is not None else part10(kos())
    return (
        b"--MIME\r\nContent-Type: application/xop+xml; charset=UTF-8; "
        b'type="application/soap+xml"\r\nContent-ID: <root>\r\n\r\n'
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
        b'<ProvideAndRegisterDocumentSetRequest xmlns="urn:ihe:iti:xds-b:2007">'
        + metadata(info, source_id).encode()
        + b'<Document id="kos"><Include xmlns="http://www.w3.org/2004/08/xop/include" '
        b'href="cid:kos"/></Document></ProvideAndRegisterDocumentSetRequest>'
        b"</s:Body></s:Envelope>\r\n"
        b"--MIME\r\nContent-Type: application/dicom\r\nContent-ID: <kos>\r\n\r\n"
        + manifest
        + b"\r\n--MIME--\r\n"
    )


def parties(info: list[str], **kwargs: str) -> list[Party]:
    root = etree.fromstring(metadata(info, **kwargs).encode())
    return list(xds_parties(root, lambda el: "here"))


def test_pid_fields_make_the_patient() -> None:
    """PID-3 (CX), PID-5 (XPN), PID-11 (XAD), PID-13 (XTN) are the patient's, with the
    sourcePatientId; PID-7 (a date) is left to the text rules."""
    (patient,) = parties(
        [
            f"PID-3|{REAL}^^^&1.2.246.21&ISO",
            "PID-5|Virtanen^Matti^Juhani",
            "PID-7|19521013",
            "PID-11|Mannerheimintie 5 A 7^^Helsinki^^00100^FIN",
            "PID-13|+358407654321",
        ]
    )
    assert patient.kind is PartyKind.PERSON and patient.role is Role.PATIENT
    assert patient.location == "here"
    assert patient.identifiers == ((HETU_OID, REAL), (HETU_OID, TEST))
    (name,) = patient.names
    assert (name.given, name.family, name.text) == (
        ("Matti", "Juhani"),
        ("Virtanen",),
        "Matti Juhani Virtanen",
    )
    assert patient.addresses == (
        Address(
            ("Mannerheimintie 5 A 7",),
            "00100",
            "Helsinki",
            "FIN",
            None,
            "Mannerheimintie 5 A 7 00100 Helsinki FIN",
        ),
    )
    assert patient.telecoms == (Telecom("+358407654321", "phone"),)


def test_lenient_reading() -> None:
    """Spaces around the prefix, repetitions, v2 escapes, a family name with subcomponents, an
    e-mail in XTN, and an identity code under no authority (read as one)."""
    (patient,) = parties(
        [
            " pid - 5 |van&der&Berg^Anna~Korhonen^Aino\\T\\Liisa",
            "PID-13|^NET^Internet^anna@example.fi",
            f"PID-3|{REAL}",
        ],
        source_id="",
    )
    assert [n.text for n in patient.names] == ["Anna van der Berg", "Aino&Liisa Korhonen"]
    assert patient.telecoms == (Telecom("anna@example.fi", "email"),)
    assert patient.identifiers == ((HETU_OID, REAL),)


def test_mother_is_another_person_and_dummies_are_nobody() -> None:
    """PID-6 (mother's maiden name) is a related person's; a dummy PID-5 names nobody."""
    found = parties(["PID-5|ANONYMIZED", "PID-6|Mäkelä^Päivi"], source_id="")
    assert [(p.role, [n.text for n in p.names]) for p in found] == [
        (Role.RELATED_PERSON, ["Päivi Mäkelä"])
    ]


def test_nothing_named_is_no_party() -> None:
    """Slots that name no one (other fields, other slots, no PID prefix) make no party."""
    assert pid_party(["PID-7|19520101", "PID-8|F", "Virtanen^Matti", "PID-5|^"], "x") == []
    root = etree.fromstring(
        f'<rim:ExtrinsicObject xmlns:rim="{RIM}"><rim:Slot name="creationTime"><rim:ValueList>'
        "<rim:Value>PID-5|Virtanen^Matti</rim:Value></rim:ValueList></rim:Slot>"
        "</rim:ExtrinsicObject>".encode()
    )
    assert list(xds_parties(root, lambda el: "x")) == []


def test_a_real_code_in_pid3_is_found_today() -> None:
    """A real-range code in PID-3 is found by the text rules (the XML parser reads every value)."""
    scanner = dicomgen.dicom_scanner(registry=dicomgen.registry())
    report = scanner.scan_bytes(rad68([f"PID-3|{REAL}^^^&1.2.246.21&ISO"]), MTOM)
    assert "hetu.real" in report.rules and report.verdict is Verdict.BLOCK
    clean = scanner.scan_bytes(rad68([f"PID-3|{TEST}^^^&1.2.246.21&ISO", "PID-5|ANONYMIZED"]), MTOM)
    assert clean.verdict is Verdict.PASS, clean.findings


def test_a_real_looking_name_in_pid5_is_found() -> None:
    """A real-looking patient name in PID-5 of a RAD-68 request's metadata is a patient name
    no registered identity has, or (beside sourcePatientId's registered test code) not that
    code's; the registered identity's name passes. (The registry's rules block, as a policy
    naming a registry sets them.)"""
    policy = dicomgen.dicom_policy(**{"name.unregistered": "block", "name.mismatch": "block"})
    scanner = dicomgen.dicom_scanner(policy, registry=dicomgen.registry())
    report = scanner.scan_bytes(rad68(["PID-5|Virtanen^Matti^Juhani"]), MTOM)
    assert report.rules == ("name.unregistered",) and report.verdict is Verdict.BLOCK
    assert not any("Virtanen" in f"{f.evidence} {f.location}" for f in report.findings)
    on_test_code = rad68(["PID-5|Virtanen^Matti"], source_id=f"{TEST}^^^&1.2.246.21&ISO")
    assert scanner.scan_bytes(on_test_code, MTOM).rules == ("name.mismatch",)
    registered = scanner.scan_bytes(
        rad68([f"PID-3|{TEST}^^^&1.2.246.21&ISO", f"PID-5|{dicomgen.REGISTERED_NAME}"]), MTOM
    )
    assert registered.verdict is Verdict.PASS, registered.findings


def test_a_kos_whose_content_id_differs_in_case_is_still_read() -> None:
    """The manifest part is judged whatever the xop:Include names: a Content-ID that differs in
    case from the reference, and a part labelled application/octet-stream."""
    dirty = part10(dicomgen.with_code_in_patient_id(kos()))
    body = (
        rad68(["PID-5|ANONYMIZED"], dirty)
        .replace(b'href="cid:kos"', b'href="cid:KOS"')
        .replace(b"Type: application/dicom\r\n", b"Type: application/octet-stream\r\n")
    )
    report = dicomgen.dicom_scanner().scan_bytes(body, MTOM)
    assert {"hetu.real", "dicom.identifying"} <= set(report.rules)
    assert report.verdict is Verdict.BLOCK
