"""Certificates in a request: DER X.509 and PKCS#7/CMS payloads, and PEM blocks in any text.

What this module finds is judged by :mod:`kanta_guard.detectors.certificates` once the whole
request has been read (``model.CertificateItem``): the certificates of one request are each
other's intermediates. The parsers reach certificates where they travel (the XML parser's
Base64 in ``ds:X509Certificate`` and ``wsse:BinarySecurityToken``, the JSON parser's ``x5c``
strings, a JWT's header in ``Authorization``): each decodes to DER, which this parser claims
by its shape. PEM blocks are found in the bytes of any payload (a text body, an XML text node,
a JSON string with its line breaks escaped) by :func:`pem_items`.

Fail closed: bytes shaped like a DER certificate or a CMS SignedData that cannot be read are
unscannable, never passed as a blob; so is a PEM block that does not decode.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache

from ..certs import CertificateError, load_certificates
from ..errors import UnscannableError
from ..idcode import mask_any_form
from ..mediatype import MediaType
from ..model import CertificateItem, Context, Payload
from .base import Item, ScanState, decode_base64

__all__ = [
    "CERTIFICATE_TYPES",
    "CertificateParser",
    "certificate_items",
    "looks_like_certificate",
    "pem_items",
    "thumbprint_item",
]

#: Media types that declare certificates (RFC 2585, RFC 5751, RFC 8551; the x- forms browsers
#: and servers still send).
CERTIFICATE_TYPES = frozenset(
    {
        "application/pkix-cert",
        "application/pkix-pkipath",
        "application/x-x509-ca-cert",
        "application/x-x509-user-cert",
        "application/x-x509-cert",
        "application/pkcs7-mime",
        "application/pkcs7-signature",
        "application/x-pkcs7-certificates",
        "application/x-pkcs7-mime",
        "application/x-pkcs7-signature",
        "application/x-pem-file",
    }
)

# DER: SEQUENCE, a length its value fits in (a Base64 text decodes to exactly its value, but
# junk after it must not hide a certificate), then what a Certificate (its tbsCertificate
# SEQUENCE) or a ContentInfo of SignedData (its contentType OID, 1.2.840.113549.1.7.2) opens
# with.
_SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")


def _der_header(data: bytes) -> int | None:
    """The length of the outer SEQUENCE's header if its value fits in ``data``; else None."""
    if len(data) < 16 or data[0] != 0x30:
        return None
    first = data[1]
    if first == 0x80:
        return 2  # BER's indefinite length: no DER, but a lenient reader may take it
    if first < 0x80:
        size, header = first, 2
    elif 0x81 <= first <= 0x84:
        count = first - 0x80
        size, header = int.from_bytes(data[2 : 2 + count]), 2 + count
    else:
        return None
    # Bytes after the value (padding, junk a lenient reader ignores) do not make it a blob:
    # it is read as a certificate, and refused if the reader will not take it so.
    return header if header + size <= len(data) else None


def looks_like_certificate(data: bytes) -> bool:
    """True if ``data`` is shaped like a DER certificate or a CMS SignedData (which carries
    certificates): an outer SEQUENCE whose value fits in the bytes, opening a SEQUENCE
    (tbsCertificate, whose first element is the ``[0]`` version or the serial INTEGER) or the
    SignedData OID.

    Random bytes (a signature value) have that shape with a chance far below one in a
    million; an ECDSA signature (SEQUENCE of two INTEGERs) opens with an INTEGER, not this.
    """
    header = _der_header(data)
    if header is None:
        return False
    inner = data[header : header + 11]
    if inner.startswith(_SIGNED_DATA_OID):
        return True
    if not inner.startswith(b"\x30") or len(inner) < 5:
        return False
    tbs = inner[1]
    skip = 2 if tbs < 0x80 else 2 + (tbs - 0x80)
    return data[header + skip : header + skip + 1] in (b"\xa0", b"\x02")


class CertificateParser:
    """Claims DER certificates and CMS SignedData by shape, and the certificate media types;
    yields each certificate found. Must come before the XML, JSON and text parsers."""

    name = "certificate"

    def claims(self, media: MediaType, payload: Payload) -> bool:
        return media.type in CERTIFICATE_TYPES or looks_like_certificate(payload.data)

    def parse(self, payload: Payload, media: MediaType, state: ScanState) -> Iterator[Item]:
        items = certificate_items(payload.data, payload.where or "body", payload.owner)
        if state.certificates:
            yield from items
        else:
            for _ in items:  # read all the same: what cannot be read is unscannable
                pass


def certificate_items(
    data: bytes, where: str | Callable[[], str], owner: Context | Callable[[], Context]
) -> Iterator[CertificateItem]:
    """The certificates of DER (or PEM) ``data``: one, or each of a PKCS#7/CMS SignedData
    (located ``…!certificate[N]``). Unscannable if it cannot be read or holds none."""
    try:
        found = _certificates(data)
    except CertificateError as exc:
        raise UnscannableError(
            f"a certificate that cannot be read: {exc}", mask_any_form(_where(where))
        ) from None
    if not found:
        raise UnscannableError("a certificate container that holds none", _where(where))
    if len(found) == 1:
        yield CertificateItem(found[0], where, owner)
        return
    for index, der in enumerate(found, start=1):
        yield CertificateItem(der, f"{_where(where)}!certificate[{index}]", owner)


def thumbprint_item(
    value: str, where: str | Callable[[], str], owner: Context | Callable[[], Context]
) -> CertificateItem:
    """A JWS ``x5t#S256`` (RFC 7515 §4.1.8: the Base64url SHA-256 of the signer's DER) as a
    certificate known only by its digest. Unscannable if it is no SHA-256."""
    digest = decode_base64(value.strip())
    if digest is None or len(digest) != 32:
        raise UnscannableError("a JWS x5t#S256 that is no SHA-256 thumbprint", _where(where))
    return CertificateItem(b"", where, owner, thumbprint=digest.hex().upper())


def _where(where: str | Callable[[], str]) -> str:
    return (where if isinstance(where, str) else where()) or "body"


@lru_cache(maxsize=1024)
def _certificates(data: bytes) -> tuple[bytes, ...]:
    """The DER of each certificate in ``data`` (remembered: reading one costs more than half
    a millisecond, and a system signs every document with the same few)."""
    return tuple(cert.der for cert in load_certificates(data))


# A PEM block (RFC 7468 §2) of a certificate, a chain (PKCS#7, CMS), as written or inside a
# JSON string (line breaks escaped as \n or \r\n). Its body is Base64 with whitespace.
_PEM = re.compile(
    rb"-----BEGIN ((?:X509 |TRUSTED )?CERTIFICATE|PKCS7|CMS)-----"
    rb"((?:[A-Za-z0-9+/=\s]|\\[nrt])*+)"
    rb"-----END \1-----"
)
_JSON_BREAK = re.compile(rb"\\[nrt]")


def pem_items(payload: Payload, state: ScanState) -> Iterator[Item]:
    """The certificates of every PEM block in the payload's bytes, wherever it stands.

    A ``-----BEGIN CERTIFICATE-----`` with no matching end, or a block whose body is no
    certificate, is unscannable: a certificate the guard cannot read is not passed.
    """
    data = payload.data
    if not state.certificates or data.find(b"-----BEGIN ") == -1:
        return
    matched = 0
    for matched, match in enumerate(_PEM.finditer(data), start=1):
        body = _JSON_BREAK.sub(b"\n", match.group(2)).strip()
        label = match.group(1)
        where = f"{payload.location or 'body'}!pem[{matched}]"
        block = b"-----BEGIN " + label + b"-----\n" + body + b"\n-----END " + label + b"-----\n"
        try:
            found = _certificates(block)
        except CertificateError as exc:
            raise UnscannableError(
                f"a PEM {label.decode()} block that cannot be read: {exc}", where
            ) from None
        state.charge(len(body), where)
        for cert in found:
            yield CertificateItem(cert, where, payload.owner)
    if len(_BEGIN.findall(data)) > matched:
        raise UnscannableError(
            "a PEM certificate block with no end line (or a body that is not Base64)",
            f"{payload.location or 'body'}!pem",
        )


_BEGIN = re.compile(rb"-----BEGIN (?:(?:X509 |TRUSTED )?CERTIFICATE|PKCS7|CMS)-----")
