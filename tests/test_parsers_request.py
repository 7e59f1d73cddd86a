"""Tests for kanta_guard.parsers.request: every part of a request outside its body is scanned."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from helpers import REAL, TEST, b64
from hypothesis import given, settings
from hypothesis import strategies as st

from kanta_guard import Action, Request, Role, Scanner, Verdict

#: What an ordinary Java client of the Kanta services sends: none of it may fire.
ORDINARY: tuple[tuple[str, str], ...] = (
    ("Host", "kanta.test:443"),
    ("User-Agent", "Apache-HttpClient/4.5.13 (Java/17.0.8)"),
    ("Accept", "application/fhir+json, application/json;q=0.9, */*;q=0.1"),
    ("Accept-Encoding", "gzip, deflate"),
    ("Content-Type", 'text/xml; charset="utf-8"'),
    ("SOAPAction", '"urn:hl7-org:v3:PRPA_IN201305UV02"'),
    (
        "Cookie",
        "JSESSIONID=8F2A1C3B4D5E6F708192A3B4C5D6E7F8; lang=fi; _ga=GA1.2.123456789.1700000000",
    ),
    ("X-Request-Id", "3f1c2a9b-0d4e-5f61-8a7b-9c0d1e2f3a4b"),
    ("X-Forwarded-For", "10.0.0.1, 10.0.0.2"),
    ("Date", "Tue, 01 Dec 2026 10:15:00 GMT"),
)


def get(
    headers: tuple[tuple[str, str], ...] = (),
    *,
    method: str = "GET",
    authority: str = "",
    trailers: tuple[tuple[str, str], ...] = (),
) -> Request:
    """A GET with the ordinary headers (its own Host, if given) and the given extra parts."""
    ordinary = tuple(h for h in ORDINARY if h[0] != "Host" or all(n != "Host" for n, _ in headers))
    return Request(
        method, "/fhir/metadata", ordinary + headers, b"", "kanta.test", authority, trailers
    )


#: Cookies in the ordinary Cookie header: a test's Cookie line comes after them.
_COOKIES = len(dict(ORDINARY)["Cookie"].split(";"))


def _punycode(value: str) -> str:
    """The value as an IDNA A-label, an en dash for its hyphen: the ASCII form then holds no
    code (Punycode moves the dash out), its Unicode form does."""
    label = (value[:6] + "\u2013" + value[7:]).lower() if value[6] == "-" else value.lower()
    return "xn--" + label.encode("punycode").decode("ascii")


def _split(value: str, at: int) -> tuple[tuple[str, str], ...]:
    """Two lines of one header name, the value split between them."""
    return (("X-Patient", value[:at]), ("x-patient", value[at:]))


#: (name, request with the code in one place, the location of its finding).
PLACES: list[tuple[str, Callable[[str], Request], str]] = [
    ("authority absolute-form", lambda c: get(authority=f"{c}.kanta.test"), "request:authority"),
    ("authority with port", lambda c: get(authority=f"{c}.kanta.test:443"), "request:authority"),
    (
        "authority percent-encoded",
        lambda c: get(authority=c.replace("-", "%2D") + ".kanta.test:8443"),
        "request:authority",
    ),
    (
        "authority punycode",
        lambda c: get(authority=f"{_punycode(c)}.kanta.test:443"),
        "request:authority",
    ),
    ("authority with userinfo", lambda c: get(authority=f"{c}@kanta.test"), "request:authority"),
    ("IPv6 authority", lambda c: get(authority=f"[{c}]:443"), "request:authority"),
    (
        "CONNECT target",
        lambda c: get(method="CONNECT", authority=f"{c}.kanta.test:443"),
        "request:authority",
    ),
    (
        "Host glued with dots and port",
        lambda c: get((("Host", f"{c}.kanta.test:443"),)),
        "header:Host",
    ),
    ("Host punycode", lambda c: get((("Host", f"{_punycode(c)}.kanta.test"),)), "header:Host"),
    ("method", lambda c: get(method=f"X-{c}"), "request:method"),
    ("header name", lambda c: get(((f"X-{c}", "1"),)), f"header-name:{len(ORDINARY)}"),
    (
        "header name glued to a word",
        lambda c: get(((f"XHetu{c}", "1"),)),
        f"header-name:{len(ORDINARY)}",
    ),
    ("header value", lambda c: get((("X-Patient-Id", c),)), "header:X-Patient-Id"),
    (
        "folded value, the fold at the century sign",
        lambda c: get((("X-Patient", f"{c[:6]}\r\n {c[6:]}"),)),
        "header:X-Patient",
    ),
    (
        "folded value, tab and whitespace around the fold",
        lambda c: get((("X-Patient", f"{c[:7]} \r\n\t{c[7:]}"),)),
        "header:X-Patient",
    ),
    ("two lines split in the date", lambda c: get(_split(c, 3)), "header:X-Patient!concatenated"),
    ("two lines split at the sign", lambda c: get(_split(c, 6)), "header:X-Patient!concatenated"),
    ("two lines split in the number", lambda c: get(_split(c, 8)), "header:X-Patient!concatenated"),
    (
        "two lines, the code whole in the second",
        lambda c: get((("X-Patient", "a"), ("X-Patient", c))),
        "header:X-Patient",
    ),
    ("cookie value", lambda c: get((("Cookie", f"hetu={c}"),)), "cookie:hetu"),
    (
        "cookie percent-encoded",
        lambda c: get((("Cookie", f"a=1; hetu={c.replace('-', '%2D')}"),)),
        "cookie:hetu",
    ),
    (
        "cookie fully percent-encoded",
        lambda c: get((("Cookie", "p=" + "".join(f"%{ord(ch):02X}" for ch in c)),)),
        "cookie:p",
    ),
    ("cookie quoted", lambda c: get((("Cookie", f'p="{c}"'),)), "cookie:p"),
    ("cookie name", lambda c: get((("Cookie", f"{c}=1"),)), f"cookie:[{_COOKIES}]#name"),
    (
        "cookie without a name",
        lambda c: get((("Cookie", f"a=1; {c}"),)),
        f"cookie:[{_COOKIES + 1}]",
    ),
    (
        "cookie in Base64",
        lambda c: get((("Cookie", f"JSESSIONID=x; session={b64('user=' + c)}"),)),
        "cookie:session!base64:line 1",
    ),
    (
        "cookie in percent-encoded Base64",
        lambda c: get((("Cookie", "s=" + b64(f"u={c}").replace("=", "%3D")),)),
        "cookie:s!base64:line 1",
    ),
    (
        "cookie split over HTTP/2 crumbs",
        lambda c: get((("Cookie", "a=1"), ("Cookie", f"hetu={c}"))),
        "cookie:hetu",
    ),
    ("trailer", lambda c: get(trailers=(("X-Checksum-Patient", c),)), "trailer:X-Checksum-Patient"),
    ("trailer name", lambda c: get(trailers=((f"X-{c}", "1"),)), "trailer-name:0"),
    (
        "folded trailer",
        lambda c: get(trailers=(("X-Patient", f"{c[:6]}\r\n {c[6:]}"),)),
        "trailer:X-Patient",
    ),
]


@pytest.mark.parametrize(("name", "build", "location"), PLACES, ids=[p[0] for p in PLACES])
def test_real_code_is_blocked(
    scanner: Scanner, name: str, build: Callable[[str], Request], location: str
) -> None:
    """A real-range code in any part of the request head blocks it, at the expected location."""
    report = scanner.scan(build(REAL))
    assert report.verdict is Verdict.BLOCK, report.as_dict()
    assert [(f.rule, f.action, f.location) for f in report.findings] == [
        ("hetu.real", Action.BLOCK, location)
    ]
    assert report.findings[0].role in (Role.HEADER, Role.URL)


@pytest.mark.parametrize(("name", "build", "location"), PLACES, ids=[p[0] for p in PLACES])
def test_raw_code_never_in_a_finding(
    scanner: Scanner, name: str, build: Callable[[str], Request], location: str
) -> None:
    """No finding repeats the code, as sent or decoded, in its location, evidence or hash."""
    forms = {REAL, REAL.lower(), REAL.replace("-", "%2D"), REAL[:6] + REAL[7:]}
    for finding in scanner.scan(build(REAL)).findings:
        shown = " ".join(finding.as_dict().values()).lower()
        assert not any(form.lower() in shown for form in forms), finding


@pytest.mark.parametrize(("name", "build", "location"), PLACES, ids=[p[0] for p in PLACES])
def test_test_code_passes(
    scanner: Scanner, name: str, build: Callable[[str], Request], location: str
) -> None:
    """A 900-series test code in the same place passes with no findings."""
    report = scanner.scan(build(TEST))
    assert report.verdict is Verdict.PASS, report.as_dict()
    assert report.findings == ()


@pytest.mark.parametrize(
    "request_",
    [
        get(),
        get(authority="kanta.test:443"),
        get(authority="xn--kanta-testi-9ib.test:443"),  # "kanta-testiä": IDNA, no code
        get(authority="[2001:db8::1]:8443", method="PROPFIND"),
        get((("Content-Type", "multipart/related; boundary=MIMEBoundary_131052308"),)),
        get((("If-Modified-Since", "Fri, 13 Oct 2052 08:30:00 GMT"),)),
        # Base64 of binary (a session id) is not text; a Basic credential without a code is.
        get((("Authorization", "Basic " + b64("testaaja:salasana-131052")),)),
        get((("Cookie", "a=1"), ("Cookie", "b=2"), ("Accept", "*/*"))),
        get(trailers=(("Grpc-Status", "0"), ("X-Checksum", "sha-256=:q1w2e3r4t5y6u7i8o9p0=:"))),
    ],
    ids=[
        "ordinary",
        "authority",
        "IDNA authority",
        "IPv6",
        "boundary digits",
        "date",
        "Basic",
        "repeats",
        "trailers",
    ],
)
def test_ordinary_requests_pass(scanner: Scanner, request_: Request) -> None:
    """Ordinary heads (User-Agent, Accept, SOAPAction urn:, JSESSIONID, dates) do not fire."""
    report = scanner.scan(request_)
    assert report.verdict is Verdict.PASS, report.as_dict()
    assert report.findings == ()


def test_fold_joined_as_a_single_space(scanner: Scanner) -> None:
    """An obs-fold reads as one space (RFC 9112 §5.2): a fold inside a part of the code breaks
    it, as it does for the receiver, while the same split without the fold would be the code."""
    folded = scanner.scan(get((("X-Patient", f"{REAL[:3]}\r\n {REAL[3:]}"),)))
    assert folded.verdict is Verdict.PASS, folded.as_dict()


def test_whole_code_in_repeated_lines_is_one_finding(scanner: Scanner) -> None:
    """A code whole in one of several lines of a name is reported once, under the name (the
    lines combined as a receiver combines them), not once per line."""
    report = scanner.scan(get((("X-Patient", REAL), ("X-Patient", "b"), ("X-Patient", "c"))))
    assert [f.location for f in report.findings] == ["header:X-Patient"]


def test_default_request_parts_are_empty() -> None:
    """A Request built as before (no authority, no trailers) still works: both default empty."""
    request_ = Request("GET", "/")
    assert (request_.authority, request_.trailers) == ("", ())


def _target(path: str) -> Request:
    """A GET of this request target with the ordinary headers."""
    return Request("GET", path, ORDINARY, b"", "kanta.test")


def _pct(text: str, times: int) -> str:
    """Every character percent-encoded, then the ``%`` encoded ``times - 1`` times again."""
    encoded = "".join(f"%{ord(ch):02X}" for ch in text)
    return encoded.replace("%", "%" + "25" * (times - 1))


def _b64url(text: str) -> str:
    """Base64url without padding (RFC 4648 §5), as routes and JWTs carry it."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


#: (name, target from a code, the finding's location): the URL read every way.
TARGETS: list[tuple[str, Callable[[str], str], str]] = [
    ("path segment", lambda c: f"/fhir/Patient/{c}", "url:path[3]"),
    ("path encoded twice", lambda c: f"/fhir/Patient/{_pct(c, 2)}", "url:path[3]"),
    ("path encoded three times", lambda c: f"/fhir/Patient/{_pct(c, 3)}", "url:path[3]"),
    (
        "path segment in Base64url",
        lambda c: "/api/v1/" + _b64url(f'{{"sub": "{c}"}}') + "/records",
        "url:path[3]!base64:/sub",
    ),
    (
        "path segment in Base64url, plain text",
        lambda c: "/haku/" + _b64url(f"potilas={c}"),
        "url:path[2]!base64:line 1",
    ),
    (
        "query encoded twice",
        lambda c: f"/fhir/Patient?identifier={_pct(c, 2)}",
        "url:query:identifier",
    ),
    (
        "query token encoded twice",
        lambda c: f"/fhir/Patient?identifier=urn:oid:1.2.246.21%257C{_pct(c, 2)}",
        "url:query:identifier",
    ),
    ("query dash as %2D", lambda c: f"/fhir/Patient?q={c.replace('-', '%2D')}", "url:query:q"),
]


@pytest.mark.parametrize(("name", "build", "location"), TARGETS, ids=[t[0] for t in TARGETS])
def test_target_read_every_way(
    scanner: Scanner, name: str, build: Callable[[str], str], location: str
) -> None:
    """A real code in any reading of the URL is blocked once, where it reads; a test code passes."""
    report = scanner.scan(_target(build(REAL)))
    assert [(f.rule, f.location) for f in report.findings] == [("hetu.real", location)]
    assert scanner.scan(_target(build(TEST))).verdict is Verdict.PASS


@pytest.mark.parametrize(
    "target",
    [
        "/fhir/Patient?name=Meik%C3%A4l%C3%A4inen+Matti&birthdate=ge1980-01-01&_count=10",
        "/fhir/Patient/3f1c2a9b-0d4e-5f61-8a7b-9c0d1e2f3a4b/_history/2",
        "/services/PrescriptionService/v1/prescriptionQuery",  # long words, no Base64 text
        "/a%2520b/c+d?x=%25&y=a+b+c",
    ],
)
def test_ordinary_targets_pass(scanner: Scanner, target: str) -> None:
    """Ordinary paths and queries (escapes, plus signs, UUIDs, long words) do not fire."""
    assert scanner.scan(_target(target)).verdict is Verdict.PASS


def test_target_encoded_without_end_is_unscannable(scanner: Scanner) -> None:
    """A value still percent-encoded after every round a receiver could make is refused."""
    report = scanner.scan(_target("/x?a=%" + "25" * 20 + "41"))
    assert report.rules == ("unscannable",)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(min_value=1, max_value=6),
    st.sampled_from(["path", "query", "query name"]),
    st.text(alphabet="abc123+%/.", max_size=12),
)
def test_code_encoded_any_number_of_times_is_blocked(
    scanner: Scanner, times: int, where: str, noise: str
) -> None:
    """A real code percent-encoded up to six times, anywhere in the URL, among any noise of
    escapes, plus signs and slashes, is blocked."""
    encoded = _pct(REAL, times)
    noise = noise.replace("/", "%2F") if where != "path" else noise
    target = {
        "path": f"/fhir/{noise}/{encoded}",
        "query": f"/fhir/Patient?x={noise}&identifier={encoded}",
        "query name": f"/fhir/Patient?{encoded}={noise}",
    }[where]
    assert scanner.scan(_target(target)).rules == ("hetu.real",)


@pytest.mark.parametrize("dash", ["-", "\u2010", "\u2013", "\u2212"])
@pytest.mark.parametrize("form", ["basic", "bare"])
def test_base64_header_with_a_unicode_dash_is_read(scanner: Scanner, dash: str, form: str) -> None:
    """A short Base64 credential whose code has a Unicode dash is text, and blocked.

    Regression (found by tests/test_properties.py): three UTF-8 bytes for the dash made the
    decoded value look like noise, and it was never scanned.
    """
    value = base64.b64encode(f"user:{REAL.replace('-', dash)}".encode()).decode()
    header = f"Basic {value}" if form == "basic" else value
    report = scanner.scan(Request("GET", "/", (("Authorization", header),), b""))
    assert report.verdict is Verdict.BLOCK and "hetu.real" in report.rules
