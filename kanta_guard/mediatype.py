"""Parsing media types and other parameterised header values (RFC 9110 §8.3.1, §5.6.6).

The parser is strict where a lenient one would let the guard and the server read a header
differently (fail closed): an unterminated quoted string, bytes after a quoted string or a
parameter repeated with another value raise :class:`UnscannableError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from kanta_guard.errors import UnscannableError

__all__ = ["MediaType", "decode_ext_value", "parse_header_params", "parse_media_type"]

_OWS = " \t"
# RFC 8187 §3.2.1: ext-value = charset "'" [ language ] "'" value-chars
_EXT_VALUE = re.compile(r"([A-Za-z0-9!#$%&+^_`{}~-]+)'[A-Za-z0-9-]*'(.*)", re.DOTALL)


@dataclass(frozen=True)
class MediaType:
    """A parsed media type: ``type`` is lower-case ``type/subtype``; ``params`` keys lower-case."""

    type: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def is_xml(self) -> bool:
        """``text/xml``, ``application/xml`` or any ``+xml`` structured suffix (RFC 7303)."""
        return self.type in ("text/xml", "application/xml") or self.type.endswith("+xml")

    @property
    def is_json(self) -> bool:
        """``application/json`` or any ``+json`` structured suffix (RFC 8259, RFC 6839)."""
        return self.type == "application/json" or self.type.endswith("+json")

    @property
    def is_multipart(self) -> bool:
        """Any ``multipart/*`` type (RFC 2046 §5.1)."""
        return self.type.startswith("multipart/")


def parse_media_type(value: str | None) -> MediaType:
    """Parse a Content-Type value; ``None`` or blank gives ``MediaType("")``."""
    if value is None:
        return MediaType("")
    head, params = _parse(value, "header:Content-Type")
    return MediaType(head, params)


def parse_header_params(value: str, location: str = "header") -> tuple[str, dict[str, str]]:
    """Split ``token *( ";" name=value )`` (Content-Type, Content-Disposition) into the
    lower-cased leading token and its parameters."""
    return _parse(value, location)


def decode_ext_value(value: str) -> str | None:
    """Decode an RFC 8187 ``ext-value`` (``UTF-8''%e2%82%ac.pdf``); ``None`` if malformed."""
    match = _EXT_VALUE.fullmatch(value.strip())
    if match is None:
        return None
    charset, encoded = match.groups()
    try:
        return unquote_to_bytes(encoded).decode(charset)
    except (LookupError, UnicodeDecodeError):
        return None


def _parse(value: str, location: str) -> tuple[str, dict[str, str]]:
    """One linear pass over ``value``: the leading token, then the parameters."""
    semi = value.find(";")
    head = (value if semi < 0 else value[:semi]).strip(_OWS).lower()
    params: dict[str, str] = {}
    n = len(value)
    i = semi
    while 0 <= i < n:  # value[i] == ";"
        i += 1
        eq = i
        while eq < n and value[eq] not in "=;":
            eq += 1
        name = value[i:eq].strip(_OWS).lower()
        if eq >= n or value[eq] == ";":
            # RFC 9110 §5.6.6 allows empty parameters (";;"); a bare name is not a parameter
            # either, and no parser gives it a value, so it is skipped.
            i = eq
            continue
        j = eq + 1
        while j < n and value[j] in _OWS:
            j += 1
        if j < n and value[j] == '"':
            param, j = _quoted_string(value, j, location)
            while j < n and value[j] in _OWS:
                j += 1
            if j < n and value[j] != ";":
                raise UnscannableError(
                    f"malformed parameter: text after a quoted string (offset {j})", location
                )
        else:
            end = value.find(";", j)
            end = n if end < 0 else end
            param, j = value[j:end].strip(_OWS), end
        if not name:
            raise UnscannableError(f"malformed parameter: empty name (offset {i})", location)
        if params.setdefault(name, param) != param:
            # Parsers disagree on which of two values wins; the guard refuses to guess.
            raise UnscannableError("parameter repeated with a different value", location)
        i = j
    return head, params


def _quoted_string(value: str, start: int, location: str) -> tuple[str, int]:
    """Read the quoted-string opening at ``start`` (RFC 9110 §5.6.4: ``\\`` escapes one
    character); returns the unquoted text and the offset after the closing quote."""
    out: list[str] = []
    i = start + 1
    n = len(value)
    while i < n:
        c = value[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\" and i + 1 < n:
            out.append(value[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    raise UnscannableError(f"unterminated quoted string (offset {start})", location)
