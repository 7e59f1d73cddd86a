"""Form parser: ``application/x-www-form-urlencoded`` bodies, and the query-string logic it
shares with the URL (FHIR search tokens ``system|value``).

Receivers decode a query differently, so every reading is scanned (:func:`decoded_pairs`): ``+``
as a space (WHATWG URL "application/x-www-form-urlencoded parsing") and as a plus sign (RFC 3986
§2.1 gives it no meaning; ``+`` is also the 1800s century sign of a code), and percent-decoded
again and again while it still changes (a value encoded twice, by a client and by a framework).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote, unquote_plus

from ..charset import decode_text
from ..encoding import decode_content
from ..errors import UnscannableError
from ..idcode import quote_input, unescaped_readings
from ..mediatype import MediaType
from ..model import Context, Field, Payload
from .base import (
    Item,
    ScanState,
    base64_content,
    decode_base64,
    encoding_mark,
    keep,
    nested,
    normalise_system,
    wanted_texts,
)
from .parties import fhir_search_parties

__all__ = ["FormParser", "decoded_pairs", "layers", "param_fields", "query_fields"]

_NESTED_STARTS = ("<", "{", "[")
#: The parameters that carry a SAML message (SAML 2.0 Bindings §3.4.4.1, §3.5.4): Base64 of
#: the XML (POST binding), or of its raw DEFLATE (HTTP-Redirect binding).
_SAML_MESSAGES = frozenset(("samlrequest", "samlresponse"))
#: Percent-decoding rounds tried on one value; a value still changing after them is refused
#: (each round shortens it, so "until stable" alone could cost rounds × length).
MAX_LAYERS = 8
#: Distinct readings kept of one value (``+`` read two ways in each round doubles them).
_MAX_READINGS = 32

#: A name/value pair to scan: the name and value as read, the name its location shows, and
#: whether it is another reading of the pair at that location (``Field.view_of``).
type _Entry = tuple[str, str, str, bool]


def layers(
    text: str, *, encoding: str = "utf-8", plus: bool = True, location: str = "url"
) -> list[str]:
    """``text`` as receivers may decode it, the form reading first: ``+`` a space (if ``plus``)
    and percent-decoded; then ``+`` kept; then every further round of percent-decoding of
    either, until nothing changes. Each distinct text once.

    More than ``MAX_LAYERS`` rounds that still change the text raise :class:`UnscannableError`.
    """
    if "%" not in text and ("+" not in text or not plus):
        return [text]
    kept = unquote(text, encoding, "replace")
    first = unquote_plus(text, encoding, "replace") if plus and "+" in text else kept
    if "%" not in first and "+" not in first and "%" not in kept and "+" not in kept:
        return [first] if first == kept else [first, kept]  # (one round: the common case)
    out = dict.fromkeys([first, kept])
    current = list(out)
    for _ in range(MAX_LAYERS):
        following: list[str] = []
        for reading in current:
            if "%" not in reading and ("+" not in reading or not plus):
                continue
            decoded_once = [unquote(reading, encoding, "replace")]
            if plus:
                decoded_once.append(unquote_plus(reading, encoding, "replace"))
            for decoded in decoded_once:
                if decoded not in out and len(out) < _MAX_READINGS:
                    out[decoded] = None
                    following.append(decoded)
        if not following:
            return list(out)
        current = following
    if len(out) >= _MAX_READINGS:
        return list(out)
    raise UnscannableError(f"value percent-encoded more than {MAX_LAYERS} times", location)


def decoded_pairs(query: str, *, encoding: str = "utf-8", location: str = "url") -> list[_Entry]:
    """The pairs of a query string or form body (split at ``&``), every reading of each name
    and value (:func:`layers`): ``(name, value, located_as, another_reading)``, the form
    reading first (what ``urllib.parse.parse_qsl`` gives)."""
    entries: list[_Entry] = []
    views: list[_Entry] = []
    for chunk in query.split("&"):
        if not chunk:
            continue
        raw_name, _, raw_value = chunk.partition("=")
        if "%" not in chunk and "+" not in chunk:
            entries.append((raw_name, raw_value, raw_name, False))  # (nothing to decode)
            continue
        names = layers(raw_name, encoding=encoding, location=location)
        values = layers(raw_value, encoding=encoding, location=location)
        name = names[0]
        entries.append((name, values[0], name, False))
        views.extend((other, "", name, True) for other in names[1:])
        views.extend((name, other, name, True) for other in values[1:])
    # Character references and backslash escapes in a value (``liisa%26%2364%3B…`` decodes to
    # ``liisa&#64;…``): what a page or a log that shows it decoded reads. (Percent escapes are
    # the layers above.)
    seen = {(at, value) for _, value, at, _ in views}
    for name, value, located, _ in entries:
        if "&" in value or "\\" in value:
            for other in unescaped_readings(value):
                if (located, other) not in seen:
                    seen.add((located, other))
                    views.append((name, other, located, True))
    return entries + views


def query_fields(
    query: str,
    prefix: str,
    ctx: Context,
    payload: Payload,
    state: ScanState,
    *,
    encoding: str = "utf-8",
    entries: list[_Entry] | None = None,
) -> Iterator[Item]:
    """Fields of a query string or form body, every reading of every pair (``decoded_pairs``;
    ``entries``: those, where the caller has them already)."""
    if entries is None:
        entries = decoded_pairs(query, encoding=encoding, location=prefix.rstrip(":") or "url")
    yield from _entry_fields(entries, prefix, ctx, payload, state)


def param_fields(
    pairs: list[tuple[str, str]],
    prefix: str,
    ctx: Context,
    payload: Payload,
    state: ScanState,
) -> Iterator[Item]:
    """Fields of name/value pairs; ``system|code`` tokens (FHIR search) declare identifiers.

    Plain-text fields the screen rules out are not yielded; identifiers always are.
    """
    entries = [(name, value, name, False) for name, value in pairs]
    yield from _entry_fields(entries, prefix, ctx, payload, state)


def _entry_fields(
    entries: list[_Entry], prefix: str, ctx: Context, payload: Payload, state: ScanState
) -> Iterator[Item]:
    wanted = wanted_texts(state, [text for name, value, _, _ in entries for text in (name, value)])
    saml: dict[bytes, str] = {}  # the SAML messages read, and the parameter each stood in
    unread: dict[str, tuple[str, str]] = {}  # SAML parameters a reading of which did not decode
    for name, value, located, view in entries:
        where = f"{prefix}{located}"
        if name and keep(name, wanted) and not (view and name == located):
            at = where + "#name"
            yield Field(name, ctx, at, view_of=at if view else None)
        if not value:
            continue
        if name.strip().casefold() in _SAML_MESSAGES:
            # (One message, read once: its readings differ only where "+" was read as a space.)
            message = _saml_message(value, state)
            if message is None:
                unread.setdefault(located, (name, where))
            elif message[0] not in saml:
                saml[message[0]] = located
                at = where + message[1]
                yield nested(message[0], "application/xml", at, payload, ctx, state, declared=False)
            continue
        if value.lstrip().startswith(_NESTED_STARTS) or ("-----BEGIN " in value and not view):
            # (A PEM block too, a certificate pasted into a query or a form: as a payload, the
            # certificate search reads it; in the first reading only: the others read "+" of
            # its Base64 as a space, and are read as text.)
            yield nested(
                value.encode("utf-8"),
                None,
                where,
                payload,
                Context(ctx.role, located),
                state,
                declared=False,
            )
            continue
        if (data := base64_content(value)) is not None:
            mark = encoding_mark(value)
            yield nested(data, None, where + mark, payload, ctx, state, declared=False)
            continue
        view_of = where if view else None
        if "|" not in value:
            if keep(value, wanted):
                yield Field(value, Context(ctx.role, located), where, view_of=view_of)
            continue
        # FHIR search: token parameters are [system]|[code], several OR-ed with commas; the code
        # of a token is an identifier under its system, the rest is text.
        for token in value.split(","):
            system, bar, code = token.partition("|")
            if bar and system and code:
                if keep(system, wanted):
                    yield Field(system, Context(ctx.role, located), where, view_of=view_of)
                yield Field(
                    code,
                    Context(ctx.role, located, normalise_system(system)),
                    where,
                    identifier=True,
                    view_of=view_of,
                )
            elif keep(token, wanted):
                yield Field(token, Context(ctx.role, located), where, view_of=view_of)
    for located, (name, where) in unread.items():
        if located not in saml.values():
            raise UnscannableError(
                f"{quote_input(name, 32)} is neither Base64 of XML nor of DEFLATE-compressed "
                "XML (SAML 2.0 Bindings §3.4.4.1, §3.5.4)",
                where,
            )


class FormParser:
    """Parses URL-encoded form bodies; each value is a field and may hold nested content."""

    name = "form"

    def claims(self, media: MediaType, payload: Payload) -> bool:
        return media.type == "application/x-www-form-urlencoded"

    def parse(self, payload: Payload, media: MediaType, state: ScanState) -> Iterator[Item]:
        charset = media.params.get("charset") or "utf-8"
        text = decode_text(payload.data, charset, strict=False)
        prefix = (payload.location + ":" if payload.location else "") + "form:"
        try:
            "".encode(charset)
        except LookupError:
            charset = "utf-8"  # (decode_text read it leniently; so do the percent-escapes)
        entries = decoded_pairs(text, encoding=charset, location=prefix.rstrip(":"))
        yield from query_fields(
            text, prefix, payload.context, payload, state, encoding=charset, entries=entries
        )
        if state.parties and state.search is not None and not payload.depth:
            # ``POST [type]/_search``: the search's parameters, and the person they describe.
            pairs = [(n, v) for n, v, _, view in entries if not view]
            yield from fhir_search_parties(state.search, pairs, prefix.rstrip(":"))


def _saml_message(value: str, state: ScanState) -> tuple[bytes, str] | None:
    """A SAML message sent in a query or form (``SAMLRequest``, ``SAMLResponse``) as the XML it
    is, and the location suffix of its decoding: undone from Base64 and, in the HTTP-Redirect
    binding, from raw DEFLATE (so that its signature certificates and subject identifiers are
    read). None if this reading of the value is neither (the caller refuses the parameter if
    no reading is). Too much inflated data is unscannable, as for any content encoding."""
    for text in (value, value.replace(" ", "+")) if " " in value else (value,):
        data = decode_base64(text)
        if data is None:
            continue
        if data.lstrip()[:1] == b"<":
            return data, "!base64"
        try:
            inflated = decode_content(data, "deflate", max_size=state.limits.max_decoded_bytes)
        except UnscannableError as exc:
            if "exceeds" in exc.reason:  # (a bomb: refused, whatever other readings say)
                raise
            continue
        if inflated.lstrip()[:1] == b"<":
            return inflated, "!base64!deflate"
    return None
