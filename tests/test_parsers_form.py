"""Tests for kanta_guard.parsers.form: every reading of a form or query (``+``, layers of ``%``)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from helpers import REAL, TEST, code
from hypothesis import given, settings
from hypothesis import strategies as st

from kanta_guard import Request, Scanner, Verdict
from kanta_guard.errors import UnscannableError
from kanta_guard.model import Report
from kanta_guard.parsers.form import MAX_LAYERS, decoded_pairs, layers

#: A real code of someone born in the 1800s: its century sign is "+".
REAL_1800 = code("010180", "+", 308)
TEST_1800 = code("010180", "+", 904)


def _pct(text: str, times: int = 1) -> str:
    """Every character percent-encoded, then the result ``times - 1`` times again."""
    encoded = "".join(f"%{ord(ch):02X}" for ch in text)
    for _ in range(times - 1):
        encoded = encoded.replace("%", "%25")
    return encoded


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", ["plain"]),
        ("a+b", ["a b", "a+b"]),  # the form reading first
        ("a%2Bb", ["a+b", "a b"]),  # (decoded twice, as a form: a space)
        ("a%252Bb", ["a%2Bb", "a+b", "a b"]),
        ("%25252541", ["%252541", "%2541", "%41", "A"]),
        ("a+%2B", ["a +", "a++", "a  "]),
    ],
)
def test_layers(text: str, expected: list[str]) -> None:
    """Each reading once, in order: form, ``+`` kept, then each further round of decoding."""
    assert layers(text) == expected


def test_layers_refuse_endless_encoding() -> None:
    """A value that still changes after MAX_LAYERS rounds is unscannable, not decoded forever."""
    with pytest.raises(UnscannableError, match="percent-encoded more than"):
        layers("%" + "25" * (MAX_LAYERS + 2) + "41")


def test_layers_are_linear() -> None:
    """A long value encoded many times is decided in bounded time."""
    started = time.perf_counter()
    with pytest.raises(UnscannableError):
        layers(("%" + "25" * 40 + "41") * 2000)
    assert time.perf_counter() - started < 1


def test_decoded_pairs() -> None:
    """Pairs in order, the other readings after them, located under the form reading's name."""
    assert decoded_pairs("a=1&b=x+y&&c%2Bd=%2541") == [
        ("a", "1", "a", False),
        ("b", "x y", "b", False),
        ("c+d", "%41", "c+d", False),
        ("b", "x+y", "b", True),
        ("c d", "", "c+d", True),
        ("c+d", "A", "c+d", True),
    ]


def _form(body: str) -> Request:
    """A form POST with this body."""
    return Request(
        "POST",
        "/lomake",
        (("Host", "kanta.test"), ("Content-Type", "application/x-www-form-urlencoded")),
        body.encode(),
        "kanta.test",
    )


#: (name, form body from a code, the finding's location).
FORMS: list[tuple[str, Callable[[str], str], str]] = [
    ("plain", lambda c: f"a=1&hetu={c}", "form:hetu"),
    ("percent-encoded once", lambda c: f"hetu={_pct(c)}", "form:hetu"),
    ("percent-encoded twice", lambda c: f"a=1&hetu={_pct(c, 2)}", "form:hetu"),
    ("percent-encoded three times", lambda c: f"hetu={_pct(c, 3)}", "form:hetu"),
    ("in the name, twice", lambda c: f"{_pct(c, 2)}=1", "form:[name]#name"),
    ("repeated name, the second value", lambda c: f"hetu={TEST}&hetu={c}", "form:hetu"),
]


@pytest.mark.parametrize(("name", "build", "location"), FORMS, ids=[f[0] for f in FORMS])
def test_form_real_blocked_test_passes(
    scanner: Scanner, name: str, build: Callable[[str], str], location: str
) -> None:
    """A real code in any reading of a form is blocked once; a test code passes."""
    report = scanner.scan(_form(build(REAL)))
    assert [f.rule for f in report.findings] == ["hetu.real"]
    if "[name]" not in location:
        assert report.findings[0].location == location
    assert scanner.scan(_form(build(TEST))).verdict is Verdict.PASS


@pytest.mark.parametrize("where", ["form", "query"])
def test_plus_is_read_both_ways(scanner: Scanner, where: str) -> None:
    """``+`` as sent is a space to a form reader and the 1800s century sign to others."""
    for value, verdict in ((REAL_1800, Verdict.BLOCK), (TEST_1800, Verdict.PASS)):
        if where == "form":
            request = _form(f"hetu={value}")
        else:
            request = Request("GET", f"/fhir/Patient?identifier={value}", (), b"", "kanta.test")
        assert scanner.scan(request).verdict is verdict


def test_ordinary_form_does_not_fire(scanner: Scanner) -> None:
    """An ordinary form with spaces, escapes and dates passes."""
    body = "nimi=Matti+Meik%C3%A4l%C3%A4inen&pvm=2026-12-01&tilaus=123456-7890&q=a%2Bb%25"
    assert scanner.scan(_form(body)).verdict is Verdict.PASS


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="%25+AB2", max_size=60))
def test_layers_never_fail_unexpectedly(text: str) -> None:
    """Any mix of ``%``, ``+`` and hex gives readings (or the refusal), each distinct once."""
    try:
        found = layers(text)
    except UnscannableError:
        return
    assert found and len(found) == len(set(found))


def _saml(code_value: str, *, deflated: bool) -> str:
    """A SAML AuthnRequest naming a subject by its identity code, as its HTTP-Redirect
    (raw DEFLATE, then Base64) or POST binding (Base64) sends it."""
    import base64
    import zlib

    message = (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Subject><saml:NameID>'
        f"{code_value}</saml:NameID></saml:Subject></samlp:AuthnRequest>"
    ).encode()
    if deflated:
        squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
        message = squeeze.compress(message) + squeeze.flush()
    return base64.b64encode(message).decode()


@pytest.mark.parametrize("deflated", [True, False], ids=["redirect", "post"])
def test_a_saml_message_is_read_as_its_xml(scanner: Scanner, deflated: bool) -> None:
    """SAMLRequest (query, HTTP-Redirect binding: deflated) and SAMLResponse (form, POST
    binding) are read as the XML they carry: a real code there is found (it was inert binary
    to a Base64 reading); a test code passes."""
    from urllib.parse import quote

    for value, verdict in ((REAL, Verdict.BLOCK), (TEST, Verdict.PASS)):
        query = Request(
            "GET", "/sso?SAMLRequest=" + quote(_saml(value, deflated=deflated)), (), b"", "h"
        )
        form = _form("SAMLResponse=" + quote(_saml(value, deflated=deflated)))
        for request in (query, form):
            report = scanner.scan(request)
            assert report.verdict is verdict, report.findings
            if verdict is Verdict.BLOCK:
                assert report.rules == ("hetu.real",)
                assert REAL not in repr(report.findings)


def test_a_saml_message_that_is_not_one_is_unscannable(scanner: Scanner) -> None:
    """A SAMLRequest that is not Base64, or Base64 of neither XML nor deflated XML, and a
    deflate bomb: unscannable (blocked), never passed as a field."""
    import base64
    import zlib
    from urllib.parse import quote

    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    huge = bomb.compress(b"<" + b" " * 140_000_000) + bomb.flush()  # (past max_decoded_bytes)
    for value in (
        "not base64 at all!",
        base64.b64encode(b"\x00\x01 binary").decode(),
        base64.b64encode(huge).decode(),
    ):
        report = scanner.scan(Request("GET", "/sso?SAMLRequest=" + quote(value), (), b"", "h"))
        assert report.rules == ("unscannable",), report.findings


def _deflated_saml(code_value: str) -> str:
    return _saml(code_value, deflated=True)


@pytest.mark.parametrize("where", ["json", "header", "multipart"])
def test_a_deflated_saml_message_elsewhere_is_read(scanner: Scanner, where: str) -> None:
    """Found attacking the SAML reading: the same deflated message in other places (raw
    DEFLATE has no magic number: decoded Base64 nothing recognised is tried); its twin with
    a test code passes."""
    assert _deflated_elsewhere(scanner, where, REAL).rules == ("hetu.real",)
    assert _deflated_elsewhere(scanner, where, TEST).verdict is Verdict.PASS


def _deflated_elsewhere(scanner: Scanner, where: str, code_value: str) -> Report:
    value = _deflated_saml(code_value)
    if where == "json":
        import json

        request = Request(
            "POST", "/sso", (("Content-Type", "application/json"),),
            json.dumps({"SAMLRequest": value}).encode(), "h",
        )  # fmt: skip
    elif where == "header":
        request = Request("GET", "/sso", (("X-SAML-Request", value),), b"", "h")
    else:
        body = (
            f'--B\r\nContent-Disposition: form-data; name="SAMLRequest"\r\n\r\n{value}\r\n--B--\r\n'
        ).encode()
        headers = (("Content-Type", "multipart/form-data; boundary=B"),)
        request = Request("POST", "/sso", headers, body, "h")
    return scanner.scan(request)


def test_unrecognised_binary_is_tried_as_deflate_only(scanner: Scanner) -> None:
    """Base64 of random bytes (a signature, a nonce) is no DEFLATE and passes; a DEFLATE bomb
    in a JSON member is unscannable."""
    import base64
    import json
    import random
    import zlib

    rng = random.Random(7)
    for size in (16, 64, 300, 3000):
        noise = base64.b64encode(bytes(rng.randrange(256) for _ in range(size))).decode()
        request = Request(
            "POST", "/x", (("Content-Type", "application/json"),),
            json.dumps({"sig": noise}).encode(), "h",
        )  # fmt: skip
        assert scanner.scan(request).verdict is Verdict.PASS
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    huge = bomb.compress(b"a" * 140_000_000) + bomb.flush()
    request = Request(
        "POST", "/x", (("Content-Type", "application/json"),),
        json.dumps({"d": base64.b64encode(huge).decode()}).encode(), "h",
    )  # fmt: skip
    assert scanner.scan(request).rules == ("unscannable",)
