"""The screens and fast paths never change what a scan finds: same findings as the full walk.

Parsers skip the field-by-field walk when the detectors' screens rule fields out, read only the
nodes that hold a needle, and find JSON identifiers and Base64 without walking. Each of those is
checked here against a scanner whose detector cannot screen (and so walks everything).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import TEST_KEY, corpus_dir
from helpers import (
    REAL,
    REAL_2,
    TEST,
    b64,
    bundle,
    cda,
    code,
    identity_policy,
    render,
    soap_with_cda,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cli import CORPUS_VERDICTS
from test_pipeline import CHARSETS, PLACEMENTS, UNSCANNABLE, _mtom, _nonxml_cda, post

from kanta_guard import KeyedHasher, Request, Scanner, Verdict
from kanta_guard.detectors import HetuDetector
from kanta_guard.model import Context, Field, Hit
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

    def screen(self, data: bytes, *, joined: bool = False) -> frozenset[bytes] | None:
        # Every field is read. The joined screen is no shortcut but what names the places of
        # text joined across markup to judge (each in the smallest element holding it; the
        # windows without it are the fallback): kept, so both scanners judge the same places.
        return self._inner.screen(data, joined=True) if joined else None


FAST = Scanner(identity_policy(), KeyedHasher(TEST_KEY))
_D, _N, _C = REAL[:6], REAL[7:10], REAL[10]
FULL = Scanner(identity_policy(), KeyedHasher(TEST_KEY), detectors=(_Blind(),))


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


def test_clean_xml_is_parsed_once_and_not_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A document the screens clear is parsed once (its one reading) and no node of it is
    visited in Python (the cost the proxy pays on every clean request); one with a needle has
    its nodes read."""
    from kanta_guard.parsers.xml import XmlParser

    built: list[str] = []
    parse_tree, walk, targeted = XmlParser._parse_tree, XmlParser._walk, XmlParser._targeted

    def counting(name: str, original: Any) -> Any:
        def wrapper(self: XmlParser, *args: Any) -> Any:
            built.append(name)
            return original(self, *args)

        return wrapper

    monkeypatch.setattr(XmlParser, "_parse_tree", counting("tree", parse_tree))
    monkeypatch.setattr(XmlParser, "_walk", counting("walk", walk))
    monkeypatch.setattr(XmlParser, "_targeted", counting("targeted", targeted))
    inline = cda().split("?>", 1)[-1] if cda().startswith("<?xml") else cda()
    soap = f'<s:Envelope xmlns:s="{SOAP11}"><s:Body>{inline}</s:Body></s:Envelope>'
    assert FAST.scan(post(soap, "text/xml")).verdict is Verdict.PASS
    assert FAST.scan(post(cda(), "application/xml")).verdict is Verdict.PASS
    assert built == ["tree", "tree"]
    built.clear()
    assert FAST.scan(post(cda(patient=REAL), "application/xml")).verdict is Verdict.BLOCK
    assert built == ["tree", "targeted"]


def test_inert_certificate_is_remembered_and_codes_still_found() -> None:
    """A certificate-sized Base64 blob found inert is not decoded again by the same scanner; a
    blob of the same size with a real code inside is still blocked, every time."""
    scanner = Scanner(identity_policy(), KeyedHasher(TEST_KEY))
    # 1.5 KB of random bytes, like a signature value or a DER certificate's (no run of the
    # Base64 alphabet a token search would decode: bytes(range(256)) holds A-Z in a row).
    blob = random.Random(7).randbytes(1536)
    assert re.search(rb"[A-Za-z0-9+/_-]{15}", blob) is None
    cert = b64(blob)
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


# -- the screen reads a superset of what the detector reads: property tests -------------------

_SEPARATORS = [" ", "  ", "\t", "\n", "-", "--", "\u2013", "\u2212", "\u00a0", "\u200b", "\u00ad"]
_NOISE = st.text(
    alphabet=st.sampled_from(list("abcXYZ äöÅ.,:;<>/\"'=&#\\{}[]%+-_ \t\n0123456789\u00b5")),
    max_size=24,
)


@st.composite
def _code_form(draw: st.DrawFn) -> str:
    """A real code (or a test code) in a random normalisable form: separators of any kind
    between its parts, format characters inside them, fullwidth or Arabic-Indic digits, case."""
    value = draw(st.sampled_from([REAL, REAL_2, TEST, code("010203", "Y", 654)]))
    date, sign, number, check = value[:6], value[6], value[7:10], value[10]

    def digits(text: str) -> str:
        style = draw(st.sampled_from(["ascii", "ascii", "fullwidth", "arabic", "cf"]))
        if style == "fullwidth":
            return "".join(chr(ord(c) + 0xFEE0) for c in text)
        if style == "arabic":
            return "".join(chr(0x0660 + int(c)) for c in text)
        if style == "cf":
            at = draw(st.integers(1, len(text) - 1))
            return text[:at] + draw(st.sampled_from(["\u200b", "\u00ad", "\u2060"])) + text[at:]
        return text

    gap = st.lists(st.sampled_from(_SEPARATORS), max_size=2).map("".join)
    if sign == "-":
        middle = draw(gap) + draw(st.sampled_from(["-", "\u2010", "\u2013", "\ufe63"])) + draw(gap)
    else:
        middle = draw(gap) + draw(st.sampled_from([sign, sign.lower()])) + draw(gap)
    return (
        digits(date)
        + middle
        + digits(number)
        + draw(gap)
        + draw(st.sampled_from([check, check.lower()]))
    )


_TEXTS = st.tuples(_NOISE, _code_form(), _NOISE).map("".join)


@settings(max_examples=300, deadline=None)
@given(_TEXTS)
def test_screen_names_every_field_that_fires(text: str) -> None:
    """For any field text holding a code in any form, a screen of that text either cannot
    tell (None) or names a needle the text holds, whenever the detector fires on it."""
    detector = HetuDetector()
    fires = list(detector.detect(Field(text, Context(), "x")))
    needles = detector.screen(text.encode("utf-8", "surrogatepass"))
    if fires:
        assert needles is None or any(n in text.encode("utf-8") for n in needles), needles
    if needles == frozenset():
        assert not fires


def _documents(text: str) -> list[tuple[str, Request]]:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    # XML 1.0 §2.2: C0 controls other than TAB, LF, CR cannot stand in a document.
    return [
        ("text", post(f"rivi\n{text}\n", "text/plain; charset=utf-8")),
        ("JSON", post(json.dumps({"note": text, "n": 1}, ensure_ascii=False), "application/json")),
        ("JSON escaped", post(json.dumps({"note": text}, ensure_ascii=True), "application/json")),
        ("XML text", post(f"<r><p>{escaped}</p></r>", "application/xml")),
        ("XML attribute", post(f'<r><p title="{escaped}"/></r>', "application/xml")),
        (
            "XML character references",
            post(f"<r>{''.join(f'&#{ord(c)};' for c in escaped)}</r>", "application/xml"),
        ),
        ("header", Request("GET", "/x", (("X-Note", text.replace("\n", " ")),))),
    ]


@settings(max_examples=60, deadline=None)
@given(_TEXTS)
def test_screened_scan_equals_the_full_walk_on_random_documents(text: str) -> None:
    """A code in a random form, in text, JSON (escaped or not), XML text, attributes and
    character references, and a header: the screened scan finds exactly what the walk finds."""
    for name, request_ in _documents(text):
        fast, full = FAST.scan(request_), FULL.scan(request_)
        assert fast.verdict is full.verdict, name
        assert _key(fast) == _key(full), name


@pytest.mark.parametrize(
    ("name", "body", "content_type"),
    [
        # Regressions: each was cleared by the byte screen while the walk fires.
        ("JSON tab escape", f'{{"a": "{_D}\\t-{_N}{_C}"}}', "application/json"),
        ("JSON newline escape", f'{{"a": "{_D}-\\n{_N}{_C}"}}', "application/json"),
        ("JSON unicode escape", f'{{"a": "{_D}\\u2013{_N}{_C}"}}', "application/json"),
        ("ISO-8859-1 no-break space", f"hetu {_D}\xa0-{_N}{_C}\n".encode("latin-1"), "text/plain"),
        ("two spaces", f"hetu {_D}  -  {_N}{_C}\n", "text/plain"),
        ("zero-width space", f"<r>{_D}\u200b-{_N}{_C}</r>", "application/xml"),
        ("fullwidth", f"<r>{''.join(chr(ord(c) + 0xFEE0) for c in REAL)}</r>", "application/xml"),
    ],
)
def test_screen_misses_nothing(name: str, body: str | bytes, content_type: str) -> None:
    """Documents whose code only a decoded or normalised reading shows are blocked, as the
    full walk blocks them."""
    request_ = post(body, content_type)
    fast, full = FAST.scan(request_), FULL.scan(request_)
    assert fast.verdict is full.verdict is Verdict.BLOCK, fast.as_dict()
    assert _key(fast) == _key(full)


@pytest.mark.parametrize(
    ("data", "needles"),
    [
        (f"{_D}  -  {_N}{_C}".encode(), frozenset({f"{_D}  -  {_N}{_C}".encode()})),
        (f"{_D}\\t-{_N}{_C}".encode(), frozenset({f"{_D}\\t-{_N}{_C}".encode()})),
        (f"{_D}\u200b-{_N}{_C}".encode(), None),  # a reading differs: no needle stands in it
        (f"{_D}&#45;{_N}{_C}".encode(), None),
        (f"{_D}\\u002d{_N}{_C}".encode(), None),
        ("\u00b5g \u2026 ä".encode(), frozenset()),  # NFKC changes them, but into no token
        ("x \u200b y".encode(), frozenset()),  # a reading differs, and shows no code
        (b"\xff\xfe binary \x00 no code", frozenset()),
        (
            b"".join(
                f"{REAL_2[:6]}A{n:03d}{code(REAL_2[:6], 'A', n)[-1]} ".encode()
                for n in range(2, 40)
            ),
            None,
        ),
    ],
)
def test_hetu_screen_readings(data: bytes, needles: frozenset[bytes] | None) -> None:
    """Needles stand in the bytes as written; where a reading differs the screen answers only
    "none" or "cannot tell"; more than MAX_NEEDLES needles is "cannot tell"."""
    assert HetuDetector().screen(data) == needles


# -- every Content-Type reading of a body (pipeline.Scanner.scan) ------------------------------


def test_every_content_type_is_read() -> None:
    """With two Content-Type lines the body is scanned under each: a code that only the
    second reading shows (its sign between two "+", spaces in a form) is found, and one
    reading declared three times is read once."""
    body = f"a={_D}+-+{_N}{_C}".encode()
    text, form = (
        ("Content-Type", "text/plain"),
        ("Content-Type", "application/x-www-form-urlencoded"),
    )
    assert FAST.scan(Request("POST", "/x", (text,), body)).verdict is Verdict.PASS
    assert FAST.scan(Request("POST", "/x", (text, form), body)).rules == ("hetu.real",)
    assert len(FAST.scan(Request("POST", "/x", (form, form, form), body)).findings) == 1


def test_content_encoding_lines_combine() -> None:
    """Two Content-Encoding lines are one list in order (RFC 9110 §5.3): both undone."""
    import gzip

    body = gzip.compress(gzip.compress(f"hetu {REAL}".encode()))
    request_ = Request(
        "POST",
        "/x",
        (
            ("Content-Type", "text/plain"),
            ("Content-Encoding", "gzip"),
            ("Content-Encoding", "gzip"),
        ),
        body,
    )
    assert FAST.scan(request_).rules == ("hetu.real",)


def test_too_many_content_types_are_unscannable() -> None:
    """More distinct Content-Type readings than MAX_CONTENT_TYPES: unscannable, not scanned
    over and over."""
    from kanta_guard.pipeline import MAX_CONTENT_TYPES

    headers = tuple(("Content-Type", f"text/plain; x={i}") for i in range(MAX_CONTENT_TYPES + 1))
    assert FAST.scan(Request("POST", "/x", headers, b"ei mitaan")).rules == ("unscannable",)
