"""JOSE compact serialisations (a JWS or JWT, RFC 7515 §7.1; a JWE, RFC 7516 §7.1) wherever
they stand: a text body, a JSON string (an ``id_token``, FHIR ``Signature.data`` decoded), a
form value, an XML text node or attribute.

A compact token is Base64url segments joined by dots, so no Base64 search finds it whole: its
protected header (``x5c`` certificates, ``kid``) and a JWS's payload (claims: ``sub`` may be an
identity code) would pass unread. Each is decoded here and scanned as a nested payload. The
request parser does the same for tokens in headers and in the URL.

A token is found by its header: the Base64url of a JSON object, which starts ``ey`` (``{`` and
a quote or a space); the other segments follow after dots. The search looks for ``ey`` where
no letter, digit, ``-`` or ``_`` stands before it (so each run is matched once): linear.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from ..model import Context, Payload
from .base import ScanState, decode_base64, nested

__all__ = ["jose_nested", "jose_payloads", "jose_tokens"]

# Segments: the header (a JSON object's Base64url), then two (JWS) or four (JWE) more, which may
# be empty (an unsecured JWS has no signature; RFC 7519 §6.1). Possessive: read once. Matched
# at each "ey" the byte search finds (a pattern opening with a look-behind would be tried at
# every byte: 0.3 ms on a 30 KB document).
_COMPACT = re.compile(rb"(ey[A-Za-z0-9_\-]{8,}+)((?:\.[A-Za-z0-9_\-]*+){2,4})")
_SEGMENT_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def jose_tokens(data: bytes) -> Iterator[tuple[bytes, bytes | None]]:
    """For each compact token in ``data``: its decoded protected header (a JSON object) and,
    for a JWS, its decoded payload (None for a JWE, whose payload is encrypted)."""
    at = data.find(b"ey")
    while at != -1:
        # (The byte before first: "ey" inside a word or a Base64 run starts no token, and is
        # not matched, so each run is read by one match at most.)
        match = None if at and data[at - 1] in _SEGMENT_BYTES else _COMPACT.match(data, at)
        if match is None:
            at = data.find(b"ey", at + 2)
            continue
        at = data.find(b"ey", match.end())
        header = decode_base64(match.group(1).decode("ascii"))
        if header is None or not header.lstrip().startswith(b"{"):
            continue  # not a JOSE header (a word or identifier that begins "ey")
        rest = match.group(2).split(b".")[1:]
        claims = None
        if len(rest) == 2 and rest[0]:  # a JWS
            claims = decode_base64(rest[0].decode("ascii"))
        yield header, claims


def jose_nested(
    data: bytes,
    where: str | Callable[[], str],
    parent: Payload,
    owner: Context | Callable[[], Context],
    state: ScanState,
) -> Iterator[Payload]:
    """Nested payloads of the compact tokens in ``data`` (a value a parser read), located
    ``…!jose[N]/header`` and ``…/payload``."""
    if data.find(b"ey") == -1:
        return
    for number, (header, claims) in enumerate(jose_tokens(data), start=1):
        base = where if isinstance(where, str) else where()
        at = f"{base or 'body'}!jose[{number}]"
        yield nested(
            header, "application/json", f"{at}/header", parent, owner, state, declared=False
        )
        if claims is not None:
            yield nested(claims, None, f"{at}/payload", parent, owner, state, declared=False)


def jose_payloads(payload: Payload, state: ScanState) -> Iterator[Payload]:
    """:func:`jose_nested` of a whole payload's bytes (text, JSON and form bodies)."""
    return jose_nested(payload.data, payload.where, payload, payload.owner, state)
