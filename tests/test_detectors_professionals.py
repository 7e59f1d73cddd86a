"""Tests for kanta_guard.detectors.professionals: with a registry, a Terhikki number must be a
registered test professional's, in CDA and FHIR, and the screen lets the fields through."""

from __future__ import annotations

import json
from functools import cache

from helpers import FIXTURES, identity_policy

from kanta_guard import KeyedHasher, Scanner
from kanta_guard.detectors.professionals import TERHIKKI_OID, ProfessionalDetector
from kanta_guard.model import Context, Field, Role, Verdict
from kanta_guard.registry import Registry, load_registry

REGISTERED = "10012345678"
STRANGER = "10099988877"


@cache
def registry() -> Registry:
    return load_registry(FIXTURES / "personal" / "registry.toml")


def scanner() -> Scanner:
    return Scanner(
        identity_policy(), KeyedHasher(b"professionals-key-0123456789abcd"), registry=registry()
    )


def cda(number: str) -> bytes:
    return f"""<ClinicalDocument xmlns="urn:hl7-org:v3">
<author><assignedAuthor><id root="{TERHIKKI_OID}" extension="{number}"/></assignedAuthor></author>
<title>Lääkemääräys</title></ClinicalDocument>""".encode()


def test_a_registered_number_passes_and_a_stranger_blocks() -> None:
    detector = ProfessionalDetector(registry())
    ctx = Context(Role.AUTHOR, "id", TERHIKKI_OID)
    assert list(detector.detect(Field(REGISTERED, ctx, "x", identifier=True))) == []
    (hit,) = detector.detect(Field(STRANGER, ctx, "x", identifier=True))
    assert hit.rule == "registry.unknown_professional"
    assert STRANGER not in hit.masked
    # Not an identifier of that system: nothing.
    assert list(detector.detect(Field(STRANGER, Context(Role.AUTHOR), "x"))) == []


def test_in_a_cda_author() -> None:
    assert scanner().scan_bytes(cda(REGISTERED), "application/xml").verdict is Verdict.PASS
    report = scanner().scan_bytes(cda(STRANGER), "application/xml")
    assert report.verdict is Verdict.BLOCK
    (finding,) = report.findings
    assert finding.rule == "registry.unknown_professional"
    assert "assignedAuthor" in finding.location
    assert STRANGER not in finding.evidence


def test_in_a_fhir_practitioner() -> None:
    body = json.dumps(
        {
            "resourceType": "Practitioner",
            "identifier": [{"system": f"urn:oid:{TERHIKKI_OID}", "value": STRANGER}],
        }
    ).encode()
    report = scanner().scan_bytes(body, "application/fhir+json")
    assert [f.rule for f in report.findings] == ["registry.unknown_professional"]


def test_without_a_registry_terhikki_numbers_are_not_judged() -> None:
    plain = Scanner(identity_policy(), KeyedHasher(b"professionals-key-0123456789abcd"))
    assert plain.scan_bytes(cda(STRANGER), "application/xml").verdict is Verdict.PASS
