"""A binary-safe MIME multipart parser: RFC 2046 §5.1, RFC 7578 form-data, RFC 2387 related, MTOM.

Why not an existing parser: ``mitmproxy.net.http.multipart`` reads form-data only and splits
parts into lines, dropping the line breaks (binary parts come out corrupted); the stdlib
``email`` parser works on lines of decoded ``str`` and tolerates malformed input silently. The
guard needs every subtype (MTOM/XOP, DICOMweb STOW-RS, form-data), part bodies byte-exact, and
every ambiguity refused (fail closed), in linear time: delimiters are found with ``bytes.find``.

Where the guard and the server could split a body differently, the guard refuses it: a line
starting with the delimiter but followed by other bytes, and a delimiter in the epilogue. A bare
LF before a delimiter is accepted (some clients send LF-only bodies), so the guard splits at
least wherever a strict CRLF parser would.
"""

from __future__ import annotations

import base64
import binascii
import email.errors
import email.header
import email.utils
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

from kanta_guard.errors import UnscannableError
from kanta_guard.idcode import quote_input
from kanta_guard.mediatype import decode_ext_value, parse_header_params, parse_media_type

__all__ = ["Multipart", "Part", "header_readings", "parse_multipart", "split_multipart"]

_LWSP = b" \t"  # RFC 2046 §5.1.1 transport-padding
_BASE64_WHITESPACE = b" \t\r\n"  # RFC 2045 §6.8: line breaks (and padding) are ignored
_IDENTITY_CTE = frozenset({"", "7bit", "8bit", "binary"})  # RFC 2045 §6.2
# Headers whose repetition with different values would make the part's meaning ambiguous.
_SINGLE_HEADERS = frozenset({"content-type", "content-transfer-encoding", "content-disposition"})


@dataclass(frozen=True)
class Part:
    """One body part: headers as sent (unfolded), body after Content-Transfer-Encoding."""

    index: int  # 1-based position in the multipart body
    headers: tuple[tuple[str, str], ...]
    body: bytes
    content_type: str | None = None  # raw Content-Type value
    content_id: str | None = None  # raw Content-ID value, angle brackets included
    name: str | None = None  # Content-Disposition name (RFC 7578 §4.2)
    filename: str | None = None  # Content-Disposition filename* (RFC 8187) or filename

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), else ``None``."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


@dataclass(frozen=True)
class Multipart:
    """A split multipart body: its parts, and the preamble and epilogue around them (RFC 2046
    §5.1.1: "to be ignored", which is why a client can hide anything there from a reader that
    follows the RFC while a lenient one reads it)."""

    parts: list[Part]
    preamble: bytes = b""
    epilogue: bytes = b""


@dataclass(frozen=True)
class _Delimiter:
    start: int  # first byte of the delimiter, its leading CRLF or LF included
    end: int  # first byte after the delimiter line (its line break included)
    close: bool  # the close delimiter "--boundary--"


def parse_multipart(body: bytes, content_type: str, *, max_parts: int = 1000) -> list[Part]:
    """Split a multipart ``body`` into its parts; the boundary comes from ``content_type``.

    Preamble and epilogue are left out (:func:`split_multipart` gives them). Raises
    :class:`UnscannableError` if the body is not complete, well-formed multipart with 1 to
    ``max_parts`` parts.
    """
    return split_multipart(body, content_type, max_parts=max_parts).parts


def split_multipart(body: bytes, content_type: str, *, max_parts: int = 1000) -> Multipart:
    """Split a multipart ``body`` into its parts, preamble and epilogue (see
    :func:`parse_multipart`)."""
    media = parse_media_type(content_type)
    if not media.is_multipart:
        raise UnscannableError("content type is not multipart/*", "header:Content-Type")
    boundary = media.params.get("boundary", "")
    if not boundary:
        raise UnscannableError("multipart content type without a boundary", "header:Content-Type")
    try:
        dash_boundary = b"--" + boundary.encode("ascii")
    except UnicodeEncodeError:
        raise UnscannableError("non-ASCII multipart boundary", "header:Content-Type") from None

    delimiters = _delimiters(body, dash_boundary)
    first = next(delimiters, None)
    if first is None:
        raise UnscannableError("multipart body contains no boundary delimiter")
    if first.close:
        raise UnscannableError("multipart body has no parts")
    parts: list[Part] = []
    begin = first.end
    for delimiter in delimiters:
        if len(parts) >= max_parts:
            raise UnscannableError(f"multipart body has more than {max_parts} parts")
        parts.append(_parse_part(body, begin, delimiter.start, len(parts) + 1))
        if delimiter.close:
            if next(delimiters, None) is not None:
                raise UnscannableError("boundary delimiter after the close delimiter")
            return Multipart(parts, body[: first.start], body[delimiter.end :])
        begin = delimiter.end
    raise UnscannableError(
        f"multipart body ends without a close delimiter (truncated? {len(body)} bytes)"
    )


def _delimiters(body: bytes, dash_boundary: bytes) -> Iterator[_Delimiter]:
    """The delimiter lines of ``body`` in order (RFC 2046 §5.1.1), in one forward pass.

    A delimiter is CRLF (or LF) "--boundary" — or "--boundary" at the very start — followed by
    "--" (close) or by optional transport padding and a line break.
    """
    needle = b"\n" + dash_boundary
    hit = 0 if body.startswith(dash_boundary) else body.find(needle)
    while hit >= 0:
        if hit == 0 and body.startswith(dash_boundary):
            start, after = 0, len(dash_boundary)
        else:
            start = hit - 1 if hit > 0 and body[hit - 1] == 0x0D else hit
            after = hit + len(needle)
        if body.startswith(b"--", after):
            yield _Delimiter(start, after + 2, close=True)
        else:
            i = after
            while i < len(body) and body[i] in _LWSP:
                i += 1
            if body.startswith(b"\r\n", i):
                end = i + 2
            elif body.startswith(b"\n", i):
                end = i + 1
            elif i >= len(body):
                return  # cut off inside a delimiter line: the caller reports truncation
            else:
                # RFC 2046 §5.1.1 forbids the delimiter inside a part, and parsers differ on
                # "--boundaryX": some split there, some do not. Refuse rather than guess.
                raise UnscannableError(
                    f"boundary delimiter followed by unexpected bytes (byte offset {i})"
                )
            yield _Delimiter(start, end, close=False)
        hit = body.find(needle, after)


def _parse_part(body: bytes, begin: int, end: int, index: int) -> Part:
    """Parse the part in ``body[begin:end]``: header lines, a blank line, the content."""
    location = f"body/part[{index}]"
    lines: list[str] = []
    pos = begin
    # Header lines up to the first empty line. Reaching the delimiter right after a complete
    # line is a part without content (RFC 2046 §5.1.1: body-part := headers [CRLF *OCTET]);
    # that includes a part with nothing at all between two delimiters.
    while pos < end:
        nl = body.find(b"\n", pos, end)
        if nl < 0:
            raise UnscannableError(
                f"part header section does not end in a blank line (byte offset {pos})", location
            )
        line = body[pos : nl - 1 if nl > pos and body[nl - 1] == 0x0D else nl]
        pos = nl + 1
        if not line:
            break
        lines.append(_header_text(line))
    return _make_part(index, _unfold(lines, location), body[pos:end], location)


def _header_text(line: bytes) -> str:
    """Header bytes as text: UTF-8 (RFC 7578 §5.1.1 allows it in form-data), else Latin-1."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")


def _unfold(lines: list[str], location: str) -> tuple[tuple[str, str], ...]:
    """Join obs-fold continuation lines (RFC 5322 §2.2.3, RFC 9110 §5.5: replace with SP)
    and split ``name: value``."""
    fields: list[list[str]] = []
    for number, line in enumerate(lines, 1):
        if line[0] in " \t":
            if not fields:
                raise UnscannableError("part header section starts with a folded line", location)
            fields[-1][1] += " " + line.strip(" \t")
            continue
        name, colon, value = line.partition(":")
        name = name.strip(" \t")
        if not colon or not name:
            raise UnscannableError(f"malformed part header (line {number})", location)
        fields.append([name, value.strip(" \t")])
    return tuple((name, value) for name, value in fields)


def _make_part(index: int, headers: tuple[tuple[str, str], ...], raw: bytes, location: str) -> Part:
    """Decode the content and pick out the headers the scanner needs."""
    seen: dict[str, str] = {}
    for header, value in headers:
        key = header.lower()
        if seen.setdefault(key, value) != value and key in _SINGLE_HEADERS:
            raise UnscannableError(f"part repeats {key} with another value", location)
    cte = seen.get("content-transfer-encoding", "").strip().lower()
    name: str | None = None
    filename: str | None = None
    disposition = seen.get("content-disposition")
    if disposition is not None:
        _, params = parse_header_params(disposition, f"{location}/header:Content-Disposition")
        name = params.get("name")
        filename = params.get("filename")
        if "filename*" in params:  # RFC 6266 §4.3: filename* wins over filename
            filename = decode_ext_value(params["filename*"]) or filename
    return Part(
        index=index,
        headers=headers,
        body=_transfer_decode(raw, cte, location),
        content_type=seen.get("content-type"),
        content_id=seen.get("content-id"),
        name=name,
        filename=filename,
    )


def _transfer_decode(raw: bytes, cte: str, location: str) -> bytes:
    """Undo the Content-Transfer-Encoding (RFC 2045 §6); unknown ones are refused."""
    if cte in _IDENTITY_CTE:
        return raw
    if cte == "base64":
        compact = raw.translate(None, _BASE64_WHITESPACE)
        try:
            # validate=True: any byte outside the alphabet, bad padding or data after the
            # padding is an error, not silently skipped (RFC 4648 §3.3).
            return base64.b64decode(compact, validate=True)
        except binascii.Error:
            raise UnscannableError(
                f"part body is not valid base64 ({len(raw)} bytes)", location
            ) from None
    if cte == "quoted-printable":
        # RFC 2045 §6.7; a2b_qp keeps malformed "=" sequences as they are, as most decoders do.
        return binascii.a2b_qp(raw)
    raise UnscannableError(f"unknown content transfer encoding {quote_input(cte, 32)}", location)


def header_readings(value: str) -> list[str]:
    """A part header value as receivers may decode it, besides as sent: RFC 2047 encoded words
    (``=?UTF-8?B?...?=``, ``?Q?``) undone; each parameter decoded as RFC 2231 / RFC 8187 say
    (``filename*=UTF-8''...``, continuations ``filename*0*``), percent-decoded (RFC 7578 §4.2
    lets form-data file names be), and its encoded words undone. Each distinct text once,
    the value itself not among them.

    The stdlib ``email`` package does the decoding (``email.header.decode_header``,
    ``email.utils.decode_params``): it is what Python receivers use, and it knows the
    continuations and the quirks. What it cannot decode is left to the value as sent.
    """
    out: dict[str, None] = {}
    if "=?" in value:
        out[_encoded_words(value)] = None
    if ";" in value and ("*" in value or "%" in value or "=?" in value):
        try:
            _, params = parse_header_params(value)
        except UnscannableError:
            params = {}  # (Content-Disposition is refused elsewhere; others are read as sent)
        starred = {name.partition("*")[0] for name in params if "*" in name}
        if starred:
            # RFC 2231 §3-§4: name*=charset'lang'value, name*0*=..., name*1=...
            for name, decoded in email.utils.decode_params([("", ""), *params.items()])[1:]:
                if name not in starred:
                    continue
                try:
                    text = email.utils.collapse_rfc2231_value(decoded, "replace", "latin-1")
                except LookupError:
                    text = str(decoded)
                out[f"{name}={email.utils.unquote(text)}"] = None
        for name, param in params.items():
            if "%" in param and "*" not in name:  # (a starred one was decoded above)
                out[f"{name}={unquote(param, errors='replace')}"] = None
            if "=?" in param:
                out[f"{name}={_encoded_words(param)}"] = None
    out.pop(value, None)
    return list(out)


def _encoded_words(value: str) -> str:
    """``value`` with its RFC 2047 encoded words decoded (an unknown charset: as Latin-1)."""
    try:
        chunks = email.header.decode_header(value)
    except (email.errors.HeaderParseError, ValueError):
        return value
    texts: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            texts.append(chunk)
            continue
        try:
            texts.append(chunk.decode(charset or "latin-1", "replace"))
        except (LookupError, ValueError):
            # (A charset name the codec registry refuses: unknown, or with a NUL byte in it,
            # which raised ValueError out of the scan; fuzzing found it.)
            texts.append(chunk.decode("latin-1"))
    return "".join(texts)
