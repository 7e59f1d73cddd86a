"""Tests for kanta_guard.parsers.ndjson: FHIR Bulk Data and other newline-delimited JSON."""

from __future__ import annotations

import json

import pytest
from conftest import TEST_KEY
from helpers import REAL, TEST, identity_policy

from kanta_guard import KeyedHasher, Protocol, Scanner, Verdict
from kanta_guard.parsers import PARSERS, JsonParser
from kanta_guard.parsers.ndjson import NdjsonParser


@pytest.fixture(scope="module")
def ndjson_scanner() -> Scanner:
    """The default scanner: the NDJSON parser is in the registry, before the JSON parser."""
    kinds = [type(parser) for parser in PARSERS]
    assert kinds.index(NdjsonParser) < kinds.index(JsonParser)
    return Scanner(identity_policy(), KeyedHasher(TEST_KEY))


def _export(code: str, *, newline: str = "\n", at: int = 2) -> str:
    """A Bulk Data export of four Patients, the code in the identifier of the one at ``at``."""
    lines = [
        json.dumps(
            {
                "resourceType": "Patient",
                "id": f"p{i}",
                "identifier": [
                    {"system": "urn:oid:1.2.246.21", "value": code if i == at else TEST}
                ],
            }
        )
        for i in range(4)
    ]
    return newline.join(lines) + newline


@pytest.mark.parametrize(
    ("content_type", "body", "location"),
    [
        ("application/fhir+ndjson", _export(REAL).encode(), "line[3]:/identifier/0/value"),
        (
            "application/x-ndjson",
            _export(REAL, newline="\r\n").encode(),
            "line[3]:/identifier/0/value",
        ),
        (
            "application/x-ndjson",
            ("\n\n" + _export(REAL, at=0)).encode(),
            "line[3]:/identifier/0/value",
        ),
        (
            "application/fhir+ndjson; charset=utf-16",
            _export(REAL).encode("utf-16"),
            "line[3]:/identifier/0/value",
        ),
        (
            "application/jsonl",
            f'{{"a": 1}}\n{{"note": "{REAL[:6]}\\u002d{REAL[7:]}"}}\n'.encode(),
            "line[2]:/note",
        ),
    ],
)
def test_real_code_in_a_line(
    ndjson_scanner: Scanner, content_type: str, body: bytes, location: str
) -> None:
    """A real code in any line is blocked, located by line and JSON pointer."""
    report = ndjson_scanner.scan_bytes(body, content_type)
    assert [(f.rule, f.location) for f in report.findings] == [("hetu.real", location)]
    assert report.protocol is Protocol.FHIR_JSON or "fhir" not in content_type


def test_test_codes_pass(ndjson_scanner: Scanner) -> None:
    """An export of test patients only passes."""
    report = ndjson_scanner.scan_bytes(_export(TEST).encode(), "application/fhir+ndjson")
    assert report.verdict is Verdict.PASS


def test_a_line_that_is_not_json_is_unscannable(ndjson_scanner: Scanner) -> None:
    """Declared NDJSON must be JSON on every line: a broken one blocks, naming the line."""
    report = ndjson_scanner.scan_bytes(b'{"a": 1}\n{"a":\n', "application/x-ndjson")
    assert [(f.rule, f.location) for f in report.findings] == [("unscannable", "line[2]")]
