"""Tests for FHIRPath from the guard's locations: JSON pointers and XPaths in FHIR bodies, and
the locations that are not in the body's resource (no expression)."""

from __future__ import annotations

import doctest
import json

import pytest
from helpers import REAL, bundle, render

from kanta_guard import Scanner, fhirpath
from kanta_guard.fhirpath import from_json_pointer, from_xpath
from kanta_guard.model import Protocol


@pytest.mark.parametrize(
    ("location", "resource", "expected"),
    [
        ("/identifier/0/value", "Patient", "Patient.identifier[0].value"),
        (
            "/entry/0/resource/identifier/0/value",
            "Bundle",
            "Bundle.entry[0].resource.identifier[0].value",
        ),
        (
            "/entry/2/resource/contained/0/identifier/1/value",
            "Bundle",
            "Bundle.entry[2].resource.contained[0].identifier[1].value",
        ),
        ("/entry/0/resource", "Bundle", "Bundle.entry[0].resource"),
        ("", "Patient", "Patient"),
        ("/subject/identifier/value", "Observation", "Observation.subject.identifier.value"),
        # Base64 decoded from an element: the element holding it.
        ("/entry/1/resource/data!base64:line 1", "Bundle", "Bundle.entry[1].resource.data"),
        (
            "/content/0/attachment/data!base64:/hetu",
            "DocumentReference",
            "DocumentReference.content[0].attachment.data",
        ),
        # A primitive's extensions (JSON ``_given``) are the primitive's in FHIRPath.
        (
            "/name/0/_given/1/extension/0/valueString",
            "Patient",
            "Patient.name[0].given[1].extension[0].valueString",
        ),
        # A key that is a finding: the object holding it.
        ("/identifier/0/oops#key", "Patient", "Patient.identifier[0]"),
        ("/identifier#key", "Patient", "Patient"),
        # Pointer escapes; a key that is no element name ends the path before it.
        ("/extension/0/a~1b/value", "Patient", "Patient.extension[0]"),
        (f"/identifier/0/{REAL}", "Patient", "Patient.identifier[0]"),
        ("/resourceType", "Patient", "Patient"),
        ("/0/value", "Patient", "Patient"),
        ("/identifier/0/1/value", "Patient", "Patient.identifier[0]"),
        # Not in the body's resource: no expression.
        ("url:query:identifier", "Patient", None),
        ("header:X-Patient", "Patient", None),
        ("body!utf-16/identifier/0/value", "Patient", None),
        ("line[2]:/identifier/0/value", "Patient", None),
        ("/identifier/0/value", "", None),
        ("/identifier/0/value", "not a type", None),
    ],
)
def test_from_json_pointer(location: str, resource: str, expected: str | None) -> None:
    """A JSON pointer becomes element names and zero-based indexes under the resource type."""
    assert from_json_pointer(location, resource) == expected


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/Patient/identifier/value/@value", "Patient.identifier.value"),
        ("/Patient/identifier[2]/value/@value", "Patient.identifier[1].value"),
        (
            "/Bundle/entry[1]/resource/Patient/identifier[1]/value/@value",
            "Bundle.entry[0].resource.identifier[0].value",
        ),
        (
            "/Patient/contained[2]/RelatedPerson/identifier/value/@value",
            "Patient.contained[1].identifier.value",
        ),
        ("/Bundle/entry[3]/resource/Patient", "Bundle.entry[2].resource"),
        ("/Patient", "Patient"),
        ("/Patient/extension[2]/@url", "Patient.extension[1].url"),
        ("/Patient/name/@id", "Patient.name.id"),
        # The narrative's XHTML is one FHIR element.
        ("/Patient/text/div/p[2]/text()", "Patient.text.div"),
        ("/Patient/text/div/text()[2]", "Patient.text.div"),
        ("/Binary/data/@value!base64:line 1", "Binary.data"),
        # An uppercase step where no resource is held is no FHIR element.
        ("/Patient/Foo/value/@value", "Patient"),
        # Not a FHIR resource at the root, or not at the body's root.
        ("/patient/identifier", None),
        ("part[1]:/Patient/identifier/value/@value", None),
        ("/Patient[2]/identifier", None),
        ("header:X-Patient", None),
    ],
)
def test_from_xpath(location: str, expected: str | None) -> None:
    """An XPath of local names: positions from 1 become indexes from 0, type wrappers and
    ``@value`` go."""
    assert from_xpath(location) == expected


def test_from_xpath_checks_the_resource() -> None:
    """Given the body's resource type, an XPath rooted elsewhere has no FHIRPath."""
    assert from_xpath("/Patient/identifier", "Patient") == "Patient.identifier"
    assert from_xpath("/Patient/identifier", "Bundle") is None


def test_doctests() -> None:
    """The module's examples hold."""
    assert doctest.testmod(fhirpath).failed == 0


def test_the_scanners_locations_convert(scanner: Scanner) -> None:
    """On real scans (the FHIR fixtures), every finding in the body has a FHIRPath under the
    body's resource type, which the report carries."""
    dirty = scanner.scan_bytes(bundle(patient=REAL).encode(), "application/fhir+json")
    assert dirty.protocol is Protocol.FHIR_JSON and dirty.resource == "Bundle"
    paths = {from_json_pointer(f.location, dirty.resource) for f in dirty.findings}
    assert "Bundle.entry[0].resource.identifier[0].value" in paths
    xml = scanner.scan_bytes(
        render("fhir_patient.xml", patient=REAL).encode(), "application/fhir+xml"
    )
    # (A FHIR XML body's XPaths start with its resource type: the report need not carry it.)
    assert xml.protocol is Protocol.FHIR_XML
    assert [from_xpath(f.location, xml.resource) for f in xml.findings] == [
        "Patient.identifier.value"
    ]
    plain = scanner.scan_bytes(json.dumps({"hetu": REAL}).encode(), "application/json")
    assert plain.resource == ""
