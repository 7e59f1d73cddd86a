"""End to end: certificates inside requests, through the real proxy (issue 9).

A CDA signed with a test hierarchy reaches the upstream byte for byte; the same document
signed with a production look-alike, a real-looking professional card, or a JWT whose ``x5c``
carries a production certificate is answered by the proxy and never sent, with a masked log
record naming the signature's place and role. The module's guard runs the identity-code policy
(tests/e2e/conftest.py), under which the certificate rules are on as embedded; one scan worker,
so a small request is judged on the proxy's thread and a large one by the worker.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
import requests
from certgen import card, hierarchy

from .conftest import Proxy, Received, Upstream, marker, requests_session

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """This module's own guard (the session's is stopped by the last test of test_proxy.py)."""
    workdir = tmp_path_factory.mktemp("proxy-signatures")
    guard = Proxy(workdir, workdir / "blocked.jsonl", ["--workers", "1"])
    guard.start()
    yield guard
    guard.stop()


TEST = hierarchy("test")
PRODUCTION = hierarchy("production")
DSIG = "http://www.w3.org/2000/09/xmldsig#"


def signed_cda(*certs: bytes) -> bytes:
    data = "".join(
        f"<ds:X509Certificate>{base64.encodebytes(c).decode()}</ds:X509Certificate>" for c in certs
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:hl7fi="urn:hl7finland">
<hl7fi:localHeader><hl7fi:signatureCollection><hl7fi:signature>
<ds:Signature xmlns:ds="{DSIG}"><ds:KeyInfo><ds:X509Data>{data}</ds:X509Data></ds:KeyInfo>
</ds:Signature></hl7fi:signature></hl7fi:signatureCollection></hl7fi:localHeader>
<title>Lääkemääräys</title></ClinicalDocument>""".encode()


def post(
    proxy: Proxy, upstream: Upstream, case: str, body: bytes, **headers: str
) -> tuple[requests.Response, list[Received]]:
    path = marker(case)
    with requests_session(proxy) as session:
        response = session.post(
            upstream.url(path),
            data=body,
            headers={"Content-Type": "application/xml", **headers},
            timeout=30,
        )
    return response, upstream.got(path)


def test_a_test_signed_document_passes_unchanged(proxy: Proxy, upstream: Upstream) -> None:
    body = signed_cda(TEST.card.der, TEST.service.der, TEST.intermediate.der)
    response, got = post(proxy, upstream, "signed-test", body)
    assert response.status_code == 200
    assert [r.body for r in got] == [body]


@pytest.mark.parametrize(
    ("case", "cert", "rule", "role"),
    [
        ("signed-production", PRODUCTION.service.der, "cert.production", "system signature"),
        ("signed-real-card", PRODUCTION.card.der, "cert.production", "professional card"),
    ],
)
def test_a_production_signature_is_stopped_and_logged(
    proxy: Proxy, upstream: Upstream, case: str, cert: bytes, rule: str, role: str
) -> None:
    response, got = post(proxy, upstream, case, signed_cda(cert))
    assert response.status_code == 403
    assert got == []
    assert rule in response.headers["X-Kanta-Guard-Rules"]
    records = [
        r
        for r in proxy.records()
        if any(f.get("rule") == rule for f in r.get("findings", []))  # type: ignore[union-attr]
        and case in str(r.get("path", ""))
    ]
    assert records, proxy.records()
    (finding,) = [f for f in records[-1]["findings"] if f["rule"] == rule]  # type: ignore[index]
    assert "X509Certificate" in finding["location"]
    assert finding["evidence"].startswith(role)
    for raw in ("Esimerkki", "Erkki", "123456789"):
        assert raw not in json.dumps(records[-1])


def test_a_card_without_test_markers_is_stopped(proxy: Proxy, upstream: Upstream) -> None:
    impostor = card(TEST.intermediate, "Virtanen", "Matti", "123456789")
    response, got = post(proxy, upstream, "signed-impostor", signed_cda(impostor.der))
    assert response.status_code == 403
    assert "card.real" in response.headers["X-Kanta-Guard-Rules"]
    assert got == []


def test_a_jwt_x5c_in_the_authorization_header_is_stopped(proxy: Proxy, upstream: Upstream) -> None:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = {"alg": "ES256", "x5c": [base64.b64encode(PRODUCTION.service.der).decode()]}
    token = ".".join((part(json.dumps(header).encode()), part(b'{"sub":"x"}'), part(b"sig")))
    response, got = post(
        proxy,
        upstream,
        "jwt-x5c",
        b"{}",
        **{"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 403
    assert "cert.production" in response.headers["X-Kanta-Guard-Rules"]
    assert got == []
