"""Tests for kanta_guard.mediatype: type families, document sniffing, labels that lie."""

from __future__ import annotations

import codecs
import json
import time
from collections.abc import Callable

import pytest
from helpers import REAL, TEST
from hypothesis import given, settings
from hypothesis import strategies as st

from kanta_guard import Scanner, Verdict
from kanta_guard.mediatype import MediaType, parse_media_type, sniff_document, sniffed_type


@pytest.mark.parametrize(
    ("value", "family"),
    [
        ("application/json", "json"),
        ("text/json", "json"),  # unregistered, still sent
        ("application/x-json", "json"),
        ("application/json+fhir", "json"),  # FHIR STU3/DSTU2
        ("application/fhir+json; fhirVersion=4.0", "json"),
        ("application/xml+fhir", "xml"),  # FHIR STU3/DSTU2
        ("application/fhir+xml", "xml"),
        ("text/xml", "xml"),
        ("application/x-ndjson", "ndjson"),
        ("application/fhir+ndjson", "ndjson"),  # FHIR Bulk Data
        ("application/jsonl", "ndjson"),
        ("text/html; charset=utf-8", "html"),
        ("application/xhtml+xml", "xml"),
        ("text/plain", ""),
        ("image/png", ""),
        ("application/json-patch", ""),  # not JSON by name: no suffix, no "+"
    ],
)
def test_families(value: str, family: str) -> None:
    """Each type belongs to the one family its name or structured suffix gives."""
    media = parse_media_type(value)
    families = {
        "json": media.is_json,
        "xml": media.is_xml,
        "ndjson": media.is_ndjson,
        "html": media.is_html,
    }
    assert [name for name, member in families.items() if member] == ([family] if family else [])


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"a": 1}', "application/json"),
        (b" \r\n\t[1, 2]", "application/json"),
        (b"<?xml version='1.0'?><a/>", "application/xml"),
        (b"<!-- c --><a/>", "application/xml"),
        (b"\n<Patient/>", "application/xml"),
        (codecs.BOM_UTF8 + b'{"a": 1}', "application/json"),  # a BOM with no type
        ('{"a": 1}'.encode("utf-16"), "application/json"),
        ('{"a": 1}'.encode("utf-16-le"), "application/json"),  # no BOM: NUL bytes skipped
        ("<a/>".encode("utf-16-be"), "application/xml"),
        ("<a/>".encode("utf-32"), "application/xml"),
        (b" " * 100_000 + b"{}", "application/json"),  # far in, still found
        (b"< not markup", ""),
        (b"<", ""),
        (b"plain text", ""),
        (b"\x89PNG\r\n\x1a\n", ""),
        (b"", ""),
    ],
)
def test_sniff_document(data: bytes, expected: str) -> None:
    """XML and JSON are told by their first character after BOM, NUL bytes and whitespace."""
    assert sniff_document(data) == expected


@pytest.mark.parametrize(
    ("label", "data", "expected"),
    [
        ("image/png", b'{"a": 1}', "application/json"),
        ("application/octet-stream", codecs.BOM_UTF8 + b"<a/>", "application/xml"),
        ("text/csv; charset=utf-16", "[1]".encode("utf-16-le"), "application/json"),
        ("", b"[]", "application/json"),
        # Types the guard parses as labelled keep their label.
        ("application/fhir+json", b"<a/>", "application/fhir+json"),
        ("text/html", b"<html/>", "text/html"),
        ("application/x-ndjson", b"{}\n{}", "application/x-ndjson"),
        ("multipart/related; boundary=b", b"<a/>", "multipart/related"),
        ("application/x-www-form-urlencoded", b"{a}=1", "application/x-www-form-urlencoded"),
        # Bytes that look like no document keep the label.
        ("image/png", b"\x89PNG", "image/png"),
    ],
)
def test_sniffed_type(label: str, data: bytes, expected: str) -> None:
    """A generic or lying label gives way to what the bytes are; a charset parameter stays."""
    media = parse_media_type(label)
    sniffed = sniffed_type(media, data)
    assert sniffed.type == expected
    assert sniffed.params.get("charset") == media.params.get("charset")


def test_sniffed_type_keeps_the_object_when_nothing_changes() -> None:
    """The parser tells a sniffed type by identity: an unchanged label is the same object."""
    media = MediaType("text/plain")
    assert sniffed_type(media, b"hello") is media


def _fhir(code: str) -> bytes:
    """A FHIR Patient with the code as its HETU identifier."""
    return json.dumps(
        {"resourceType": "Patient", "identifier": [{"system": "urn:oid:1.2.246.21", "value": code}]}
    ).encode()


#: (name, content type, body from a code): labels that lie, old labels, a BOM with no label.
LABELS: list[tuple[str, str | None, Callable[[str], bytes]]] = [
    ("JSON declared image/png", "image/png", _fhir),
    ("JSON declared text/json", "text/json", _fhir),
    ("FHIR STU3 application/json+fhir", "application/json+fhir", _fhir),
    (
        "FHIR STU3 application/xml+fhir",
        "application/xml+fhir",
        lambda c: (
            f'<Patient xmlns="http://hl7.org/fhir"><identifier><system '
            f'value="urn:oid:1.2.246.21"/><value value="{c}"/></identifier></Patient>'.encode()
        ),
    ),
    ("BOM and JSON, no type", None, lambda c: codecs.BOM_UTF8 + _fhir(c)),
    (
        "UTF-16 JSON without BOM in text/plain",
        "text/plain",
        lambda c: _fhir(c).decode().encode("utf-16-le"),
    ),
    (
        "JSON escapes declared image/gif",
        "image/gif",
        lambda c: f'{{"note": "{c[:6]}\\u002d{c[7:]}"}}'.encode(),
    ),
    (
        "XML with a BOM declared application/octet-stream",
        "application/octet-stream",
        lambda c: codecs.BOM_UTF8 + f"<a>{c[:6]}&#45;{c[7:]}</a>".encode(),
    ),
]


@pytest.mark.parametrize(("name", "content_type", "build"), LABELS, ids=[x[0] for x in LABELS])
def test_labels_that_lie(
    scanner: Scanner, name: str, content_type: str | None, build: Callable[[str], bytes]
) -> None:
    """A real code behind any label is blocked; the same document with a test code passes."""
    assert scanner.scan_bytes(build(REAL), content_type).rules == ("hetu.real",)
    assert scanner.scan_bytes(build(TEST), content_type).verdict is Verdict.PASS


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_sniff_never_fails(data: bytes) -> None:
    """Any bytes sniff to one of three answers, without an exception."""
    assert sniff_document(data) in ("", "application/xml", "application/json")


@pytest.mark.parametrize(
    "data", [b" " * 2_000_000, b"\x00" * 2_000_000, b"<" + b"\x00" * 2_000_000, b"\xff\xfe" * 10**6]
)
def test_sniff_cost_is_linear(data: bytes) -> None:
    """Sniffing megabytes of whitespace or NUL bytes is one C-level search, not a loop."""
    started = time.perf_counter()
    sniff_document(data)
    assert time.perf_counter() - started < 0.2
