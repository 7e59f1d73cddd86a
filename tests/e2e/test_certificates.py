"""End to end: destinations and certificates through the real proxy, real TLS, loopback only.

- Destinations: a guard whose policy allows only ``localhost`` refuses ``127.0.0.1`` (the same
  loopback server by another name, so a wrong pass would be seen by it): absolute-form, CONNECT,
  a ``Host`` header differing from the target, reverse mode; the server records nothing.
- The upstream's certificate: HTTPS upstreams on ``localhost`` with a test certificate and with a
  production look-alike (``O=Vaestorekisterikeskus CA``, policy ``1.2.246.517.1.10.10.2``),
  both trusted by mitmproxy, so that only the guard tells them apart; eager and lazy connections
  answer ``upstream.production`` in the client's protocol (lazy ones after the failed
  handshake); the production upstream records nothing either way.
- Client certificates: a client presenting a test and a production certificate
  (``request_client_cert``); the proxy presenting a test certificate to an upstream that
  requires one (``client_certs``), and refusing to start with a production one.

Hierarchies come from ``tests/certgen.py``. No name other than localhost and 127.0.0.1 is used.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from certgen import PRODUCTION_SERVICE_POLICY, Issued, hierarchy, pem, service
from cryptography.hazmat.primitives import serialization
from helpers import REAL, identity_policy_text

from .conftest import (
    LOOPBACK,
    GuardProxy,
    Upstream,
    marker,
    read_head,
    requests_session,
    start_refused,
)

pytestmark = pytest.mark.e2e

HOST = "localhost"


# --- certificates and servers ---------------------------------------------------------------------


def key_pem(issued: Issued) -> bytes:
    return issued.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_chain(path: Path, leaf: Issued, *chain: Issued) -> Path:
    """A PEM file with the chain (leaf first) and the leaf's key, as servers and mitmproxy's
    client_certs read it."""
    path.write_bytes(pem(leaf, *chain) + key_pem(leaf))
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Certificate files: TLS servers for localhost under the test and the production
    look-alike hierarchy, client certificates of both, and the roots mitmproxy trusts."""
    base = tmp_path_factory.mktemp("pki")
    test, production = hierarchy("test"), hierarchy("production")
    test_server = service(test.intermediate, HOST, dns_names=[HOST])
    production_server = service(
        production.intermediate, HOST, policies=(PRODUCTION_SERVICE_POLICY,), dns_names=[HOST]
    )
    (base / "roots.pem").write_bytes(pem(test.root, production.root))
    (base / "test-root.pem").write_bytes(pem(test.root))
    return {
        "roots": base / "roots.pem",
        "test-root": base / "test-root.pem",
        "test-server": write_chain(base / "test-server.pem", test_server, test.intermediate),
        "production-server": write_chain(
            base / "production-server.pem", production_server, production.intermediate
        ),
        "test-client": write_chain(base / "test-client.pem", test.service, test.intermediate),
        "production-client": write_chain(
            base / "production-client.pem", production.service, production.intermediate
        ),
    }


def tls_server(chain_file: Path, client_ca: Path | None = None) -> Upstream:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain_file)
    if client_ca is not None:  # an upstream that requires a client certificate from its CA
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(client_ca))
    return Upstream(context)


@pytest.fixture(scope="module")
def test_upstream(pki: dict[str, Path]) -> Iterator[Upstream]:
    """An HTTPS upstream on localhost with a test service certificate."""
    with tls_server(pki["test-server"]) as server:
        yield server


@pytest.fixture(scope="module")
def production_upstream(pki: dict[str, Path]) -> Iterator[Upstream]:
    """An HTTPS upstream on localhost with a production look-alike certificate."""
    with tls_server(pki["production-server"]) as server:
        yield server


def policy_file(directory: Path, extra: str = "") -> Path:
    path = directory / "policy.toml"
    path.write_text(identity_policy_text() + extra, encoding="utf-8")
    return path


def started(
    factory: pytest.TempPathFactory, name: str, args: list[str], extra_policy: str = ""
) -> GuardProxy:
    workdir = factory.mktemp(name)
    policy = policy_file(workdir, extra_policy)
    guard = GuardProxy(
        workdir, workdir / "blocked.jsonl", ["--policy", str(policy), "--workers", "0", *args]
    )
    return guard.start()


def https_get(guard: GuardProxy, url: str, **kwargs: object) -> requests.Response:
    with requests_session(guard) as client:
        return client.get(url, verify=str(guard.ca_cert), timeout=15, **kwargs)  # type: ignore[arg-type]


def connection_records(guard: GuardProxy, rule: str, since: int = 0) -> list[dict[str, object]]:
    """Records of refused connections (no method) with ``rule``."""
    return guard.wait_records(lambda r: r["method"] == "" and rule in r["rules"], since)


# --- destinations ---------------------------------------------------------------------------------

LOCALHOST_ONLY = '\n[upstream]\nhosts = ["localhost"]\n'


@pytest.fixture(scope="module")
def localhost_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardProxy]:
    """A guard whose policy allows only the host name localhost (127.0.0.1 is not allowed)."""
    guard = started(tmp_path_factory, "guard-localhost-only", [], LOCALHOST_ONLY)
    yield guard
    guard.stop()


def test_an_allowed_host_passes(localhost_only: GuardProxy, upstream: Upstream) -> None:
    """localhost is allowed: the request reaches the upstream."""
    path = marker("allowed")
    with requests_session(localhost_only) as client:
        response = client.get(upstream.url(path, host=HOST), timeout=10)
    assert response.status_code == 200
    assert len(upstream.got(path)) == 1


def test_a_host_not_allowed_is_refused_unsent(
    localhost_only: GuardProxy, upstream: Upstream
) -> None:
    """127.0.0.1, the same server by a name the policy does not list: 403 upstream.not-allowed,
    a log record, and the upstream records nothing."""
    path = marker("not-allowed")
    with requests_session(localhost_only) as client:
        response = client.get(
            upstream.url(path), headers={"Accept": "application/fhir+json"}, timeout=10
        )
    assert response.status_code == 403
    assert response.headers["X-Kanta-Guard-Rules"] == "upstream.not-allowed"
    assert response.json()["resourceType"] == "OperationOutcome"  # the client's protocol
    assert upstream.got(path) == []
    [record] = localhost_only.wait_records(lambda r: r["path"] == path)
    assert record["rules"] == ["upstream.not-allowed"] and record["host"] == LOOPBACK


def test_a_connect_not_allowed_is_refused_before_any_connection(
    localhost_only: GuardProxy, test_upstream: Upstream
) -> None:
    """CONNECT 127.0.0.1:port is answered 403 before a tunnel (eager: before connecting)."""
    accepted_before = len(test_upstream.received)
    with socket.create_connection((LOOPBACK, localhost_only.port), timeout=10) as sock:
        target = f"{LOOPBACK}:{test_upstream.port}"
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        head = read_head(sock)
    assert head.split(b"\r\n", 1)[0].split()[1:2] == [b"403"], head
    assert b"upstream.not-allowed" in head
    assert len(test_upstream.received) == accepted_before
    assert localhost_only.wait_records(
        lambda r: r["method"] == "CONNECT" and r["rules"] == ["upstream.not-allowed"]
    )


def test_a_host_header_naming_another_host_is_refused(
    localhost_only: GuardProxy, upstream: Upstream
) -> None:
    """The target is allowed, the Host header names 127.0.0.1: refused, nothing arrives."""
    path = marker("host-header")
    with socket.create_connection((LOOPBACK, localhost_only.port), timeout=10) as sock:
        sock.sendall(
            f"GET http://{HOST}:{upstream.port}{path} HTTP/1.1\r\n"
            f"Host: {LOOPBACK}:{upstream.port}\r\n\r\n".encode()
        )
        head = read_head(sock)
    assert head.split(b"\r\n", 1)[0].split()[1:2] == [b"403"], head
    assert upstream.got(path) == []


def test_a_host_with_a_code_is_refused_and_masked(localhost_only: GuardProxy) -> None:
    """A host name carrying an identity code: never resolved, refused under both rules, and
    the code is in neither the answer nor the log."""
    path = marker("code-host")
    with socket.create_connection((LOOPBACK, localhost_only.port), timeout=10) as sock:
        host = f"{REAL}.kanta.test"
        sock.sendall(f"GET http://{host}{path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = read_head(sock)
    assert head.split(b"\r\n", 1)[0].split()[1:2] == [b"403"], head
    assert REAL.encode() not in head
    [record] = localhost_only.wait_records(lambda r: str(r["path"]).startswith("/e2e/code-host"))
    assert set(record["rules"]) >= {"hetu.real", "upstream.not-allowed"}  # type: ignore[arg-type]
    assert REAL not in localhost_only.log.read_text("utf-8")


def test_a_host_header_inside_a_tunnel_naming_another_host_is_refused(
    localhost_only: GuardProxy, upstream: Upstream
) -> None:
    """CONNECT localhost (allowed), then a request inside whose Host names 127.0.0.1: refused."""
    path = marker("tunnel-host")
    with socket.create_connection((LOOPBACK, localhost_only.port), timeout=10) as sock:
        target = f"{HOST}:{upstream.port}"
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        assert read_head(sock).split(b"\r\n", 1)[0].split()[1:2] == [b"200"]
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}:{upstream.port}\r\n\r\n".encode())
        head = read_head(sock)
    assert head.split(b"\r\n", 1)[0].split()[1:2] == [b"403"], head
    assert upstream.got(path) == []


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("LocalHost", True),  # case is undone (the trailing dot too: tests/test_destinations.py)
        ("2130706433", False),  # 127.0.0.1 spelled as one number: not "localhost"
        ("0177.0.0.1", False),
        ("[::ffff:127.0.0.1]", False),
    ],
)
def test_spellings_are_judged_as_read(
    localhost_only: GuardProxy, upstream: Upstream, host: str, allowed: bool
) -> None:
    """A host is judged as the network takes it, not as it is spelled."""
    path = marker("spelling")
    with socket.create_connection((LOOPBACK, localhost_only.port), timeout=10) as sock:
        authority = f"{host}:{upstream.port}"
        sock.sendall(f"GET http://{authority}{path} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
        head = read_head(sock)
    status = head.split(b"\r\n", 1)[0].split()[1:2]
    if allowed:
        assert status == [b"200"], head
        assert len(upstream.got(path)) == 1
    else:
        assert status == [b"403"], head
        assert upstream.got(path) == []
        [record] = localhost_only.wait_records(lambda r: r["path"] == path)
        assert "read as 127.0.0.1" in record["findings"][0]["explanation"]  # type: ignore[index]


def test_socks5_to_a_host_not_allowed_never_connects(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream
) -> None:
    """SOCKS5 (eager): the connection to 127.0.0.1 is refused before it opens; the client's
    CONNECT gets no success reply, and the upstream sees nothing."""
    guard = started(tmp_path_factory, "guard-socks-refused", ["--mode", "socks5"], LOCALHOST_ONLY)
    try:
        with socket.create_connection((LOOPBACK, guard.port), timeout=10) as sock:
            sock.sendall(b"\x05\x01\x00")
            assert sock.recv(2) == b"\x05\x00"
            sock.sendall(
                b"\x05\x01\x00\x01" + socket.inet_aton(LOOPBACK) + upstream.port.to_bytes(2, "big")
            )
            reply = sock.recv(10)
        assert reply[:2] != b"\x05\x00", reply  # no "succeeded"
        assert connection_records(guard, "upstream.not-allowed")
    finally:
        guard.stop()


@pytest.mark.parametrize("strategy", ["eager", "lazy"])
def test_reverse_mode_to_a_host_not_allowed_sends_nothing(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream, strategy: str
) -> None:
    """Reverse mode pointed at a host the policy does not allow: nothing reaches it. Eager:
    the connection mitmproxy opens as the client connects is refused before it connects (the
    client is closed: there is no request yet to answer); lazy: each request is answered 403."""
    guard = started(
        tmp_path_factory,
        f"guard-reverse-{strategy}",
        ["--mode", f"reverse:{upstream.url('')}", "--set", f"connection_strategy={strategy}"],
        LOCALHOST_ONLY,
    )
    try:
        path = marker("reverse-refused")
        with socket.create_connection((LOOPBACK, guard.port), timeout=10) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            head = read_head(sock)
        assert upstream.got(path) == []
        if strategy == "eager":
            assert head == b""
            assert connection_records(guard, "upstream.not-allowed")
        else:
            assert head.split(b"\r\n", 1)[0].split()[1:2] == [b"403"], head
            assert guard.wait_records(lambda r: r["path"] == path)
    finally:
        guard.stop()


# --- the upstream's certificate -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert_guard(
    tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Path], upstream_cert: tuple[Path, Path]
) -> Iterator[GuardProxy]:
    """A guard (eager connections, mitmproxy's default) trusting both hierarchies' roots and
    the self-signed e2e upstream, asking clients for a certificate."""
    bundle = pki["roots"].parent / "trusted.pem"
    bundle.write_bytes(pki["roots"].read_bytes() + upstream_cert[0].read_bytes())
    guard = started(
        tmp_path_factory,
        "guard-certs",
        [
            "--set", f"ssl_verify_upstream_trusted_ca={bundle}",
            "--set", "request_client_cert=true",
        ],
    )  # fmt: skip
    yield guard
    guard.stop()


def test_a_test_server_certificate_passes(cert_guard: GuardProxy, test_upstream: Upstream) -> None:
    """An upstream with a test certificate: the request arrives."""
    path = marker("test-server")
    response = https_get(cert_guard, test_upstream.url(path, host=HOST))
    assert response.status_code == 200
    assert len(test_upstream.got(path)) == 1


def test_an_unknown_server_certificate_passes(
    cert_guard: GuardProxy, tls_upstream: Upstream
) -> None:
    """The self-signed e2e upstream (UNKNOWN: no DVV marker) passes: trust is mitmproxy's."""
    path = marker("unknown-server")
    response = https_get(cert_guard, tls_upstream.url(path, host=HOST))
    assert response.status_code == 200
    assert len(tls_upstream.got(path)) == 1


def test_a_production_server_certificate_sends_nothing(
    cert_guard: GuardProxy, production_upstream: Upstream
) -> None:
    """Eager connections: the server's TLS fails before the client's request is read; the
    request is answered 403 upstream.production in the client's protocol; nothing arrives."""
    since = len(cert_guard.blocked())
    path = marker("production-server")
    response = https_get(
        cert_guard,
        production_upstream.url(path, host=HOST),
        headers={"Accept": "application/fhir+json"},
    )
    assert response.status_code == 403
    assert response.headers["X-Kanta-Guard-Rules"] == "upstream.production"
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert any("pointed at production" in i["diagnostics"] for i in outcome["issue"])
    assert production_upstream.got(path) == []
    [connection] = connection_records(cert_guard, "upstream.production", since)
    assert connection["findings"][0]["evidence"].startswith("CN=l****")  # type: ignore[index]
    assert cert_guard.wait_records(lambda r: r["path"] == path)


def test_lazy_connections_fail_the_handshake(
    tmp_path_factory: pytest.TempPathFactory,
    pki: dict[str, Path],
    production_upstream: Upstream,
    test_upstream: Upstream,
) -> None:
    """Lazy connections: the request was read (and judged clean) before the connection; the
    handshake fails, the request is answered 403 upstream.production in its protocol (not
    mitmproxy's 502 nor upstream-refused), both the connection and the request are logged,
    and the production upstream records nothing; a test one still works."""
    guard = started(
        tmp_path_factory,
        "guard-lazy",
        [
            "--set", f"ssl_verify_upstream_trusted_ca={pki['roots']}",
            "--set", "connection_strategy=lazy",
        ],
    )  # fmt: skip
    try:
        path = marker("lazy-production")
        response = https_get(
            guard,
            production_upstream.url(path, host=HOST),
            headers={"Accept": "application/fhir+json"},
        )
        assert response.status_code == 403, response.text
        assert response.headers["X-Kanta-Guard-Rules"] == "upstream.production"
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert any("pointed at production" in i["diagnostics"] for i in outcome["issue"])
        assert production_upstream.got(path) == []
        assert connection_records(guard, "upstream.production")
        [request] = guard.wait_records(lambda r: r["path"] == path)
        assert request["rules"] == ["upstream.production"]
        clean = marker("lazy-test")
        assert https_get(guard, test_upstream.url(clean, host=HOST)).status_code == 200
        assert len(test_upstream.got(clean)) == 1
    finally:
        guard.stop()


# --- client certificates: the system under test's (request_client_cert) ------------------------


def test_a_client_presenting_a_test_certificate_passes(
    cert_guard: GuardProxy, test_upstream: Upstream, pki: dict[str, Path]
) -> None:
    """A test client certificate is no reason to refuse."""
    path = marker("client-test")
    response = https_get(
        cert_guard, test_upstream.url(path, host=HOST), cert=str(pki["test-client"])
    )
    assert response.status_code == 200
    assert len(test_upstream.got(path)) == 1


def test_a_client_presenting_a_production_certificate_is_refused(
    cert_guard: GuardProxy, test_upstream: Upstream, pki: dict[str, Path]
) -> None:
    """A production client certificate: every request answered 403 cert.production, unsent."""
    since = len(cert_guard.blocked())
    path = marker("client-production")
    response = https_get(
        cert_guard, test_upstream.url(path, host=HOST), cert=str(pki["production-client"])
    )
    assert response.status_code == 403
    assert response.headers["X-Kanta-Guard-Rules"] == "cert.production"
    assert test_upstream.got(path) == []
    assert connection_records(cert_guard, "cert.production", since)


# --- client certificates: the proxy's own (client_certs) ----------------------------------------


def test_a_production_client_certs_stops_start_up(tmp_path: Path, pki: dict[str, Path]) -> None:
    """client_certs with a production certificate: the guard never listens, exits non-zero,
    and says which file and which (masked) subject."""
    policy = policy_file(tmp_path)
    guard = GuardProxy(
        tmp_path,
        tmp_path / "blocked.jsonl",
        ["--policy", str(policy), "--set", f"client_certs={pki['production-client']}"],
    )
    result = start_refused(guard)
    assert not result.listened and result.returncode not in (None, 0)
    assert str(pki["production-client"]) in result.output
    assert "cert.production" in result.output and "subject CN=k****" in result.output
    assert "kanta-guard-testipalvelu" not in result.output  # the subject is masked


def test_a_test_client_certs_is_presented(
    tmp_path: Path, pki: dict[str, Path], upstream_cert: tuple[Path, Path]
) -> None:
    """client_certs with a test certificate: the guard starts and presents it to an upstream
    that requires a client certificate from the test CA (no certificate: no answer)."""
    bundle = tmp_path / "trusted.pem"
    bundle.write_bytes(upstream_cert[0].read_bytes())
    chain = tmp_path / "upstream.pem"
    chain.write_bytes(upstream_cert[0].read_bytes() + upstream_cert[1].read_bytes())
    with tls_server(chain, client_ca=pki["test-root"]) as strict:
        policy = policy_file(tmp_path)
        guard = GuardProxy(
            tmp_path,
            tmp_path / "blocked.jsonl",
            [
                "--policy", str(policy), "--workers", "0",
                "--set", f"client_certs={pki['test-client']}",
                "--set", f"ssl_verify_upstream_trusted_ca={bundle}",
            ],
        ).start()  # fmt: skip
        try:
            path = marker("client-certs")
            response = https_get(guard, strict.url(path, host=HOST))
            assert response.status_code == 200
            assert len(strict.got(path)) == 1
        finally:
            guard.stop()


def test_missing_trust_anchors_stop_start_up(tmp_path: Path) -> None:
    """A trust anchors folder that does not exist stops start-up, naming it."""
    policy = policy_file(tmp_path, f'\n[certificates]\nanchors = "{tmp_path / "no-such"}"\n')
    guard = GuardProxy(tmp_path, tmp_path / "blocked.jsonl", ["--policy", str(policy)])
    result = start_refused(guard)
    assert not result.listened and result.returncode not in (None, 0)
    assert "no-such" in result.output and "trust anchors" in result.output
