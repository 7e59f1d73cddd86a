"""The JSON parser's fast path with FHIR narratives: its divs are read as the walk reads them.

When the screens find nothing in a FHIR JSON text, only its identifiers are read, without the
walk; the XHTML of each ``Narrative.div`` is still read as XML (what its markup splits, no
screen of the JSON text sees), with the role the walk gives it. Each case is checked against
the same scan with the fast path turned off (``_screenable`` false: the whole walk).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import TEST_KEY
from helpers import REAL, TEST, identity_policy
from test_pipeline import post

from kanta_guard import KeyedHasher, Scanner, Verdict, load_policy
from kanta_guard.parsers import json as json_module
from kanta_guard.parsers.json import JsonParser

PERSONAL = Scanner(load_policy(None), KeyedHasher(TEST_KEY))
XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'
HETU = "urn:oid:1.2.246.21"


def _div(inner: str) -> str:
    return f"<div {XHTML}>{inner}</div>"


def _observation(div: str | list[str], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "text": {"status": "generated", "div": div},
        "subject": {"identifier": {"system": HETU, "value": TEST}},
        **extra,
    }


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }


def _patient(div: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": HETU, "value": TEST}],
        "text": {"status": "generated", "div": div},
    }


def _key(
    body: str, content_type: str | None = "application/fhir+json", scanner: Scanner = PERSONAL
) -> tuple[Verdict, list[tuple[str, str, str, str]]]:
    report = scanner.scan(post(body, content_type))
    return report.verdict, [(f.rule, f.location, str(f.role), f.evidence) for f in report.findings]


SPLIT_NAME = _div("<p>Potilas <b>Matti</b> Virtanen soitti.</p>")
CASES = {
    "split name": json.dumps(_observation(SPLIT_NAME)),
    "whole name": json.dumps(_observation(_div("<p>Potilas Matti Virtanen soitti.</p>"))),
    "split real code": json.dumps(_observation(_div(f"{REAL[:6]}<span>{REAL[6:]}</span>"))),
    "split test code": json.dumps(_observation(_div(f"{TEST[:6]}<span>{TEST[6:]}</span>"))),
    "split phone": json.dumps(_observation(_div("Puhelin 040 <b>123</b> 4567."))),
    "clean": json.dumps(_observation(_div("<p>Paino 78 kg.</p>"))),
    "patient in a bundle": json.dumps(
        _bundle(_observation(_div("Paino 78 kg.")), _patient(SPLIT_NAME))
    ),
    "contained": json.dumps(_observation(_div("ok"), contained=[_patient(SPLIT_NAME)])),
    # A second "div" key must not hide the first (json.loads would keep only the last).
    "duplicate div": json.dumps(_observation(SPLIT_NAME)).replace(
        '"div":', f'"div": {json.dumps(_div("ok"))}, "div":', 1
    ),
    "div list": json.dumps(_observation([SPLIT_NAME, _div("ok")])),
    "div no xml": json.dumps(_observation("Potilas Matti Virtanen soitti.")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_path_reads_divs_as_the_walk(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same verdict and findings, fast path or whole walk."""
    fast = _key(CASES[name])
    monkeypatch.setattr(json_module, "_screenable", lambda raw: False)
    full = _key(CASES[name])
    assert fast == full


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("split name", "name.narrative"),
        ("split real code", "hetu.real"),
        ("patient in a bundle", "name.narrative"),
        ("contained", "name.narrative"),
        ("duplicate div", "name.narrative"),
        ("div list", "name.narrative"),
    ],
)
def test_what_the_markup_splits_is_found(name: str, rule: str) -> None:
    verdict, findings = _key(CASES[name])
    assert verdict is (Verdict.BLOCK if rule == "hetu.real" else Verdict.WARN)
    assert [f[0] for f in findings] == [rule], findings
    assert "Virtanen" not in str(findings) and REAL not in str(findings)


def test_clean_narratives_pass() -> None:
    for name in ("clean", "split test code"):
        assert _key(CASES[name]) == (Verdict.PASS, []), name


def test_a_clean_document_with_a_div_is_not_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path holds with a narrative: the JSON is not walked field by field."""

    def walk(*args: object) -> None:
        raise AssertionError("walked")

    monkeypatch.setattr(JsonParser, "_walk", walk)
    body = json.dumps(_bundle(_observation(_div("<p>Paino <b>78</b> kg.</p>")), _patient("x")))
    assert _key(body) == (Verdict.PASS, [])
    # (A name in the JSON text itself is no fast path: the screen names it.)
    named = _observation(_div("ok"), note=[{"text": "Potilas Matti Virtanen soitti."}])
    with pytest.raises(AssertionError, match="walked"):
        _key(json.dumps(named))


CODES_ONLY = Scanner(identity_policy(), KeyedHasher(TEST_KEY))


@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_path_reads_divs_under_the_identity_code_rules_alone(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The identity-code rules read what a div's markup splits too (a code in two text nodes),
    with the personal-data rules off: the same findings as the walk. (Found attacking the fast
    path: a code split in a JSON div passed under the identity-code rules alone.)"""
    fast = _key(CASES[name], scanner=CODES_ONLY)
    monkeypatch.setattr(json_module, "_screenable", lambda raw: False)
    assert fast == _key(CASES[name], scanner=CODES_ONLY)
    if name == "split real code":
        assert fast[0] is Verdict.BLOCK


@pytest.mark.parametrize(
    "content_type", ["application/fhir+ndjson", "text/plain", "application/json+fhir", None]
)
@pytest.mark.parametrize("scanner", [PERSONAL, CODES_ONLY], ids=["every rule", "codes only"])
def test_a_code_split_in_a_div_is_found_however_the_json_is_sent(
    content_type: str | None, scanner: Scanner
) -> None:
    """Bulk Data NDJSON, JSON sent as text or unlabelled, STU3's label: the div is read."""
    body = CASES["split real code"]
    verdict, findings = _key(body, content_type, scanner)
    assert verdict is Verdict.BLOCK and [f[0] for f in findings] == ["hetu.real"], findings


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_json_without_a_bom_is_read_wide(codec: str) -> None:
    """JSON in UTF-16/32 with no BOM, labelled ``application/json`` (RFC 4627 §3's detection by
    its NUL bytes, which json.loads of bytes still makes): read in that reading, not refused
    for the NULs of the UTF-8 one (a clean resource was blocked as a JSON parse error); a
    body that is not JSON in that reading either is still unscannable."""

    def body(value: str) -> bytes:
        return json.dumps(_observation(_div("ok"), id=value)).encode(codec)

    blocked = PERSONAL.scan(post(body(REAL), "application/fhir+json"))
    assert blocked.verdict is Verdict.BLOCK
    assert {f.rule for f in blocked.findings} == {"hetu.real"}
    clean = PERSONAL.scan(post(body("x1"), "application/fhir+json"))
    assert clean.verdict is Verdict.PASS, clean.as_dict()
    broken = PERSONAL.scan(post('{"a": '.encode(codec) + b"\x00" * 4, "application/json"))
    assert broken.verdict is Verdict.BLOCK
    assert {f.rule for f in broken.findings} == {"unscannable"}
