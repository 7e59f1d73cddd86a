"""End to end: an upstream that is down or untrusted gets the client a 502 in its own protocol.

Before (mitmproxy 12.3, measured with curl through ``kanta-guard run``): a request to a closed
port got ``502 Bad Gateway``, ``Content-Type: text/html`` and an HTML page quoting ``[Errno
111] Connect call failed``; HTTPS to a self-signed upstream got the same page saying
``Certificate verify failed: self-signed certificate``; a CONNECT to a closed port got a
``text/plain`` 502. Now each is a SOAP Fault, an OperationOutcome or problem details, and a
request the guard blocks is still answered (and logged) as blocked. The pure answer
(:func:`kanta_guard.proxy.upstreamerror.upstream_answer`) is tested first, without a proxy.

Last, the README's "Trusting the guard's CA" recipes, each with the real client it is for (curl,
Python's requests and urllib, Node, Java with keytool), through the real guard: each reaches the
upstream with its recipe and refuses the guard without it.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
from helpers import REAL
from lxml import etree

from kanta_guard.model import Protocol
from kanta_guard.proxy.upstreamerror import STATUS, upstream_answer

from . import bodies
from .conftest import (
    LOOPBACK,
    Proxy,
    Upstream,
    clean_env,
    free_port,
    marker,
    requests_session,
)

SOAP11 = bodies.SOAP11_NS
SOAP12 = bodies.SOAP12_NS
KG = "urn:kanta-guard:findings"
FHIR = "http://hl7.org/fhir"


# --- the answer, without a proxy ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "content_type"),
    [
        (Protocol.SOAP11, "text/xml; charset=utf-8"),
        (Protocol.SOAP12, "application/soap+xml; charset=utf-8"),
        (Protocol.FHIR_JSON, "application/fhir+json; charset=utf-8"),
        (Protocol.FHIR_XML, "application/fhir+xml; charset=utf-8"),
        (Protocol.OTHER, "application/problem+json"),
    ],
)
def test_answer_in_each_protocol(protocol: Protocol, content_type: str) -> None:
    """Each protocol gets its own form, 502, the upstream named and the reason given."""
    answer = upstream_answer(protocol, "127.0.0.1:9", "Connection refused", request_id="f-1")
    headers = dict(answer.headers)
    assert answer.status == STATUS == 502
    assert headers["Content-Type"] == content_type
    assert headers["X-Kanta-Guard"] == "upstream-down"
    text = answer.body.decode("utf-8")
    assert "127.0.0.1:9" in text and "Connection refused" in text
    assert "nothing was sent" in text
    if protocol in (Protocol.SOAP11, Protocol.SOAP12, Protocol.FHIR_XML):
        etree.fromstring(answer.body)  # well-formed
    else:
        json.loads(answer.body)


def test_tls_failure_says_how_to_trust() -> None:
    """A TLS failure is "untrusted" and names the option that adds the upstream's CA."""
    answer = upstream_answer(
        Protocol.OTHER, "localhost:443", "Certificate verify failed: self-signed certificate"
    )
    problem = json.loads(answer.body)
    assert problem["type"] == "urn:kanta-guard:problem:upstream-untrusted"
    assert dict(answer.headers)["X-Kanta-Guard"] == "upstream-untrusted"
    assert "ssl_verify_upstream_trusted_ca" in problem["detail"]


def test_guard_refusal_is_not_an_upstream_fault() -> None:
    """A connection the guard itself refused is said to be the guard's doing, not the
    upstream's, with no advice about trusting a CA."""
    reason = "kanta-guard refused to connect: the server name could not be read"
    for given in (reason, f"Connection killed: {reason}"):  # (as mitmproxy reports it)
        problem = json.loads(upstream_answer(Protocol.OTHER, "h.example:443", given).body)
        assert problem["type"] == "urn:kanta-guard:problem:upstream-refused"
        assert problem["detail"].startswith(reason)
    assert "ssl_verify_upstream_trusted_ca" not in problem["detail"]


def test_certificate_refused_by_the_guard_is_said_so() -> None:
    """A handshake the certificate guard's callback failed (OpenSSL: "unspecified") names the
    guard's rules, not the upstream's CA: trusting a CA would not help there."""
    reason = "Certificate verify failed: unspecified certificate verification error"
    problem = json.loads(upstream_answer(Protocol.OTHER, "h.example:443", reason).body)
    assert problem["type"] == "urn:kanta-guard:problem:upstream-refused"
    assert "upstream.production" in problem["detail"]
    assert "ssl_verify_upstream_trusted_ca" not in problem["detail"]


def test_answer_masks_what_it_quotes() -> None:
    """A real-range code in the upstream's name or the reason never appears in the answer."""
    for protocol in Protocol:
        answer = upstream_answer(protocol, f"{REAL}.example:443", f"no host {REAL}")
        assert REAL.encode() not in answer.body
        assert REAL.replace("-", "").encode() not in answer.body


# --- end to end -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A loopback port nothing listens on (free a moment ago)."""
    return free_port()


@pytest.fixture(scope="module")
def guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """The guard in regular mode, not told to trust the self-signed HTTPS upstream."""
    workdir = tmp_path_factory.mktemp("proxy-upstream-errors")
    proxy = Proxy(workdir, workdir / "blocked.jsonl", ["--workers", "0"])
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def reverse_guard(tmp_path_factory: pytest.TempPathFactory, closed_port: int) -> Iterator[Proxy]:
    """The guard in reverse mode in front of a port nothing listens on."""
    workdir = tmp_path_factory.mktemp("proxy-upstream-errors-reverse")
    proxy = Proxy(
        workdir,
        workdir / "blocked.jsonl",
        ["--mode", f"reverse:http://{LOOPBACK}:{closed_port}", "--workers", "0"],
    )
    proxy.start()
    yield proxy
    proxy.stop()


def _not_html(response: requests.Response | httpx.Response) -> None:
    assert "text/html" not in response.headers.get("content-type", "")
    assert "<html" not in response.text.lower()


@pytest.mark.e2e
def test_plain_http_to_closed_port_is_problem_json(guard: Proxy, closed_port: int) -> None:
    """A GET to a closed port: 502 problem details naming the upstream, not an HTML page."""
    with requests_session(guard) as client:
        response = client.get(f"http://{LOOPBACK}:{closed_port}{marker('down')}", timeout=30)
    assert response.status_code == 502
    _not_html(response)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-kanta-guard"] == "upstream-down"
    problem = response.json()
    assert problem["type"] == "urn:kanta-guard:problem:upstream-down"
    assert f"{LOOPBACK}:{closed_port}" in problem["detail"]
    assert problem["instance"].startswith("urn:kanta-guard:request:")


@pytest.mark.e2e
def test_soap11_to_closed_port_is_a_server_fault(guard: Proxy, closed_port: int) -> None:
    """A SOAP 1.1 request: a SOAP Fault with faultcode soap:Server (the message was fine)."""
    with requests_session(guard) as client:
        response = client.post(
            f"http://{LOOPBACK}:{closed_port}{marker('down-soap11')}",
            data=bodies.soap11(),
            headers={"Content-Type": bodies.SOAP11_TYPE, "SOAPAction": bodies.SOAP_ACTION},
            timeout=30,
        )
    assert response.status_code == 502
    _not_html(response)
    assert response.headers["content-type"].startswith("text/xml")
    root = etree.fromstring(response.content)
    assert root.findtext(f".//{{{SOAP11}}}Fault/faultcode") == "soap:Server"
    assert "could not connect" in (root.findtext(f".//{{{SOAP11}}}Fault/faultstring") or "")
    assert root.find(f".//{{{KG}}}upstreamError") is not None


@pytest.mark.e2e
def test_soap12_to_closed_port_is_a_receiver_fault(guard: Proxy, closed_port: int) -> None:
    """A SOAP 1.2 request: a Fault whose Code is env:Receiver."""
    with requests_session(guard) as client:
        response = client.post(
            f"http://{LOOPBACK}:{closed_port}{marker('down-soap12')}",
            data=bodies.soap12(),
            headers={"Content-Type": "application/soap+xml; charset=utf-8"},
            timeout=30,
        )
    assert response.status_code == 502
    root = etree.fromstring(response.content)
    assert root.findtext(f".//{{{SOAP12}}}Code/{{{SOAP12}}}Value") == "env:Receiver"


@pytest.mark.e2e
def test_fhir_to_closed_port_is_an_operation_outcome(guard: Proxy, closed_port: int) -> None:
    """A FHIR JSON request: an OperationOutcome with a transient issue."""
    with requests_session(guard) as client:
        response = client.post(
            f"http://{LOOPBACK}:{closed_port}/fhir/Patient",
            data=bodies.fhir_patient(),
            headers={"Content-Type": bodies.FHIR_JSON_TYPE},
            timeout=30,
        )
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["code"] for i in outcome["issue"]] == ["transient"]


@pytest.mark.e2e
def test_blocked_request_to_closed_port_is_still_blocked(guard: Proxy, closed_port: int) -> None:
    """A request carrying a real code is judged first: 403 hetu.real and a log record, however
    the upstream is doing (nothing is sent either way)."""
    path = marker("down-dirty")
    with requests_session(guard) as client:
        response = client.post(
            f"http://{LOOPBACK}:{closed_port}{path}",
            data=bodies.soap11(patient=REAL),
            headers={"Content-Type": bodies.SOAP11_TYPE, "SOAPAction": bodies.SOAP_ACTION},
            timeout=30,
        )
    assert response.status_code == 403
    assert response.headers["x-kanta-guard"] == "blocked"
    assert REAL not in response.text
    records = [r for r in guard.records() if str(r.get("path", "")).startswith(path)]
    assert [r["verdict"] for r in records] == ["block"]


@pytest.mark.e2e
def test_untrusted_tls_upstream_is_answered_in_protocol(
    guard: Proxy, tls_upstream: Upstream
) -> None:
    """HTTPS to an upstream whose certificate the guard does not trust (self-signed): 502 in
    the client's protocol saying how to trust it; the upstream received nothing."""
    path = marker("untrusted")
    with requests_session(guard) as client:
        response = client.post(
            tls_upstream.url(path),
            data=bodies.fhir_patient(),
            headers={"Content-Type": bodies.FHIR_JSON_TYPE},
            verify=str(guard.ca_cert),
            timeout=30,
        )
    assert response.status_code == 502
    _not_html(response)
    assert response.headers["x-kanta-guard"] == "upstream-untrusted"
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    diagnostics = outcome["issue"][0]["diagnostics"]
    assert "ssl_verify_upstream_trusted_ca" in diagnostics
    assert "certificate" in diagnostics.lower()
    assert tls_upstream.got(path) == []


@pytest.fixture(scope="module")
def lazy_guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """The guard with lazy server connections: a CONNECT is accepted before any upstream is
    tried, and the client's TLS (HTTP/2 offered) is set up first."""
    workdir = tmp_path_factory.mktemp("proxy-upstream-errors-lazy")
    proxy = Proxy(
        workdir,
        workdir / "blocked.jsonl",
        ["--workers", "0", "--set", "connection_strategy=lazy"],
    )
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.mark.e2e
@pytest.mark.parametrize("case", ["closed", "untrusted"])
def test_over_http2_with_lazy_connections(
    lazy_guard: Proxy, tls_upstream: Upstream, closed_port: int, case: str, tmp_path: Path
) -> None:
    """Over HTTP/2 between curl and the guard (mitmproxy's HTTP/2 error page before), the
    upstream tried only for the request: down, or untrusted; nothing reaches it."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    path = marker(f"lazy-{case}")
    port = closed_port if case == "closed" else tls_upstream.port
    body = tmp_path / "body"
    done = subprocess.run(
        [
            curl, "--silent", "--http2", "--noproxy", "",
            "--proxy", lazy_guard.url, "--cacert", str(lazy_guard.ca_cert),
            "--header", "Accept: application/fhir+json",
            "--output", str(body),
            "--write-out", "%{http_version} %{http_code} %{content_type}",
            f"https://{LOOPBACK}:{port}{path}",
        ],
        capture_output=True, text=True, timeout=60, env=clean_env(), check=False,
    )  # fmt: skip
    assert done.stdout.split(" ", 2) == ["2", "502", "application/fhir+json; charset=utf-8"]
    outcome = json.loads(body.read_bytes())
    assert outcome["resourceType"] == "OperationOutcome"
    word = "connect to" if case == "closed" else "set up TLS"
    assert word in outcome["issue"][0]["diagnostics"]
    assert tls_upstream.got(path) == []


@pytest.fixture(scope="module")
def reverse_tls_guard(
    tmp_path_factory: pytest.TempPathFactory, closed_port: int
) -> Iterator[Proxy]:
    """The guard in reverse mode in front of an HTTPS upstream nothing listens on."""
    workdir = tmp_path_factory.mktemp("proxy-upstream-errors-reverse-tls")
    proxy = Proxy(
        workdir,
        workdir / "blocked.jsonl",
        ["--mode", f"reverse:https://{LOOPBACK}:{closed_port}", "--workers", "0"],
    )
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.mark.e2e
def test_reverse_tls_upstream_down(reverse_tls_guard: Proxy) -> None:
    """A client speaking TLS to a reverse-mode guard whose upstream is down gets its TLS and
    then a FHIR OperationOutcome (mitmproxy crashed on that connection before: it tried the
    failed upstream again inside the client's handshake)."""
    context = ssl.create_default_context(cafile=str(reverse_tls_guard.ca_cert))
    url = f"https://localhost:{reverse_tls_guard.port}/fhir/Patient"
    with httpx.Client(trust_env=False, verify=context) as client:
        response = client.post(
            url, content=bodies.fhir_patient(), headers={"Content-Type": bodies.FHIR_JSON_TYPE}
        )
    assert response.status_code == 502
    _not_html(response)
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "crashed" not in reverse_tls_guard.output()


@pytest.mark.e2e
def test_connect_to_closed_port_is_problem_json(guard: Proxy, closed_port: int) -> None:
    """A CONNECT to a closed port (mitmproxy connects at once): problem details, not text."""
    with socket.create_connection((LOOPBACK, guard.port), timeout=30) as sock:
        target = f"{LOOPBACK}:{closed_port}"
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502")
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["type"] == "urn:kanta-guard:problem:upstream-down"


def _length(data: bytes) -> int:
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


@pytest.mark.e2e
def test_reverse_mode_upstream_down(reverse_guard: Proxy) -> None:
    """In reverse mode, with the upstream down, a SOAP client gets its Fault."""
    with requests.Session() as client:
        client.trust_env = False  # straight to the guard: it is the endpoint here
        response = client.post(
            f"{reverse_guard.url}{marker('reverse-down')}",
            data=bodies.soap11(),
            headers={"Content-Type": bodies.SOAP11_TYPE, "SOAPAction": bodies.SOAP_ACTION},
            timeout=30,
        )
    assert response.status_code == 502
    _not_html(response)
    root = etree.fromstring(response.content)
    assert root.findtext(f".//{{{SOAP11}}}Fault/faultcode") == "soap:Server"


@pytest.mark.e2e
def test_proxy_output_stays_masked(guard: Proxy) -> None:
    """Nothing the proxy printed in these tests holds the real code that was sent, and it said
    which requests it could not forward."""
    output = guard.output()
    assert REAL not in output
    assert "not forwarded" in output


def test_install_refuses_a_missing_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """A mitmproxy without the wrapped method stops the guard rather than leave the page."""
    from kanta_guard.proxy import upstreamerror

    missing = (("mitmproxy.proxy.layers.http", "HttpStream", "no_such_method"),)
    monkeypatch.setattr(upstreamerror, "PATCH_TARGETS", missing)
    with pytest.raises(RuntimeError, match="no_such_method"):
        upstreamerror.install()


# --- the README's "Trusting the guard's CA", with real clients ----------------------------------


@pytest.fixture(scope="module")
def reverse_trusting(
    tmp_path_factory: pytest.TempPathFactory,
    tls_upstream: Upstream,
    upstream_cert: tuple[Path, Path],
) -> Iterator[Proxy]:
    """The guard in reverse mode in front of the HTTPS upstream, trusting its CA
    (``ssl_verify_upstream_trusted_ca``, as for the DVV test CA in front of Kanta)."""
    workdir = tmp_path_factory.mktemp("proxy-trust-recipes")
    proxy = Proxy(
        workdir,
        workdir / "blocked.jsonl",
        [
            "--mode", f"reverse:{tls_upstream.url('')}", "--workers", "0",
            "--set", f"ssl_verify_upstream_trusted_ca={upstream_cert[0]}",
        ],
    )  # fmt: skip
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def explicit_trusting(
    tmp_path_factory: pytest.TempPathFactory, upstream_cert: tuple[Path, Path]
) -> Iterator[Proxy]:
    """The guard as an explicit proxy, trusting the HTTPS upstream's CA (a guard of this
    module's own: the session's may be stopped by other tests)."""
    workdir = tmp_path_factory.mktemp("proxy-trust-recipes-explicit")
    proxy = Proxy(
        workdir,
        workdir / "blocked.jsonl",
        ["--workers", "0", "--set", f"ssl_verify_upstream_trusted_ca={upstream_cert[0]}"],
    )
    proxy.start()
    yield proxy
    proxy.stop()


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def _run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, env=clean_env(**env), check=False
    )


@pytest.mark.e2e
def test_recipe_curl(explicit_trusting: Proxy, tls_upstream: Upstream) -> None:
    """curl --proxy … --cacert CA reaches the upstream through the guard; without --cacert it
    refuses the guard (exit 60)."""
    curl = _tool("curl")
    path = marker("recipe-curl")
    base = [curl, "--silent", "--show-error", "--noproxy", "", "--proxy", explicit_trusting.url]
    trusted = _run([*base, "--cacert", str(explicit_trusting.ca_cert), tls_upstream.url(path)])
    assert trusted.returncode == 0, trusted.stderr
    assert len(tls_upstream.got(path)) == 1
    untrusted = _run([*base, tls_upstream.url(marker("recipe-curl-no"))])
    assert untrusted.returncode == 60, untrusted.stderr
    assert "SSL certificate problem" in untrusted.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_recipe_python(explicit_trusting: Proxy, tls_upstream: Upstream, variable: str) -> None:
    """Python: requests with REQUESTS_CA_BUNDLE, urllib with SSL_CERT_FILE, HTTPS_PROXY the
    guard; without the variable each refuses the guard."""
    path = marker(f"recipe-{variable.lower()}")
    if variable == "REQUESTS_CA_BUNDLE":
        code = "import requests, sys; print(requests.get(sys.argv[1], timeout=30).status_code)"
    else:
        code = (
            "import sys, urllib.request; "
            "print(urllib.request.urlopen(sys.argv[1], timeout=30).status)"
        )
    argv = [sys.executable, "-c", code, tls_upstream.url(path)]
    trusted = _run(
        argv, HTTPS_PROXY=explicit_trusting.url, **{variable: str(explicit_trusting.ca_cert)}
    )
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.strip() == "200"
    assert len(tls_upstream.got(path)) == 1
    argv[-1] = tls_upstream.url(marker(f"recipe-{variable.lower()}-no"))
    untrusted = _run(argv, HTTPS_PROXY=explicit_trusting.url)
    assert untrusted.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr


_NODE = """
const https = require('https');
https.get(process.argv[2], (res) => { console.log(res.statusCode); res.resume(); })
     .on('error', (e) => { console.error(e.code || e.message); process.exit(3); });
"""


@pytest.mark.e2e
def test_recipe_node(reverse_trusting: Proxy, tls_upstream: Upstream, tmp_path: Path) -> None:
    """Node: NODE_EXTRA_CA_CERTS=CA, the guard in reverse mode; without it Node refuses."""
    node = _tool("node")
    script = tmp_path / "get.js"
    script.write_text(_NODE, "utf-8")
    path = marker("recipe-node")
    url = f"https://localhost:{reverse_trusting.port}{path}"
    trusted = _run([node, str(script), url], NODE_EXTRA_CA_CERTS=str(reverse_trusting.ca_cert))
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.strip() == "200"
    assert len(tls_upstream.got(path)) == 1
    untrusted = _run([node, str(script), f"https://localhost:{reverse_trusting.port}/no"])
    assert untrusted.returncode == 3
    assert untrusted.stderr.strip() == "UNABLE_TO_VERIFY_LEAF_SIGNATURE"


_JAVA = """
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class Get {
    public static void main(String[] args) throws Exception {
        HttpClient client = HttpClient.newHttpClient();
        HttpRequest request = HttpRequest.newBuilder(URI.create(args[0])).build();
        HttpResponse<Void> response = client.send(request, HttpResponse.BodyHandlers.discarding());
        System.out.println(response.statusCode());
    }
}
"""


@pytest.mark.e2e
def test_recipe_java(reverse_trusting: Proxy, tls_upstream: Upstream, tmp_path: Path) -> None:
    """Java: the README's keytool command and -Djavax.net.ssl.trustStore options, the guard in
    reverse mode; without them the JVM refuses the guard (PKIX)."""
    keytool, java = _tool("keytool"), _tool("java")
    store = tmp_path / "kanta-guard-truststore.p12"
    imported = _run(
        [
            keytool, "-importcert", "-noprompt", "-alias", "kanta-guard",
            "-file", str(reverse_trusting.ca_cert), "-keystore", str(store),
            "-storetype", "PKCS12", "-storepass", "changeit",
        ]
    )  # fmt: skip
    assert imported.returncode == 0, imported.stdout + imported.stderr
    source = tmp_path / "Get.java"
    source.write_text(_JAVA, "utf-8")
    path = marker("recipe-java")
    url = f"https://localhost:{reverse_trusting.port}{path}"
    options = [
        f"-Djavax.net.ssl.trustStore={store}",
        "-Djavax.net.ssl.trustStorePassword=changeit",
        "-Djavax.net.ssl.trustStoreType=PKCS12",
    ]
    trusted = _run([java, *options, str(source), url])
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.strip() == "200"
    assert len(tls_upstream.got(path)) == 1
    untrusted = _run([java, str(source), f"https://localhost:{reverse_trusting.port}/no"])
    assert untrusted.returncode != 0
    assert "PKIX path building failed" in untrusted.stderr
