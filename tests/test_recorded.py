"""Tests for recorded traffic: HAR entries and mitmproxy flow files become the requests the live
guard judges, and what a recording lost is unreadable, never passed."""

from __future__ import annotations

import base64
import gzip
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from e2e.conftest import LOOPBACK, Proxy, Upstream, clean_env
from helpers import REAL, TEST, TEST_CODES
from mitmproxy import io as mitmio
from mitmproxy import tcp
from mitmproxy.test import tflow

from kanta_guard import Scanner
from kanta_guard.model import Request
from kanta_guard.proxy.flowfile import read_flows
from kanta_guard.proxy.flows import flow_request
from kanta_guard.recorded import (
    Recorded,
    RecordingError,
    flow_sniff_offset,
    har_entry,
    read_har,
    shown_url,
)

HETU_SYSTEM = "urn:oid:1.2.246.21"


def har_request(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    post: dict[str, object] | None = None,
    body_size: int | None = None,
) -> dict[str, object]:
    """One HAR 1.2 entry (``log.entries[]``) with its request, as browsers write it."""
    request: dict[str, object] = {
        "method": method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": [{"name": k, "value": v} for k, v in (headers or {}).items()],
        "queryString": [],
        "headersSize": -1,
        "bodySize": body_size if body_size is not None else 0,
    }
    if post is not None:
        request["postData"] = post
        if body_size is None and isinstance(post.get("text"), str):
            request["bodySize"] = len(str(post["text"]).encode("utf-8"))
    return {"startedDateTime": "2026-12-01T10:00:00Z", "request": request, "response": {}}


def har(*entries: dict[str, object]) -> bytes:
    """A HAR file's bytes holding ``entries``."""
    log = {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": entries}
    return json.dumps({"log": log}).encode("utf-8")


def patient(code: str) -> str:
    """A FHIR Patient with one HETU identifier."""
    identifier = [{"system": HETU_SYSTEM, "value": code}]
    return json.dumps({"resourceType": "Patient", "identifier": identifier})


def judged(scanner: Scanner, recorded: Recorded) -> tuple[str, list[str]]:
    """The verdict and finding locations of a recorded request (or ``error`` and the reason)."""
    if recorded.request is None and recorded.data is None:
        return "error", [recorded.error]
    if recorded.request is not None:
        report = scanner.scan(recorded.request)
    else:
        assert recorded.data is not None
        report = scanner.scan_bytes(recorded.data)
    return str(report.verdict), [f.location for f in report.findings]


FHIR = "https://fhir.test.invalid"
JSON_HEADERS = {"Content-Type": "application/fhir+json"}


@pytest.mark.parametrize(
    ("entry", "verdict", "locations"),
    [
        (har_request("GET", f"{FHIR}/Patient?identifier={HETU_SYSTEM}|{TEST}"), "pass", []),
        (
            har_request("GET", f"{FHIR}/Patient?identifier={HETU_SYSTEM}|{REAL}"),
            "block",
            ["url:query:identifier"],
        ),
        (
            har_request("GET", f"{FHIR}/metadata", {"X-Patient-Id": REAL}),
            "block",
            ["header:X-Patient-Id"],
        ),
        (
            har_request(
                "POST",
                f"{FHIR}/Patient",
                JSON_HEADERS,
                {"mimeType": "application/fhir+json", "text": patient(REAL)},
            ),
            "block",
            ["/identifier/0/value"],
        ),
        (
            har_request(
                "POST",
                f"{FHIR}/Patient",
                JSON_HEADERS,
                {"mimeType": "application/fhir+json", "text": patient(TEST)},
            ),
            "pass",
            [],
        ),
        # A binary body the writer kept as Base64: the bytes as sent, gzip undone by the scan.
        (
            har_request(
                "POST",
                f"{FHIR}/Binary",
                {"Content-Type": "text/plain", "Content-Encoding": "gzip"},
                {
                    "mimeType": "text/plain",
                    "text": base64.b64encode(gzip.compress(f"hetu {REAL}".encode())).decode(),
                    "_encoding": "base64",
                },
                body_size=len(gzip.compress(f"hetu {REAL}".encode())),
            ),
            "block",
            ["line 1"],
        ),
        # The HAR's text of a gzip-encoded body is the decoded content (mitmproxy's and the
        # browsers' export): judged as such, not refused as a broken gzip stream.
        (
            har_request(
                "POST",
                f"{FHIR}/Patient",
                {**JSON_HEADERS, "Content-Encoding": "gzip"},
                {"mimeType": "application/fhir+json", "text": patient(REAL)},
                body_size=40,
            ),
            "block",
            ["/identifier/0/value"],
        ),
        # A form kept only as params is rebuilt from them.
        (
            har_request(
                "POST",
                f"{FHIR}/login",
                {"Content-Type": "application/x-www-form-urlencoded"},
                {
                    "mimeType": "application/x-www-form-urlencoded",
                    "params": [{"name": "hetu", "value": REAL}],
                },
                body_size=17,
            ),
            "block",
            ["form:hetu"],
        ),
        # Chrome lists HTTP/2 pseudo-headers: :authority is the authority, not a header field.
        (
            har_request("GET", f"{FHIR}/x", {":authority": "fhir.test.invalid", ":path": "/x"}),
            "pass",
            [],
        ),
    ],
)
def test_har_requests_are_judged_as_live(
    scanner: Scanner, entry: dict[str, object], verdict: str, locations: list[str]
) -> None:
    """A HAR request's URL query, headers and body are all judged, by the proxy's own method."""
    (recorded,) = read_har(har(entry))
    assert recorded.number == 1 and not recorded.error
    got_verdict, got_locations = judged(scanner, recorded)
    assert (got_verdict, sorted(got_locations)) == (verdict, sorted(locations))


def test_har_request_model(scanner: Scanner) -> None:
    """The request target is the path and query as sent (no fragment), pseudo-headers leave the
    header list, the authority and host come from the URL or :authority."""
    entry = har_request(
        "GET", "https://user@fhir.test.invalid:8443/a%20b?x=1#frag", {"Accept": "*/*"}
    )
    request = har_entry(1, entry).request
    assert request == Request(
        method="GET",
        target="/a%20b?x=1",
        headers=(("Accept", "*/*"),),
        host="fhir.test.invalid",
        authority="fhir.test.invalid:8443",
    )
    h2 = har_request("GET", "https://a.invalid/", {":authority": "b.invalid", "Accept": "x"})
    request = har_entry(1, h2).request
    assert request is not None
    assert request.headers == (("Accept", "x"),) and request.authority == "b.invalid"
    # A writer that kept the query only in queryString gets it back.
    kept = har_request("GET", "https://a.invalid/Patient")
    assert isinstance(kept["request"], dict)
    kept["request"]["queryString"] = [{"name": "identifier", "value": f"{HETU_SYSTEM}|{REAL}"}]
    recorded = har_entry(1, kept)
    assert recorded.request is not None and recorded.request.target.startswith("/Patient?")
    assert judged(scanner, recorded)[0] == "block"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        # bodySize says a body was sent; the HAR kept none (some writers drop large bodies).
        (har_request("POST", f"{FHIR}/Patient", JSON_HEADERS, body_size=300), "omits the body"),
        (
            har_request("POST", f"{FHIR}/Patient", {"Content-Length": "300"}),
            "omits the body",
        ),
        (
            har_request(
                "POST",
                f"{FHIR}/Patient",
                JSON_HEADERS,
                {"mimeType": "application/fhir+json", "text": patient(TEST)[:20]},
                body_size=len(patient(TEST)),
            ),
            "cut short",
        ),
        (
            har_request(
                "POST",
                f"{FHIR}/Binary",
                {},
                {
                    "mimeType": "application/octet-stream",
                    "text": "not base64!",
                    "encoding": "base64",
                },
                body_size=8,
            ),
            "does not decode",
        ),
        (
            har_request(
                "POST",
                f"{FHIR}/upload",
                {"Content-Type": "multipart/form-data; boundary=x"},
                {
                    "mimeType": "multipart/form-data; boundary=x",
                    "params": [{"name": "file", "fileName": "cda.xml"}],
                },
                body_size=900,
            ),
            "only as params",
        ),
        ({"request": "GET /"}, "no request"),
        (har_request("", f"{FHIR}/"), "no method"),
        (har_request("GET", "http://[::1/"), "URL cannot be read"),
    ],
)
def test_what_the_har_lost_is_unreadable(entry: dict[str, object], reason: str) -> None:
    """A body the HAR omitted or cut short, undecodable Base64 or a multipart kept as params is
    an error of that request (counted unreadable by scan), never an empty body that passes."""
    (recorded,) = read_har(har(entry))
    assert recorded.request is None and recorded.data is None
    assert reason in recorded.error


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "JSON parse error"),
        (b"\xff\xfe{", "not UTF-8"),
        (b'{"log": {}}', "no log.entries"),
        (b"[1, 2]", "no log.entries"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_not_a_har_is_an_error_of_the_file(data: bytes, reason: str) -> None:
    """Bytes that are no HAR raise RecordingError before any request is yielded."""
    with pytest.raises(RecordingError, match=reason):
        list(read_har(data))


def test_shown_url_masks_codes_and_query_values() -> None:
    """A result's URL never shows a real code (even percent-encoded) nor any query value."""
    url = f"https://fhir.test.invalid/Patient/{REAL.replace('-', '%2D')}?name=Virtanen&x#f"
    shown = shown_url(url)
    assert REAL[:6] not in shown and "Virtanen" not in shown
    assert shown.startswith("https://fhir.test.invalid/Patient/")
    assert shown.endswith("?name=…&x")
    recorded = Recorded(3, "POST", f"https://a.invalid/?hetu={REAL}")
    assert recorded.name() == "#3 POST https://a.invalid/?hetu=…"
    assert len(shown_url("https://a.invalid/" + "x" * 1000)) <= 201
    # A URL that does not parse is still shown, up to its query.
    assert shown_url(f"http://[::1/x?hetu={REAL}") == "http://[::1/x"


# --- mitmproxy flow files -----------------------------------------------------------------------


def flow_file(*flows: object) -> bytes:
    """The bytes mitmproxy's own FlowWriter writes for ``flows`` (what ``mitmdump -w`` saves)."""
    out = io.BytesIO()
    writer = mitmio.FlowWriter(out)
    for flow in flows:
        writer.add(flow)  # type: ignore[arg-type]
    return out.getvalue()


def http_flow(path: str, body: bytes = b"", **headers: str) -> object:
    """A finished HTTP flow of mitmproxy's test helpers, with the request as given."""
    flow = tflow.tflow(resp=True)
    flow.request.path = path
    flow.request.method = "POST" if body else "GET"
    for name, value in headers.items():
        flow.request.headers["-".join(p.capitalize() for p in name.split("_"))] = value
    flow.request.raw_content = body
    return flow


def test_flow_file_requests_are_the_live_requests(scanner: Scanner) -> None:
    """Each HTTP flow of a file becomes exactly the request the live guard builds from it
    (``flow_request``), the body still content-encoded; the scan undoes the encoding."""
    flows = [
        http_flow(f"/Patient?identifier={HETU_SYSTEM}|{TEST}"),
        http_flow(
            "/Patient",
            gzip.compress(patient(REAL).encode()),
            content_type="application/fhir+json",
            content_encoding="gzip",
        ),
        http_flow("/metadata", x_patient=REAL),
    ]
    read = list(read_flows(io.BytesIO(flow_file(*flows))))
    assert [r.number for r in read] == [1, 2, 3]
    for recorded, flow in zip(read, flows, strict=True):
        assert recorded.request == flow_request(flow)  # type: ignore[arg-type]
    assert read[1].request is not None and read[1].request.body[:2] == b"\x1f\x8b"
    assert [judged(scanner, r) for r in read] == [
        ("pass", []),
        ("block", ["/identifier/0/value"]),
        ("block", ["header:X-Patient"]),
    ]


def test_non_http_flows_are_judged_as_bytes(scanner: Scanner) -> None:
    """A TCP flow's client messages are joined (a code split across two is seen whole); what
    the server sent is not judged; a WebSocket's client messages are a result of their own."""
    stream = tflow.ttcpflow()
    half = len(REAL) // 2
    stream.messages = [
        tcp.TCPMessage(True, f"hetu {REAL[:half]}".encode()),
        tcp.TCPMessage(False, REAL_SERVER.encode()),
        tcp.TCPMessage(True, f"{REAL[half:]}\n".encode()),
    ]
    socket = tflow.twebsocketflow()
    socket.websocket.messages[0].content = f"hetu {REAL}".encode()
    socket.websocket.messages[0].from_client = True
    read = list(read_flows(io.BytesIO(flow_file(stream, socket))))
    assert [(r.number, r.method) for r in read] == [(1, "TCP"), (2, "GET"), (2, "WEBSOCKET")]
    assert read[0].data == f"hetu {REAL}\n".encode()
    assert read[0].url.startswith("tcp://")
    assert judged(scanner, read[0])[0] == "block"
    assert judged(scanner, read[2])[0] == "block"


#: What a server answered on a TCP flow: not the client's, not judged.
REAL_SERVER = "server says hello"


def test_corrupt_or_truncated_flow_file_is_an_error_after_the_flows_read() -> None:
    """A flow file cut short yields the flows before the cut, then raises RecordingError; a file
    of garbage raises at once. Never a crash, never a silent end."""
    whole = flow_file(http_flow("/a"), http_flow("/b"))
    first = len(flow_file(http_flow("/a")))
    read: list[Recorded] = []
    with pytest.raises(RecordingError, match="after flow 1"):
        read.extend(read_flows(io.BytesIO(whole[: first + 40])))
    assert [r.number for r in read] == [1]
    for garbage in (b"12:not a flow}", b"5:hello,", b"x" * 100, b"99999999:abc"):
        with pytest.raises(RecordingError, match="not a readable flow file"):
            list(read_flows(io.BytesIO(garbage)))
    assert list(read_flows(io.BytesIO(b""))) == []


def test_flow_files_are_sniffed_by_their_first_bytes() -> None:
    """A flow file starts with a tnetstring length and has ``}`` where that length ends."""
    data = flow_file(http_flow("/a"))
    offset = flow_sniff_offset(data[:16])
    assert offset is not None and data[offset : offset + 1] == b"}"
    for other in (b"<?xml version='1.0'?>", b'{"resourceType": "Patient"}', b"hetu 12", b""):
        assert flow_sniff_offset(other) is None


# --- a recording made by a real mitmdump ------------------------------------------------------


@dataclass
class Recorder(Proxy):
    """A plain ``mitmdump -w FILE`` (no guard: a supplier's own recording of a campaign)."""

    flows: Path = Path("flows")

    def command(self) -> list[str]:
        return [
            str(Path(sys.executable).with_name("mitmdump")),
            "--listen-host", LOOPBACK,
            "--listen-port", str(self.port),
            "--set", f"confdir={self.confdir}",
            "-w", str(self.flows),
        ]  # fmt: skip

    def env(self) -> dict[str, str]:
        return clean_env(PYTHONUNBUFFERED="1")


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    """A running mitmdump recording into ``tmp_path / "campaign.flows"``."""
    proxy = Recorder(tmp_path, tmp_path / "unused.log", flows=tmp_path / "campaign.flows")
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.mark.e2e
def test_a_real_mitmdump_recording(scanner: Scanner, recorder: Recorder) -> None:
    """Traffic a real client sent through a real mitmdump, saved with -w, read back: the dirty
    requests block (a code in the query, in a header, in a gzip-encoded FHIR body), the clean
    ones pass."""
    proxies = {"http": recorder.url}
    with Upstream() as upstream, requests.Session() as session:
        session.trust_env = False
        url = upstream.url
        sent = [
            session.get(url(f"/Patient?identifier={HETU_SYSTEM}|{TEST}"), proxies=proxies),
            session.get(url(f"/Patient?identifier={HETU_SYSTEM}|{REAL}"), proxies=proxies),
            session.get(url("/metadata"), headers={"X-Patient": REAL}, proxies=proxies),
            session.post(
                url("/Patient"),
                data=gzip.compress(patient(REAL).encode()),
                headers={**JSON_HEADERS, "Content-Encoding": "gzip"},
                proxies=proxies,
            ),
            session.post(
                url("/Patient"),
                data=patient(TEST_CODES["patient"]).encode(),
                headers=JSON_HEADERS,
                proxies=proxies,
            ),
        ]
        assert [r.status_code for r in sent] == [200] * 5
    recorder.stop()
    with recorder.flows.open("rb") as stream:
        read = list(read_flows(stream))
    assert [r.method for r in read] == ["GET", "GET", "GET", "POST", "POST"]
    assert [judged(scanner, r) for r in read] == [
        ("pass", []),
        ("block", ["url:query:identifier"]),
        ("block", ["header:X-Patient"]),
        ("block", ["/identifier/0/value"]),
        ("pass", []),
    ]
    assert read[3].request is not None and read[3].request.body[:2] == b"\x1f\x8b"
