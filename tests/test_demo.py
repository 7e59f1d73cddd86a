"""Tests for kanta_guard.demo without the proxy: the fake endpoint over real HTTP, the script's
messages under the real Scanner and the demo's own policy, and how an answer is read.

The guard itself is replaced here, where it has to be, by a stand-in server that judges each
request with the real :class:`~kanta_guard.Scanner` and answers with the real
:func:`~kanta_guard.blocked_answer`; the real proxy runs in tests/e2e/test_demo.py.
"""

from __future__ import annotations

import http.client
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import REAL
from lxml import etree

from kanta_guard import KeyedHasher, Request, Scanner, Verdict, blocked_answer
from kanta_guard.cli import main
from kanta_guard.demo import FakeKanta, Message, Outcome, messages, registry_text, send
from kanta_guard.demo import endpoint as endpoint_module
from kanta_guard.demo.session import DemoOptions, policy_text, run_demo
from kanta_guard.idcode import Kind, classify, find_tokens
from kanta_guard.policy import load_policy
from kanta_guard.registry import load_registry

KEY = b"kanta-guard-demo-test-key-0123456789"
HL7 = "urn:hl7-org:v3"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SCRIPT = messages()
CLEAN = [m for m in SCRIPT if not m.dirty]
DIRTY = [m for m in SCRIPT if m.dirty]


def _ids(message: Message) -> str:
    return message.title


@pytest.fixture
def fake() -> Iterator[FakeKanta]:
    """The fake endpoint on a free loopback port."""
    with FakeKanta() as server:
        yield server


def _call(
    server: FakeKanta, method: str, path: str, body: bytes = b"", content_type: str = ""
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        connection.request(method, path, body, headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def demo_scanner(tmp_path_factory: pytest.TempPathFactory) -> Scanner:
    """A scanner on the policy and registry the demo writes for the guard (session.Guard)."""
    folder = tmp_path_factory.mktemp("demo-policy")
    (folder / "test-identities.toml").write_text(registry_text(), "utf-8")
    (folder / "policy.toml").write_text(policy_text(folder, 12345), "utf-8")
    policy = load_policy(folder / "policy.toml")
    assert policy.registry is not None
    return Scanner(policy, KeyedHasher(KEY), registry=load_registry(policy.registry))


def _request(message: Message) -> Request:
    return Request(message.method, message.path, message.headers, message.body, host="127.0.0.1")


# --- the fake endpoint ----------------------------------------------------------------------------


@pytest.mark.parametrize("message", [m for m in SCRIPT if m.api == "SOAP"], ids=_ids)
def test_soap_message_is_acknowledged(fake: FakeKanta, message: Message) -> None:
    """Each SOAP message of the script gets an HL7 V3 accept acknowledgement of its own id, in a
    SOAP 1.2 envelope."""
    status, headers, body = _call(
        fake, "POST", message.path, message.body, dict(message.headers)["Content-Type"]
    )
    assert status == 200
    assert headers["content-type"].startswith("application/soap+xml")
    assert headers["x-fake-kanta"] == "demo"
    root = etree.fromstring(body)
    assert root.tag == f"{{{SOAP12}}}Envelope"
    ack = root.find(f"{{{SOAP12}}}Body/{{{HL7}}}MCCI_IN000002UV01")
    assert ack is not None
    assert ack.find(f"{{{HL7}}}acknowledgement").get("typeCode") == "CA"
    sent = etree.fromstring(message.body).find(f".//{{{HL7}}}id").get("root")
    assert ack.find(f".//{{{HL7}}}targetMessage/{{{HL7}}}id").get("root") == sent
    assert fake.received()[-1].kind == "soap"


def test_soap11_is_answered_in_soap11(fake: FakeKanta) -> None:
    """A SOAP 1.1 envelope gets its acknowledgement in SOAP 1.1 (text/xml)."""
    body = SCRIPT[0].body.replace(SOAP12.encode(), SOAP11.encode())
    status, headers, answer = _call(fake, "POST", "/soap/eresepti", body, "text/xml")
    assert status == 200 and headers["content-type"].startswith("text/xml")
    assert etree.fromstring(answer).tag == f"{{{SOAP11}}}Envelope"


@pytest.mark.parametrize(
    "body",
    [
        b"not xml at all",
        b"<Envelope/>",  # no SOAP namespace
        f'<e:Envelope xmlns:e="{SOAP12}"><e:Body/></e:Envelope>'.encode(),  # no message
    ],
    ids=["not-xml", "not-soap", "empty-body"],
)
def test_soap_that_is_not_a_message_gets_a_sender_fault(fake: FakeKanta, body: bytes) -> None:
    """What is no SOAP envelope with a message in its Body gets a SOAP 1.2 Sender fault (400)."""
    status, headers, answer = _call(fake, "POST", "/soap/x", body, "application/soap+xml")
    assert status == 400 and headers["content-type"].startswith("application/soap+xml")
    root = etree.fromstring(answer)
    value = root.find(f".//{{{SOAP12}}}Fault/{{{SOAP12}}}Code/{{{SOAP12}}}Value")
    assert value is not None and value.text == "env:Sender"


def test_fhir_create_answers_201_with_the_resource(fake: FakeKanta) -> None:
    """POST /fhir/Patient answers 201, the resource back with an id, version 1 and a Location."""
    sent = json.loads(CLEAN[1].body)
    status, headers, body = _call(
        fake, "POST", "/fhir/Patient", CLEAN[1].body, "application/fhir+json"
    )
    assert status == 201
    assert headers["content-type"].startswith("application/fhir+json")
    got = json.loads(body)
    assert got["identifier"] == sent["identifier"] and got["name"] == sent["name"]
    assert got["meta"]["versionId"] == "1"
    assert headers["location"] == f"/fhir/Patient/{got['id']}/_history/1"
    status, _, read = _call(fake, "GET", f"/fhir/Patient/{got['id']}")
    assert status == 200 and json.loads(read) == got


def test_fhir_update_counts_versions(fake: FakeKanta) -> None:
    """PUT of a new id answers 201 (version 1), of the same id again 200 (version 2)."""
    body = json.dumps({"resourceType": "Patient", "id": "p1", "active": True}).encode()
    first = _call(fake, "PUT", "/fhir/Patient/p1", body, "application/fhir+json")
    second = _call(fake, "PUT", "/fhir/Patient/p1", body, "application/fhir+json")
    assert (first[0], json.loads(first[2])["meta"]["versionId"]) == (201, "1")
    assert (second[0], json.loads(second[2])["meta"]["versionId"]) == (200, "2")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/fhir/Patient", b"{not json", 400, "structure"),
        ("POST", "/fhir/Patient", b'{"resourceType": "Observation"}', 400, "invalid"),
        ("PUT", "/fhir/Patient/a", b'{"resourceType": "Patient", "id": "b"}', 400, "invalid"),
        ("POST", "/fhir/Patient/a", b'{"resourceType": "Patient"}', 400, "not-supported"),
        ("GET", "/fhir/Patient/nobody", b"", 404, "not-found"),
        ("GET", "/elsewhere", b"", 404, "not-found"),
    ],
    ids=["not-json", "wrong-type", "id-mismatch", "post-to-id", "unknown-id", "unknown-path"],
)
def test_fhir_errors_are_operation_outcomes(
    fake: FakeKanta, method: str, path: str, body: bytes, status: int, code: str
) -> None:
    """What the fake cannot take is answered with an OperationOutcome naming the issue type."""
    got, headers, answer = _call(fake, method, path, body, "application/fhir+json")
    outcome = json.loads(answer)
    assert got == status and headers["x-fake-kanta"] == "demo"
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == code


def test_fhir_metadata(fake: FakeKanta) -> None:
    """GET /fhir/metadata answers a CapabilityStatement (FHIR 4.0.1)."""
    status, _, body = _call(fake, "GET", "/fhir/metadata")
    assert status == 200 and json.loads(body)["fhirVersion"] == "4.0.1"


def test_endpoint_keeps_a_bounded_history(fake: FakeKanta) -> None:
    """However long the demo runs, the fake keeps at most KEEP resources and requests."""
    for n in range(endpoint_module.KEEP + 5):
        fake.store("Patient", f"p{n}", {"resourceType": "Patient"})
    assert fake.resource("Patient", "p0") is None
    assert fake.resource("Patient", f"p{endpoint_module.KEEP + 4}") is not None
    assert len(fake._resources) == endpoint_module.KEEP


# --- the script's data ----------------------------------------------------------------------------


def test_script_is_a_mix() -> None:
    """The script sends both clean and dirty messages over both SOAP and FHIR."""
    kinds = {(m.api, m.dirty) for m in SCRIPT}
    assert kinds == {("SOAP", False), ("SOAP", True), ("FHIR", False), ("FHIR", True)}
    assert all(m.rules for m in DIRTY) and not any(m.rules for m in CLEAN)


def test_registry_is_valid(tmp_path: Path) -> None:
    """The demo's registry passes ``kanta-guard registry check``."""
    path = tmp_path / "test-identities.toml"
    path.write_text(registry_text(), "utf-8")
    assert main(["registry", "check", str(path)]) == 0


@pytest.mark.parametrize("message", CLEAN, ids=_ids)
def test_clean_messages_pass_the_scanner(demo_scanner: Scanner, message: Message) -> None:
    """A clean message passes the demo's policy with no finding at all (not even a warning)."""
    report = demo_scanner.scan(_request(message))
    assert report.verdict is Verdict.PASS, [(f.rule, f.location) for f in report.findings]
    assert not report.findings


@pytest.mark.parametrize("message", DIRTY, ids=_ids)
def test_dirty_messages_are_blocked_by_the_scanner(demo_scanner: Scanner, message: Message) -> None:
    """A dirty message is blocked by the demo's policy, by every rule it says it shows."""
    report = demo_scanner.scan(_request(message))
    assert report.verdict is Verdict.BLOCK
    assert set(message.rules) <= set(report.rules), report.rules


@pytest.mark.parametrize("message", SCRIPT, ids=_ids)
def test_codes_in_plain_sight(message: Message) -> None:
    """Codes readable in a body are valid: 900-series in clean messages; a dirty hetu.real
    message that is not Base64 shows a real-range code (computed, never written in a file)."""
    kinds = {classify(t) for t in find_tokens(message.body)}
    assert Kind.INVALID not in kinds
    if not message.dirty:
        assert kinds == {Kind.TEST} or not kinds
    elif message.rules == ("hetu.real",) and b'representation="B64"' not in message.body:
        assert Kind.REAL in kinds


def test_titles_name_nobody() -> None:
    """A message's title (printed on every line) holds no identity code."""
    assert not [m.title for m in SCRIPT if find_tokens(m.title.encode())]


def test_default_policy_without_the_registry_only_warns_on_names(demo_scanner: Scanner) -> None:
    """Why the demo writes a registry: under the embedded default the name-and-phone message
    only warns, so the policy the guard gets must be the demo's."""
    message = next(m for m in DIRTY if "name.unregistered" in m.rules)
    plain = Scanner(load_policy(None), KeyedHasher(KEY))
    assert plain.scan(_request(message)).verdict is Verdict.WARN
    assert demo_scanner.scan(_request(message)).verdict is Verdict.BLOCK


# --- sending and reading the answer ---------------------------------------------------------------


class _StandIn(ThreadingHTTPServer):
    """A stand-in for the proxy: judges each absolute-form request with the real Scanner and
    answers the real blocked answer, or forwards it to the fake endpoint."""

    daemon_threads = True

    def __init__(self, scanner: Scanner, upstream: FakeKanta) -> None:
        super().__init__(("127.0.0.1", 0), _StandInHandler)
        self.scanner, self.upstream = scanner, upstream


class _StandInHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _StandIn

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = "/" + self.path.split("://", 1)[1].partition("/")[2]
        request = Request(self.command, path, tuple(self.headers.items()), body, "127.0.0.1")
        report = self.server.scanner.scan(request)
        if report.verdict is Verdict.BLOCK:
            answer = blocked_answer(report)
            status, headers, payload = answer.status, list(answer.headers), answer.body
        else:
            status, got, payload = _call(
                self.server.upstream, self.command, path, body, self.headers["Content-Type"]
            )
            headers = [(k, v) for k, v in got.items() if k != "content-length"]
        self.send_response(status)
        for name, value in (*headers, ("Content-Length", str(len(payload)))):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_PUT = do_POST

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def stand_in(demo_scanner: Scanner, fake: FakeKanta) -> Iterator[_StandIn]:
    server = _StandIn(demo_scanner, fake)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_send_reads_who_answered(stand_in: _StandIn, fake: FakeKanta) -> None:
    """Through the stand-in, every message gets the verdict it expects; the clean ones (and only
    they) reach the fake endpoint; every printed line is masked."""
    outcomes = [send(m, ("127.0.0.1", stand_in.server_address[1]), fake.url) for m in SCRIPT]
    assert [o.verdict for o in outcomes] == ["blocked" if m.dirty else "passed" for m in SCRIPT]
    assert all(o.expected for o in outcomes), [o.line(1, 1) for o in outcomes]
    assert fake.count == len(CLEAN)
    lines = "\n".join(o.line(n, len(outcomes)) for n, o in enumerate(outcomes, 1))
    assert "BLOCKED" in lines and "******-****" in lines  # the masked evidence is shown
    assert not [t for t in find_tokens(lines.encode()) if classify(t) is Kind.REAL]


def test_send_without_a_proxy_is_an_error(fake: FakeKanta) -> None:
    """No proxy listening: an error outcome (status None), not an exception, and unexpected."""
    with FakeKanta() as gone:
        port = gone.port
    outcome = send(SCRIPT[0], ("127.0.0.1", port), fake.url, timeout=2)
    assert (outcome.status, outcome.verdict, outcome.expected) == (None, "error", False)
    assert "unexpected" in outcome.line(1, 1)


@pytest.mark.parametrize(
    ("dirty", "verdict", "status", "rules", "expected"),
    [
        (False, "passed", 201, (), True),
        (False, "passed", 400, (), False),  # the endpoint refused it
        (False, "warned", 200, ("phone.personal",), False),
        (False, "blocked", 403, ("hetu.real",), False),
        (True, "blocked", 403, ("hetu.real", "name.narrative"), True),
        (True, "blocked", 403, ("name.narrative",), False),  # blocked for another reason
        (True, "passed", 200, (), False),
        (True, "error", None, (), False),
    ],
)
def test_expected(
    dirty: bool, verdict: str, status: int | None, rules: tuple[str, ...], expected: bool
) -> None:
    """A dirty message is as expected only when blocked by its own rules; a clean one only when
    it passed unwarned and the endpoint took it."""
    message = (DIRTY if dirty else CLEAN)[0]
    if dirty:
        message = next(m for m in DIRTY if m.rules == ("hetu.real",))
    assert Outcome(message, status, verdict, rules).expected is expected


def test_line_masks_whatever_it_is_given() -> None:
    """Even evidence that arrives unmasked is masked on the printed line."""
    line = Outcome(DIRTY[0], 403, "blocked", ("hetu.real",), detail=f"patient {REAL}").line(2, 11)
    assert REAL not in line and "******-****" in line


# --- the command line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--duration", "0"],
        ["demo", "--duration", "soon"],
        ["demo", "--interval", "-1"],
        ["demo", "--listen-port", "70000"],
        ["demo", "--set", "x=y"],  # the demo passes nothing on to mitmproxy
    ],
)
def test_bad_demo_options_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad option stops before anything starts, with exit 2 and one line naming it."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_unusable_workdir_is_one_line(tmp_path: Path) -> None:
    """A --workdir that cannot be a folder stops the demo before anything starts: exit 2 and
    one line naming it."""
    taken = tmp_path / "a-file"
    taken.write_text("", "utf-8")
    out = io.StringIO()
    assert run_demo(DemoOptions(once=True, workdir=taken / "sub"), out) == 2
    assert out.getvalue().count("\n") == 1 and str(taken / "sub") in out.getvalue()


def test_demo_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    """``kanta-guard --help`` lists the demo."""
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "demo" in capsys.readouterr().out
