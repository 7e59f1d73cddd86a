"""Reading X.509 certificates: DER, PEM, Base64 text and PKCS#7/CMS bundles into frozen values.

The parser is asn1crypto's, on purpose: some real DVV/VRK certificates are valid BER but not
strict DER (an explicitly encoded DEFAULT value such as ``critical FALSE``, a PrintableString
holding characters outside its alphabet), and ``cryptography``'s parser refuses them. X.509
(RFC 5280 §4.1) asks issuers for DER; a reader that accepts the BER forms the signature still
covers loses nothing, because the signature is checked over the bytes as they were sent
(asn1crypto keeps them). What cannot be read at all raises :class:`CertificateError`, which the
callers turn into ``unscannable``: a certificate the guard cannot read is never passed.

A :class:`Certificate` holds the subject as an RFC 4514 string, raw. A card holder's name is
personal data: show :attr:`Certificate.masked_subject`, never ``subject``, and the ``repr`` of a
certificate shows only the masked form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import x509 as asn1_x509

from ..contacts import mask_name
from ..errors import KantaGuardError

__all__ = [
    "ATTRIBUTE_KEYS",
    "PERSON_ATTRIBUTES",
    "VISIBLE_ATTRIBUTES",
    "CertRole",
    "Certificate",
    "CertificateError",
    "certificate_der",
    "is_pki_path",
    "load_certificate",
    "load_certificates",
    "mask_dn_value",
]


class CertificateError(KantaGuardError):
    """Bytes that are not a certificate, or one that cannot be read at all.

    The message says *what* could not be read (the form, the structure), never a subject name,
    a serial number or any other value of the certificate.
    """


class CertRole(StrEnum):
    """What a certificate is for, as far as its content shows (see :func:`_role`)."""

    CA = "ca"  #: basicConstraints cA: a root or an intermediate
    CARD = "card"  #: a person's card: professional or citizen (names, SPECIMEN, nonRepudiation)
    SERVICE = "service"  #: a server or system-signature certificate of an organisation
    UNKNOWN = "unknown"  #: none of these shows


#: DN attribute types by OID, to the key used in :attr:`Certificate.subject_attrs` (the common
#: LDAP short names, RFC 4519 / RFC 5280 Appendix A).
ATTRIBUTE_KEYS: dict[str, str] = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "title",
    "2.5.4.15": "businessCategory",
    "2.5.4.16": "postalAddress",
    "2.5.4.17": "postalCode",
    "2.5.4.20": "telephoneNumber",
    "2.5.4.41": "name",
    "2.5.4.42": "GN",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier",
    "2.5.4.46": "dnQualifier",
    "2.5.4.65": "pseudonym",
    "2.5.4.97": "organizationIdentifier",
    "1.2.840.113549.1.9.1": "emailAddress",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
}
# RFC 4514 §3: the only short names a conforming string uses; every other type is its dotted
# OID (as cryptography's ``Name.rfc4514_string`` writes them too).
_RFC4514_NAMES = frozenset({"CN", "L", "ST", "O", "OU", "C", "STREET", "DC", "UID"})
#: Attributes that name an organisation or a place, not a person: shown whole in a masked DN.
VISIBLE_ATTRIBUTES = frozenset(
    {"C", "ST", "L", "O", "OU", "DC", "organizationIdentifier", "businessCategory"}
)
#: Attributes that only a person has: their presence makes a subject a card holder's.
PERSON_ATTRIBUTES = frozenset({"SN", "GN", "initials", "generationQualifier", "pseudonym"})
# ETSI EN 319 411-2 §5.3 policies for qualified certificates issued to natural persons (QCP-n,
# QCP-n-qscd) and their ETSI TS 101 456 predecessors (QCP public + SSCD, QCP public).
_NATURAL_PERSON_POLICIES = frozenset(
    {"0.4.0.194112.1.0", "0.4.0.194112.1.2", "0.4.0.1456.1.1", "0.4.0.1456.1.2"}
)
_TLS_USAGES = frozenset({"server_auth", "client_auth"})
# Test markers that stay visible in a masked subject (they are no one's name, and a tester
# needs to see them): the DVV test-card surnames "SPECIMEN-…" and "… Tes".
_VISIBLE_TOKENS = frozenset({"specimen", "tes"})
# A DVV test card's serial number (SATU) starts with 999: the prefix stays visible.
_TEST_SERIAL_PREFIX = "999"
_TOKEN = re.compile(r"[^\s\-,]+")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_CERT_LABELS = frozenset({b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"})
_CMS_LABELS = frozenset({b"PKCS7", b"CMS", b"PKCS #7 SIGNED DATA"})
_URLSAFE = bytes.maketrans(b"-_", b"+/")


@dataclass(frozen=True, slots=True, repr=False)
class Certificate:
    """One X.509 certificate, read once; every field a plain value.

    ``subject`` is raw (a card holder's name and identity number are in it): never log it, show
    :attr:`masked_subject`. ``issuer`` is shown as is (CA names are not personal data), but
    :attr:`masked_issuer` is what goes into messages, in case a self-made "CA" is a person.
    Two certificates are equal when their DER is (the other fields follow from it).
    """

    der: bytes
    sha256: str  #: upper-case hex of the DER
    subject: str  #: RFC 4514, raw: never log it
    issuer: str  #: RFC 4514 string of the issuer DN
    serial: int
    not_before: datetime  #: aware, UTC
    not_after: datetime  #: aware, UTC
    policies: tuple[str, ...]  #: certificate policy OIDs (dotted), in the certificate's order
    is_ca: bool  #: basicConstraints cA
    role: CertRole
    #: (attribute key, value) of the subject DN in DER order; keys from :data:`ATTRIBUTE_KEYS`,
    #: or the dotted OID. Raw values: never log them.
    subject_attrs: tuple[tuple[str, str], ...] = field(compare=False)
    issuer_attrs: tuple[tuple[str, str], ...] = field(compare=False)
    #: The DNs in comparison form (RFC 5280 §7.1, see :func:`_name_key`): for issuer matching.
    subject_key: str = field(compare=False)
    issuer_key: str = field(compare=False)
    key_usage: frozenset[str] = field(compare=False)  #: asn1crypto's names: ``key_cert_sign`` ...
    extended_key_usage: frozenset[str] = field(compare=False)  #: names or dotted OIDs
    path_length: int | None = field(compare=False)  #: basicConstraints pathLenConstraint
    self_issued: bool = field(compare=False)  #: subject DN equals issuer DN
    asn1: asn1_x509.Certificate = field(compare=False, hash=False)  #: the parsed certificate

    def __repr__(self) -> str:
        return (
            f"Certificate(sha256={self.sha256[:16]}…, subject={self.masked_subject!r}, "
            f"role={self.role.value})"
        )

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # Pickled as its DER (the scan workers receive the policy, anchors included, by pickle).
        return (load_certificate, (self.der,))

    @property
    def masked_subject(self) -> str:
        """The subject as RFC 4514, personal attributes masked (a CA's subject shown whole).

        Kept visible: the organisation and place attributes (:data:`VISIBLE_ATTRIBUTES`), and the
        DVV test markers inside a name (``SPECIMEN``, ``Tes`` and a serial number's ``999``
        prefix), which are no one's name and tell a tester why a card passed. Every other
        attribute of a non-CA certificate (CN, SN, GN, serialNumber, emailAddress, UID, title ...)
        goes to first letters and "*" as :func:`kanta_guard.contacts.mask_name` does.
        """
        if self.is_ca:
            return self.subject
        return _rfc4514(self.subject_attrs, mask=True)

    @property
    def masked_issuer(self) -> str:
        """The issuer DN for messages: whole, but for person attributes (a self-issued non-CA
        certificate names its holder as its issuer, and so does a card posing as a CA)."""
        if self.self_issued and not self.is_ca:
            return self.masked_subject
        return _rfc4514(self.issuer_attrs, mask=True, keep_cn=True)

    def subject_values(self, key: str) -> tuple[str, ...]:
        """The values of one subject attribute (``"O"``, ``"SN"`` ...), raw."""
        return tuple(value for k, value in self.subject_attrs if k == key)

    def issuer_values(self, key: str) -> tuple[str, ...]:
        """The values of one issuer attribute, raw."""
        return tuple(value for k, value in self.issuer_attrs if k == key)

    def expired_at(self, at: datetime) -> bool:
        """True if ``at`` lies outside the certificate's validity (RFC 5280 §4.1.2.5)."""
        return not (self.not_before <= at <= self.not_after)


# -- loading -------------------------------------------------------------------------------


def load_certificate(data: bytes) -> Certificate:
    """One certificate from DER, one PEM ``CERTIFICATE`` block, or Base64 text of the DER.

    Base64 text may be wrapped by whitespace (as in XML-DSig ``ds:X509Certificate``), and may
    be Base64url (as some JWS producers write ``x5c``). Raises :class:`CertificateError` for
    anything that is not one readable certificate (PEM with several: use
    :func:`load_certificates`).
    """
    der, trailing = _single_der(data)
    return _from_der(der, trailing=trailing)


def certificate_der(data: bytes) -> bytes:
    """The DER bytes of what :func:`load_certificate` would read, without parsing the ASN.1:
    the cheap step a cache keys on (``sha256`` of it). Raises :class:`CertificateError` when
    ``data`` is neither DER, one PEM certificate block, nor Base64."""
    return _single_der(data)[0]


def _single_der(data: bytes) -> tuple[bytes, bool]:
    """The DER of one certificate, and whether bytes may follow it (OpenSSL's ``TRUSTED
    CERTIFICATE`` PEM appends its trust settings)."""
    if not data:
        raise CertificateError("no certificate: the data is empty")
    if data[:1] == b"\x30":
        return data, False
    blocks = [(label, body) for label, body in _pem_blocks(data) if label in _CERT_LABELS]
    if blocks:
        if len(blocks) > 1:
            raise CertificateError(
                f"{len(blocks)} PEM certificate blocks where one certificate was expected"
            )
        label, body = blocks[0]
        return _b64decode(body, "the PEM certificate block"), label == b"TRUSTED CERTIFICATE"
    if b"-----BEGIN" in data:
        raise CertificateError("PEM text without a CERTIFICATE block")
    return _b64decode(data, "the Base64 text"), False


def load_certificates(data: bytes) -> list[Certificate]:
    """Every certificate in ``data``, in order.

    Accepts PEM text with any number of ``CERTIFICATE`` and ``PKCS7``/``CMS`` blocks (other
    blocks, a private key say, are skipped), one DER certificate, a DER PKCS#7/CMS
    ``ContentInfo`` of SignedData (its ``certificates`` field; attribute certificates and other
    choices skipped), a DER ``PkiPath`` (``SEQUENCE OF Certificate``: WS-Security's
    ``X509PKIPathv1`` token, ``application/pkix-pkipath``), and the Base64 text of any of these
    DER forms. A SignedData without certificates gives ``[]``; anything else unreadable raises
    :class:`CertificateError`.
    """
    if not data:
        raise CertificateError("no certificate: the data is empty")
    if b"-----BEGIN" in data:
        found: list[Certificate] = []
        seen = False
        for label, body in _pem_blocks(data):
            if label in _CERT_LABELS:
                seen = True
                der = _b64decode(body, "a PEM certificate block")
                found.append(_from_der(der, trailing=label == b"TRUSTED CERTIFICATE"))
            elif label in _CMS_LABELS:
                seen = True
                found.extend(_from_cms(_b64decode(body, "a PEM PKCS#7 block")))
        if not seen:
            raise CertificateError("PEM text without a CERTIFICATE or PKCS7 block")
        return found
    der = data if data[:1] == b"\x30" else _b64decode(data, "the Base64 text")
    if _is_content_info(der):
        return _from_cms(der)
    if is_pki_path(der):
        return _from_pki_path(der)
    return [_from_der(der)]


def _pem_blocks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(label, Base64 body) of each PEM block (RFC 7468), in order."""
    for match in _PEM_BLOCK.finditer(data):
        yield match.group(1), match.group(2)


def _b64decode(text: bytes, what: str) -> bytes:
    """Base64 (or Base64url) with any whitespace, padding optional; CertificateError if not."""
    compact = text.translate(None, b" \t\r\n\f\v").rstrip(b"=")
    if b"-" in compact or b"_" in compact:
        compact = compact.translate(_URLSAFE)
    compact += b"=" * (-len(compact) % 4)
    try:
        # validate=True: any byte outside the alphabet is an error, not skipped.
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise CertificateError(f"{what} is neither DER nor valid Base64") from None


def _is_content_info(der: bytes) -> bool:
    """True if ``der`` opens as a CMS ContentInfo (SEQUENCE { OID, [0] ... }), not a
    certificate (SEQUENCE { SEQUENCE tbs ... })."""
    try:
        outer = asn1_core.Asn1Value.load(der)
        first = asn1_core.Asn1Value.load(outer.contents)
    except (ValueError, TypeError):
        return False
    return bool(first.tag == 6 and first.class_ == 0)  # universal OBJECT IDENTIFIER


def is_pki_path(der: bytes) -> bool:
    """True if ``der`` opens as a PkiPath (``SEQUENCE OF Certificate``, ITU-T X.509 §11.2.1,
    the WS-Security X.509 Token Profile's ``X509PKIPathv1``), not one certificate: its first
    element is a certificate, whose own first element is a SEQUENCE (the tbsCertificate),
    where a certificate's tbsCertificate opens with its version ``[0]`` or serial INTEGER."""
    try:
        outer = asn1_core.Asn1Value.load(der)
        first = asn1_core.Asn1Value.load(outer.contents)
        inner = asn1_core.Asn1Value.load(first.contents)
    except (ValueError, TypeError):
        return False
    universal_sequence = (outer.class_, outer.tag, first.class_, first.tag) == (0, 16, 0, 16)
    return bool(universal_sequence and inner.class_ == 0 and inner.tag == 16)


class _PkiPath(asn1_core.SequenceOf):  # type: ignore[misc]
    _child_spec = asn1_x509.Certificate


def _from_pki_path(der: bytes) -> list[Certificate]:
    try:
        ders = [cert.dump() for cert in _PkiPath.load(der)]
    except Exception:  # asn1crypto raises many kinds on malformed input: all unreadable
        raise CertificateError("an unreadable PkiPath (SEQUENCE OF Certificate)") from None
    if not ders:
        raise CertificateError("an empty PkiPath (SEQUENCE OF Certificate)")
    return [_from_der(item) for item in ders]


def _from_cms(der: bytes) -> list[Certificate]:
    try:
        info = asn1_cms.ContentInfo.load(der)
        if info["content_type"].native != "signed_data":
            raise CertificateError("a PKCS#7/CMS structure that is not SignedData")
        choices = info["content"]["certificates"]
        if isinstance(choices, asn1_core.Void):
            return []  # a SignedData may carry no certificates (RFC 5652 §5.1: OPTIONAL)
        ders = [choice.chosen.dump() for choice in choices if choice.name == "certificate"]
    except CertificateError:
        raise
    except Exception:  # asn1crypto raises many kinds on malformed input: all unreadable
        raise CertificateError("an unreadable PKCS#7/CMS SignedData structure") from None
    return [_from_der(item) for item in ders]


def _from_der(der: bytes, *, trailing: bool = False) -> Certificate:
    """A certificate from its DER (BER forms accepted); trailing bytes refused unless
    ``trailing`` (OpenSSL's TRUSTED CERTIFICATE appends its trust settings)."""
    try:
        parsed = asn1_x509.Certificate.load(der, strict=not trailing)
        own = parsed.dump()
        if trailing:
            der = own
        return _build(der, parsed)
    except CertificateError:
        raise
    except Exception:
        # Any failure of the parser on untrusted bytes means unreadable. asn1crypto's messages
        # may quote the bytes they choked on: none of it goes on.
        raise CertificateError("not a readable X.509 certificate (ASN.1 structure)") from None


def _build(der: bytes, parsed: asn1_x509.Certificate) -> Certificate:
    """Every field read now (asn1crypto parses lazily): a certificate that cannot be read
    fails here, at load time, not in the middle of a judgement."""
    tbs = parsed["tbs_certificate"]
    subject_attrs = tuple(_attributes(tbs["subject"]))
    issuer_attrs = tuple(_attributes(tbs["issuer"]))
    policies_value = parsed.certificate_policies_value
    policies = tuple(info["policy_identifier"].dotted for info in (policies_value or ()))
    key_usage_value = parsed.key_usage_value
    key_usage = frozenset(key_usage_value.native) if key_usage_value is not None else frozenset()
    eku_value = parsed.extended_key_usage_value
    extended = frozenset(str(u) for u in eku_value.native) if eku_value is not None else frozenset()
    basic = parsed.basic_constraints_value
    is_ca = bool(basic["ca"].native) if basic is not None else False
    path_length = parsed.max_path_length if is_ca else None
    san = parsed.subject_alt_name_value
    dns_names = bool(san) and any(name.name == "dns_name" for name in san)
    not_before = _utc(tbs["validity"]["not_before"].native)
    not_after = _utc(tbs["validity"]["not_after"].native)
    role = _role(is_ca, subject_attrs, policies, key_usage, extended, dns_names)
    subject_key = _name_key(tbs["subject"])
    issuer_key = _name_key(tbs["issuer"])
    return Certificate(
        der=der,
        sha256=hashlib.sha256(der).hexdigest().upper(),
        subject=_rfc4514(subject_attrs),
        issuer=_rfc4514(issuer_attrs),
        serial=int(tbs["serial_number"].native),
        not_before=not_before,
        not_after=not_after,
        policies=policies,
        is_ca=is_ca,
        role=role,
        subject_attrs=subject_attrs,
        issuer_attrs=issuer_attrs,
        subject_key=subject_key,
        issuer_key=issuer_key,
        key_usage=key_usage,
        extended_key_usage=extended,
        path_length=path_length,
        self_issued=subject_key == issuer_key,
        asn1=parsed,
    )


def _name_key(name: asn1_x509.Name) -> str:
    """A DN in a form that compares as RFC 5280 §7.1 asks, near enough: attribute types by
    OID, string values NFKC-normalised, case-folded, inner whitespace collapsed (the LDAP
    string preparation of RFC 4518 that asn1crypto's ``Name.hashable`` runs costs 60 % of a
    certificate's reading; path validation itself uses asn1crypto's own comparison)."""
    rdns: list[str] = []
    for rdn in name.chosen:
        parts = []
        for attribute in rdn:
            native = attribute["value"].native
            value = (
                " ".join(unicodedata.normalize("NFKC", native).casefold().split())
                if isinstance(native, str)
                else attribute["value"].dump().hex()
            )
            parts.append(f"{attribute['type'].dotted}={value}")
        rdns.append("+".join(sorted(parts)))
    return "\x1e".join(rdns)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _attributes(name: asn1_x509.Name) -> Iterator[tuple[str, str]]:
    """(key, value) of each attribute of a DN in DER order (RDNs in sequence, then within)."""
    for rdn in name.chosen:
        for attribute in rdn:
            oid = attribute["type"].dotted
            value = attribute["value"]
            native = value.native
            # Not a string type: RFC 4514 §2.4, "#" and the hex of its BER encoding.
            text = native if isinstance(native, str) else "#" + value.dump().hex()
            yield ATTRIBUTE_KEYS.get(oid, oid), text


def _role(
    is_ca: bool,
    subject: tuple[tuple[str, str], ...],
    policies: tuple[str, ...],
    key_usage: frozenset[str],
    extended: frozenset[str],
    dns_names: bool,
) -> CertRole:
    """What the certificate is for, from its content.

    CA by basicConstraints. CARD for a person: a person attribute (surname, given name,
    pseudonym ...), a ``SPECIMEN`` test name, a qualified natural-person policy (ETSI), or a
    nonRepudiation key for a subject with no organisation. SERVICE for an organisation's
    server or system: an organisation attribute, a TLS usage or a DNS name. UNKNOWN otherwise.
    """
    if is_ca:
        return CertRole.CA
    keys = {key for key, _ in subject}
    if keys & PERSON_ATTRIBUTES:
        return CertRole.CARD
    if any(
        token.casefold() == "specimen"
        for key, value in subject
        if key == "CN"
        for token in _TOKEN.findall(value)
    ):
        return CertRole.CARD
    if _NATURAL_PERSON_POLICIES.intersection(policies):
        return CertRole.CARD
    if "non_repudiation" in key_usage and "O" not in keys:
        return CertRole.CARD
    if "O" in keys or extended & _TLS_USAGES or dns_names:
        return CertRole.SERVICE
    return CertRole.UNKNOWN


# -- RFC 4514 and masking ------------------------------------------------------------------


def _rfc4514(attrs: Iterable[tuple[str, str]], *, mask: bool = False, keep_cn: bool = False) -> str:
    """The DN as RFC 4514 writes it: the RDNs in reverse order, short names of §3 or dotted
    OIDs, values escaped (§2.4). With ``mask``, the values of person attributes masked
    (:func:`mask_dn_value`); ``keep_cn`` keeps the CN too (a CA's name).

    Multi-valued RDNs are written as separate RDNs: certificates in the wild do not use them,
    and the string is for people (DNs are compared by their RFC 5280 form, ``subject_key``).
    A masked DN names every attribute by its short name (``SN=S***``, ``serialNumber=999***``):
    it is read by people, not parsed.
    """
    parts: list[str] = []
    for key, value in attrs:
        name = key if mask or key in _RFC4514_NAMES else _oid_of(key)
        shown = value
        if mask and key not in VISIBLE_ATTRIBUTES and not (keep_cn and key == "CN"):
            shown = mask_dn_value(value)
        parts.append(f"{name}={_escape(shown)}")
    return ",".join(reversed(parts))


_KEY_OIDS = {key: oid for oid, key in ATTRIBUTE_KEYS.items()}


def _oid_of(key: str) -> str:
    return _KEY_OIDS.get(key, key)


def _escape(value: str) -> str:
    """RFC 4514 §2.4 escaping (as cryptography's ``_escape_dn_value`` does it)."""
    if not value or (value.startswith("#") and re.fullmatch(r"#[0-9a-f]*", value)):
        return value  # empty, or already the hex form of a non-string value
    for char in '\\"+,;<>':
        value = value.replace(char, "\\" + char)
    value = value.replace("\0", "\\00")
    if value[0] in "# ":
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value


def mask_dn_value(value: str) -> str:
    """A DN value with its name parts masked: each word to its first letter and "*"
    (:func:`~kanta_guard.contacts.mask_name`), digits to "*"; the DVV test markers
    ``SPECIMEN`` and ``Tes`` and a leading ``999`` of a number kept visible.

    >>> mask_dn_value("SPECIMEN-POTEX TIMO 999004228")
    'SPECIMEN-P**** T*** 999******'
    >>> mask_dn_value("Virtala Tes Aino")
    'V****** Tes A***'
    """

    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if _fold(token) in _VISIBLE_TOKENS:
            return token
        if token.startswith(_TEST_SERIAL_PREFIX) and token[:1].isdigit():
            return _TEST_SERIAL_PREFIX + re.sub(r"[^\W_]", "*", token[3:])
        return mask_name(token)

    return _TOKEN.sub(one, value)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
