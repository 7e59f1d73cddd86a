"""Certificate hierarchies for tests, generated with ``cryptography``: test and production
look-alikes, forgeries, expired ones, cards, and a certificate that is not strict DER.

Import it from any test (``from certgen import hierarchy, card, ...``; no name here starts
with ``test``, so pytest collects nothing from it)::

    h = hierarchy("test")                    # root → intermediate → service leaf and card
    judge = CertJudge(Anchors.of([h.root.der]))
    judge.judge(h.service.der, [h.intermediate.der])          # TEST, verified

    p = hierarchy("production")              # O=Vaestorekisterikeskus CA, policy 1.2.246.517.1.x
    fake_ca, fake_leaf = forgery(h)          # names h.intermediate, signed by another key
    old = service(h.intermediate, not_after=datetime(2019, 1, 1, tzinfo=UTC))   # expired

Keys are EC P-256 (fast to make; RSA with ``key=new_key("rsa")``), dates fixed (2020-2040
unless given), so every run builds the same shapes. The hierarchies are cached per process:
treat them as read-only. Names are invented: the test cards carry DVV's markers
(``SPECIMEN-`` surnames, ``999`` serial numbers), and :func:`card` with other names makes the
"real-looking" card a test must refuse. Real DVV/VRK certificates from ``../shared`` come from
:func:`shared_cert` and :func:`corpus_certificates`, which skip the test when it is absent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

__all__ = [
    "CORPUS",
    "PRODUCTION_CARD_POLICY",
    "PRODUCTION_CA_POLICY",
    "PRODUCTION_SERVICE_POLICY",
    "SHARED_CERTS",
    "TEST_CARD_POLICY",
    "TEST_CA_POLICY",
    "TEST_SERVICE_POLICY",
    "Hierarchy",
    "Issued",
    "ca",
    "card",
    "corpus_certificates",
    "dn",
    "forgery",
    "hierarchy",
    "new_key",
    "non_der",
    "pem",
    "pkcs7_bundle",
    "root",
    "service",
    "sha1_signed",
    "shared_cert",
]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

#: Policy OIDs as DVV uses them (kanta.md): test under 1.2.246.517.99., production under .1.
TEST_CA_POLICY = "1.2.246.517.99.10.9.1"
TEST_SERVICE_POLICY = "1.2.246.517.99.10.9.2"
TEST_CARD_POLICY = "1.2.246.517.99.10.7.1"
PRODUCTION_CA_POLICY = "1.2.246.517.1.10.10.1"
PRODUCTION_SERVICE_POLICY = "1.2.246.517.1.10.10.2"
PRODUCTION_CARD_POLICY = "1.2.246.517.1.10.7.1"

_ROOT = Path(__file__).resolve().parent.parent
#: The shared data beside the checkout (real DVV/VRK certificates, see its README).
SHARED_CERTS = _ROOT.parent / "shared" / "data" / "certs"
#: The signed Kanta CDA documents of the shared corpus.
CORPUS = _ROOT.parent / "shared" / "corpus" / "kanta-cda"

_START = datetime(2020, 1, 1, tzinfo=UTC)
_END = datetime(2040, 1, 1, tzinfo=UTC)
_TEST_O = "Vaestorekisterikeskus TEST"
_PRODUCTION_O = "Vaestorekisterikeskus CA"


@dataclass(frozen=True)
class Issued:
    """A generated certificate with its private key."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def der(self) -> bytes:
        """The certificate, DER."""
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        """The certificate, one PEM block."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def name(self) -> x509.Name:
        """Its subject DN."""
        return self.cert.subject


@dataclass(frozen=True)
class Hierarchy:
    """A root, an intermediate under it, and two leaves under that: a service certificate
    (system signature, TLS) and a professional card."""

    root: Issued
    intermediate: Issued
    service: Issued
    card: Issued

    def chain(self, leaf: Issued | None = None) -> list[bytes]:
        """DERs in TLS order: ``leaf`` (default the service certificate), the intermediate."""
        return [(leaf or self.service).der, self.intermediate.der]


@cache
def _cached_key(label: str, kind: str) -> PrivateKey:
    return new_key(kind)


def new_key(kind: str = "ec") -> PrivateKey:
    """A fresh private key: ``"ec"`` (P-256) or ``"rsa"`` (2048 bits)."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def dn(*pairs: tuple[x509.ObjectIdentifier, str], cn: str | None = None, **named: str) -> x509.Name:
    """A DN, most general first: ``dn(cn="X", o="Org", c="FI")``, ``sn``/``gn``/``serial``/
    ``ou``/``title`` for a person; more attributes as ``(oid, value)`` pairs."""
    oids = {
        "c": NameOID.COUNTRY_NAME,
        "st": NameOID.STATE_OR_PROVINCE_NAME,
        "o": NameOID.ORGANIZATION_NAME,
        "ou": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "title": NameOID.TITLE,
        "serial": NameOID.SERIAL_NUMBER,
        "gn": NameOID.GIVEN_NAME,
        "sn": NameOID.SURNAME,
    }
    attrs = [x509.NameAttribute(oids[key], value) for key, value in named.items()]
    attrs += [x509.NameAttribute(oid, value) for oid, value in pairs]
    if cn is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _build(
    subject: x509.Name,
    key: PrivateKey,
    issuer_name: x509.Name,
    signer: PrivateKey,
    *,
    ca: bool,
    path_length: int | None,
    policies: Sequence[str],
    key_usage: Sequence[str],
    not_before: datetime,
    not_after: datetime,
    issuer_key_id: bool = True,
    dns_names: Sequence[str] = (),
    server: bool = False,
    digest: hashes.HashAlgorithm | None = None,
) -> Issued:
    usage = set(key_usage)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature="digital_signature" in usage,
                content_commitment="non_repudiation" in usage,
                key_encipherment="key_encipherment" in usage,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign="key_cert_sign" in usage,
                crl_sign="crl_sign" in usage,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer_key_id:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
    if policies:
        builder = builder.add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier(p), None) for p in policies]
            ),
            critical=False,
        )
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    if server:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return Issued(builder.sign(signer, digest or hashes.SHA256()), key)


_CA_USAGE = ("key_cert_sign", "crl_sign")


def root(
    cn: str = "VRK TEST Root CA - G9",
    o: str = _TEST_O,
    *,
    key: PrivateKey | None = None,
    not_before: datetime = _START,
    not_after: datetime = _END,
    path_length: int | None = None,
) -> Issued:
    """A self-signed root CA (default: a test root with an invented generation, G9)."""
    key = key or _cached_key(f"root:{cn}:{o}", "ec")
    name = dn(c="FI", o=o, ou="Varmennepalvelut", cn=cn)
    return _build(
        name,
        key,
        name,
        key,
        ca=True,
        path_length=path_length,
        policies=(),
        key_usage=_CA_USAGE,
        not_before=not_before,
        not_after=not_after,
    )


def ca(
    issuer: Issued,
    cn: str = "VRK TEST CA for Healthcare Service Providers",
    o: str = _TEST_O,
    *,
    policies: Sequence[str] = (TEST_CA_POLICY,),
    key: PrivateKey | None = None,
    path_length: int | None = 0,
    key_usage: Sequence[str] = _CA_USAGE,
    is_ca: bool = True,
    not_before: datetime = _START,
    not_after: datetime = _END,
    signer: PrivateKey | None = None,
) -> Issued:
    """An intermediate CA issued by ``issuer`` (``signer`` signs instead of the issuer's key:
    a forgery; ``is_ca=False`` or a ``key_usage`` without ``key_cert_sign``: a broken one)."""
    key = key or new_key()
    return _build(
        dn(c="FI", o=o, ou="Testivarmenteet", cn=cn),
        key,
        issuer.name,
        signer or issuer.key,
        ca=is_ca,
        path_length=path_length if is_ca else None,
        policies=policies,
        key_usage=key_usage,
        not_before=not_before,
        not_after=not_after,
        issuer_key_id=signer is None,
    )


def service(
    issuer: Issued,
    cn: str = "kanta-guard-testipalvelu",
    o: str = "Testiorganisaatio Oy",
    *,
    policies: Sequence[str] = (TEST_SERVICE_POLICY,),
    key: PrivateKey | None = None,
    not_before: datetime = _START,
    not_after: datetime = _END,
    dns_names: Sequence[str] = (),
    signer: PrivateKey | None = None,
    digest: hashes.HashAlgorithm | None = None,
) -> Issued:
    """A service certificate (system signature; TLS server with ``dns_names``) of ``o``,
    signed with SHA-256 unless ``digest`` says otherwise (``hashes.SHA1()`` as the old VRK
    test hierarchy signed)."""
    return _build(
        dn(c="FI", o=o, ou="Testipalvelut", cn=cn),
        key or new_key(),
        issuer.name,
        signer or issuer.key,
        ca=False,
        path_length=None,
        policies=policies,
        key_usage=("digital_signature", "non_repudiation"),
        not_before=not_before,
        not_after=not_after,
        dns_names=dns_names,
        server=bool(dns_names),
        issuer_key_id=signer is None,
        digest=digest,
    )


def card(
    issuer: Issued,
    surname: str = "SPECIMEN-TESTAAJA",
    given: str = "TIINA",
    serial: str = "999012345",
    *,
    title: str | None = None,
    policies: Sequence[str] = (TEST_CARD_POLICY,),
    not_before: datetime = _START,
    not_after: datetime = _END,
    signer: PrivateKey | None = None,
) -> Issued:
    """A person's card (nonRepudiation), CN "SURNAME GIVEN SERIAL" as DVV writes it. The
    defaults are a DVV-style test card; pass invented ordinary names for one that is not."""
    named = {"c": "FI", "serial": serial, "gn": given, "sn": surname}
    if title is not None:
        named["title"] = title
    return _build(
        dn(cn=f"{surname} {given} {serial}", **named),
        new_key(),
        issuer.name,
        signer or issuer.key,
        ca=False,
        path_length=None,
        policies=policies,
        key_usage=("non_repudiation",),
        not_before=not_before,
        not_after=not_after,
        issuer_key_id=signer is None,
    )


def hierarchy(kind: str = "test") -> Hierarchy:
    """The cached hierarchy of ``kind``: ``"test"`` (:func:`_test_hierarchy`) or
    ``"production"`` (:func:`_production_hierarchy`)."""
    if kind == "production":
        return _production_hierarchy()
    if kind != "test":
        raise ValueError(f"no {kind!r} hierarchy: 'test' or 'production'")
    return _test_hierarchy()


@cache
def _test_hierarchy() -> Hierarchy:
    """A test hierarchy: ``VRK TEST Root CA - G9`` → ``VRK TEST CA for Healthcare Service
    Providers`` (O=Vaestorekisterikeskus TEST, test policies) → a service certificate and a
    ``SPECIMEN-TESTAAJA TIINA 999012345`` card."""
    top = root()
    middle = ca(top)
    return Hierarchy(top, middle, service(middle), card(middle))


@cache
def _production_hierarchy() -> Hierarchy:
    """A production look-alike: ``VRK Gov. Root CA - G9`` → ``VRK CA for Social Welfare and
    Health Care Service Providers`` (O=Vaestorekisterikeskus CA, policies 1.2.246.517.1.x) →
    a service certificate and a card with invented ordinary names."""
    top = root("VRK Gov. Root CA - G9", _PRODUCTION_O)
    middle = ca(
        top,
        "VRK CA for Social Welfare and Health Care Service Providers",
        _PRODUCTION_O,
        policies=(PRODUCTION_CA_POLICY,),
    )
    leaf = service(middle, policies=(PRODUCTION_SERVICE_POLICY,))
    person = card(middle, "Esimerkki", "Erkki", "123456789", policies=(PRODUCTION_CARD_POLICY,))
    return Hierarchy(top, middle, leaf, person)


def forgery(genuine: Hierarchy) -> tuple[Issued, Issued]:
    """A forged intermediate with the genuine intermediate's name (under a root of the same
    name too, but other keys), and a service leaf it signed: it *names* the test CA and
    verifies only to the forger's root."""
    fake_root = root(_cn(genuine.root), key=new_key())
    fake_ca = ca(fake_root, _cn(genuine.intermediate))
    return fake_ca, service(fake_ca)


def _cn(issued: Issued) -> str:
    return str(issued.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def pem(*certs: Issued | bytes) -> bytes:
    """PEM text of several certificates, one block each."""
    out = b""
    for item in certs:
        der = item.der if isinstance(item, Issued) else item
        out += x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    return out


def pkcs7_bundle(*certs: Issued, encoding: str = "der") -> bytes:
    """A PKCS#7 SignedData carrying ``certs`` (DER, or PEM with ``encoding="pem"``)."""
    enc = serialization.Encoding.PEM if encoding == "pem" else serialization.Encoding.DER
    return pkcs7.serialize_certificates([c.cert for c in certs], enc)


# -- a certificate that is BER but not DER -------------------------------------------------


def _tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        head = bytes([length])
    else:
        size = length.to_bytes((length.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(size)]) + size
    return bytes([tag]) + head + content


def _children(content: bytes) -> list[bytes]:
    """The TLVs inside a constructed DER value (definite lengths, one-byte tags)."""
    items = []
    pos = 0
    while pos < len(content):
        start = pos
        pos += 1
        first = content[pos]
        pos += 1
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            length = int.from_bytes(content[pos : pos + count], "big")
            pos += count
        pos += length
        items.append(content[start:pos])
    return items


def _content(tlv: bytes) -> bytes:
    first = tlv[1]
    skip = 2 if first < 0x80 else 2 + (first & 0x7F)
    return tlv[skip:]


def non_der(leaf: Issued, issuer: Issued) -> bytes:
    """``leaf`` re-encoded with every non-critical extension's ``critical FALSE`` written out
    (BER allows it; DER forbids encoding a DEFAULT value, X.690 §11.5) and re-signed by
    ``issuer``: valid, verifiable, and refused by ``cryptography``'s strict parser, as some real
    DVV certificates are."""
    outer = _children(_content(leaf.der))
    rebuilt = []
    for part in _children(_content(outer[0])):
        if part[0] == 0xA3:  # [3] EXPLICIT Extensions
            extensions = []
            for extension in _children(_content(_children(_content(part))[0])):
                fields = _children(_content(extension))
                if len(fields) == 2:  # no BOOLEAN: write critical FALSE explicitly
                    fields = [fields[0], b"\x01\x01\x00", fields[1]]
                extensions.append(_tlv(0x30, b"".join(fields)))
            part = _tlv(0xA3, _tlv(0x30, b"".join(extensions)))
        rebuilt.append(part)
    return _signed(rebuilt, outer[1], issuer.key, hashes.SHA256())


# sha1WithRSAEncryption (RFC 3279 §2.2.1), parameters NULL.
_SHA1_RSA = bytes.fromhex("300d06092a864886f70d0101050500")


def sha1_signed(leaf: Issued, issuer: Issued) -> bytes:
    """``leaf`` re-signed by ``issuer`` (an RSA key) with SHA-1, as the VRK test hierarchy
    signed until about 2015 (OpenSSL no longer lets a builder do it: the TBS is re-signed
    by hand)."""
    if not isinstance(issuer.key, rsa.RSAPrivateKey):
        raise TypeError("SHA-1 signatures here are RSA's: give an issuer with an RSA key")
    parts = _children(_content(_children(_content(leaf.der))[0]))
    parts[2] = _SHA1_RSA  # TBSCertificate.signature (version, serial, then this)
    return _signed(parts, _SHA1_RSA, issuer.key, hashes.SHA1())


def _signed(
    tbs_parts: list[bytes], algorithm: bytes, key: PrivateKey, digest: hashes.HashAlgorithm
) -> bytes:
    tbs = _tlv(0x30, b"".join(tbs_parts))
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(tbs, padding.PKCS1v15(), digest)
    else:
        signature = key.sign(tbs, ec.ECDSA(digest))
    return _tlv(0x30, tbs + algorithm + _tlv(0x03, b"\x00" + signature))


# -- the real certificates of ../shared ----------------------------------------------------


def shared_cert(name: str) -> bytes:
    """A real DVV/VRK certificate of ``../shared/data/certs`` (DER), or skip saying why."""
    path = SHARED_CERTS / name
    if not path.is_file():
        pytest.skip(f"shared certificates not found at {SHARED_CERTS} (beside the checkout)")
    return path.read_bytes()


_X509_CERTIFICATE = re.compile(r"<(?:[\w.-]+:)?X509Certificate>([^<]+)</", re.ASCII)


def corpus_certificates() -> list[tuple[str, bytes]]:
    """(file name, Base64 text) of every ``ds:X509Certificate`` in the signed corpus CDA
    documents, in document order; skip when the corpus is absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (beside the checkout)")
    found = []
    for path in sorted(CORPUS.glob("*.xml")):
        text = path.read_text("utf-8", errors="replace")
        found.extend(
            (path.name, m.group(1).encode("ascii")) for m in _X509_CERTIFICATE.finditer(text)
        )
    return found
