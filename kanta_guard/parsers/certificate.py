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
    "IN_TEXT",
    "CertificateParser",
    "certificate_items",
    "hex_certificate",
    "looks_like_certificate",
    "markup_certificate_items",
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
    """True if ``data`` is shaped like a DER certificate, a CMS SignedData (which carries
    certificates) or a PkiPath (a SEQUENCE of certificates): an outer SEQUENCE whose value fits
    in the bytes, opening a SEQUENCE (tbsCertificate, whose first element is the ``[0]``
    version or the serial INTEGER; for a PkiPath the first certificate, whose tbsCertificate
    opens so) or the SignedData OID.

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
    opens = data[header + skip : header + skip + 2]
    if opens[:1] in (b"\xa0", b"\x02"):
        return True
    # A PkiPath (SEQUENCE OF Certificate: WS-Security's X509PKIPathv1): one level deeper, the
    # first certificate's tbsCertificate opens so.
    if opens[:1] != b"\x30" or len(opens) < 2:
        return False
    at = header + skip + (2 if opens[1] < 0x80 else 2 + (opens[1] - 0x80))
    return data[at : at + 1] in (b"\xa0", b"\x02")


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
# JSON string (line breaks escaped as \n or \r\n or \u000a, "/" as \/ as PHP and others write
# it, "+" as \u002b) or an XML attribute (line breaks as character references). Its body is
# Base64 with whitespace.
_PEM = re.compile(
    rb"-----BEGIN ((?:X509 |TRUSTED )?CERTIFICATE|PKCS7|CMS)-----"
    rb"((?:[A-Za-z0-9+/=\s]|\\[nrt/]|\\u00(?:0[9aAdD]|2[bBfF]|3[dD])|&#(?:1[03]|x[aAdD]);)*+)"
    rb"-----END \1-----"
)
_ESCAPED = re.compile(rb"\\[nrt]|\\u000[9aAdD]|&#(?:1[03]|x[aAdD]);")
_ESCAPED_CHARS = {
    b"\\/": b"/",
    b"\\u002b": b"+",
    b"\\u002B": b"+",
    b"\\u002f": b"/",
    b"\\u002F": b"/",
    b"\\u003d": b"=",
    b"\\u003D": b"=",
}

# A DER certificate, CMS SignedData or PkiPath written in hex (a PDF signature's /Contents,
# ISO 32000-2 §12.8.1; a JSON or XML field some systems fill with the hex of the DER): an
# outer SEQUENCE with a two- or three-byte length (a certificate is at least 256 bytes), its
# hex digits in one run.
_HEX_STARTS = (b"308", b"23")
_HEX_RUN = re.compile(rb"[0-9A-Fa-f]*")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
# Bytes of a certificate's hex taken at once, at most (a CMS with a long chain is tens of KB).
_MAX_HEX_DER = 1 << 20

# The same DER in Base64 standing in text (a signature pasted into a note, an XML document that
# does not parse and is read as text): a run of the alphabet, wrapped or not, opening as a
# SEQUENCE with a two- or three-byte length does (0x30 0x82 is "MII", 0x30 0x83 "MIM").
_BASE64_STARTS = (b"MI", b"IM")  # (a prefix, and the bytes its next byte may be)
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/=_ \t\r\n-]*")  # (one class: alternation is slow)
_BASE64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
#: The location suffix of a certificate found so: the detector drops it when a parser yielded
#: the same certificate from its structure (an XML-DSig X509Certificate, a JSON x5c).
IN_TEXT = "!base64-in-text"


def pem_items(payload: Payload, state: ScanState) -> Iterator[Item]:
    """The certificates of every PEM block in the payload's bytes, wherever it stands, and of
    every DER certificate (or CMS SignedData, PkiPath) written there in hex.

    A ``-----BEGIN CERTIFICATE-----`` with no matching end, or a block whose body is no
    certificate, is unscannable: a certificate the guard cannot read is not passed; so is hex
    shaped like a certificate that cannot be read as one.
    """
    data = payload.data
    if not state.certificates:
        return
    if not _markup(data):
        # (An XML document's Base64 is read by the XML parser, node by node and attribute by
        # attribute: its bytes are not searched again, which would cost each signed document
        # two passes over its bytes.)
        yield from _hex_items(payload, state)
        yield from _base64_items(payload, state)
    if data.find(b"-----BEGIN ") == -1:
        return
    matched = 0
    for matched, match in enumerate(_PEM.finditer(data), start=1):
        body = match.group(2)
        for escaped, plain in _ESCAPED_CHARS.items():
            if escaped in body:
                body = body.replace(escaped, plain)
        body = _ESCAPED.sub(b"\n", body).strip()
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


def _markup(data: bytes) -> bool:
    """Whether the payload is markup (XML, HTML: its first byte past a BOM and whitespace is
    ``<``) or UTF-16/32 text, where no ASCII run stands."""
    head = data[:64]
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\0" in head[:4]:
        return True
    return head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"<"


def _starts(data: bytes, starts: tuple[bytes, bytes], alphabet: frozenset[int]) -> list[int]:
    """Where a run of ``alphabet`` starts with ``starts[0]`` followed by a byte of
    ``starts[1]``: one ``bytes.find`` pass (a regular expression opening with a look-behind
    is tried at every byte)."""
    prefix, nexts = starts
    size = len(prefix)
    found: list[int] = []
    at = data.find(prefix)
    while at != -1:
        after = data[at + size : at + size + 1]
        if after and after in nexts and (at == 0 or data[at - 1] not in alphabet):
            found.append(at)
        at = data.find(prefix, at + 1)
    return found


def _base64_items(payload: Payload, state: ScanState) -> Iterator[Item]:
    """The certificates of DER written in Base64 anywhere in the payload's bytes (see
    ``_BASE64_STARTS``): a run that decodes to bytes shaped like a certificate
    (:func:`looks_like_certificate`); a run that does not (a Base64 image, a text that merely
    starts MII) is left to the parsers."""
    data = payload.data
    memo = state.inert
    found = 0
    end = 0
    for start in _starts(data, _BASE64_STARTS, _BASE64_ALPHABET):
        if start < end:
            continue  # inside a run already taken
        match = _BASE64_RUN.match(data, start + 3)
        run = data[start : match.end() if match is not None else start + 3]
        armour = run.find(b"--")  # a PEM block's end line: not Base64
        run = (run[:armour] if armour != -1 else run).rstrip()
        end = start + len(run)
        if len(run) < _SHORTEST_BASE64:
            continue
        known = memo.certificate(run) if memo is not None else None
        der = known if known is not None else _base64_der(run)
        if der is None or not looks_like_certificate(der):
            continue
        found += 1
        where = f"{payload.location or 'body'}{IN_TEXT}[{found}]"
        yield from certificate_items(der, where, payload.owner)


def _base64_der(run: bytes) -> bytes | None:
    """The DER a Base64 run opens with, as long as its outer SEQUENCE says (the run may go on
    into the text after it: "MIIC… loppu"), or None if the run is shorter or not Base64."""
    compact = run.translate(None, b" \t\r\n")
    head = decode_base64(compact[:8].decode("ascii"))
    if head is None or len(head) < 6:
        return None
    size = 4 + int.from_bytes(head[2:4]) if head[1] == 0x82 else 5 + int.from_bytes(head[2:5])
    needed = -(-size // 3) * 4
    if len(compact) < needed:
        return None
    der = decode_base64(compact[:needed].decode("ascii"))
    return der[:size] if der is not None and len(der) >= size else None


# A certificate is a few hundred bytes at the least: its Base64 is longer than this.
_SHORTEST_BASE64 = 256


_HEX_TEXT = re.compile(rb"[0-9A-Fa-f]+")


def hex_certificate(text: bytes) -> bytes | None:
    """The DER of a certificate (or CMS SignedData, PkiPath) written in hex as the whole of
    ``text`` (an XML text node or attribute value, whitespace allowed), else None. Cheap on
    anything else: it must open ``308`` and be at least a minimal certificate's length."""
    if len(text) < 512 or text.lstrip()[:3] != b"308":
        return None
    compact = b"".join(text.split())
    if len(compact) < 512 or len(compact) % 2:
        return None
    if _HEX_TEXT.fullmatch(compact) is None:
        return None
    der = bytes.fromhex(compact.decode("ascii"))
    return der if looks_like_certificate(der) else None


def markup_certificate_items(payload: Payload, state: ScanState) -> Iterator[Item]:
    """The certificates written in hex or Base64 anywhere in the bytes of markup that no
    parser could read as such (an undeclared XML document that does not parse, read as text):
    what :func:`pem_items` leaves to the XML parser for markup it reads."""
    if state.certificates:
        yield from _hex_items(payload, state)
        yield from _base64_items(payload, state)


def _hex_items(payload: Payload, state: ScanState) -> Iterator[Item]:
    """The certificates of DER written in hex in the payload's bytes (see ``_HEX_STARTS``): a
    run of hex digits that opens a SEQUENCE long enough for its length, and whose bytes are
    shaped like a certificate (:func:`looks_like_certificate`; any other hex, a number that
    happens to start 3082, is left to the text rules)."""
    data = payload.data
    found = 0
    end = 0
    for start in _starts(data, _HEX_STARTS, _HEX_DIGITS):
        if start < end:
            continue  # inside a run already taken
        run = _HEX_RUN.match(data, start)
        stop = run.end() if run is not None else start
        digits = 4 if data[start + 2 : start + 4] == b"82" else 6
        if stop - start < 4 + digits:
            continue
        size = int(data[start + 4 : start + 4 + digits], 16) + 2 + digits // 2
        if size * 2 > stop - start or size > _MAX_HEX_DER:
            continue  # the run is shorter than the SEQUENCE says: no DER
        der = bytes.fromhex(data[start : start + size * 2].decode("ascii"))
        if not looks_like_certificate(der):
            continue
        found += 1
        end = start + size * 2
        where = f"{payload.location or 'body'}!hex[{found}]"
        state.charge(size, where)
        yield from certificate_items(der, where, payload.owner)


_BEGIN = re.compile(rb"-----BEGIN (?:(?:X509 |TRUSTED )?CERTIFICATE|PKCS7|CMS)-----")
