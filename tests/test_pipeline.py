"""Tests for kanta_guard.pipeline: every placement, encoding and charset, in the library."""

from __future__ import annotations

import base64
import contextlib
import gzip
import html
import json
import pickle
import re
import textwrap
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from unittest import mock
from urllib.parse import unquote

import brotli
import pytest
from conftest import TEST_KEY
from helpers import REAL, REAL_2, TEST, b64, bundle, cda, code, render, soap_with_cda
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_personal import scanner as personal_scanner

from kanta_guard import Action, KeyedHasher, Protocol, Request, Role, Scanner, Verdict
from kanta_guard.answer import blocked_answer
from kanta_guard.encoding import decode_content  # noqa: F401  (imported: the module must exist)
from kanta_guard.eventlog import make_record
from kanta_guard.model import MAX_TEST_CODES, Payload, Report
from kanta_guard.parsers import ScanState
from kanta_guard.parsers import json as json_parser
from kanta_guard.parsers import text as text_parser
from kanta_guard.parsers import xml as xml_parser

try:
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    from backports import zstd

SOAP11 = "text/xml; charset=utf-8"


def post(
    body: str | bytes,
    content_type: str | None,
    path: str = "/services",
    headers: tuple[tuple[str, str], ...] = (),
) -> Request:
    """A POST request with the given body and content type."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    hdrs = (("Content-Type", content_type),) if content_type else ()
    return Request("POST", path, hdrs + headers, data, "kanta.test")


def only_block(scanner: Scanner, request: Request) -> tuple[str, str, Role]:
    """Scan and return (rule, location, role) of the single blocking finding."""
    report = scanner.scan(request)
    blocking = [f for f in report.findings if f.action is Action.BLOCK]
    assert report.verdict is Verdict.BLOCK, report.as_dict()
    assert len(blocking) == 1, report.as_dict()
    return blocking[0].rule, blocking[0].location, blocking[0].role


# -- clean traffic passes ------------------------------------------------------------------------

CLEAN: list[tuple[str, Callable[[], Request]]] = [
    ("CDA", lambda: post(cda(), "application/xml")),
    ("HL7 V3 SOAP with Base64 CDA", lambda: post(soap_with_cda(), SOAP11)),
    ("FHIR Bundle", lambda: post(bundle(), "application/fhir+json")),
    ("FHIR XML", lambda: post(render("fhir_patient.xml"), "application/fhir+xml")),
    ("search", lambda: Request("GET", f"/fhir/Patient?identifier=urn:oid:1.2.246.21|{TEST}")),
]


@pytest.mark.parametrize(("name", "build"), CLEAN, ids=[c[0] for c in CLEAN])
def test_clean_passes(scanner: Scanner, name: str, build: Callable[[], Request]) -> None:
    """Messages carrying only 900-series codes pass with no findings."""
    report = scanner.scan(build())
    assert report.verdict is Verdict.PASS, report.as_dict()
    assert report.findings == ()
    assert report.fields_scanned + report.payloads_scanned > 0


# -- what passes is recognised (Report.recognised: a clean flow's comment says the guard looked) -

#: The minor-patient CDA's test codes in document order, and its identifiers under the HETU OID.
CDA_CODES = ("030594W903B", "020516C903K", "010181-900C", "231069-9711", "030875-999Y",
             "010594Y9032", "020594X903P")  # fmt: skip

RECOGNISED: list[tuple[str, Callable[[], Request], int, tuple[str, ...]]] = [
    ("CDA (the screen's fast path)", lambda: post(cda(), "application/xml"), 5, CDA_CODES),
    # A character reference: the screen cannot tell, every field is read (the walk).
    (
        "CDA read node by node",
        lambda: post(cda().replace("<title>", "<title>&#32;", 1), "application/xml"),
        5,
        CDA_CODES,
    ),
    ("CDA in UTF-16", lambda: post(cda().encode("utf-16"), "application/xml"), 5, CDA_CODES),
    (
        "HL7 V3 SOAP with Base64 CDA",
        lambda: post(soap_with_cda(), SOAP11),
        7,
        ("050594U903M", "040594V9030", *CDA_CODES),
    ),
    (
        "FHIR Bundle",
        lambda: post(bundle(), "application/fhir+json"),
        4,
        ("020516C903K", "010516B903X", "010181-900C", "040594V9030", "010594Y9032"),
    ),
    (
        "search",
        lambda: Request("GET", f"/fhir/Patient?identifier=urn:oid:1.2.246.21|{TEST}"),
        1,
        (TEST,),
    ),
    ("text only", lambda: post(f"Potilas {TEST}, ei muuta", "text/plain"), 0, (TEST,)),
    ("no codes", lambda: post("<a>hello</a>", "application/xml"), 0, ()),
]


@pytest.mark.parametrize(
    ("name", "build", "fields", "codes"), RECOGNISED, ids=[r[0] for r in RECOGNISED]
)
def test_recognised(
    scanner: Scanner, name: str, build: Callable[[], Request], fields: int, codes: tuple[str, ...]
) -> None:
    """A scan counts the identity fields it read and names the valid test codes it saw, in
    order, each once, whichever way the document was read."""
    report = scanner.scan(build())
    assert report.verdict is Verdict.PASS, report.as_dict()
    assert report.recognised.identity_fields == fields
    assert report.recognised.test_codes == codes
    assert ("recognised" in report.as_dict()) is bool(fields or codes)


def test_recognised_beside_a_block(scanner: Scanner) -> None:
    """A blocked document still counts every identity field (the real one included) and names
    only the test codes: never the real one."""
    report = scanner.scan(post(cda(patient=REAL), "application/xml"))
    assert report.verdict is Verdict.BLOCK
    assert report.recognised.identity_fields == 5
    assert report.recognised.test_codes == tuple(c for c in CDA_CODES if c != "020516C903K")
    assert REAL not in json.dumps(report.as_dict())


def test_recognised_codes_are_capped(scanner: Scanner) -> None:
    """A flood of distinct test codes is named up to MAX_TEST_CODES, the rest counted."""
    codes = [code("010181", "-", n) for n in range(900, 1000)]
    report = scanner.scan(post(" ".join(codes), "text/plain"))
    assert report.verdict is Verdict.PASS
    assert report.recognised.test_codes == tuple(codes[:MAX_TEST_CODES])
    assert report.recognised.more_test_codes == len(codes) - MAX_TEST_CODES


#: A test code's two halves in two separate texts that one screen reads together: no text
#: holds the code, so none is recognised (a bare line break between them let a code be read
#: across it, whitespace and even a one-letter value being accepted between a code's parts).
_HALVES: list[tuple[str, Callable[[], Request]]] = [
    (
        "decoded Base64 texts of XML",
        lambda: post(
            f"<r><a>{b64('tekstia ja 010181')}</a><b>{b64('-900C ja muuta')}</b></r>",
            "application/xml",
        ),
    ),
    ("path segments", lambda: Request("GET", "/Patient/010181/-900C")),
    ("query name and value", lambda: Request("GET", "/x?010181=-900C")),
    ("query values around a one-letter name", lambda: Request("GET", "/x?a=010181&b=-900C")),
    ("form", lambda: post("a=010181&-900C=b", "application/x-www-form-urlencoded")),
]


@pytest.mark.parametrize("build", [h[1] for h in _HALVES], ids=[h[0] for h in _HALVES])
def test_no_code_recognised_across_two_texts(
    scanner: Scanner, build: Callable[[], Request]
) -> None:
    report = scanner.scan(build())
    assert report.verdict is Verdict.PASS, report.as_dict()
    assert report.recognised.test_codes == ()


def test_report_with_recognised_pickles(scanner: Scanner) -> None:
    """The report crosses to and from worker processes whole (pickle, as multiprocessing does)."""
    report = scanner.scan(post(cda(), "application/xml"))
    assert pickle.loads(pickle.dumps(report)) == report


# -- each placement of a real code is found, located and attributed -----------------------------

PLACEMENTS: list[tuple[str, Callable[[], Request], str, Role]] = [
    (
        "patient",
        lambda: post(cda(patient=REAL), "application/xml"),
        "/ClinicalDocument/recordTarget/patientRole/id/@extension",
        Role.PATIENT,
    ),
    (
        "guardian of a minor",
        lambda: post(cda(guardian=REAL), "application/xml"),
        "/ClinicalDocument/recordTarget/patientRole/patient/guardian/id/@extension",
        Role.GUARDIAN,
    ),
    (
        "author",
        lambda: post(cda(author=REAL), "application/xml"),
        "/ClinicalDocument/author/assignedAuthor/id[2]/@extension",
        Role.AUTHOR,
    ),
    (
        "participant",
        lambda: post(cda(participant=REAL), "application/xml"),
        "/ClinicalDocument/participant/associatedEntity/code/@code",
        Role.PARTICIPANT,
    ),
    (
        "narrative text",
        lambda: post(cda(narrative=REAL), "application/xml"),
        "/ClinicalDocument/component/structuredBody/component/section/text/text()",
        Role.NARRATIVE,
    ),
    (
        "observation value II",
        lambda: post(cda(observation=REAL), "application/xml"),
        "/section/entry/observation/value/@extension",
        Role.UNKNOWN,
    ),
    (
        "hl7fi localHeader",
        lambda: post(cda(registry=REAL), "application/xml"),
        "/ClinicalDocument/localHeader/patientRegistrySpecifier/text()",
        Role.UNKNOWN,
    ),
    (
        "HL7 V3 wrapper subject",
        lambda: post(soap_with_cda(subject=REAL), SOAP11),
        "/Envelope/Body/PORX_IN010380FI01/controlActProcess/subject/patient/id/@extension",
        Role.PATIENT,
    ),
    (
        "SAML attribute",
        lambda: post(soap_with_cda(saml=REAL), SOAP11),
        "/Envelope/Header/Assertion/AttributeStatement/Attribute/AttributeValue/text()",
        Role.USER,
    ),
    (
        "Base64-embedded CDA",
        lambda: post(soap_with_cda(cda(patient=REAL)), SOAP11),
        "subject/document/text!base64:/ClinicalDocument/recordTarget/patientRole/id/@extension",
        Role.PATIENT,
    ),
    (
        "FHIR Patient",
        lambda: post(bundle(patient=REAL), "application/fhir+json"),
        "/entry/0/resource/identifier/0/value",
        Role.PATIENT,
    ),
    (
        "contact extension",
        lambda: post(bundle(contact=REAL), "application/fhir+json"),
        "/entry/0/resource/contact/0/extension/0/valueIdentifier/value",
        Role.RELATED_PERSON,
    ),
    (
        "contained resource",
        lambda: post(bundle(contained=REAL), "application/fhir+json"),
        "/entry/0/resource/contained/0/identifier/0/value",
        Role.RELATED_PERSON,
    ),
    (
        "Bundle entry reference",
        lambda: post(bundle(subject=REAL), "application/fhir+json"),
        "/entry/2/resource/subject/identifier/value",
        Role.PATIENT,
    ),
    (
        "FHIR narrative string",
        lambda: post(bundle(narrative=REAL), "application/fhir+json"),
        "/entry/2/resource/description",
        Role.DOCUMENT,
    ),
    (
        "Binary",
        lambda: post(bundle(binary=f"Potilas {REAL}"), "application/fhir+json"),
        "/entry/1/resource/data!base64:line 1",
        Role.DOCUMENT,
    ),
    (
        "Attachment.data",
        lambda: post(bundle(attachment={"hetu": REAL}), "application/fhir+json"),
        "/entry/2/resource/content/0/attachment/data!base64:/hetu",
        Role.DOCUMENT,
    ),
    (
        "FHIR XML",
        lambda: post(render("fhir_patient.xml", patient=REAL), "application/fhir+xml"),
        "/Patient/identifier/value/@value",
        Role.PATIENT,
    ),
    (
        "FHIR XML narrative",
        lambda: post(render("fhir_patient.xml", narrative=REAL), "application/fhir+xml"),
        "/Patient/text/div/text()",
        Role.PATIENT,
    ),
    (
        "search query",
        lambda: Request("GET", f"/fhir/Patient?identifier=urn:oid:1.2.246.21|{REAL}"),
        "url:query:identifier",
        Role.URL,
    ),
    ("URL path", lambda: Request("GET", f"/fhir/Patient/{REAL}/_history"), "url:path[3]", Role.URL),
    (
        "percent-encoded URL",
        lambda: Request("GET", "/x?q=" + REAL.replace("-", "%E2%80%93")),
        "url:query:q",
        Role.URL,
    ),
    (
        "header",
        lambda: Request("GET", "/fhir/metadata", (("X-Patient-Id", REAL),)),
        "header:X-Patient-Id",
        Role.HEADER,
    ),
    (
        "Base64 JSON Authorization",
        lambda: Request(
            "GET", "/medication", (("Authorization", b64(json.dumps({"hetu": REAL}))),)
        ),
        "header:Authorization!base64:/hetu",
        Role.HEADER,
    ),
    (
        "JWT Authorization",
        lambda: Request(
            "GET",
            "/medication",
            (
                (
                    "Authorization",
                    "Bearer eyJhbGciOiJub25lIn0."
                    + base64.urlsafe_b64encode(json.dumps({"sub": REAL}).encode())
                    .decode()
                    .rstrip("=")
                    + ".sig",
                ),
            ),
        ),
        "header:Authorization!base64:/sub",
        Role.HEADER,
    ),
    (
        "form",
        lambda: post(f"hetu={REAL}&nimi=Testi", "application/x-www-form-urlencoded"),
        "form:hetu",
        Role.UNKNOWN,
    ),
    (
        "generic JSON",
        lambda: post(json.dumps({"henkilo": {"tunnus": REAL}}), "application/json"),
        "/henkilo/tunnus",
        Role.UNKNOWN,
    ),
    (
        "unknown content type",
        lambda: post(f"rivi 1\nhetu {REAL}\n", "application/x-unknown"),
        "line 2",
        Role.UNKNOWN,
    ),
    (
        "no content type, sniffed JSON",
        lambda: post(json.dumps({"id": REAL}), None),
        "/id",
        Role.UNKNOWN,
    ),
]


@pytest.mark.parametrize(
    ("name", "build", "location", "role"), PLACEMENTS, ids=[p[0] for p in PLACEMENTS]
)
def test_placement_is_blocked(
    scanner: Scanner, name: str, build: Callable[[], Request], location: str, role: Role
) -> None:
    """A real-range code in each placement blocks with hetu.real, its location and its role."""
    rule, where, who = only_block(scanner, build())
    assert rule == "hetu.real"
    assert where.endswith(location), where
    assert who is role


def _nonxml_cda(text: str) -> str:
    body = cda().split("<component>\n    <structuredBody>")[0]
    return (
        body + f'<component><nonXMLBody><text mediaType="text/plain" representation="B64">'
        f"{b64(text)}</text></nonXMLBody></component></ClinicalDocument>"
    )


def _mtom(attachment: str) -> tuple[bytes, str]:
    root = (
        '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>'
        '<ProvideAndRegisterDocumentSetRequest xmlns="urn:ihe:iti:xds-b:2007"><Document id="d1">'
        '<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" '
        'href="cid:doc1@kanta.test"/>'
        "</Document></ProvideAndRegisterDocumentSetRequest></env:Body></env:Envelope>"
    )
    body = (
        "--MIMEBoundary_1\r\n"
        'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
        "Content-Transfer-Encoding: binary\r\nContent-ID: <root.message@kanta.test>\r\n\r\n"
        f"{root}\r\n"
        "--MIMEBoundary_1\r\nContent-Type: text/xml\r\nContent-Transfer-Encoding: binary\r\n"
        "Content-ID: <doc1@kanta.test>\r\n\r\n"
        f"{attachment}\r\n--MIMEBoundary_1--\r\n"
    ).encode()
    content_type = (
        'multipart/related; boundary=MIMEBoundary_1; type="application/xop+xml"; '
        'start="<root.message@kanta.test>"; start-info="application/soap+xml"'
    )
    return body, content_type


def test_nonxml_body_attachment(scanner: Scanner) -> None:
    """A code in a nonXMLBody Base64 attachment is found inside the decoded attachment."""
    rule, where, _ = only_block(scanner, post(_nonxml_cda(f"Potilas {REAL}"), "application/xml"))
    assert rule == "hetu.real"
    assert where.endswith("/component/nonXMLBody/text!base64:line 1")


def test_mtom_part(scanner: Scanner) -> None:
    """A code in an MTOM/XOP attachment part is found; the answer would be SOAP 1.2."""
    body, content_type = _mtom(cda(patient=REAL))
    report = scanner.scan(post(body, content_type))
    assert report.verdict is Verdict.BLOCK
    assert report.findings[0].location.startswith("part[2]:/ClinicalDocument/recordTarget")
    assert report.protocol is Protocol.SOAP12
    clean_body, _ = _mtom(cda())
    assert scanner.scan(post(clean_body, content_type)).verdict is Verdict.PASS


def test_form_data_binary_part(scanner: Scanner) -> None:
    """multipart/form-data: a code in a file part next to binary bytes is found."""
    binary = bytes(range(256))
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="doc"; filename="a.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
        + binary
        + b"\n"
        + REAL.encode()
        + b"\r\n--xyz--\r\n"
    )
    rule, where, _ = only_block(scanner, post(body, "multipart/form-data; boundary=xyz"))
    assert rule == "hetu.real"
    assert where.startswith("part[1]:line ")


# -- content encodings and charsets -------------------------------------------------------------

ENCODINGS: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("br", brotli.compress),
    ("zstd", zstd.compress),
    ("gzip, br", lambda b: brotli.compress(gzip.compress(b))),
    ("deflate, zstd, gzip", lambda b: gzip.compress(zstd.compress(zlib.compress(b)))),
]


@pytest.mark.parametrize(("encoding", "encode"), ENCODINGS, ids=[e[0] for e in ENCODINGS])
def test_content_encodings(
    scanner: Scanner, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    """Each Content-Encoding, alone or stacked, is decoded before the scan."""
    dirty = post(
        encode(cda(patient=REAL).encode()),
        "application/xml",
        headers=(("Content-Encoding", encoding),),
    )
    assert only_block(scanner, dirty)[0] == "hetu.real"
    clean = post(
        encode(cda().encode()), "application/xml", headers=(("Content-Encoding", encoding),)
    )
    assert scanner.scan(clean).verdict is Verdict.PASS


@pytest.mark.parametrize(
    ("encoding", "body", "reason"),
    [
        ("compress", b"\x1f\x9d...", "unknown content encoding"),
        ("gzip", b"not gzip at all", "gzip"),
        ("gzip", gzip.compress(b"\0" * 50_000_000), "limit"),
    ],
)
def test_undecodable_bodies_are_unscannable(
    scanner: Scanner, encoding: str, body: bytes, reason: str
) -> None:
    """Unknown encodings, corrupt streams and decompression bombs block as unscannable."""
    from kanta_guard import KeyedHasher
    from kanta_guard.policy import parse_policy

    small = Scanner(
        parse_policy("[limits]\nmax_body_bytes = 1000000\nmax_decoded_bytes = 10000000\n"),
        KeyedHasher(b"k" * 16),
    )
    report = small.scan(post(body, "application/xml", headers=(("Content-Encoding", encoding),)))
    assert report.verdict is Verdict.BLOCK
    assert report.rules == ("unscannable",)
    assert reason in report.findings[0].explanation


CHARSETS: list[tuple[str, Callable[[str], bytes], str]] = [
    (
        "UTF-16 XML with BOM",
        lambda s: s.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"),
        "application/xml",
    ),
    (
        "ISO-8859-1 XML declared",
        lambda s: s.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("iso-8859-1"),
        "application/xml",
    ),
    (
        "ISO-8859-1 from the HTTP header",
        lambda s: s.replace(' encoding="UTF-8"', "").encode("iso-8859-1"),
        "text/xml; charset=ISO-8859-1",
    ),
    (
        "UTF-16LE JSON from the header",
        lambda s: s.encode("utf-16-le"),
        "application/json; charset=utf-16le",
    ),
    ("UTF-8 BOM text", lambda s: b"\xef\xbb\xbf" + s.encode("utf-8"), "text/plain"),
]


@pytest.mark.parametrize(("name", "encode", "content_type"), CHARSETS, ids=[c[0] for c in CHARSETS])
def test_charsets(
    scanner: Scanner, name: str, encode: Callable[[str], bytes], content_type: str
) -> None:
    """Codes are found whatever the charset, taken from BOM, XML declaration or HTTP header."""
    text = cda(patient=REAL) if "xml" in content_type else json.dumps({"hetu": REAL, "n": "ÄÖ"})
    if content_type == "text/plain":
        text = f"Hätä: {REAL}"
    assert only_block(scanner, post(encode(text), content_type))[0] == "hetu.real"


# -- the identity-code rules --------------------------------------------------------------------

SIGNS = ["+", "-", "Y", "X", "W", "V", "U", "A", "B", "C", "D", "E", "F"]


@pytest.mark.parametrize("sign", SIGNS)
def test_every_century_sign(scanner: Scanner, sign: str) -> None:
    """Real-range codes with each of the thirteen century signs block; 900-series ones pass."""
    real = code("150505", sign, 123)
    assert only_block(scanner, post(f"hetu {real}", "text/plain"))[0] == "hetu.real"
    test = code("150505", sign, 987)
    assert scanner.scan(post(f"hetu {test}", "text/plain")).verdict is Verdict.PASS


@pytest.mark.parametrize(
    "typed",
    [
        REAL.lower(),
        REAL.replace("-", "\u2013"),
        REAL.replace("-", "\u2212"),
        REAL.replace("-", " - "),
        REAL[:10] + " " + REAL[10],
    ],
    ids=["lower case", "en dash", "minus sign", "spaced dash", "split check character"],
)
def test_typed_variants(scanner: Scanner, typed: str) -> None:
    """Lower case, Unicode dashes and stray whitespace in narrative do not hide a code."""
    assert only_block(scanner, post(cda(narrative=typed), "application/xml"))[0] == "hetu.real"


@pytest.mark.parametrize(
    "text",
    [
        "OID 1.2.246.10.1234567.14.2026.1129.1",
        "aikaleima 20261129101500 ja 2026-11-29T10:15:00+02:00",
        "tilausnumero 131052-3081 ja 131052-308",
        f"väärä tarkiste {REAL[:-1]}{'A' if REAL[-1] != 'A' else 'B'}",
        "puhelin 040-1234567, 09-85678800",
    ],
)
def test_lookalikes_do_not_block(scanner: Scanner, text: str) -> None:
    """OIDs, timestamps, order numbers and wrong check characters in free text pass."""
    assert scanner.scan(post(cda(narrative=text), "application/xml")).verdict is Verdict.PASS


@pytest.mark.parametrize(
    ("value", "rule", "verdict"),
    [
        (REAL[:-1] + ("A" if REAL[-1] != "A" else "B"), "hetu.malformed", Verdict.BLOCK),
        ("131052-308", "hetu.malformed", Verdict.BLOCK),
        ("250810A999Y", "hetu.malformed_test", Verdict.WARN),
        ("010190-999Y", "hetu.malformed_test", Verdict.WARN),
    ],
)
def test_structured_field_must_be_valid(
    scanner: Scanner, value: str, rule: str, verdict: Verdict
) -> None:
    """An invalid value in an identity field blocks below 900 and warns in the 900 series."""
    for request in (
        post(cda(patient=value), "application/xml"),
        post(bundle(patient=value), "application/fhir+json"),
        Request("GET", f"/fhir/Patient?identifier=urn:oid:1.2.246.21|{value}"),
    ):
        report = scanner.scan(request)
        assert report.verdict is verdict, report.as_dict()
        assert report.rules == (rule,)


def test_duplicate_json_keys_are_all_scanned(scanner: Scanner) -> None:
    """A second "value" key cannot hide a real code behind a test one."""
    body = (
        '{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.246.21",'
        f'"value":"{TEST}","value":"{REAL}"}}]}}'
    )
    assert only_block(scanner, post(body, "application/fhir+json"))[0] == "hetu.real"


def test_several_findings_all_reported(scanner: Scanner) -> None:
    """Every real code is reported, each once, so a tester can fix them all in one go."""
    report = scanner.scan(post(cda(patient=REAL, guardian=REAL_2, narrative=REAL), "text/xml"))
    assert [f.role for f in report.findings] == [Role.PATIENT, Role.GUARDIAN, Role.NARRATIVE]
    assert report.findings[0].value_hash == report.findings[2].value_hash
    assert report.findings[0].value_hash != report.findings[1].value_hash


# -- fail closed --------------------------------------------------------------------------------

UNSCANNABLE: list[tuple[str, Request, str]] = [
    (
        "DOCTYPE",
        post('<!DOCTYPE x [<!ENTITY e "131052-308T">]><x>&e;</x>', "application/xml"),
        "DOCTYPE",
    ),
    (
        "broken XML",
        post("<ClinicalDocument><id></ClinicalDocument>", "application/xml"),
        "XML parse error",
    ),
    (
        "broken JSON",
        post('{"resourceType": "Patient",', "application/fhir+json"),
        "JSON parse error",
    ),
    (
        "invalid declared B64",
        post(
            cda().replace("<title>", '<text representation="B64">@@not base64@@</text><title>'),
            "application/xml",
        ),
        "invalid Base64",
    ),
    ("bad declared charset", post(b"ok \xc3\x28\xfa", "text/plain; charset=utf-8"), "utf-8"),
    ("multipart without close", post(b"--b\r\n\r\nx", "multipart/related; boundary=b"), ""),
]


@pytest.mark.parametrize(
    ("name", "request_", "reason"), UNSCANNABLE, ids=[u[0] for u in UNSCANNABLE]
)
def test_unreadable_is_unscannable(
    scanner: Scanner, name: str, request_: Request, reason: str
) -> None:
    """What cannot be fully read is blocked with rule unscannable and a reason."""
    report = scanner.scan(request_)
    assert report.verdict is Verdict.BLOCK
    assert "unscannable" in report.rules
    assert reason.lower() in report.findings[-1].explanation.lower()


def test_sniffed_non_xml_falls_back_to_text(scanner: Scanner) -> None:
    """An undeclared body that starts with "<" but is not XML is scanned as text, not refused."""
    assert scanner.scan(post("<3 kiitos", None)).verdict is Verdict.PASS
    assert only_block(scanner, post(f"<3 {REAL}", None))[0] == "hetu.real"


def test_depth_limit(scanner: Scanner) -> None:
    """Base64 nested deeper than max_depth is unscannable rather than half-read."""
    payload = f"hetu {TEST}"
    for _ in range(12):
        payload = json.dumps({"data": b64(payload)})
    report = scanner.scan(post(payload, "application/json"))
    assert report.rules == ("unscannable",)
    assert "layers deep" in report.findings[0].explanation


def test_body_over_limit() -> None:
    """A body over max_body_bytes is unscannable, "too large"."""
    from kanta_guard import KeyedHasher
    from kanta_guard.policy import parse_policy

    small = Scanner(parse_policy("[limits]\nmax_body_bytes = 1000\n"), KeyedHasher(b"k" * 16))
    report = small.scan(post("x" * 1001, "text/plain"))
    assert report.rules == ("unscannable",)
    assert report.findings[0].explanation.startswith("too large:")


def test_report_never_holds_a_raw_code(scanner: Scanner) -> None:
    """No raw code survives into the report: not in evidence, location or explanation."""
    body = json.dumps({REAL: REAL_2, "x": f"/{REAL}/"})
    report = scanner.scan(
        Request("POST", f"/p/{REAL}?{REAL_2}=1", (("X-A", REAL),), body.encode(), "h")
    )
    dumped = json.dumps(report.as_dict())
    assert report.verdict is Verdict.BLOCK
    for raw in (REAL, REAL_2, REAL.replace("-", ""), REAL[:6] + REAL[7:]):
        assert raw not in dumped


ESCAPED: list[tuple[str, bytes, str]] = [
    (
        "JSON \\u escape",
        f'{{"n": "x {REAL.replace("-", "\\u002d")}"}}'.encode(),
        "application/json",
    ),
    ("JSON \\/ escape", f'{{"n": "a\\/b {REAL}"}}'.encode(), "application/json"),
    ("XML decimal reference", f"<a>x {REAL.replace('-', '&#45;')}</a>".encode(), "application/xml"),
    ("XML hex reference", f"<a>x {REAL.replace('-', '&#x2013;')}</a>".encode(), "application/xml"),
    ("XML CDATA", f"<a><![CDATA[x {REAL}]]></a>".encode(), "application/xml"),
    ("XML attribute with a newline", f'<a b="{REAL[:7]}\n{REAL[7:]}"/>'.encode(), "text/xml"),
    ("form %2D", f"x={REAL.replace('-', '%2D')}".encode(), "application/x-www-form-urlencoded"),
    ("UTF-16 text with BOM", f"hetu {REAL}".encode("utf-16"), "text/plain"),
]


@pytest.mark.parametrize(("name", "body", "content_type"), ESCAPED, ids=[e[0] for e in ESCAPED])
def test_escaped_forms_are_read(
    scanner: Scanner, name: str, body: bytes, content_type: str
) -> None:
    """Escapes, references, CDATA and normalised whitespace do not hide a code from the screen."""
    assert only_block(scanner, post(body, content_type))[0] == "hetu.real"


# -- reasons never quote input unmasked, in any form ---------------------------------------------
# Regression: an unknown Content-Encoding holding a code with a tab between its parts reached the
# answer and the log as repr() wrote it ('…\\t…'), which mask_text did not recognise.

_ESCAPE = re.compile(r"\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))", re.DOTALL)
_SIMPLE = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v"}


def _unbackslash(text: str) -> str:
    """Backslash escapes undone the way a reader of Python, JSON or C output would."""

    def one(m: re.Match[str]) -> str:
        number = m.group(1) or m.group(2) or m.group(3)
        return chr(int(number, 16)) if number else _SIMPLE.get(m.group(4), m.group(4))

    return _ESCAPE.sub(one, text)


def all_readings(text: str) -> list[str]:
    """``text`` decoded each way a reader could: escapes, percent, references, NFKC, without
    format characters, without whitespace, and every combination of them applied repeatedly."""
    decoders: list[Callable[[str], str]] = [
        _unbackslash,
        lambda t: unquote(t, errors="replace"),
        html.unescape,
        lambda t: unicodedata.normalize("NFKC", t),
        lambda t: "".join(c for c in t if unicodedata.category(c) != "Cf"),
    ]
    seen = {text}
    frontier = [text]
    for _ in range(3):  # decoders applied in any order, up to three deep
        frontier = [d(t) for t in frontier for d in decoders if d(t) not in seen]
        seen.update(frontier)
    return sorted(seen | {re.sub(r"\s+", "", t) for t in seen})


def shows_code(text: str, raw: str = REAL) -> bool:
    """Whether any reading of ``text`` shows ``raw``'s date and individual number together
    (with a few characters between them: the sign, spacing, a stray letter, a broken escape)."""
    date, number = raw[:6], raw[7:10]
    pattern = re.compile(rf"{date}\D{{1,8}}{number}")
    return any(pattern.search(reading) for reading in all_readings(text))


def test_shows_code_sees_every_form() -> None:
    """The finder itself recognises the code in each escaped form the table below uses."""
    for _, form in CODE_FORMS:
        assert shows_code(form) and shows_code(repr(form)), form
    assert not shows_code(f"{REAL[:6]}-***{REAL[10]}")


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


_D, _S, _N, _C = REAL[:6], REAL[6], REAL[7:10], REAL[10]
CODE_FORMS: list[tuple[str, str]] = [
    ("tab", f"{_D}\t{_S}{_N}{_C}"),
    ("backslash t", f"{_D}\\t{_S}{_N}{_C}"),
    ("backslash x", f"{_D}\\x2d{_N}{_C}"),
    ("backslash u", f"{_D}\\u002d{_N}{_C}"),
    ("percent dash", f"{_D}%2D{_N}{_C}"),
    ("percent tab", f"{_D}%09{_S}{_N}{_C}"),
    ("percent digits", "".join(f"%{ord(c):02X}" for c in REAL)),
    ("decimal reference", f"{_D}&#45;{_N}{_C}"),
    ("hex reference", f"&#x{ord(_D[0]):x};{_D[1:]}{_S}{_N}{_C}"),
    ("fullwidth digits", _fullwidth(REAL)),
    ("zero-width space", f"{_D}\u200b{_S}{_N}{_C}"),
    ("soft hyphen in the date", f"{_D[:3]}\u00ad{_D[3:]}{_S}{_N}{_C}"),
    ("word joiner in the number", f"{_D}{_S}{_N[:1]}\u2060{_N[1:]}{_C}"),
    ("spaces and dashes", f"{_D}  - \u2013 {_N} {_C}"),
    ("line break", f"{_D}\r\n {_S}{_N}{_C}"),
    ("glued to digits", f"9{REAL}9"),
]

# Where a request's input is quoted in a reason: each builds a request from one code form.
PLACES: list[tuple[str, Callable[[str], Request]]] = [
    ("Content-Encoding", lambda f: post(b"x", "text/plain", headers=(("Content-Encoding", f),))),
    (
        "stacked Content-Encoding",
        lambda f: post(b"x", None, headers=(("Content-Encoding", f"gzip, {f}"),)),
    ),
    ("text charset", lambda f: post(b"hello", f'text/plain; charset="{f}"')),
    ("XML charset", lambda f: post(b"<a/>", f'application/xml; charset="{f}"')),
    ("JSON charset", lambda f: post(b"{}", f'application/json; charset="{f}"')),
    (
        "part Content-Transfer-Encoding",
        lambda f: post(
            f"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: {f}\r\n\r\nx\r\n"
            "--b--\r\n",
            "multipart/related; boundary=b",
        ),
    ),
    (
        "part charset",
        lambda f: post(
            f'--b\r\nContent-Type: text/plain; charset="{f}"\r\n\r\nx\r\n--b--\r\n',
            "multipart/mixed; boundary=b",
        ),
    ),
    (
        "multipart boundary",
        lambda f: post(b"--x\r\n\r\n--x--\r\n", f'multipart/form-data; boundary="{f}"'),
    ),
    (
        "XML tag name",
        lambda f: post(f"<a{f.replace(chr(9), chr(0x200C))}>x</b>", "application/xml"),
    ),
]


@pytest.mark.parametrize(("form_name", "form"), CODE_FORMS, ids=[f[0] for f in CODE_FORMS])
@pytest.mark.parametrize(("place", "build"), PLACES, ids=[p[0] for p in PLACES])
def test_reasons_never_show_a_code(
    scanner: Scanner,
    place: str,
    build: Callable[[str], Request],
    form_name: str,
    form: str,
) -> None:
    """No reading of the report, the blocked answer or the log record shows the quoted code."""
    request = build(form)
    report = scanner.scan(request)
    assert report.verdict is Verdict.BLOCK, report.as_dict()
    shown = [f.explanation for f in report.findings] + [f.location for f in report.findings]
    answer = blocked_answer(report, request_id="f1").body.decode("utf-8")
    record = json.dumps(
        make_record(report, flow_id="f1", client=None, method="POST", host="h", path="/")
    )
    for text in (*shown, json.dumps(report.as_dict()), answer, record):
        assert not shows_code(text), text


_HIDDEN = f"{REAL[:6]}\u200b{REAL[6:]}"  # a zero-width space between date and sign
NAMED_BY_INPUT: list[tuple[str, Request]] = [
    ("form name", post(f"{_HIDDEN}={REAL}", "application/x-www-form-urlencoded")),
    ("JSON key", post(f'{{"{_HIDDEN}": "{REAL}"}}', "application/json")),
    # U+200C (zero-width non-joiner) is an XML name character; U+200B is not.
    (
        "XML tag",
        post(f"<a{_HIDDEN}>{REAL}</a{_HIDDEN}>".replace("\u200b", "\u200c"), "application/xml"),
    ),
]


@pytest.mark.parametrize(("name", "request_"), NAMED_BY_INPUT, ids=[n[0] for n in NAMED_BY_INPUT])
def test_locations_named_by_input_show_no_code(
    scanner: Scanner, name: str, request_: Request
) -> None:
    """A location built from input (a form name, a key, a tag) shows no code in any reading."""
    report = scanner.scan(request_)
    assert report.verdict is Verdict.BLOCK
    assert not any(shows_code(f.location) for f in report.findings), report.as_dict()


@pytest.mark.parametrize("charset", ["iso-8859-1", "us-ascii", "utf-7", "windows-1252"])
def test_json_is_read_as_a_receiver_could_read_it(scanner: Scanner, charset: str) -> None:
    """UTF-8 JSON under another charset label is also read as UTF-8: a code with a Unicode
    dash is found whichever way the receiver decodes the bytes."""
    body = json.dumps({"note": REAL.replace("-", "\u2013")}, ensure_ascii=False).encode()
    report = scanner.scan_bytes(body, f"application/json; charset={charset}")
    assert report.verdict is Verdict.BLOCK and "hetu.real" in report.rules
    clean = json.dumps({"note": TEST.replace("-", "\u2013")}, ensure_ascii=False).encode()
    passed = scanner.scan_bytes(clean, f"application/json; charset={charset}")
    assert passed.verdict is Verdict.PASS


# -- small nested payloads screened together ----------------------------------------------------


def _key(report: Report) -> list[tuple[str, str, str, str]]:
    return sorted((f.rule, f.location, str(f.role), f.value_hash) for f in report.findings)


class _Alone(Scanner):
    """The scanner that parses every nested payload alone (none is batched), and whose
    parsers make a payload of every decoded text (``text.live_decoded`` answering "all")."""

    def _plain(self, payload: Payload, state: ScanState) -> str | None:
        return None

    def scan(self, request: Request) -> Report:
        with _every_text_live():
            return super().scan(request)


@contextlib.contextmanager
def _every_text_live() -> Iterator[None]:
    """``live_decoded`` answering that something may fire in each decoded text, in every
    parser that asks it."""

    def everything(found: list[bytes], state: ScanState, where: object = "body") -> set[int]:
        return set(range(len(found)))

    with contextlib.ExitStack() as stack:
        for module in (json_parser, text_parser, xml_parser):
            stack.enter_context(mock.patch.object(module, "live_decoded", everything))
        yield


def _batched_and_alone(mode: str | None) -> tuple[Scanner, Scanner]:
    batched = personal_scanner(mode)
    return batched, _Alone(batched.policy, KeyedHasher(TEST_KEY), registry=batched.registry)


_PAIRS = {mode: _batched_and_alone(mode) for mode in (None, "independent")}

#: Base64 of a real code, wrapped in lines shorter than a token, without padding: a body of
#: Base64 lines (the batch once let it pass: no run was long enough to be read as a token).
_WRAPPED = "\n".join(textwrap.wrap(base64.b64encode(f"Potilas {REAL}xx".encode()).decode(), 8))


#: What a decoded token may be made of: real and test codes (whole, or split between tokens),
#: names, addresses, numbers, words, line breaks, non-ASCII text, "=" and Base64-like runs
#: (which are parsed alone), a PEM opening and a JOSE header; and bytes that are no UTF-8 (a
#: code with windows-1252's en dash, Latin-1 names, control bytes, random bytes, magic
#: numbers), which make a token binary (``_batch_blobs``).
_PIECES = st.one_of(
    st.sampled_from(
        [
            REAL, TEST, REAL_2, REAL[:6], REAL[6:], "010181", "-900C", " ", "\n", "\r\n", "ä",
            "Ж5", "rivi", "kotona", "Potilas", "Matti Virtanen", "Liisa Korhonen", "Virtanen",
            "maija.virtanen@gmail.com", "testi@example.com", "puh 040 111 2233", "+358401112233",
            "Mannerheimintie 5 B 7", "a=b", "sairaanhoitopiiri", "-----BEGIN ",
            "eyJhbGciOiJub25lIn0.e30.", "\u200b", "０１０１８１", _WRAPPED,
        ]
    ).map(str.encode),
    st.sampled_from(
        [
            REAL.replace("-", "\x96").encode("latin-1"), "Väinö Äijälä".encode("latin-1"),
            "liisa@gmäil.fi".encode("latin-1"), b"\x00", b"\x01\x02", b"\xff\xfe",
            b"\x1f\x8b\x08\x00", b"\x97", b"&#48;", b"%40",
            # UTF-8 with a control byte (binary, but read as UTF-8): a code with an en dash, a
            # name; beside Latin-1 bytes, read one byte a character, these would not show.
            b"\x01" + REAL.replace("-", "\u2013").encode(), "\x01Väinö Virtanen".encode(),
        ]
    ),
    st.binary(min_size=1, max_size=12),
)  # fmt: skip
_TOKENS = st.lists(st.lists(_PIECES, min_size=1, max_size=4).map(b"".join), max_size=40)


def _carriers(tokens: list[bytes]) -> list[Request]:
    encoded = [base64.b64encode(t).decode() for t in tokens]
    return [
        post(" ".join(encoded), "text/plain"),
        post(json.dumps(encoded), "application/json"),
        post("<r>" + "".join(f"<a>{e}</a>" for e in encoded) + "</r>", "application/xml"),
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TOKENS, st.sampled_from([None, "independent"]))
# Found by it: NUL bytes in one blob made the phone screen of the batch skip another's number;
# and the kinds of bytes the screens read a document by, kept apart.
@example([b"131052131052" + b"\0" * 10, "Väinö Äijälä puh 040 111 2233".encode("latin-1")], None)
@example([b"\x01" + REAL.replace("-", "\u2013").encode(), "Väinö".encode("latin-1")], None)
@example([b"\x01Matti Virtanen".replace(b"a", "ä".encode()), b"\xff\xfe\x01"], "independent")
# A test code whose parts two tokens end and open was noted as recognised across their join.
@example(["０１０１８１".encode(), b"131052-308T131052-308T", b"-900C 131052"], None)
def test_batched_payloads_find_what_each_alone_finds(tokens: list[bytes], mode: str | None) -> None:
    """Decoded tokens screened together give the verdict, the codes and data found (rule,
    place, keyed hash), the count of payloads and the test codes recognised that parsing each
    alone gives.

    (Found, not reported: a batch is parsed after what the payload holding it yields, so the
    order of findings differs, and with it what the report leaves out as said already or no
    longer able to change the verdict: another reading of a line whose code one token on the
    same line reported (two tokens of a line share its location), a warning after a block,
    whatever comes after what cannot be read.)"""
    batched, alone = _PAIRS[mode]
    for request in _carriers(tokens):
        together, each = batched.scan(request), alone.scan(request)
        assert together.verdict is each.verdict
        if any(f.rule == "unscannable" for f in (*together.findings, *each.findings)):
            # (What cannot be read ends the scan where it stands, and the batch moved where.)
            assert together.verdict is Verdict.BLOCK
            continue
        assert together.payloads_scanned == each.payloads_scanned
        assert together.recognised == each.recognised
        if not (together.omitted or each.omitted):
            assert _found(together) == _found(each)


#: A reading's suffix on a line's location (``line 3!cp1252+replace``).
_READING = re.compile(r"(line \d+(?:-\d+)?)![^:]*$")


def _found(report: Report) -> set[tuple[str, str, str]]:
    """What a report found: each finding's rule, place (the line, whichever reading) and
    keyed hash; of a blocked report, its blocking findings."""
    blocked = report.verdict is Verdict.BLOCK
    return {
        (f.rule, _READING.sub(r"\1", f.location), f.value_hash)
        for f in report.findings
        if not blocked or f.action is Action.BLOCK
    }


def test_base64_wrapped_short_inside_a_token_is_read() -> None:
    """A token that decodes to Base64 wrapped in short lines (a real code, encoded twice),
    among tokens that batch: it is decoded again and blocks."""
    assert "=" not in _WRAPPED and max(map(len, _WRAPPED.split())) < 15
    tokens = [b"rivi abcdex", _WRAPPED.encode(), b"rivi abcdey"]
    for request in _carriers(tokens):
        report = _PAIRS[None][0].scan(request)
        assert report.verdict is Verdict.BLOCK, request.body[:40]
        assert any(f.rule == "hetu.real" for f in report.findings)


def test_a_batch_larger_than_its_size_is_read_whole() -> None:
    """More tokens than one batch holds, a real code in the last of them only: found."""
    words = [f"rivi {chr(97 + i % 26)}{chr(97 + i // 26 % 26)}x" for i in range(1000)]
    tokens = [w.encode() for w in words] + [f"Potilas {REAL}".encode()]
    batched, alone = _PAIRS[None]
    for request in _carriers(tokens):
        together, each = batched.scan(request), alone.scan(request)
        assert together.verdict is Verdict.BLOCK
        assert _key(together) == _key(each)
