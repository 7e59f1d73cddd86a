"""Tests of kanta_guard.certs.x509: reading certificates in every form, their fields, roles and
masked subjects, lenience where BER allows, and refusal of what is no certificate."""

from __future__ import annotations

import base64
import hashlib
import pickle
from datetime import UTC, datetime

import certgen
import pytest
from cryptography import x509 as cx509
from cryptography.x509.oid import NameOID

from kanta_guard.certs import (
    Certificate,
    CertificateError,
    CertRole,
    certificate_der,
    load_certificate,
    load_certificates,
    mask_dn_value,
)
from kanta_guard.errors import KantaGuardError

H = certgen.hierarchy("test")


def _wrapped(der: bytes, width: int = 64) -> bytes:
    text = base64.b64encode(der)
    return b"\n  ".join(text[i : i + width] for i in range(0, len(text), width))


@pytest.mark.parametrize(
    ("form", "make"),
    [
        ("DER", lambda der: der),
        ("PEM", lambda der: certgen.pem(der)),
        ("PEM with text around it", lambda der: b"Subject: ...\n" + certgen.pem(der) + b"\nend"),
        ("Base64", lambda der: base64.b64encode(der)),
        ("Base64 wrapped as in ds:X509Certificate", lambda der: b"\n  " + _wrapped(der) + b"\n"),
        ("Base64url without padding", lambda der: base64.urlsafe_b64encode(der).rstrip(b"=")),
    ],
)
def test_load_certificate_reads_every_form(form: str, make: object) -> None:
    """DER, PEM, Base64 (wrapped or url-safe) give the same certificate."""
    der = H.service.der
    cert = load_certificate(make(der))  # type: ignore[operator]
    assert cert.der == der, form
    assert cert.sha256 == hashlib.sha256(der).hexdigest().upper()
    assert certificate_der(make(der)) == der  # type: ignore[operator]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"\x30\x03\x02\x01\x01", "a SEQUENCE that is no certificate"),
        (b"not base64 at all!", "text"),
        (base64.b64encode(b"hello world"), "Base64 of something else"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "another PEM block"),
        (b"\x30\x82\x05", "truncated"),
    ],
)
def test_load_certificate_refuses_what_is_no_certificate(data: bytes, why: str) -> None:
    """What is not one readable certificate raises CertificateError (a KantaGuardError)."""
    with pytest.raises(CertificateError):
        load_certificate(data)
    assert issubclass(CertificateError, KantaGuardError), why


def test_load_certificate_refuses_truncated_and_trailing_der() -> None:
    """A certificate cut short, or with bytes after it, is not read."""
    der = H.service.der
    with pytest.raises(CertificateError):
        load_certificate(der[:-10])
    with pytest.raises(CertificateError):
        load_certificate(der + b"\x00\x00")


def test_load_certificate_wants_one_pem_block() -> None:
    """Several PEM certificates are load_certificates' job."""
    with pytest.raises(CertificateError, match="2 PEM certificate blocks"):
        load_certificate(certgen.pem(H.service, H.intermediate))


def test_error_messages_hold_no_certificate_values() -> None:
    """A broken card's error names the structure, not the holder (no name, no serial)."""
    broken = H.card.der[:200] + b"\xff" * 40 + H.card.der[240:]
    with pytest.raises(CertificateError) as caught:
        load_certificate(broken)
    message = str(caught.value)
    for value in ("TESTAAJA", "TIINA", "999012345"):
        assert value not in message


def test_load_certificates_reads_pem_bundles_der_and_pkcs7() -> None:
    """Many PEM blocks, DER, PKCS#7 in DER and PEM: every certificate, in order."""
    order = [H.service.der, H.intermediate.der, H.root.der]
    bundle = certgen.pem(*order)
    assert [c.der for c in load_certificates(bundle)] == order
    assert [c.der for c in load_certificates(H.service.der)] == [H.service.der]
    der7 = certgen.pkcs7_bundle(H.service, H.intermediate, H.root)
    assert {c.der for c in load_certificates(der7)} == set(order)
    pem7 = certgen.pkcs7_bundle(H.service, H.intermediate, encoding="pem")
    assert {c.der for c in load_certificates(pem7)} == {H.service.der, H.intermediate.der}
    assert {c.der for c in load_certificates(base64.b64encode(der7))} == set(order)


def test_load_certificates_skips_other_pem_blocks_but_not_nothing() -> None:
    """A private key block beside a certificate is skipped; a text with no certificate
    block at all raises."""
    key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    assert [c.der for c in load_certificates(key + certgen.pem(H.root))] == [H.root.der]
    with pytest.raises(CertificateError):
        load_certificates(key)
    with pytest.raises(CertificateError):
        load_certificates(b"")


def test_fields_of_a_generated_card() -> None:
    """A card's fields: times aware UTC, policies, no CA, role CARD, serial number."""
    cert = load_certificate(H.card.der)
    assert cert.serial == H.card.cert.serial_number
    assert cert.not_before == datetime(2020, 1, 1, tzinfo=UTC)
    assert cert.not_after.tzinfo is UTC
    assert cert.policies == (certgen.TEST_CARD_POLICY,)
    assert not cert.is_ca and cert.role is CertRole.CARD
    assert cert.key_usage == frozenset({"non_repudiation"})
    assert cert.issuer == H.intermediate.cert.subject.rfc4514_string()


@pytest.mark.parametrize(
    "name",
    [
        certgen.dn(cn="plain", o="Org", c="FI"),
        certgen.dn(cn='comma, plus+ and "quotes" <x>;', o="Org\\slash"),
        certgen.dn(cn="#hash first", o=" leading and trailing "),
        certgen.dn(cn="Ääkköset Åström", sn="Öhman", gn="Åsa", serial="999000001"),
        certgen.dn((NameOID.EMAIL_ADDRESS, "someone@example.test"), cn="x"),
        certgen.dn((NameOID.DOMAIN_COMPONENT, "example"), (NameOID.USER_ID, "u1"), cn="y"),
    ],
)
def test_subject_is_rfc4514_as_cryptography_writes_it(name: cx509.Name) -> None:
    """Our RFC 4514 string (asn1crypto underneath) equals cryptography's, escaping included."""
    leaf = certgen._build(  # one certificate with exactly this subject
        name,
        certgen.new_key(),
        H.intermediate.name,
        H.intermediate.key,
        ca=False,
        path_length=None,
        policies=(),
        key_usage=("digital_signature",),
        not_before=datetime(2020, 1, 1, tzinfo=UTC),
        not_after=datetime(2030, 1, 1, tzinfo=UTC),
    )
    assert load_certificate(leaf.der).subject == name.rfc4514_string()


def test_roles() -> None:
    """CA by basicConstraints, CARD for a person, SERVICE for an organisation or TLS server."""
    assert load_certificate(H.root.der).role is CertRole.CA
    assert load_certificate(H.intermediate.der).role is CertRole.CA
    assert load_certificate(H.card.der).role is CertRole.CARD
    assert load_certificate(H.service.der).role is CertRole.SERVICE
    server = certgen.service(H.intermediate, o="", dns_names=["kanta.example.test"])
    assert load_certificate(server.der).role is CertRole.SERVICE


def test_masked_subject_hides_the_holder_and_keeps_test_markers() -> None:
    """A card's names and number go to initials and "*"; SPECIMEN, Tes and 999 stay."""
    cert = load_certificate(H.card.der)
    masked = cert.masked_subject
    assert "TIINA" not in masked and "TESTAAJA" not in masked and "012345" not in masked
    assert "SPECIMEN-T*******" in masked and "999******" in masked
    assert "SN=SPECIMEN-T*******" in masked and "C=FI" in masked
    tes = load_certificate(certgen.card(H.intermediate, "Virtala Tes", "Aino", "1234").der)
    assert "SN=V****** Tes" in tes.masked_subject and "Aino" not in tes.masked_subject


def test_ordinary_card_subject_is_masked_everywhere() -> None:
    """A card without test markers shows no name, in masked_subject nor in repr."""
    cert = load_certificate(certgen.card(H.intermediate, "Esimerkki", "Erkki", "123456789").der)
    for shown in (cert.masked_subject, repr(cert)):
        assert "Esimerkki" not in shown and "Erkki" not in shown and "123456789" not in shown
    assert "E******** E****" in cert.masked_subject


def test_ca_subject_is_shown_whole() -> None:
    """A CA's name is no personal data: the masked subject is the subject."""
    cert = load_certificate(H.intermediate.der)
    assert cert.masked_subject == cert.subject
    assert "VRK TEST CA for Healthcare Service Providers" in cert.masked_subject


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("SPECIMEN-POTEX TIMO 999004228", "SPECIMEN-P**** T*** 999******"),
        ("Mielikainen Tes Emilia", "M********** Tes E*****"),
        ("1.2.246.556.12005.1", "*.*.***.***.*****.*"),
        ("Maija", "M****"),
    ],
)
def test_mask_dn_value(value: str, masked: str) -> None:
    """Words to their initial, digits hidden, DVV test markers kept."""
    assert mask_dn_value(value) == masked


def test_a_certificate_that_is_not_der_is_read() -> None:
    """Explicit ``critical FALSE`` (BER, not DER): cryptography refuses it, we read it."""
    data = certgen.non_der(H.service, H.intermediate)
    with pytest.raises(ValueError):
        cx509.load_der_x509_certificate(data)
    cert = load_certificate(data)
    assert cert.der == data and cert.role is CertRole.SERVICE
    assert cert.policies == (certgen.TEST_SERVICE_POLICY,)


def test_certificate_pickles_as_its_der() -> None:
    """Scan workers receive certificates by pickle: the copy equals the original."""
    cert = load_certificate(H.card.der)
    copy = pickle.loads(pickle.dumps(cert))
    assert isinstance(copy, Certificate) and copy == cert and copy.role is cert.role


def test_repr_shows_no_raw_subject() -> None:
    """repr() (logs, tracebacks) shows the digest prefix and the masked subject only."""
    text = repr(load_certificate(H.card.der))
    assert "TIINA" not in text and text.startswith("Certificate(sha256=")


# -- the real DVV/VRK certificates ---------------------------------------------------------

REAL = [
    ("production-DVV-Gov-Root-CA-G3-RSA.der", CertRole.CA, "D3ED3FC4"),
    ("production-DVV-Gov-Root-CA-G3-ECC.der", CertRole.CA, "5546A525"),
    ("production-DVV-Citizen-Certificates-G4E.der", CertRole.CA, "AAD1BEAC"),
    ("test-root-VRK-TEST-Root-CA.der", CertRole.CA, "0E113948"),
    ("test-VRK-CA-for-Test-Purposes-G3.der", CertRole.CA, "4A2C23B4"),
    ("test-VRK-TEST-CA-for-Test-Purposes-G4.der", CertRole.CA, "6FB06170"),
    ("test-DVV-TEST-Certificates-G5E.der", CertRole.CA, "3EABE1D1"),
    ("test-card-SPECIMEN-POTEX-TIMO-G3.der", CertRole.CARD, "49A33B38"),
    ("test-card-SPECIMEN-BABAFO-VELI-G4.der", CertRole.CARD, "89D41F32"),
]


@pytest.mark.parametrize(("name", "role", "prefix"), REAL)
def test_real_certificates_are_read(name: str, role: CertRole, prefix: str) -> None:
    """Every real DVV/VRK certificate of ../shared reads, with its role and digest."""
    cert = load_certificate(certgen.shared_cert(name))
    assert cert.role is role and cert.sha256.startswith(prefix)
    assert cert.not_before < cert.not_after


def test_real_card_fields() -> None:
    """The G3 test card: SPECIMEN surname, 999 serial, test policy, masked in display."""
    cert = load_certificate(certgen.shared_cert("test-card-SPECIMEN-POTEX-TIMO-G3.der"))
    assert cert.subject_values("SN") == ("SPECIMEN-POTEX",)
    assert cert.policies == ("1.2.246.517.99.10.32.1",)
    assert "TIMO" not in cert.masked_subject and "SPECIMEN-P****" in cert.masked_subject
    assert cert.issuer_values("O") == ("Vaestorekisterikeskus TEST",)


def test_corpus_certificates_are_read() -> None:
    """Every ds:X509Certificate of the signed corpus CDA documents reads from its Base64."""
    found = certgen.corpus_certificates()
    assert len(found) == 6
    roles = {load_certificate(text).role for _, text in found}
    assert roles == {CertRole.CARD, CertRole.SERVICE}
