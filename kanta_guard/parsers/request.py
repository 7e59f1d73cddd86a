"""The parts of a request outside its body: the URL path and query, and the headers.

Headers are fields as they are; tokens in them that decode as Base64 or Base64url (a Basic
credential, a JWT's header and claims, the Base64 JSON identity document the Kanta Medication
API puts in ``Authorization``) are decoded and scanned as nested payloads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from urllib.parse import parse_qsl, unquote

from ..model import Context, Field, Payload, Role
from .base import Item, ScanState, decode_base64, keep, nested, wanted_texts
from .form import param_fields

__all__ = ["header_fields", "url_fields"]

_TOKEN_SPLIT = re.compile(r"[\s,;:.]+")
# Base64 or Base64url, padded or not (a token with other characters is no encoded content).
_B64_TOKEN = re.compile(r"[A-Za-z0-9+/_\-]+={0,2}")
#: Shortest header token tried as Base64 (a Basic credential is short; random ids are not text).
_MIN_HEADER_B64 = 12


def url_fields(target: str, state: ScanState) -> Iterator[Item]:
    """Fields of the request target (path and query), percent-decoded."""
    path, _, query = target.partition("?")
    carrier = Payload(b"", None, "url", Context(Role.URL))
    segments = [unquote(segment, errors="replace") for segment in path.split("/")]
    wanted = wanted_texts(state, segments)
    for index, segment in enumerate(segments):
        if segment and keep(segment, wanted):
            yield Field(segment, Context(Role.URL, "path"), f"url:path[{index}]")
    if query:
        pairs = parse_qsl(query, keep_blank_values=True, errors="replace")
        yield from param_fields(pairs, "url:query:", Context(Role.URL), carrier, state)


def header_fields(headers: tuple[tuple[str, str], ...], state: ScanState) -> Iterator[Item]:
    """Every header value as a field (those the screen leaves in); Base64 tokens in it as nested
    payloads."""
    wanted = wanted_texts(state, [value for _, value in headers])
    for name, value in headers:
        ctx = Context(Role.HEADER, name.lower())
        where = f"header:{name}"
        if keep(value, wanted):
            yield Field(value, ctx, where)
        if len(value) < _MIN_HEADER_B64:
            continue
        for token in _TOKEN_SPLIT.split(value):
            if len(token) < _MIN_HEADER_B64 or token.isdigit():
                continue
            data = _encoded_text(token)
            if data is None:
                continue
            carrier = Payload(b"", None, where, ctx)
            yield nested(data, None, f"{where}!base64", carrier, ctx, state, declared=False)


@lru_cache(maxsize=1024)
def _encoded_text(token: str) -> bytes | None:
    """What a header token decodes to, if it is Base64 or Base64url of text; else None.

    Cached: header values repeat request after request (Content-Type, Accept, User-Agent,
    SOAPAction, a session's Authorization), and the answer depends on the token alone.
    """
    if not _B64_TOKEN.fullmatch(token):
        return None
    data = decode_base64(token)
    return data if data is not None and _texty(data) else None


def _texty(data: bytes) -> bool:
    """Decoded bytes worth scanning: mostly printable (JSON, XML, ``user:password``)."""
    sample = data[:256]
    printable = sum(32 <= b < 127 or b in (9, 10, 13) or b >= 0xC2 for b in sample)
    return printable >= 0.9 * len(sample)
