"""Property-based tests of the whole pipeline: a real code anywhere, in any encoding, is found;
nothing raises out of the pipeline; nothing it cannot read passes.

Hypothesis builds the documents the guard sees (the CDA, HL7 V3 SOAP and FHIR Bundle fixtures,
multipart, forms, URLs, headers), puts one real-range code (computed, with a random date, century
sign and individual number 002-899) into one random placement, in a random written form and a
random transfer encoding, and checks the scan blocks it as ``hetu.real`` without the code
appearing in the report. The short run here keeps the suite fast; ``make fuzz`` runs the long
one (see the README).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import zlib
from urllib.parse import quote

import brotli
from helpers import FIXTURES, TEST_CODES, b64, bundle, cda, code, soap_with_cda
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kanta_guard import Request, Scanner
from kanta_guard.model import Verdict

#: Examples per property; ``KANTA_GUARD_PROPERTY_EXAMPLES`` raises it for a long run.
EXAMPLES = int(os.environ.get("KANTA_GUARD_PROPERTY_EXAMPLES", "60"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212"


@st.composite
def real_codes(draw: st.DrawFn) -> str:
    """A valid real-range code: a real calendar date, any century sign, number 002-899."""
    year = draw(st.integers(0, 99))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 28))
    sign = draw(st.sampled_from("-+ABCDEFUVWXY"))
    number = draw(st.integers(2, 899))
    return code(f"{day:02d}{month:02d}{year:02d}", sign, number)


_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
#: Format characters a word processor leaves in pasted text (Unicode category Cf).
_FORMAT = ["\u200b", "\u00ad", "\u2060", "\ufeff"]


@st.composite
def written(draw: st.DrawFn, value: str) -> str:
    """The code as people and systems write it: lower case, a Unicode dash, spaces or tabs
    between the parts, a zero-width space or soft hyphen pasted in, fullwidth digits."""
    form = draw(
        st.sampled_from(["as-is", "lower", "dash", "space", "spaces", "format", "fullwidth"])
    )
    if form == "lower":
        return value.lower()
    if form == "dash" and value[6] == "-":
        return value[:6] + draw(st.sampled_from(_DASHES)) + value[7:]
    if form == "space":
        return value[:6] + " " + value[6:]
    if form == "spaces":
        gap = draw(st.sampled_from(["  ", "\t", " \t ", "   "]))
        return value[:6] + gap + value[6] + gap + value[7:10] + gap + value[10]
    if form == "format":
        at = draw(st.integers(1, len(value) - 1))
        return value[:at] + draw(st.sampled_from(_FORMAT)) + value[at:]
    if form == "fullwidth":
        return value.translate(_FULLWIDTH)
    return value


def _xml_refs(value: str) -> str:
    """Every character as an XML numeric character reference (read back by any parser)."""
    return "".join(f"&#{ord(c)};" for c in value)


def _json_escapes(value: str) -> str:
    """Every character as a JSON \\u escape."""
    return "".join(f"\\u{ord(c):04x}" for c in value)


def _places(name: str) -> list[str]:
    """The placements (``$name``) a fixture template has."""
    return sorted(
        set(re.findall(r"\$(\w+)", (FIXTURES / name).read_text("utf-8"))) & set(TEST_CODES)
    )


_CDA_PLACES = _places("cda_minor.xml")
_BUNDLE_PLACES = _places("fhir_bundle.json")


@st.composite
def dirty_requests(draw: st.DrawFn) -> tuple[Request, str, bool]:
    """A request with one real code in one random placement; the code; whether it is in the
    body."""
    value = draw(real_codes())
    text = draw(written(value))
    kind = draw(
        st.sampled_from(
            ["cda", "cda-refs", "soap", "bundle", "bundle-escapes", "query", "header", "multipart"]
        )
    )
    headers: list[tuple[str, str]] = []
    target = "/services"
    if kind in ("cda", "cda-refs"):
        place = draw(st.sampled_from(_CDA_PLACES))
        body = cda(**{place: _xml_refs(text) if kind == "cda-refs" else text}).encode()
        content_type = "application/xml"
    elif kind == "soap":
        place = draw(st.sampled_from(_CDA_PLACES))
        body = soap_with_cda(cda(**{place: text})).encode()
        content_type = "text/xml; charset=utf-8"
    elif kind in ("bundle", "bundle-escapes"):
        where = draw(st.sampled_from([*_BUNDLE_PLACES, "binary", "attachment"]))
        if where == "binary":
            body = bundle(binary=f"Muistiinpano {text}").encode()
        elif where == "attachment":  # json.dumps escapes the attachment's text itself
            body = bundle(attachment={"note": text}).encode()
        else:
            # Written into JSON as a JSON writer writes it (a tab in a string is "\t").
            value_text = _json_escapes(text) if kind == "bundle-escapes" else json.dumps(text)[1:-1]
            body = bundle(**{where: value_text}).encode()
        content_type = "application/fhir+json"
    elif kind == "query":
        target = "/fhir/Patient?identifier=" + quote(f"urn:oid:1.2.246.21|{text}", safe="")
        body, content_type = b"", "application/fhir+json"
    elif kind == "header":
        scheme = draw(st.sampled_from(["plain", "basic"]))
        raw = text if scheme == "plain" else "Basic " + b64(f"user:{text}")
        headers.append(("X-Patient" if scheme == "plain" else "Authorization", raw))
        body, content_type = cda().encode(), "application/xml"
    else:
        boundary = "kg-" + draw(st.text("abcdef0123456789", min_size=8, max_size=16))
        part = cda(**{draw(st.sampled_from(_CDA_PLACES)): text})
        body = (
            f"--{boundary}\r\nContent-Type: application/xml\r\n\r\n{part}\r\n"
            f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nliite\r\n--{boundary}--\r\n"
        ).encode()
        content_type = f'multipart/related; boundary="{boundary}"; type="application/xml"'
    encoding = draw(st.sampled_from(["", "gzip", "deflate", "br", "gzip, br"]))
    body = _encode(body, encoding)
    if encoding:
        headers.append(("Content-Encoding", encoding))
    headers.append(("Content-Type", content_type))
    in_body = kind not in ("query", "header")
    return Request("POST", target, tuple(headers), body, "kanta.test"), value, in_body


def _encode(body: bytes, encoding: str) -> bytes:
    for coding in [c.strip() for c in encoding.split(",") if c.strip()]:
        if coding == "gzip":
            body = gzip.compress(body)
        elif coding == "deflate":
            body = zlib.compress(body)
        elif coding == "br":
            body = brotli.compress(body)
    return body


def _shows(report_json: str, value: str) -> bool:
    """Whether the report shows the code, as sent or in its digits."""
    digits = value[:6] + value[7:10]
    return value in report_json or value.lower() in report_json or digits in report_json


@PROPERTY
@given(case=dirty_requests())
def test_a_real_code_anywhere_is_blocked(scanner: Scanner, case: tuple[Request, str, bool]) -> None:
    """One real code in any placement, written form and encoding is blocked as hetu.real."""
    request, value, _ = case
    report = scanner.scan(request)
    assert report.verdict is Verdict.BLOCK, report.as_dict()
    assert "hetu.real" in report.rules, report.as_dict()
    assert not _shows(json.dumps(report.as_dict(), ensure_ascii=False), value)


@PROPERTY
@given(place=st.sampled_from(_CDA_PLACES), encoding=st.sampled_from(["", "gzip", "br"]))
def test_test_codes_pass(scanner: Scanner, place: str, encoding: str) -> None:
    """The fixtures with only 900-series codes pass, in every encoding."""
    headers = [("Content-Type", "text/xml")]
    if encoding:
        headers.append(("Content-Encoding", encoding))
    body = _encode(soap_with_cda(cda(**{place: TEST_CODES[place]})).encode(), encoding)
    report = scanner.scan(Request("POST", "/services", tuple(headers), body))
    assert report.verdict is not Verdict.BLOCK, report.as_dict()


_TYPES = [
    None,
    "application/xml",
    "text/xml",
    "application/json",
    "application/fhir+json",
    "application/x-www-form-urlencoded",
    "multipart/related; boundary=x",
    "text/plain",
    "application/octet-stream",
]


@PROPERTY
@given(data=st.binary(max_size=2048), content_type=st.sampled_from(_TYPES))
def test_random_bytes_never_raise(scanner: Scanner, data: bytes, content_type: str | None) -> None:
    """Random bytes under any declared type give a report: nothing raises out of the pipeline."""
    report = scanner.scan_bytes(data, content_type)
    assert report.verdict in (Verdict.PASS, Verdict.WARN, Verdict.BLOCK)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, str]:
    """A valid document with random bytes flipped, cut or inserted."""
    kind = draw(st.sampled_from(["xml", "json", "soap"]))
    if kind == "xml":
        data, content_type = cda().encode(), "application/xml"
    elif kind == "soap":
        data, content_type = soap_with_cda().encode(), "text/xml"
    else:
        data, content_type = bundle().encode(), "application/fhir+json"
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(buf) - 1))
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            buf[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del buf[at : at + draw(st.integers(1, 64))]
        else:
            buf[at:at] = draw(st.binary(min_size=1, max_size=16))
        if not buf:
            buf = bytearray(b"<")
    return bytes(buf), content_type


@PROPERTY
@given(case=mutated())
def test_mutated_documents_never_raise(scanner: Scanner, case: tuple[bytes, str]) -> None:
    """A damaged CDA, SOAP message or FHIR Bundle gives a report, and passes only if it reads."""
    data, content_type = case
    report = scanner.scan_bytes(data, content_type)
    assert report.verdict in (Verdict.PASS, Verdict.WARN, Verdict.BLOCK)
    if report.verdict is Verdict.PASS:
        # What passes was read whole: a declared XML or JSON document that passes parses.
        if content_type.endswith("xml"):
            from lxml import etree

            etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
        else:
            json.loads(data)


@PROPERTY
@given(case=dirty_requests())
def test_base64_of_a_dirty_document_is_blocked(
    scanner: Scanner, case: tuple[Request, str, bool]
) -> None:
    """The same dirty body, Base64-encoded inside a FHIR Binary, is still blocked."""
    request, _, in_body = case
    if request.header("content-encoding") or not in_body:
        return
    content_type = request.header("content-type") or "application/octet-stream"
    data = base64.b64encode(request.body).decode()
    media = content_type.split(";")[0]
    binary = json.dumps({"resourceType": "Binary", "contentType": media, "data": data})
    report = scanner.scan_bytes(binary.encode(), "application/fhir+json")
    assert report.verdict is Verdict.BLOCK, report.as_dict()
