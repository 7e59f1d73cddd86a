"""The parts of a request outside its body: the request line, the URL, the headers, the trailers.

Every part a receiver reads is a field: the method; the authority as sent, and its host as a
receiver may show it (percent-decoded, IDNA labels in Unicode and in ASCII); the URL path and
query, percent-decoded; every header and trailer name and value, obs-folds joined and repeated
lines combined as a receiver combines them; cookies pair by pair, percent-decoded. Tokens that
decode as Base64 or Base64url (a Basic credential, a JWT's header and claims, the Base64 JSON
identity document the Kanta Medication API puts in ``Authorization``, a cookie value) are decoded
and scanned as nested payloads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from urllib.parse import unquote, unquote_plus

from ..charset import sniff_bom, sniff_wide
from ..decode.archives import inflate_raw
from ..decode.sniff import sniff
from ..errors import UnscannableError
from ..idcode import unescaped_readings
from ..model import Context, Field, Payload, Request, Role
from ..multipart import header_readings
from .base import (
    MIN_HEX_TEXT,
    Item,
    ScanState,
    decode_base64,
    encoding_mark,
    file_name_words,
    hex_text,
    keep,
    nested,
    wanted_texts,
)
from .form import decoded_pairs, layers, query_fields
from .jose import jose_nested
from .parties import fhir_search_parties, search_resource

__all__ = ["header_fields", "request_fields", "url_fields"]

_TOKEN_SPLIT = re.compile(r"[\s,;:.]+")
# Base64 or Base64url, padded or not (a token with other characters is no encoded content).
_B64_TOKEN = re.compile(r"[A-Za-z0-9+/_\-]+={0,2}")
#: Shortest header token tried as Base64 (a Basic credential is short; random ids are not text).
_MIN_HEADER_B64 = 12
# RFC 9112 §5.2: obs-fold = OWS CRLF RWS, which a receiver replaces with SP before reading the
# value; mitmproxy keeps it in the value as "\r\n ". A bare CR or LF is taken as a line end too
# (RFC 9112 §2.2 lets a recipient accept a lone LF).
_FOLD = re.compile(r"[ \t]*(?:\r\n?|\n)[ \t]*")
# IDNA label separators: the full stop and its ideographic and full-width forms (RFC 3490 §3.1).
_LABEL_DOTS = re.compile("[.\u3002\uff0e\uff61]")
#: A name with this many digits could hold a code: its location names it by index instead
#: (locations are shown and logged; a code never is, and a percent-encoded one escapes masking).
_DIGITS_OF_A_DATE = 6

_METHOD = Context(Role.HEADER, ":method")
_AUTHORITY = Context(Role.URL, ":authority")
_COOKIE = Context(Role.HEADER, "cookie")
_PATH = Context(Role.URL, "path")

#: A text to screen and maybe yield as a field: the value, its context, its location, and the
#: location of the value it is another reading of (``Field.view_of``), if it is one.
type _Text = tuple[str, Context, str, str | None]
#: A value whose tokens are tried as Base64: the value, its context, its location.
type _Token = tuple[str, Context, str]
type _Headers = tuple[tuple[str, str], ...]


def request_fields(request: Request, state: ScanState) -> Iterator[Item]:
    """Every field of a request outside its body: the method, the authority, the target, the
    headers and the trailers (those the screen leaves in); Base64 tokens as nested payloads."""
    texts: list[_Text] = [(request.method, _METHOD, "request:method", None)]
    if request.authority:
        where = "request:authority"
        first, *views = _authority_views(request.authority)
        texts.append((first, _AUTHORITY, where, None))
        texts.extend((view, _AUTHORITY, where, where) for view in views)
    tokens: list[_Token] = []
    if request.authority and len(request.authority) >= _MIN_HEADER_B64:
        # Its labels as the Host header's tokens (HTTP/2 sends ``:authority``, an absolute-form
        # target its host, and no Host line may follow): a label of Base64 or hex.
        tokens.append((request.authority, _AUTHORITY, "request:authority"))
    sections = [("header", request.headers)]
    _head_texts(request.headers, "header", texts, tokens)
    if request.trailers:
        sections.append(("trailer", request.trailers))
        _head_texts(request.trailers, "trailer", texts, tokens)
    yield from url_fields(request.target, state)
    yield from _screened(texts, sections, tokens, state)


def url_fields(target: str, state: ScanState) -> Iterator[Item]:
    """Fields of the request target: each path segment and query pair in every reading a
    receiver may make (percent-decoded until stable, ``+`` in the query as a space and as a
    plus: ``form.layers``); a segment that is Base64url of text, decoded, as a nested payload."""
    path, _, query = target.partition("?")
    carrier = Payload(b"", None, "url", Context(Role.URL))
    segments: list[tuple[int, str, bool]] = []  # (index, text, another reading)
    tokens: list[tuple[int, str]] = []
    for index, raw in enumerate(path.split("/")):
        if not raw:
            continue
        if "%" in raw:
            # RFC 3986 §2.1: "+" in a path is a plus; a segment encoded twice is decoded twice.
            first, *others = layers(raw, plus=False, location=f"url:path[{index}]")
            segments.append((index, first, False))
            segments.extend((index, other, True) for other in others)
        else:
            first = raw
            segments.append((index, raw, False))
        words = file_name_words(first)
        if words is not None:
            # (A file named after its patient: ``Liisa_Korhonen_lahete.pdf``, read as words.)
            segments.append((index, words, True))
        if len(first) >= _MIN_HEADER_B64 and not _number(first):
            tokens.append((index, first))
    wanted = wanted_texts(state, [text for _, text, _ in segments])
    for index, segment, view in segments:
        if keep(segment, wanted):
            where = f"url:path[{index}]"
            yield Field(segment, _PATH, where, view_of=where if view else None)
    for index, token in tokens:
        # A Base64url segment (RFC 4648 §5: a JWT, an encoded identity document in a route).
        data = _encoded_text(token)
        if data is not None:
            where = f"url:path[{index}]{encoding_mark(token)}"
            yield nested(data, None, where, carrier, _PATH, state, declared=False)
    entries = decoded_pairs(query, location="url:query") if query else []
    if query:
        ctx = Context(Role.URL)
        yield from query_fields(query, "url:query:", ctx, carrier, state, entries=entries)
    if state.parties:
        # A FHIR search names the person it looks for in its parameters (``family``, ``given``
        # apart): that person is judged whole. ``POST [type]/_search`` sends them as a form.
        resource = search_resource(path)
        if entries:
            pairs = [(n, v) for n, v, _, view in entries if not view]
            yield from fhir_search_parties(resource, pairs, "url:query")
        if path.rstrip("/").endswith("/_search"):
            state.search = resource
    # A JOSE compact token in a path segment or a query value (an ``id_token``, a request
    # object): Base64url segments joined by dots, which the token search above does not take
    # whole. Its header and claims are scanned as the body's would be.
    decoded = unquote(target) if "%" in target else target
    yield from jose_nested(
        decoded.encode("utf-8", "surrogateescape"), "url", carrier, Context(Role.URL), state
    )


def header_fields(headers: _Headers, state: ScanState, section: str = "header") -> Iterator[Item]:
    """Every header (or, with ``section="trailer"``, trailer) name and value as fields, those the
    screen leaves in; Base64 tokens in the values as nested payloads."""
    texts: list[_Text] = []
    tokens: list[_Token] = []
    _head_texts(headers, section, texts, tokens)
    yield from _screened(texts, [(section, headers)], tokens, state)


def _screened(
    texts: list[_Text], sections: list[tuple[str, _Headers]], tokens: list[_Token], state: ScanState
) -> Iterator[Item]:
    """The texts and the field names the screen leaves in as fields (one screen for them all),
    then what the Base64 tokens of ``tokens`` decode to."""
    screened = [text for text, _, _, _ in texts]
    for _, headers in sections:
        screened.extend(name for name, _ in headers)
    wanted = wanted_texts(state, screened)
    if wanted is None or wanted:  # (an empty list: the screen cleared every text)
        for value, ctx, where, view_of in texts:
            if value and keep(value, wanted):
                yield Field(value, ctx, where, view_of=view_of)
        for section, headers in sections:
            for index, (name, _) in enumerate(headers):
                # A name is a field too (RFC 9110 §5.1: a token, read as sent); located by its
                # index, since a location must not repeat what it holds.
                if keep(name, wanted):
                    yield Field(name, _header_context(name.lower()), f"{section}-name:{index}")
    for value, ctx, where in tokens:
        for token in _TOKEN_SPLIT.split(value):
            if len(token) < _MIN_HEADER_B64 or _number(token):
                continue
            data = _encoded_text(token)
            if data is None:
                continue
            carrier = Payload(b"", None, where, ctx)
            mark = encoding_mark(token)
            yield nested(data, None, f"{where}{mark}", carrier, ctx, state, declared=False)


@lru_cache(maxsize=256)
def _header_context(lowered: str) -> Context:
    """The context of a header field (a frozen value: the same names come in every request)."""
    return Context(Role.HEADER, lowered)


def _head_texts(headers: _Headers, section: str, texts: list[_Text], tokens: list[_Token]) -> None:
    """The values of a header (or trailer) section as a receiver reads them; values long enough
    to hold Base64 go to ``tokens`` as well."""
    # The lines of each name, in order: the name as first spelt, and the values unfolded.
    groups: dict[str, tuple[str, list[str]]] = {}
    for name, value in headers:
        if "\n" in value or "\r" in value:
            value = _FOLD.sub(" ", value)
        lowered = name.lower()
        if (group := groups.get(lowered)) is None:
            groups[lowered] = (name, [value])
        else:
            group[1].append(value)
    for lowered, (name, values) in groups.items():
        where = section + ":" + name
        if lowered == "cookie":
            prefix = "cookie:" if section == "header" else section + ":cookie:"
            # (Not concatenated: HTTP/2 splits cookies between pairs, never inside one.)
            _cookie_texts(values, prefix, texts, tokens)
            continue
        ctx = _header_context(lowered)
        # RFC 9110 §5.3: a receiver may combine the lines of one name into one value, in order,
        # separated by ", ". For a code that is the same as reading each line (no code spans
        # ", "), with one field, one finding, per name.
        value = values[0] if len(values) == 1 else ", ".join(values)
        texts.append((value, ctx, where, None))
        if "%" in value:
            # Percent-encoded header values (a client that URL-encodes what it puts in a custom
            # header; RFC 8187 values): each round a receiver may undo, "+" kept.
            texts.extend(
                (view, ctx, where + "!decoded", where)
                for view in layers(value, plus=False, location=where)
                if view != value
            )
        if "&" in value or "\\" in value:
            # Character references and backslash escapes (``liisa&#64;…``, ``\u0040``): what a
            # reader of a log or a page shows decoded. (Percent escapes: just above.)
            texts.extend(
                (view, ctx, where + "!unescaped", where)
                for view in unescaped_readings(value)
                if "%" not in value or view != unquote(value)
            )
        if "=?" in value or "*=" in value:
            # RFC 2047 encoded words (``=?UTF-8?Q?...?=``: mail-derived clients send them in
            # any header) and RFC 2231/8187 parameters, as a receiver decodes them.
            texts.extend((view, ctx, where + "!decoded", where) for view in header_readings(value))
        if len(value) >= _MIN_HEADER_B64:
            tokens.append((value, ctx, where))
        if lowered == "host":
            # The authority of an origin-form request (RFC 9112 §3.2), shown decoded too.
            for line in values:
                texts.extend((view, ctx, where, where) for view in _authority_views(line)[1:])
        if len(values) > 1:
            # A value split over lines (a long token chunked by its client) is whole again for
            # whoever appends the lines in order: a code split there is found in this view (one
            # whole in a line is reported once, under the name: see Field.view_of).
            texts.append(("".join(values), ctx, where + "!concatenated", where))


def _cookie_texts(values: list[str], prefix: str, texts: list[_Text], tokens: list[_Token]) -> None:
    """Each cookie's name and value, as sent and decoded; values go to ``tokens`` as well."""
    # RFC 6265 §5.4: cookie-pairs joined by "; "; RFC 9113 §8.2.3: an HTTP/2 client may send
    # them in several Cookie fields, which a receiver joins with "; " again.
    for index, pair in enumerate("; ".join(values).split(";")):
        name, eq, value = pair.strip().partition("=")
        if not eq:
            # A pair without "=" is a cookie with an empty name (RFC 6265bis parses it so).
            name, value = "", name
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]  # a cookie-value may be quoted (RFC 6265 §4.1.1)
        if not name or (
            len(name) >= _DIGITS_OF_A_DATE and sum(map(str.isdigit, name)) >= _DIGITS_OF_A_DATE
        ):
            where = f"{prefix}[{index}]"
        else:
            where = prefix + name
        for text, at in ((name, where + "#name"), (value, where)):
            if "%" in text or "+" in text:
                first, *views = _decoded_views(text)
                texts.append((first, _COOKIE, at, None))
                texts.extend((view, _COOKIE, at, at) for view in views)
            elif text:
                texts.append((text, _COOKIE, at, None))
        if len(value) >= _MIN_HEADER_B64:
            # Base64 percent-decoded ("%3D" padding), "+" kept: it is a Base64 character.
            tokens.append((unquote(value, errors="replace"), _COOKIE, where))


def _decoded_views(text: str) -> list[str]:
    """A cookie's name or value as sent, then as receivers decode it, each distinct view once:
    percent-decoded, and as form data (``+`` a space, as PHP reads cookies)."""
    return list(
        dict.fromkeys([text, unquote(text, errors="replace"), unquote_plus(text, errors="replace")])
    )


def _authority_views(authority: str) -> list[str]:
    """An authority as sent, then its host as a receiver may show it, each distinct view once:
    percent-decoded (RFC 3986 §3.2.2 allows pct-encoded in a reg-name), with IDNA A-labels
    (``xn--``) in Unicode and U-labels in ASCII (RFC 5890 §2.3.2.1)."""
    if authority.isascii() and "%" not in authority and "xn--" not in authority.lower():
        return [authority]  # (the common case: nothing to decode)
    userinfo, at, host = authority.rpartition("@")
    if host.startswith("["):
        host = host[1 : host.find("]")]  # an IP literal (RFC 3986 §3.2.2)
    else:
        name, colon, port = host.rpartition(":")
        if colon and port.isdigit():
            host = name
    host = unquote(host, errors="replace")
    labels = _LABEL_DOTS.split(host)
    views = dict.fromkeys(
        [
            authority,
            unquote(userinfo, errors="replace") if at else authority,
            host,
            ".".join(_unicode_label(label) for label in labels),
            ".".join(_ascii_label(label) for label in labels),
        ]
    )
    return list(views)


def _unicode_label(label: str) -> str:
    """An IDNA A-label (``xn--`` and Punycode, RFC 3492) as Unicode; other labels unchanged."""
    if label[:4].lower() != "xn--":
        return label
    try:
        return label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return label


def _ascii_label(label: str) -> str:
    """A non-ASCII label as its IDNA A-label (``xn--`` and Punycode); ASCII labels unchanged."""
    if label.isascii():
        return label
    try:
        return "xn--" + label.encode("punycode").decode("ascii")
    except (UnicodeError, ValueError):
        return label


def _number(token: str) -> bool:
    """A token of digits too short to be text in hex (``base.MIN_HEX_TEXT``): an id, a count,
    no encoded content. (Digits alone were all skipped, and a code in hex that only digits
    spell (a letter sign, a check character among 0-9, A-I and P-Y) passed in a Host header.)"""
    return token.isdigit() and len(token) < 2 * MIN_HEX_TEXT


@lru_cache(maxsize=1024)
def _encoded_text(token: str) -> bytes | None:
    """What a header token decodes to, if it is Base64 or Base64url of text, or text in hex
    digits (``base.hex_text``); else None.

    Cached: header values repeat request after request (Content-Type, Accept, User-Agent,
    SOAPAction, a session's Authorization), and the answer depends on the token alone.
    """
    if (spelt := hex_text(token.encode("utf-8", "replace"))) is not None:
        return spelt  # (text written in hex digits: a column shown as 0x4869… in a route)
    if not _B64_TOKEN.fullmatch(token):
        return None
    data = decode_base64(token)
    if data is None:
        return None
    if _texty(data):
        return data
    if sniff(data) is not None or sniff_bom(data) is not None or sniff_wide(data) is not None:
        # A container (gzip, zip, PDF: the container parser opens it) or UTF-16/32 text, which
        # are no random bytes: a gzip of a note in a header passed unread.
        return data
    # Raw DEFLATE or zlib of text (a SAMLRequest of the HTTP-Redirect binding moved to a
    # header): the text parser inflates it (a bomb is unscannable there).
    try:
        inflated = inflate_raw(data, _MAX_HEADER_INFLATED)
    except UnscannableError:
        return data
    return data if inflated is not None else None


#: What a header token's trial inflation may expand to before the text parser, with the
#: scan's own budget, takes it for a bomb.
_MAX_HEADER_INFLATED = 1 << 20


def _texty(data: bytes) -> bool:
    """Decoded bytes worth scanning: mostly printable (JSON, XML, ``user:password``).

    Counted in characters where the bytes are UTF-8: a short credential with one Unicode dash
    (three bytes, two of them continuation bytes) is text, not noise.
    """
    sample = data[:256]
    text: str | None
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cut in the middle of a character at the sample's end is still UTF-8.
        text = sample[: exc.start].decode("utf-8") if exc.start >= len(sample) - 3 else None
    if text is not None:
        printable = sum(c.isprintable() or c in "\t\n\r" for c in text)
        return printable >= 0.9 * max(1, len(text))
    count = sum(32 <= b < 127 or b in (9, 10, 13) or b >= 0xC2 for b in sample)
    return count >= 0.9 * len(sample)
