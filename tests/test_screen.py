"""The screens and fast paths never change what a scan finds: same findings as the full walk.

Parsers skip the field-by-field walk when the detectors' screens rule fields out, read only the
nodes that hold a needle, and find JSON identifiers and Base64 without walking. Each of those is
checked here against a scanner whose detector cannot screen (and so walks everything).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import TEST_KEY, corpus_dir
from helpers import REAL, REAL_2, TEST, b64, bundle, cda, render, soap_with_cda
from test_cli import CORPUS_VERDICTS
from test_pipeline import CHARSETS, PLACEMENTS, UNSCANNABLE, _mtom, _nonxml_cda, post

from kanta_guard import KeyedHasher, Request, Scanner, Verdict, default_policy
from kanta_guard.detectors import HetuDetector
from kanta_guard.model import Field, Hit
from kanta_guard.rules import RuleSpec


class _Blind:
    """The HETU detector without a screen: every field is read."""

    name = "hetu-blind"
    rules: tuple[RuleSpec, ...] = HetuDetector.rules
    systems = HetuDetector.systems

    def __init__(self) -> None:
        self._inner = HetuDetector()

    def detect(self, field: Field) -> Iterator[Hit]:
        return self._inner.detect(field)

    def screen(self, data: bytes) -> frozenset[bytes] | None:
        return None


FAST = Scanner(default_policy(), KeyedHasher(TEST_KEY))
FULL = Scanner(default_policy(), KeyedHasher(TEST_KEY), detectors=(_Blind(),))


def _requests() -> Iterator[tuple[str, Request]]:
    for name, build, _, _ in PLACEMENTS:
        yield name, build()
    for name, request, _ in UNSCANNABLE:
        yield name, request
    for name, encode, content_type in CHARSETS:
        yield name, post(encode(cda(patient=REAL)), content_type)
    malformed = REAL[:-1] + ("A" if REAL[-1] != "A" else "B")
    variants = {
        "clean CDA": post(cda(), "application/xml"),
        "several": post(cda(patient=REAL, guardian=REAL_2, narrative=REAL), "text/xml"),
        "malformed CDA": post(cda(participant=malformed), "application/xml"),
        "malformed test CDA": post(cda(patient="250810A999Y"), "application/xml"),
        "malformed FHIR": post(bundle(contact=malformed), "application/fhir+json"),
        "malformed test FHIR": post(bundle(patient="250810A999Y"), "application/fhir+json"),
        "clean bundle": post(bundle(), "application/fhir+json"),
        "clean FHIR XML": post(render("fhir_patient.xml"), "application/fhir+xml"),
        "SOAP with Base64 CDA": post(soap_with_cda(cda(guardian=REAL)), "text/xml"),
        "nonXMLBody": post(_nonxml_cda(f"x {REAL}"), "application/xml"),
        "MTOM": post(*_mtom(cda(narrative=REAL))),
        "code in a comment": post(cda().replace("<title>", f"<!-- {REAL} --><title>"), "text/xml"),
        "code in a tail": post(cda().replace("<title>", f"<x/>{REAL}<title>"), "text/xml"),
        "code split over lines in an attribute": post(
            cda().replace('extension="020516C903K"', f'extension="{REAL[:7]}\n{REAL[7:]}"'),
            "text/xml",
        ),
        "entity-encoded dash": post(
            cda()
            .replace("$", "")
            .replace("Lääkemääräys</title>", f"Lääkemääräys {REAL.replace('-', '&#45;')}</title>"),
            "text/xml",
        ),
        "Base64 certificate-like blob": post(
            cda().replace("<title>", f"<sig>{b64(bytes(range(256)) * 8)}</sig><title>"),
            "text/xml",
        ),
        "Base64 text blob with a code": post(
            cda().replace("<title>", f"<blob>{b64('potilas ' + REAL + ' ' * 40)}</blob><title>"),
            "text/xml",
        ),
        "JSON with escapes": post(
            json.dumps(
                {
                    "resourceType": "Patient",
                    "text": {"div": '<div class="x">é</div>'},
                    "identifier": [{"system": "urn:oid:1.2.246.21", "value": malformed}],
                },
                ensure_ascii=True,
            ),
            "application/fhir+json",
        ),
        "JSON with escaped quotes": post(
            json.dumps(
                {
                    "resourceType": "Patient",
                    "text": {"div": '<div xmlns="http://www.w3.org/1999/xhtml">{é} \\"</div>'},
                    "identifier": [{"system": "urn:oid:1.2.246.21", "value": malformed}],
                    "contact": [
                        {
                            "name": {"text": 'x"}{"'},
                            "extension": [
                                {
                                    "url": "u",
                                    "valueIdentifier": {
                                        "system": "urn:oid:1.2.246.21",
                                        "value": "250810A999Y",
                                    },
                                }
                            ],
                        }
                    ],
                },
                ensure_ascii=False,
            ),
            "application/fhir+json",
        ),
        "JSON nested identifier": post(
            json.dumps(
                {
                    "resourceType": "Patient",
                    "identifier": [
                        {
                            "type": {"text": "hetu"},
                            "system": "urn:oid:1.2.246.21",
                            "value": malformed,
                            "assigner": {"display": "DVV"},
                        }
                    ],
                }
            ),
            "application/fhir+json",
        ),
        "JSON with wrapped Base64 (escaped newlines)": post(
            json.dumps(
                {
                    "resourceType": "DocumentReference",
                    "note": _wrapped(b64(f"<a>{REAL}</a>" + " " * 40), 16, "\n"),
                    "pem": _wrapped(b64("x " * 30 + REAL), 64, "\r\n"),
                }
            ),
            "application/fhir+json",
        ),
        "XML with wrapped Base64": post(
            cda().replace(
                "<title>", f"<blob>{_wrapped(b64(f'<a>{REAL}</a>' * 4), 20, chr(10))}</blob><title>"
            ),
            "text/xml",
        ),
        "text with a code": post(f"rivi\nhetu {REAL}\n", "text/plain"),
        "binary": post(bytes(range(256)) + REAL.encode(), "application/octet-stream"),
    }
    yield from variants.items()


def _wrapped(text: str, width: int, newline: str) -> str:
    """Base64 text wrapped in lines of ``width``, as PEM and MIME write it."""
    return newline.join(text[i : i + width] for i in range(0, len(text), width))


def _key(report: object) -> list[tuple[str, str, str, str]]:
    findings = report.findings  # type: ignore[attr-defined]
    return sorted((f.rule, f.location, str(f.role), f.value_hash) for f in findings)


@pytest.mark.parametrize(("name", "request_"), list(_requests()), ids=[n for n, _ in _requests()])
def test_fast_equals_full(name: str, request_: Request) -> None:
    """The screened scan finds exactly what the full walk finds, with the same locations."""
    fast, full = FAST.scan(request_), FULL.scan(request_)
    assert fast.verdict is full.verdict
    assert _key(fast) == _key(full)


@pytest.mark.parametrize("name", sorted(CORPUS_VERDICTS))
def test_fast_equals_full_on_corpus(name: str) -> None:
    """On every corpus document the screened scan and the full walk agree."""
    path = corpus_dir() / name
    data = path.read_bytes()
    content_type = "application/json" if path.suffix == ".json" else "application/xml"
    fast, full = FAST.scan_bytes(data, content_type), FULL.scan_bytes(data, content_type)
    assert fast.verdict is full.verdict
    assert _key(fast) == _key(full)


@pytest.mark.parametrize(
    ("data", "needles"),
    [
        (b"<id root='1.2.246.21' extension='010181-900C'/>", frozenset()),
        (f"<id root='1.2.246.21' extension='{REAL}'/>".encode(), frozenset({REAL.encode()})),
        (b"<code code='250810A999Y' codeSystem='1.2.246.21'/>", frozenset({b"250810A999Y"})),
        (b"<id root='1.2.246.21' nullFlavor='NI'/>", frozenset()),
        (b"<system value='urn:oid:1.2.246.21'/>", None),
        (b'{"system": "urn:oid:1.2.246.21", "value": "x"}', frozenset()),
        (b"hetu-oid 1.2.246.21 in text", None),
        (b"OID 1.2.246.21.5 is another", frozenset()),
        (f"narrative {REAL}".encode(), frozenset({REAL.encode()})),
        ("en dash 131052\u2013308T".encode(), frozenset({"131052\u2013308T".encode()})),
    ],
)
def test_hetu_screen(data: bytes, needles: frozenset[bytes] | None) -> None:
    """The HETU screen names real codes and bad CDA identifiers, and gives up where it must."""
    assert HetuDetector().screen(data) == needles


SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
_CLEAN_SOAP12 = (
    '<?xml version="1.0"?>\n<!-- a comment -->\n<?pi x?>\n'
    '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" a=">"><env:Body>'
    '<x xmlns="urn:hl7-org:v3"><id root="1.2.246.21" extension="010181-900C"/></x>'
    "</env:Body></env:Envelope>"
)
#: Documents with no code in them (so the screen clears them and no tree is built), each
#: malformed or refused in its own way.
_REFUSED = {
    "tag mismatch": "<a><b></a>",
    "undeclared prefix": "<a><x:b/></a>",
    "undeclared root prefix": "<x:a/>",
    "namespaced attribute twice": '<a xmlns:p="urn:x" xmlns:q="urn:x"><b p:c="1" q:c="2"/></a>',
    "invalid namespace URI": '<a xmlns:p="http://x y"/>',
    "DOCTYPE": "<!DOCTYPE a><a/>",
    "DOCTYPE with an entity": '<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>',
    "undefined entity": "<a>&e;</a>",
    "content after the root": "<a/><b/>",
    "control character": "<a>\x01</a>",
    "duplicate attribute": '<a b="1" b="2"/>',
    "truncated": _CLEAN_SOAP12[:-5],
}


@pytest.mark.parametrize("name", sorted(_REFUSED))
def test_fast_refuses_what_full_refuses(name: str) -> None:
    """A document read without building its tree is refused exactly when, and as, the tree
    parse refuses it."""
    request_ = post(_REFUSED[name], "application/xml")
    fast, full = FAST.scan(request_), FULL.scan(request_)
    assert fast.rules == full.rules == ("unscannable",)
    assert fast.findings[0].explanation == full.findings[0].explanation


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (_CLEAN_SOAP12, "application/soap+xml"),
        (_CLEAN_SOAP12.replace("2003/05/soap-envelope", "2003/05/other"), "application/xml"),
        (
            "<s:Envelope xmlns:s='http://schemas.xmlsoap.org/soap/envelope/'><s:Body/></s:Envelope>",
            "text/xml",
        ),
        ("\ufeff<Envelope\n xmlns='http://schemas.xmlsoap.org/soap/envelope/'/>", "text/xml"),
        ('<Patient xmlns="http://hl7.org/fhir"><active value="true"/></Patient>', "text/xml"),
        ('<f:Patient xmlns="http://hl7.org/fhir" xmlns:f="urn:other"/>', "text/xml"),
        ("<plain><x xmlns='http://hl7.org/fhir'/></plain>", "application/xml"),
    ],
)
def test_fast_protocol(body: str, content_type: str) -> None:
    """The protocol read off the root start tag is the one the tree gives."""
    request_ = Request("POST", "/x", (("Content-Type", content_type),), body.encode())
    fast, full = FAST.scan(request_), FULL.scan(request_)
    assert fast.verdict is Verdict.PASS
    assert fast.protocol is full.protocol


def test_clean_xml_builds_no_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """A document the screen clears is checked by the parser without building its tree (the
    cost the proxy pays on every clean request); one with a needle is built and read."""
    from kanta_guard.parsers.xml import XmlParser

    built: list[int] = []
    original = XmlParser._parse_tree

    def counting(self: XmlParser, *args: object) -> object:
        built.append(1)
        return original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(XmlParser, "_parse_tree", counting)
    inline = cda().split("?>", 1)[-1] if cda().startswith("<?xml") else cda()
    soap = f'<s:Envelope xmlns:s="{SOAP11}"><s:Body>{inline}</s:Body></s:Envelope>'
    assert FAST.scan(post(soap, "text/xml")).verdict is Verdict.PASS
    assert FAST.scan(post(cda(), "application/xml")).verdict is Verdict.PASS
    assert built == []
    assert FAST.scan(post(cda(patient=REAL), "application/xml")).verdict is Verdict.BLOCK
    assert built == [1]


def test_inert_certificate_is_remembered_and_codes_still_found() -> None:
    """A certificate-sized Base64 blob found inert is not decoded again by the same scanner; a
    blob of the same size with a real code inside is still blocked, every time."""
    scanner = Scanner(default_policy(), KeyedHasher(TEST_KEY))
    cert = b64(bytes(range(256)) * 6)  # 1.5 KB of binary, like a DER certificate
    dirty = b64(("x " * 600 + REAL).encode())
    clean_doc = cda().replace("<title>", f"<sig>{cert}</sig><title>")
    dirty_doc = cda().replace("<title>", f"<sig>{cert}</sig><b>{dirty}</b><title>")
    first = scanner.scan(post(clean_doc, "text/xml"))
    assert scanner._inert.get(cert.encode()) == 1536
    again = scanner.scan(post(clean_doc, "text/xml"))
    assert first == again and first.verdict is Verdict.PASS
    for _ in range(2):
        blocked = scanner.scan(post(dirty_doc, "text/xml"))
        assert blocked.rules == ("hetu.real",)
        assert _key(blocked) == _key(FULL.scan(post(dirty_doc, "text/xml")))
    assert scanner._inert.get(dirty.encode()) is None


def _head_requests() -> Iterator[tuple[str, Request]]:
    from test_parsers_request import PLACES

    for name, build, _ in PLACES:
        yield f"{name} (real)", build(REAL)
        yield f"{name} (test)", build(TEST)


@pytest.mark.parametrize(
    ("name", "request_"), list(_head_requests()), ids=[n for n, _ in _head_requests()]
)
def test_fast_equals_full_on_the_request_head(name: str, request_: Request) -> None:
    """In the method, authority, header names and values, cookies and trailers, the screened
    scan finds exactly what the full walk finds."""
    fast, full = FAST.scan(request_), FULL.scan(request_)
    assert fast.verdict is full.verdict
    assert _key(fast) == _key(full)
