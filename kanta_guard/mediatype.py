"""Parsing media types and other parameterised header values (RFC 9110 §8.3.1, §5.6.6).

The parser is strict where a lenient one would let the guard and the server read a header
differently (fail closed): an unterminated quoted string, bytes after a quoted string or a
parameter repeated with another value raise :class:`UnscannableError`.

A label is a claim, not a fact: :func:`sniff_document` and :func:`sniffed_type` tell XML and JSON by
their first bytes (WHATWG MIME Sniffing §7) when the label is generic or says something the
guard does not parse, so a JSON body labelled ``image/png`` is still read as JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from kanta_guard.errors import UnscannableError

__all__ = [
    "MediaType",
    "decode_ext_value",
    "parse_header_params",
    "parse_media_type",
    "sniff_document",
    "sniffed_type",
]

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
        """``text/xml``, ``application/xml``, any ``+xml`` structured suffix (RFC 7303), or the
        FHIR STU3/DSTU2 ``application/xml+fhir`` written before suffixes were registered."""
        return (
            self.type in ("text/xml", "application/xml")
            or self.type.endswith("+xml")
            or self.type.startswith(("application/xml+", "text/xml+"))
        )

    @property
    def is_json(self) -> bool:
        """``application/json`` or any ``+json`` structured suffix (RFC 8259, RFC 6839), the
        unregistered ``text/json`` and ``x-json``, and FHIR STU3's ``application/json+fhir``."""
        return (
            self.type in _JSON_TYPES
            or self.type.endswith("+json")
            or self.type.startswith("application/json+")
        )

    @property
    def is_ndjson(self) -> bool:
        """Newline-delimited JSON, a document per line: ``application/x-ndjson``, FHIR Bulk
        Data's ``application/fhir+ndjson``, JSON Lines."""
        return self.type in _NDJSON_TYPES or self.type.endswith("+ndjson")

    @property
    def is_html(self) -> bool:
        """``text/html`` (WHATWG HTML §16.1; XHTML is ``+xml``)."""
        return self.type == "text/html"

    @property
    def is_multipart(self) -> bool:
        """Any ``multipart/*`` type (RFC 2046 §5.1)."""
        return self.type.startswith("multipart/")


_JSON_TYPES = frozenset({"application/json", "text/json", "application/x-json", "text/x-json"})
_NDJSON_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/jsonlines",
    }
)
#: Sniffed documents: the first character after BOM, NULs and whitespace, and what it starts.
_SNIFFED = {ord("<"): "application/xml", ord("{"): "application/json", ord("["): "application/json"}
# The byte order marks of UTF-32 (first: FF FE 00 00 starts with UTF-16 LE's), UTF-8, UTF-16.
_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_BOM_STARTS = frozenset({b"\xff", b"\x00", b"\xef", b"\xfe"})
# ASCII whitespace (XML 1.0 §2.3 S, RFC 8259 §2 ws) and NUL, the other half of a UTF-16/32
# code unit of an ASCII character: skipped to find the first character in any Unicode form.
# (Searched, not stripped: a megabyte of leading spaces is not copied, nor a reason to stop.)
_NOT_SKIPPED = re.compile(rb"[^ \t\r\n\x00]")
_NOT_NUL = re.compile(rb"[^\x00]")
# After "<", what begins markup (a name start character, a PI, a declaration or comment).
_MARKUP_START = frozenset(b"?!_:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def parse_media_type(value: str | None) -> MediaType:
    """Parse a Content-Type value; ``None`` or blank gives ``MediaType("")``."""
    if value is None:
        return MediaType("")
    head, params = _parse(value, "header:Content-Type")
    return MediaType(head, params)


def sniff_document(data: bytes) -> str:
    """``application/xml`` or ``application/json`` if ``data`` starts like one, else ``""``.

    A byte order mark is skipped, then ASCII whitespace and NUL bytes, so UTF-16 and UTF-32
    documents with or without a BOM are recognised too (XML 1.0 Appendix F, RFC 8259 §8.1).
    XML needs ``<`` and a markup start (``<?xml``, ``<!--``, ``<a``); JSON ``{`` or ``[``.
    """
    start = 0
    if data[:1] in _BOM_STARTS:
        start = next((len(bom) for bom in _BOMS if data.startswith(bom)), 0)
    first = _NOT_SKIPPED.search(data, start)
    if first is None:
        return ""
    found = _SNIFFED.get(data[first.start()], "")
    if found == "application/xml":
        after = _NOT_NUL.search(data, first.end())
        return found if after is not None and data[after.start()] in _MARKUP_START else ""
    return found


def sniffed_type(media: MediaType, data: bytes) -> MediaType:
    """The type to read ``data`` as: ``media`` unless its label is generic (none,
    ``text/plain``, ``application/octet-stream``) or names a type the guard does not parse
    (``image/png``), while the bytes start like XML or JSON; then that, with ``charset`` kept.

    Types the guard parses as labelled (XML, JSON, NDJSON, multipart, forms, HTML) stand: a
    receiver of those reads the label. A sniffed type is not declared: if the bytes do not
    parse as it, the payload is read as text instead.
    """
    found = sniff_document(data)
    if not found:
        return media
    if (
        media.is_xml
        or media.is_json
        or media.is_ndjson
        or media.is_multipart
        or media.is_html
        or media.type == "application/x-www-form-urlencoded"
    ):
        return media
    charset = media.params.get("charset")
    return MediaType(found, {"charset": charset} if charset else {})


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
