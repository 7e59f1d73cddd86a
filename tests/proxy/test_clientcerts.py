"""Tests for kanta_guard.proxy.clientcerts and .trust: client certificates, both ways, and the
trust anchors they are judged against."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from certgen import Issued, hierarchy, pem, service
from cryptography.hazmat.primitives import serialization
from helpers import identity_policy_text
from mitmproxy import connection, exceptions, http, options
from mitmproxy.addons import proxyserver, tlsconfig
from mitmproxy.proxy import context as proxy_context
from mitmproxy.test import taddons, tflow
from mitmproxy.tls import TlsData
from tlspair import pair, run

from kanta_guard.eventlog import read_records
from kanta_guard.proxy.clientcerts import (
    OwnClientCert,
    PresentedClientCert,
    client_cert_files,
    presented_file,
)
from kanta_guard.proxy.guard import HttpGuard
from kanta_guard.proxy.state import GuardState
from kanta_guard.proxy.trust import TrustAnchors


def key_pem(issued: Issued) -> bytes:
    return issued.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def client_cert_file(path: Path, leaf: Issued, *chain: Issued) -> Path:
    """A client_certs file as mitmproxy reads it: the chain, leaf first, and the key."""
    path.write_bytes(pem(leaf, *chain) + key_pem(leaf))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """client_certs files: a test, a production look-alike and an unknown certificate."""
    base = tmp_path_factory.mktemp("client-certs")
    test, production = hierarchy("test"), hierarchy("production")
    unknown = service(service_issuer(), "itse-allekirjoitettu", "Jokin Oy", policies=())
    return {
        "test": client_cert_file(base / "test.pem", test.service, test.intermediate),
        "production": client_cert_file(
            base / "production.pem", production.service, production.intermediate
        ),
        "unknown": client_cert_file(base / "unknown.pem", unknown),
    }


def service_issuer() -> Issued:
    from certgen import root

    return root("Jokin CA", "Jokin Oy")


class Setup:
    def __init__(self, state: GuardState, http_guard: HttpGuard, log: Path, tmp: Path) -> None:
        self.state, self.http_guard, self.log, self.tmp = state, http_guard, log, tmp
        self.trust = TrustAnchors(state)

    def records(self) -> list[dict[str, Any]]:
        return [r for r in read_records(self.log) if "event" not in r] if self.log.exists() else []


def build(tmp_path: Path, extra: str = "") -> Setup:
    log = tmp_path / "blocked.jsonl"
    policy = tmp_path / "policy.toml"
    policy.write_text(identity_policy_text() + extra, "utf-8")
    state = GuardState()
    settings = {"kanta_guard_log": str(log), "kanta_guard_workers": 0,
                "kanta_guard_policy": str(policy)}  # fmt: skip
    return Setup(state, HttpGuard(state, settings), log, tmp_path)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    s = build(tmp_path)
    yield s
    s.http_guard.done()


# -- the certificate the proxy presents (client_certs) ---------------------------------------


def test_a_test_client_certificate_is_taken(setup: Setup, files: dict[str, Path]) -> None:
    """A test service certificate may be presented: the option is taken."""
    own = OwnClientCert(setup.state, setup.trust)
    with taddons.context(proxyserver.Proxyserver(), own, setup.http_guard) as tctx:
        tctx.configure(own, client_certs=str(files["test"]))
        assert own.check(str(files["test"]), setup.state.policy) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "rule"), [("production", "cert.production"),
                                            ("unknown", "cert.unknown")])  # fmt: skip
def test_a_non_test_client_certificate_stops_start_up(
    setup: Setup, files: dict[str, Path], kind: str, rule: str
) -> None:
    """PRODUCTION or UNKNOWN: an OptionsError naming the file and the masked subject (at
    start-up mitmproxy then exits non-zero; at run time the change is refused)."""
    own = OwnClientCert(setup.state, setup.trust)
    with (
        taddons.context(proxyserver.Proxyserver(), own, setup.http_guard) as tctx,
        pytest.raises(exceptions.OptionsError) as info,
    ):
        tctx.configure(own, client_certs=str(files[kind]))
    message = str(info.value)
    assert str(files[kind]) in message and rule in message
    assert "subject CN=" in message and "kanta-guard-testipalvelu" not in message  # masked
    assert "Only test service certificates" in message


def test_a_folder_is_judged_file_by_file(setup: Setup, files: dict[str, Path]) -> None:
    """A client_certs folder: every .pem is a certificate mitmproxy may present."""
    folder = setup.tmp / "certs"
    folder.mkdir()
    (folder / "localhost.pem").write_bytes(files["test"].read_bytes())
    (folder / "notes.txt").write_text("not a certificate")
    own = OwnClientCert(setup.state, setup.trust)
    with taddons.context(proxyserver.Proxyserver(), own, setup.http_guard):
        policy = setup.state.policy
        assert policy is not None
        assert client_cert_files(str(folder)) == [folder / "localhost.pem"]
        assert own.check(str(folder), policy) is None
        (folder / "fhirsandbox.kanta.fi.pem").write_bytes(files["production"].read_bytes())
        problem = own.check(str(folder), policy)
        assert problem is not None and "fhirsandbox.kanta.fi.pem" in problem


def test_unreadable_files_are_problems(setup: Setup) -> None:
    """A file without a certificate, or with one that cannot be read, is a problem too."""
    own = OwnClientCert(setup.state, setup.trust)
    key_only = setup.tmp / "key.pem"
    key_only.write_bytes(key_pem(hierarchy("test").service))
    garbage = setup.tmp / "garbage.pem"
    garbage.write_bytes(
        b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"
    )
    with taddons.context(proxyserver.Proxyserver(), own, setup.http_guard):
        policy = setup.state.policy
        assert policy is not None
        for path in (key_only, garbage):
            problem = own.check(str(path), policy)
            assert problem is not None and str(path) in problem


def test_a_file_replaced_at_run_time_is_not_presented(setup: Setup, files: dict[str, Path]) -> None:
    """Each upstream handshake judges the file about to be presented: a production one is
    not presented, the TLS connection is not made, and the log says why."""
    current = setup.tmp / "current.pem"
    current.write_bytes(files["test"].read_bytes())
    own = OwnClientCert(setup.state, setup.trust)
    with taddons.context(
        proxyserver.Proxyserver(), tlsconfig.TlsConfig(), own, setup.http_guard
    ) as tctx:
        tctx.configure(own, client_certs=str(current))
        data = server_tls()
        data.ssl_conn = object()  # type: ignore[assignment]
        own.tls_start_server(data)
        assert data.ssl_conn is not None
        current.write_bytes(files["production"].read_bytes() + b"\n")  # another size: re-read
        own.tls_start_server(data)
        assert data.ssl_conn is None and "cert.production" in (data.conn.error or "")
        [record] = setup.records()
        assert record["rules"] == ["cert.production"] and record["method"] == ""


def test_presented_file_follows_mitmproxy(tmp_path: Path) -> None:
    """A file is presented to every server; a folder's <sni>.pem (or <address>.pem) only."""
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "localhost.pem").write_text("x")
    server = connection.Server(address=("127.0.0.1", 443))
    assert presented_file(str(folder), server) is None
    server.sni = "localhost"
    assert presented_file(str(folder), server) == folder / "localhost.pem"
    assert presented_file(str(folder / "localhost.pem"), server) == folder / "localhost.pem"
    assert presented_file("", server) is None


def test_anchors_that_cannot_be_loaded_stop_start_up(tmp_path: Path) -> None:
    """A trust anchors folder that is missing stops start-up (an OptionsError), naming it."""
    from kanta_guard.policy import parse_policy

    state = GuardState()
    state.policy = parse_policy(f'[certificates]\nanchors = "{tmp_path / "missing"}"\n')
    first = TrustAnchors(state)
    with (
        taddons.context(first) as tctx,
        pytest.raises(exceptions.OptionsError, match=r"trust anchors folder .*missing"),
    ):
        tctx.configure(first, listen_port=8081)  # any first configure round checks


def test_anchors_checked_at_running_when_configure_could_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Configured before any policy was active (a script), the check runs at ``running``: an
    error logged while the proxy starts ends it."""
    from kanta_guard.policy import parse_policy

    state = GuardState()
    state.policy = parse_policy(f'[certificates]\nanchors = "{tmp_path / "missing"}"\n')
    trust = TrustAnchors(state)
    with taddons.context(trust):
        trust.running()
    assert trust.failed is not None and "missing: not found" in trust.failed
    assert "trust anchors folder" in caplog.text


def test_the_judge_is_shared_and_follows_the_anchors(tmp_path: Path) -> None:
    """One judge while the anchors stay; a new one for another folder."""
    from kanta_guard.policy import parse_policy

    folder = tmp_path / "anchors"
    folder.mkdir()
    (folder / "root.pem").write_bytes(pem(hierarchy("test").root))
    state = GuardState()
    state.policy = parse_policy("")
    trust = TrustAnchors(state)
    first = trust.judge()
    assert trust.judge() is first and first.anchors is None
    anchored = trust.judge(parse_policy(f'[certificates]\nanchors = "{folder}"\n'))
    assert anchored is not first and anchored.anchors is not None


def test_anchors_decide_the_client_certificate(tmp_path: Path, files: dict[str, Path]) -> None:
    """With anchors, a certificate is a test one only if it verifies to one: the test client
    certificate passes against its own root and is refused against another."""
    own_root, other_root = tmp_path / "own", tmp_path / "other"
    own_root.mkdir()
    other_root.mkdir()
    (own_root / "root.pem").write_bytes(pem(hierarchy("test").root))
    from certgen import root as make_root

    (other_root / "root.pem").write_bytes(pem(make_root("VRK TEST Root CA - G8")))
    for folder, ok in ((own_root, True), (other_root, False)):
        base = tmp_path / f"policy-{folder.name}"
        base.mkdir()
        setup = build(base, f'\n[certificates]\nanchors = "{folder}"\n')
        own = OwnClientCert(setup.state, setup.trust)
        try:
            with taddons.context(proxyserver.Proxyserver(), own, setup.http_guard):
                policy = setup.state.policy
                assert policy is not None
                assert (own.check(str(files["test"]), policy) is None) is ok
        finally:
            setup.http_guard.done()


def server_tls() -> TlsData:
    client = tflow.tclient_conn()
    server = connection.Server(address=("localhost", 443))
    server.sni = "localhost"
    ctx = proxy_context.Context(client, options.Options())
    ctx.server = server
    return TlsData(server, ctx)


# -- the certificate the system under test presents (request_client_cert) -------------------


def client_handshake(chain: list[Issued]) -> tuple[Any, Any]:
    """A client presenting ``chain`` to the proxy: (the proxy-side SSL connection, client)."""
    proxy_cert = hierarchy("test")
    client_ssl, server_ssl = pair(
        [proxy_cert.service], client_chain=chain, request_client_cert=True
    )
    assert run(client_ssl, server_ssl) is None
    return server_ssl, tflow.tclient_conn()


def established(presented: PresentedClientCert, chain: list[Issued]) -> Any:
    server_ssl, client = client_handshake(chain)
    data = TlsData(client, proxy_context.Context(client, options.Options()), server_ssl)
    presented.tls_established_client(data)
    return client


def a_flow(client: Any) -> http.HTTPFlow:
    f = tflow.tflow()
    f.client_conn = client
    f.request = http.Request.make(
        "POST",
        "https://localhost/services",
        b"<x/>",
        {"Content-Type": "text/xml", "SOAPAction": "x"},
    )
    return f


@pytest.mark.parametrize(("kind", "rule"), [("production", "cert.production"),
                                            ("unknown", "cert.unknown")])  # fmt: skip
def test_a_client_presenting_a_non_test_certificate_is_refused(
    setup: Setup, kind: str, rule: str
) -> None:
    """Its requests are answered with the rule in the client's protocol, never forwarded."""
    presented = PresentedClientCert(setup.state, setup.trust)
    with taddons.context(
        proxyserver.Proxyserver(), tlsconfig.TlsConfig(), presented, setup.http_guard
    ) as tctx:
        tctx.options.request_client_cert = True
        if kind == "production":
            h = hierarchy("production")
            chain = [h.service, h.intermediate]
        else:
            chain = [service(service_issuer(), "itse", "Jokin Oy", policies=())]
        client = established(presented, chain)
        [connection_record] = setup.records()
        assert connection_record["rules"] == [rule] and connection_record["method"] == ""
        f = a_flow(client)
        presented.requestheaders(f)
        presented.request(f)
        asyncio.run(setup.http_guard.request(f))
        assert f.response is not None and f.response.status_code == 403
        assert f.response.headers["X-Kanta-Guard-Rules"] == rule
        assert b"Fault" in f.response.content  # a SOAP client gets a SOAP Fault
        assert f.request.content == b""  # the unjudged body is withheld from mitmweb
        presented.client_disconnected(client)
        g = a_flow(client)
        presented.requestheaders(g)
        assert g.response is None


def test_a_client_presenting_a_test_certificate_passes(setup: Setup) -> None:
    """A test certificate, or none at all, is no reason to refuse."""
    presented = PresentedClientCert(setup.state, setup.trust)
    with taddons.context(
        proxyserver.Proxyserver(), tlsconfig.TlsConfig(), presented, setup.http_guard
    ) as tctx:
        tctx.options.request_client_cert = True
        h = hierarchy("test")
        client = established(presented, [h.service, h.intermediate])
        f = a_flow(client)
        presented.requestheaders(f)
        assert f.response is None
        client = established(presented, [])
        g = a_flow(client)
        presented.requestheaders(g)
        assert g.response is None
        assert setup.records() == []


def test_nothing_is_judged_without_request_client_cert(setup: Setup) -> None:
    """Without request_client_cert the proxy asks for no certificate and judges none."""
    presented = PresentedClientCert(setup.state, setup.trust)
    with taddons.context(
        proxyserver.Proxyserver(), tlsconfig.TlsConfig(), presented, setup.http_guard
    ):
        h = hierarchy("production")
        client = established(presented, [h.service, h.intermediate])
        f = a_flow(client)
        presented.requestheaders(f)
        assert f.response is None
