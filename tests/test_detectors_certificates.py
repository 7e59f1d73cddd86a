"""Certificates in requests, through the pipeline: everywhere they travel, test ones pass,
production ones, unknown ones and real cards do not (issue 9).

Each place is a way a careless system or a hurried tester would get a production certificate
past the guard (another container, another encoding, another protocol); each is kept as a test.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path

import pytest
from certgen import CORPUS, card, forgery, hierarchy, pem, pkcs7_bundle, service, shared_cert
from helpers import identity_policy

from kanta_guard import KeyedHasher, Request, Scanner
from kanta_guard.certs import CertJudge, load_anchors
from kanta_guard.detectors import HetuDetector
from kanta_guard.detectors.certificates import CertificateDetector
from kanta_guard.model import Verdict
from kanta_guard.policy import parse_policy

HASHER = KeyedHasher(b"certificate-tests-key-0123456789")
SCANNER = Scanner(identity_policy(), HASHER)

TEST = hierarchy("test")
PRODUCTION = hierarchy("production")
DSIG = "http://www.w3.org/2000/09/xmldsig#"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"


def b64(der: bytes, wrap: bool = True) -> str:
    text = base64.b64encode(der).decode()
    return "\n".join(text[i : i + 64] for i in range(0, len(text), 64)) if wrap else text


def cda_signed(*certs: bytes, prefix: str = "ds") -> bytes:
    """A Finnish CDA header with an hl7fi:signatureCollection signature carrying ``certs``."""
    colon = f"{prefix}:" if prefix else ""
    xmlns = f"xmlns:{prefix}" if prefix else "xmlns"
    data = "".join(f"<{colon}X509Certificate>{b64(c)}</{colon}X509Certificate>" for c in certs)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:hl7fi="urn:hl7finland">
<hl7fi:localHeader><hl7fi:signatureCollection><hl7fi:signature>
<{colon}Signature {xmlns}="{DSIG}"><{colon}SignatureValue>c2lnbmF0dXJl</{colon}SignatureValue>
<{colon}KeyInfo><{colon}X509Data>{data}</{colon}X509Data></{colon}KeyInfo></{colon}Signature>
</hl7fi:signature></hl7fi:signatureCollection></hl7fi:localHeader>
<title>Reseptin mitätöinti</title>
</ClinicalDocument>""".encode()


def rules(report: object) -> list[str]:
    return [f.rule for f in report.findings]  # type: ignore[attr-defined]


def scan_xml(body: bytes, scanner: Scanner = SCANNER) -> object:
    return scanner.scan_bytes(body, "application/xml")


# -- XML-DSig in CDA ------------------------------------------------------------------------


def test_a_test_signed_cda_passes() -> None:
    report = scan_xml(cda_signed(TEST.service.der, TEST.intermediate.der))
    assert report.verdict is Verdict.PASS, report.findings


def test_a_production_system_signature_blocks_with_its_place_and_role() -> None:
    report = scan_xml(cda_signed(PRODUCTION.service.der, PRODUCTION.intermediate.der))
    assert report.verdict is Verdict.BLOCK
    production = [f for f in report.findings if f.rule == "cert.production"]
    assert production
    first = production[0]
    assert "X509Certificate" in first.location
    assert first.evidence.startswith("system signature")


@pytest.mark.parametrize("prefix", ["ds", "dsig", "", "x"])
def test_any_prefix_of_the_signature_namespace(prefix: str) -> None:
    report = scan_xml(cda_signed(PRODUCTION.service.der, prefix=prefix))
    assert "cert.production" in rules(report)


def test_a_real_professional_card_blocks_and_its_holder_is_masked() -> None:
    report = scan_xml(cda_signed(PRODUCTION.card.der))
    assert report.verdict is Verdict.BLOCK
    (finding,) = [f for f in report.findings if f.rule == "cert.production"]
    assert finding.evidence.startswith("professional card")
    assert "real professional card" in finding.explanation
    for raw in ("Esimerkki", "Erkki", "123456789"):
        assert raw not in finding.evidence and raw not in finding.explanation


def test_a_card_from_a_test_ca_without_test_markers_is_no_test_card() -> None:
    impostor = card(TEST.intermediate, "Virtanen", "Matti", "123456789")
    report = scan_xml(cda_signed(impostor.der))
    assert report.verdict is Verdict.BLOCK
    assert "card.real" in rules(report)
    assert all("Virtanen" not in f.evidence for f in report.findings)


def test_a_specimen_card_of_a_test_ca_passes() -> None:
    assert scan_xml(cda_signed(TEST.card.der, TEST.intermediate.der)).verdict is Verdict.PASS


def test_a_certificate_no_rule_knows_is_unknown() -> None:
    from certgen import ca, root

    issuer = ca(root("Example Root", "Example Oy"), "Example CA", "Example Oy", policies=())
    stranger = service(issuer, policies=())
    report = scan_xml(cda_signed(stranger.der))
    assert report.verdict is Verdict.BLOCK
    (finding,) = [f for f in report.findings if f.rule == "cert.unknown"]
    assert "anchor" in finding.explanation


def test_junk_after_a_certificate_does_not_make_it_a_blob() -> None:
    """A production certificate with bytes after its DER value is read as a certificate (a
    lenient receiver ignores them), not passed as inert bytes."""
    body = cda_signed(PRODUCTION.service.der + b"\0\0junk")
    assert scan_xml(body).verdict is Verdict.BLOCK


def test_a_cda_base64_inside_a_soap_message() -> None:
    inner = base64.b64encode(cda_signed(PRODUCTION.service.der)).decode()
    soap = f"""<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<RCMR_IN100001FI01 xmlns="urn:hl7-org:v3">
<text mediaType="text/xml" representation="B64">{inner}</text>
</RCMR_IN100001FI01></soap:Body></soap:Envelope>""".encode()
    assert "cert.production" in rules(scan_xml(soap))


def test_the_full_walk_finds_them_too() -> None:
    """A document the screens cannot clear (a character reference) is walked node by node:
    the certificate is judged there as well."""
    body = cda_signed(PRODUCTION.service.der).replace(b"mit\xc3\xa4t\xc3\xb6inti", b"mit&#228;")
    assert "cert.production" in rules(scan_xml(body))


# -- WS-Security, SAML -----------------------------------------------------------------------


def test_a_wsse_binary_security_token() -> None:
    body = f"""<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Header>
<wsse:Security xmlns:wsse="{WSSE}"><wsse:BinarySecurityToken
 ValueType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
 EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
>{b64(PRODUCTION.service.der, wrap=False)}</wsse:BinarySecurityToken></wsse:Security>
</soap:Header><soap:Body/></soap:Envelope>""".encode()
    assert "cert.production" in rules(scan_xml(body))


def test_a_saml_assertion_signature() -> None:
    body = f"""<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="a1">
<ds:Signature xmlns:ds="{DSIG}"><ds:KeyInfo><ds:X509Data>
<ds:X509Certificate>{b64(PRODUCTION.card.der)}</ds:X509Certificate>
</ds:X509Data></ds:KeyInfo></ds:Signature></saml2:Assertion>""".encode()
    assert "cert.production" in rules(scan_xml(body))


# -- JWS/JWT, FHIR ----------------------------------------------------------------------------


def _jws(header: dict[str, object]) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join((part(json.dumps(header).encode()), part(b'{"sub":"x"}'), part(b"sig")))


def test_a_jwt_x5c_in_the_authorization_header() -> None:
    token = _jws({"alg": "ES256", "x5c": [b64(PRODUCTION.service.der, wrap=False)]})
    request = Request(
        "GET",
        "/fhir/Patient",
        (("Host", "127.0.0.1"), ("Authorization", f"Bearer {token}")),
        b"",
        "127.0.0.1",
    )
    report = SCANNER.scan(request)
    assert report.verdict is Verdict.BLOCK
    assert any(
        f.rule == "cert.production" and f.location.startswith("header:Authorization")
        for f in report.findings
    )


def test_a_jwt_with_a_test_chain_passes() -> None:
    chain = [b64(TEST.service.der, wrap=False), b64(TEST.intermediate.der, wrap=False)]
    request = Request(
        "GET",
        "/fhir/Patient",
        (
            ("Host", "127.0.0.1"),
            ("Authorization", f"Bearer {_jws({'alg': 'ES256', 'x5c': chain})}"),
        ),
        b"",
        "127.0.0.1",
    )
    assert SCANNER.scan(request).verdict is Verdict.PASS


def test_a_fhir_provenance_signature_holding_xml_dsig() -> None:
    signature = base64.b64encode(cda_signed(PRODUCTION.service.der)).decode()
    body = json.dumps(
        {
            "resourceType": "Provenance",
            "target": [{"reference": "Patient/1"}],
            "signature": [{"type": [{"code": "1.2.840.10065.1.12.1.1"}], "data": signature}],
        }
    ).encode()
    report = SCANNER.scan_bytes(body, "application/fhir+json")
    assert "cert.production" in rules(report)


def test_a_fhir_bundle_signature_holding_a_jws() -> None:
    token = _jws({"alg": "ES256", "x5c": [b64(PRODUCTION.card.der, wrap=False)]})
    body = json.dumps(
        {
            "resourceType": "Bundle",
            "type": "document",
            "signature": {"data": base64.b64encode(token.encode()).decode()},
        }
    ).encode()
    assert "cert.production" in rules(SCANNER.scan_bytes(body, "application/fhir+json"))


# -- PKCS#7, PEM, bare DER -------------------------------------------------------------------


def test_a_pkcs7_bundle_is_opened() -> None:
    bundle = pkcs7_bundle(TEST.service, PRODUCTION.intermediate)
    report = SCANNER.scan_bytes(bundle, "application/pkcs7-mime")
    assert "cert.production" in rules(report)
    assert any("certificate[2]" in f.location for f in report.findings)


def test_a_pkcs7_bundle_sniffed_without_a_type() -> None:
    assert "cert.production" in rules(SCANNER.scan_bytes(pkcs7_bundle(PRODUCTION.service), None))


def test_a_bare_der_certificate_body() -> None:
    assert rules(SCANNER.scan_bytes(PRODUCTION.root.der, None)) == ["cert.production"]
    assert SCANNER.scan_bytes(TEST.root.der, None).verdict is Verdict.PASS


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_pem_in_a_text_body(newline: str) -> None:
    text = "Liitteenä varmenne:" + newline + pem(PRODUCTION.service).decode().replace("\n", newline)
    report = SCANNER.scan_bytes(text.encode(), "text/plain")
    assert rules(report) == ["cert.production"]
    assert "!pem[1]" in report.findings[0].location


def test_pem_in_a_json_string_with_escaped_line_breaks() -> None:
    body = json.dumps({"note": pem(TEST.service, PRODUCTION.card).decode()}).encode()
    report = SCANNER.scan_bytes(body, "application/json")
    assert rules(report) == ["cert.production"]


def test_pem_in_an_xml_text_node() -> None:
    body = b"<a><cert>" + pem(PRODUCTION.root) + b"</cert></a>"
    assert "cert.production" in rules(scan_xml(body))


def test_a_pem_block_without_an_end_is_unscannable() -> None:
    text = b"-----BEGIN CERTIFICATE-----\n" + b64(PRODUCTION.root.der).encode() + b"\n"
    report = SCANNER.scan_bytes(text, "text/plain")
    assert rules(report) == ["unscannable"]


def test_a_gzip_compressed_certificate() -> None:
    report = SCANNER.scan_bytes(gzip.compress(PRODUCTION.service.der), None)
    assert "cert.production" in rules(report)


def test_a_multipart_part_declared_as_a_certificate() -> None:
    body = (
        b"--b\r\nContent-Type: application/pkix-cert\r\n\r\n"
        + PRODUCTION.service.der
        + b"\r\n--b--\r\n"
    )
    request = Request(
        "POST", "/x", (("Content-Type", 'multipart/mixed; boundary="b"'),), body, "127.0.0.1"
    )
    assert "cert.production" in rules(SCANNER.scan(request))


def test_a_declared_certificate_that_cannot_be_read_is_unscannable() -> None:
    body = PRODUCTION.service.der[:200]
    assert rules(SCANNER.scan_bytes(body, "application/pkix-cert")) == ["unscannable"]


def test_a_signature_value_is_no_certificate() -> None:
    """Random bytes (a signature) are not taken for a certificate: the document passes."""
    import os

    values = "".join(
        f"<ds:SignatureValue>{base64.b64encode(os.urandom(256)).decode()}</ds:SignatureValue>"
        for _ in range(50)
    )
    body = f'<a xmlns:ds="{DSIG}">{values}</a>'.encode()
    assert scan_xml(body).verdict is Verdict.PASS


# -- trust anchors ---------------------------------------------------------------------------


def _anchored(folder: Path) -> Scanner:
    (folder / "root.pem").write_bytes(TEST.root.pem)
    policy = parse_policy(
        '[certificates]\nanchors = "."\n', str(folder / "p.toml"), source_dir=folder
    )
    return Scanner(policy, HASHER, detectors=(HetuDetector(), *_certificate_detectors(policy)))


def _certificate_detectors(policy: object) -> tuple[CertificateDetector, ...]:
    anchors = policy.certificates.anchors  # type: ignore[attr-defined]
    return (CertificateDetector(CertJudge(load_anchors(anchors))),)


def test_with_anchors_a_chain_in_the_message_verifies(tmp_path: Path) -> None:
    scanner = _anchored(tmp_path)
    body = cda_signed(TEST.service.der, TEST.intermediate.der)
    assert scan_xml(body, scanner).verdict is Verdict.PASS


def test_with_anchors_a_forgery_naming_the_test_ca_is_unknown(tmp_path: Path) -> None:
    scanner = _anchored(tmp_path)
    fake_ca, fake_leaf = forgery(TEST)
    report = scan_xml(cda_signed(fake_leaf.der, fake_ca.der), scanner)
    assert report.verdict is Verdict.BLOCK
    assert "cert.unknown" in rules(report)
    # Without anchors the names alone would have passed it: that is what anchors are for.
    assert scan_xml(cda_signed(fake_leaf.der, fake_ca.der)).verdict is Verdict.PASS


def test_with_anchors_a_missing_intermediate_is_unknown(tmp_path: Path) -> None:
    scanner = _anchored(tmp_path)
    assert "cert.unknown" in rules(scan_xml(cda_signed(TEST.service.der), scanner))


def test_the_default_policy_scanner_judges_certificates() -> None:
    """The embedded default policy's scanner has the certificate detector (no anchors)."""
    from kanta_guard import default_policy

    scanner = Scanner(default_policy(), HASHER)
    assert "cert.production" in rules(scan_xml(cda_signed(PRODUCTION.service.der), scanner))


# -- the real certificates and the signed corpus ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "verdict"),
    [
        ("test-root-VRK-TEST-Root-CA.der", Verdict.PASS),
        ("test-VRK-CA-for-Test-Purposes-G3.der", Verdict.PASS),
        ("test-VRK-TEST-CA-for-Test-Purposes-G4.der", Verdict.PASS),
        ("test-DVV-TEST-Certificates-G5E.der", Verdict.PASS),
        ("production-DVV-Gov-Root-CA-G3-RSA.der", Verdict.BLOCK),
        ("production-DVV-Gov-Root-CA-G3-ECC.der", Verdict.BLOCK),
        ("production-DVV-Citizen-Certificates-G4E.der", Verdict.BLOCK),
    ],
)
def test_real_dvv_certificates_in_a_signature(name: str, verdict: Verdict) -> None:
    assert scan_xml(cda_signed(shared_cert(name))).verdict is verdict


def test_the_signed_corpus_documents_pass() -> None:
    """Every signed corpus CDA whose expected verdict is "pass" still passes with the
    certificate rules (their test certificates expired years ago: expiry does not block)."""
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (beside the checkout)")
    for name in (
        "Acute_5_ENfamil_hetuton.xml",
        "Esko_1_Diatsepaami_LM.xml",
        "LM_testiasiakirja_mitatointiin.xml",
    ):
        report = scan_xml((CORPUS / name).read_bytes())
        assert report.verdict is Verdict.PASS, (name, report.findings)


def test_a_corpus_document_re_signed_with_a_production_certificate_blocks() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (beside the checkout)")
    original = (CORPUS / "LM_testiasiakirja_mitatointiin.xml").read_bytes()
    body = re.sub(
        rb"(<(?:\w+:)?X509Certificate>)[^<]*",
        lambda m: m.group(1) + b64(PRODUCTION.service.der).encode(),
        original,
        count=1,
    )
    assert body != original
    report = scan_xml(body)
    assert report.verdict is Verdict.BLOCK
    assert rules(report) == ["cert.production"]


# -- JOSE compact tokens in bodies (their claims are read as well) ---------------------------


def _claims_token(claims: dict[str, object]) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return f"{header}.{part(json.dumps(claims).encode())}.{part(b'signature')}"


def _bodies(token: str) -> list[tuple[bytes, str]]:
    return [
        (token.encode(), "text/plain"),
        (f"id_token: {token}\n".encode(), "text/plain"),
        (json.dumps({"assertion": token}).encode(), "application/json"),
        (json.dumps({"note": f"Bearer {token}"}).encode(), "application/json"),
        (f"grant_type=jwt-bearer&assertion={token}".encode(), "application/x-www-form-urlencoded"),
        (f"<a><token>{token}</token></a>".encode(), "application/xml"),
        (f'<a><token value="{token}"/></a>'.encode(), "application/xml"),
    ]


@pytest.mark.parametrize("index", range(7))
def test_a_real_code_in_jwt_claims_in_a_body(index: int) -> None:
    from helpers import REAL

    body, content_type = _bodies(_claims_token({"sub": REAL, "iss": "x"}))[index]
    report = SCANNER.scan_bytes(body, content_type)
    assert "hetu.real" in rules(report), (content_type, report.findings)
    assert all(REAL not in f.evidence for f in report.findings)


@pytest.mark.parametrize("index", range(7))
def test_a_jwt_with_test_claims_in_a_body_passes(index: int) -> None:
    body, content_type = _bodies(_claims_token({"sub": "010181-900C", "iss": "x"}))[index]
    assert SCANNER.scan_bytes(body, content_type).verdict is Verdict.PASS


def test_a_word_starting_ey_is_no_token() -> None:
    body = b"eyelash.eyebrow.eye and key.value.pair; they.eye.ey"
    assert SCANNER.scan_bytes(body, "text/plain").verdict is Verdict.PASS


# -- x5t#S256: a certificate named only by its thumbprint -------------------------------------


def _x5t(der: bytes) -> str:
    import hashlib

    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def _bearer(header: dict[str, object]) -> Request:
    return Request(
        "GET",
        "/fhir/Patient",
        (("Host", "127.0.0.1"), ("Authorization", f"Bearer {_jws(header)}")),
        b"",
        "127.0.0.1",
    )


def test_a_thumbprint_alone_is_unknown() -> None:
    """A JWS naming its signer only by x5t#S256: the guard cannot see the certificate."""
    report = SCANNER.scan(_bearer({"alg": "ES256", "x5t#S256": _x5t(PRODUCTION.service.der)}))
    assert rules(report) == ["cert.unknown"]
    assert "x5c" in report.findings[0].explanation


def test_a_thumbprint_of_a_certificate_in_x5c_is_that_certificate() -> None:
    chain = [b64(TEST.service.der, wrap=False), b64(TEST.intermediate.der, wrap=False)]
    header = {"alg": "ES256", "x5c": chain, "x5t#S256": _x5t(TEST.service.der)}
    assert SCANNER.scan(_bearer(header)).verdict is Verdict.PASS
    header = {"alg": "ES256", "x5c": [b64(PRODUCTION.service.der, wrap=False)]}
    header["x5t#S256"] = _x5t(PRODUCTION.service.der)
    assert rules(SCANNER.scan(_bearer(header))) == ["cert.production"]


def test_a_thumbprint_of_a_pinned_production_ca() -> None:
    der = shared_cert("production-DVV-Gov-Root-CA-G3-RSA.der")
    report = SCANNER.scan(_bearer({"alg": "RS256", "x5t#S256": _x5t(der)}))
    assert rules(report) == ["cert.production"]


def test_a_thumbprint_that_is_no_sha256_is_unscannable() -> None:
    report = SCANNER.scan(_bearer({"alg": "ES256", "x5t#S256": _x5t(b"x")[:20] + "Zq9-"}))
    assert rules(report) == ["unscannable"]


# -- certificates forwarded in headers --------------------------------------------------------


@pytest.mark.parametrize("form", ["escaped", "folded"])
def test_a_client_certificate_forwarded_in_a_header(form: str) -> None:
    """A reverse proxy's forwarded client certificate (nginx ``$ssl_client_escaped_cert``,
    percent-encoded PEM; or ``$ssl_client_cert``, lines folded with a tab)."""
    from urllib.parse import quote

    def header(cert: bytes) -> str:
        text = pem(cert).decode()
        return quote(text) if form == "escaped" else text.strip().replace("\n", "\r\n\t")

    for cert, verdict in ((PRODUCTION.card.der, Verdict.BLOCK), (TEST.card.der, Verdict.PASS)):
        request = Request(
            "GET",
            "/fhir/Patient",
            (("Host", "127.0.0.1"), ("X-SSL-Client-Cert", header(cert))),
            b"",
            "127.0.0.1",
        )
        report = SCANNER.scan(request)
        assert report.verdict is verdict, report.findings
        if verdict is Verdict.BLOCK:
            assert [(f.rule, f.location) for f in report.findings] == [
                ("cert.production", "header:X-SSL-Client-Cert!pem[1]")
            ]


def test_a_bare_base64_certificate_in_a_header() -> None:
    request = Request(
        "GET",
        "/fhir/Patient",
        (("Host", "127.0.0.1"), ("X-Client-Cert", b64(PRODUCTION.service.der, wrap=False))),
        b"",
        "127.0.0.1",
    )
    assert rules(SCANNER.scan(request)) == ["cert.production"]


@pytest.mark.parametrize("where", ["query", "path", "query-escaped"])
def test_a_jwt_in_the_url(where: str) -> None:
    """A JWT in a query value (``?id_token=``) or a path segment: its header's x5c and its
    claims are read as they are in a header or a body (both once passed unread)."""
    from urllib.parse import quote

    from helpers import REAL

    def target(token: str) -> str:
        if where == "path":
            return f"/fhir/{token}"
        return f"/auth?id_token={quote(token, safe='') if where == 'query-escaped' else token}"

    x5c = _jws({"alg": "ES256", "x5c": [b64(PRODUCTION.service.der, wrap=False)]})
    claims = _claims_token({"sub": REAL})
    clean = _claims_token({"sub": "010181-900C"})
    for token, expected in ((x5c, "cert.production"), (claims, "hetu.real"), (clean, None)):
        report = SCANNER.scan(Request("GET", target(token), (("Host", "127.0.0.1"),), b"", "x"))
        assert rules(report) == [] if expected is None else expected in rules(report), (
            token[:20],
            report.findings,
        )
        assert all(REAL not in f.evidence + f.location for f in report.findings)


@pytest.mark.parametrize(
    "shape",
    ["{token}", "Bearer {token}", "x {token} y", "token={token}&amp;x=1", "attr"],
)
def test_a_jwt_after_text_in_a_clean_cda(shape: str) -> None:
    """A JWT standing after other text in a text node (``Bearer …``) or inside an attribute of
    an otherwise clean CDA: the screened fast path, which reads only Base64 runs, still decodes
    it and finds the real code in its claims (a gap suspected last session; kept as a test)."""
    from helpers import REAL, cda

    token = _claims_token({"sub": REAL})
    document = cda()
    assert rules(SCANNER.scan_bytes(document.encode(), "application/xml")) == []
    if shape == "attr":
        dirty = document.replace("<title>", f'<title lang="Bearer {token}">', 1)
    else:
        dirty = document.replace("<title>", "<title>" + shape.format(token=token), 1)
    assert dirty != document
    report = SCANNER.scan_bytes(dirty.encode(), "application/xml")
    assert "hetu.real" in rules(report), report.findings
    assert all(REAL not in f.evidence + f.location for f in report.findings)
