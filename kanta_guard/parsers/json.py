"""JSON parser: FHIR R4 (and STU3) resources, Bundles, contained resources, extensions; any JSON.

Every string and every object key is a field, located by JSON pointer (RFC 6901). FHIR adds
context: the resource type and participant elements set the role (``roles``), an object with
``system`` and ``value`` (Identifier) or ``system`` and ``code`` (Coding) declares its value an
identifier under that system. Base64 content (``Binary.data``, ``Attachment.data`` with its
``contentType``, or any long Base64 string) is decoded and scanned as a nested payload.

Duplicate keys are all scanned (``object_pairs_hook``): a second ``value`` must not hide behind
the first.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from functools import cache, cached_property, partial
from typing import Any

from ..charset import readings
from ..errors import UnscannableError
from ..mediatype import MediaType
from ..model import Context, Field, Party, Payload, Protocol, Role
from ..roles import FHIR_KEY_ROLES, FHIR_RESOURCE_ROLES
from .base import (
    SNIFF_TYPES,
    Item,
    ScanState,
    base64_content,
    base64_spans,
    decode_base64,
    encoding_mark,
    file_name_words,
    joined_texts,
    nested,
    normalise_system,
    unescaped_forms,
)
from .certificate import thumbprint_item
from .parties import fhir_json_parties, oidc_parties
from .text import DECODED_GROUP, live_decoded, strip_tags, text_fields

__all__ = ["JsonParser"]


class _Object(list[tuple[str, object]]):
    """A JSON object as its list of pairs, in order, duplicates kept."""


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class JsonParser:
    """Parses JSON (declared ``*/json``, ``*+json``; or sniffed by a leading ``{``/``[``)."""

    name = "json"

    def claims(self, media: MediaType, payload: Payload) -> bool:
        if media.is_json:
            return True
        return media.type in SNIFF_TYPES and payload.data.lstrip()[:1] in (b"{", b"[")

    def parse(self, payload: Payload, media: MediaType, state: ScanState) -> Iterator[Item]:
        strict = payload.declared and media.is_json
        location = payload.location or "body"
        charset = media.params.get("charset")
        try:
            texts = readings(payload.data, charset, strict=True)
        except UnscannableError:
            if strict:
                raise
            yield from text_fields(payload, strict=False)
            return
        # A receiver may read the bytes another way than the label says (UTF-8 under an
        # ISO-8859-1 label, UTF-16 without a BOM, UTF-7 on JSON): each other reading is parsed
        # too, as sniffed JSON (text if it is none). The common case has one reading.
        seen = {texts[0][0].removeprefix("\ufeff")}
        first: frozenset[bytes] | None = None
        # UTF-16/32 without a BOM (RFC 4627 §3 told receivers to detect it by its NUL bytes, and
        # json.loads of bytes still does): the first reading keeps the NULs, which no receiver
        # parses (NUL is no JSON: RFC 8259 §7). The wide reading is then the document, read as
        # strictly as the label asks (not JSON in it either: unscannable).
        wide = "\x00" in texts[0][0]
        for text_other, how in texts[1:]:
            text_other = text_other.removeprefix("\ufeff")  # a BOM read as a character
            # NUL is no JSON (RFC 8259 §7): a reading that keeps the NULs of UTF-16 bytes is
            # one no receiver parses, and the UTF-16 reading is among the others.
            if text_other in seen or "\x00" in text_other:
                continue
            seen.add(text_other)
            other = text_other.encode("utf-8", "surrogatepass")
            instead = wide and how.startswith(("utf-16", "utf-32")) and "replace" not in how
            # Where the screen can tell, a reading that could fire on nothing the first one
            # does not is not read again (it would only repeat the first reading's findings).
            needles = None if instead else state.screen(other)
            if needles is not None:
                if first is None:
                    first = state.screen(texts[0][0].encode("utf-8", "surrogatepass"))
                if first is not None and needles <= first:
                    continue
            yield nested(
                other,
                "application/json; charset=utf-8",
                f"{location}!{how}",
                payload,
                payload.owner,
                state,
                declared=strict and instead,
            )
            if instead:
                return
        try:
            text = texts[0][0]
            raw = text.encode("utf-8", "surrogatepass")
            # Screened first: when only identifiers need reading, the document is parsed into
            # plain dicts (C speed) just to prove it is JSON; else into pairs, duplicates kept.
            fast = (
                _screenable(raw)
                and not (state.whole_elements and (_escapes(raw) or _rendered_may_fire(raw, state)))
                and state.screen(raw) == frozenset()
                and not _named_files(raw, state)
            )
            # A FHIR Narrative.div's XHTML is read as XML (``_string``): what its markup splits
            # (a name, a code: ``131052<span>-308T</span>``), no screen of the JSON text sees.
            # On the fast path its divs are still read so, whatever the rules.
            narratives = fast and b'"div"' in raw
            unique = True  # (the fast path's plain objects: no key repeated, or not known)
            if fast and state.parties:
                try:
                    doc = json.loads(text, object_pairs_hook=_unique, parse_int=_integer)
                except _Duplicated:
                    doc, unique = json.loads(text, parse_int=_integer), False
            elif fast:
                doc = json.loads(text, parse_int=_integer)
            else:
                doc = json.loads(text, object_pairs_hook=_Object, parse_int=_integer)
        except (json.JSONDecodeError, UnscannableError) as exc:
            if not strict:
                # A sniffed payload that is not JSON after all is scanned as text instead.
                yield from text_fields(payload, strict=False)
                return
            if isinstance(exc, UnscannableError):
                raise
            raise UnscannableError(
                f"JSON parse error at line {exc.lineno} column {exc.colno}: {exc.msg}", location
            ) from None
        except RecursionError:
            raise UnscannableError("JSON nested too deeply", location) from None
        if "fhir" in media.type or _has_resource_type(doc):
            # The resource type only of the body itself: the answer's FHIRPath starts there.
            state.note_protocol(Protocol.FHIR_JSON, "" if payload.location else _root_type(doc))
        if state.parties and (
            '"resourceType"' in text or '"family_name"' in text or '"given_name"' in text
        ):
            # The persons and organisations of FHIR resources, and the subject OpenID Connect
            # claims name (a JWT's payload, a userinfo answer: the name's parts in separate
            # claims no field holds together), read from plain objects. Where a key is
            # duplicated, a receiver may take the last one (json.loads, most parsers) or the
            # first: the persons of both readings are judged (a registered name after a real
            # one hid it).
            fhir = '"resourceType"' in text
            oidc = '"family_name"' in text or '"given_name"' in text
            judged: set[Party] = set()
            for plain in [doc] if fast and unique else _plain_readings(text):
                found = itertools.chain(
                    fhir_json_parties(plain, payload.location) if fhir else (),
                    oidc_parties(plain, payload.location) if oidc else (),
                )
                for party in found:
                    if party not in judged:
                        judged.add(party)
                        yield party
        if fast:
            # No free text can fire and nothing is encoded inside: only the identifiers of the
            # detectors' systems need reading, found without walking the document.
            pairs = cache(partial(json.loads, text, object_pairs_hook=_Object, parse_int=_integer))
            identifiers = self._identifiers(text, pairs, payload, state)
            if identifiers is not None:
                yield from identifiers
                if narratives:
                    yield from self._narratives(pairs(), payload, state)
                return
            doc = pairs()
        yield from self._walk(doc, payload, state)

    def _identifiers(
        self, text: str, doc: Callable[[], object], payload: Payload, state: ScanState
    ) -> list[Item] | None:
        """Identifier fields under ``state.systems``: each ``"system"`` member's object, decoded
        on its own; located (by the walk) only if something is reported. None if an object
        cannot be isolated so (escapes in the text make quotes ambiguous)."""
        items: list[Item] = []
        seen: dict[tuple[str, str], int] = {}
        containers = _Containers(text)
        decoded: set[int] = set()
        # Each object is decoded once, and all of them together at most twice the text: one
        # "system" member per nested object, each decoded whole, would be quadratic.
        budget = 2 * len(text) + 4096
        for member in _SYSTEM_MEMBER.finditer(text):
            system = normalise_system(member.group(1))
            if system not in state.systems:
                continue
            start = containers.object_at(member.start())
            if start is None:
                return None
            if start in decoded:
                continue  # a duplicate "system" member of an object already read
            decoded.add(start)
            try:
                obj, end = _DECODER.raw_decode(text, start)
            except ValueError:
                return None
            budget -= end - start
            if budget < 0:
                return None
            keys = dict(obj) if isinstance(obj, _Object) else {}
            declared = keys.get("system")
            if not isinstance(declared, str) or normalise_system(declared) != system:
                return None
            for key, value in obj:
                if key not in ("value", "code") or not isinstance(value, str):
                    continue
                ordinal = seen.get((system, value), 0)
                seen[system, value] = ordinal + 1
                finder = _Finder(self, doc, payload, state, system, value, ordinal)
                items.append(
                    Field(
                        value,
                        Context(payload.context.role, key, system),
                        finder.location,
                        identifier=True,
                        owner=finder.context,
                    )
                )
        return items

    def _narratives(self, doc: object, payload: Payload, state: ScanState) -> Iterator[Item]:
        """The FHIR Narrative divs of a document, each read as the walk reads it (its XHTML a
        nested payload, with the walk's context), and nothing else: the fast path's screen
        found nothing in the JSON text, but what the div's markup splits only its XML reading
        sees. Every pair is visited, duplicate keys included."""
        prefix = payload.location + ":" if payload.location else ""
        stack: list[tuple[object, str, Context]] = [(doc, "", payload.context)]
        while stack:
            node, pointer, ctx = stack.pop()
            if isinstance(node, str):
                if ctx.element == "div":
                    yield from self._string(node, pointer, ctx, None, prefix, payload, state)
            elif isinstance(node, _Object):
                role, system, _ = _object_context(node, ctx)
                stack.extend(
                    (value, f"{pointer}/{_escape(key)}", _child_context(key, role, system))
                    for key, value in reversed(node)
                )
            elif isinstance(node, list):
                stack.extend(
                    (item, f"{pointer}/{index}", ctx)
                    for index, item in reversed(list(enumerate(node)))
                )

    def _walk(self, doc: object, payload: Payload, state: ScanState) -> Iterator[Item]:
        prefix = payload.location + ":" if payload.location else ""
        # (value, pointer, context, identifier-system or None)
        stack: list[tuple[object, str, Context, str | None]] = [(doc, "", payload.context, None)]
        # Base64 strings decoded, asked together which may fire (``live_decoded``) a group
        # at a time: (decoded, location, context).
        pending: list[tuple[bytes, str, Context]] = []
        while stack:
            node, pointer, ctx, id_system = stack.pop()
            if isinstance(node, str):
                yield from self._string(
                    node, pointer, ctx, id_system, prefix, payload, state, pending
                )
                if len(pending) >= DECODED_GROUP:
                    yield from _decoded_payloads(pending, payload, state)
            elif isinstance(node, _Object):
                role, system, keys = _object_context(node, ctx)
                obj_ctx = (
                    Context(role, ctx.element, system) if role is not ctx.role or system else ctx
                )
                children: list[tuple[object, str, Context, str | None]] = []
                for key, value in node:
                    child_pointer = f"{pointer}/{_escape(key)}"
                    yield Field(key, obj_ctx, f"{prefix}{child_pointer}#key")
                    child_ctx = _child_context(key, role, system)
                    if key == "data" and isinstance(value, str):
                        data = decode_base64(value)
                        if data is not None:
                            content_type = keys.get("contentType")
                            ct = content_type if isinstance(content_type, str) else None
                            children.append(
                                (
                                    nested(
                                        data,
                                        ct,
                                        prefix + child_pointer + "!base64",
                                        payload,
                                        child_ctx,
                                        state,
                                        declared=ct is not None,
                                    ),
                                    child_pointer,
                                    child_ctx,
                                    None,
                                )
                            )
                            continue
                    is_id = system is not None and key in ("value", "code")
                    children.append((value, child_pointer, child_ctx, system if is_id else None))
                stack.extend(reversed(children))
            elif isinstance(node, list):
                stack.extend(
                    (item, f"{pointer}/{index}", ctx, None)
                    for index, item in reversed(list(enumerate(node)))
                )
            elif isinstance(node, Payload):
                yield node
        yield from _decoded_payloads(pending, payload, state)

    def _string(
        self,
        value: str,
        pointer: str,
        ctx: Context,
        id_system: str | None,
        prefix: str,
        payload: Payload,
        state: ScanState,
        pending: list[tuple[bytes, str, Context]] | None = None,
    ) -> Iterator[Item]:
        """The fields and payloads of a string. ``pending``: where its Base64 content, decoded,
        is put instead of being yielded (``_decoded_payloads``)."""
        where = prefix + (pointer or "/")
        if id_system is not None:
            yield Field(value, Context(ctx.role, ctx.element, id_system), where, identifier=True)
            return
        if ctx.element == "x5t#S256" and state.certificates:
            # A JOSE header naming its signer by thumbprint: judged with the request's
            # certificates once it is read (the certificate itself may be in an x5c).
            yield thumbprint_item(value, where, ctx)
        if (data := base64_content(value)) is not None:
            where += encoding_mark(value)
            if pending is not None:
                pending.append((data, where, ctx))
            else:
                yield nested(data, None, where, payload, ctx, state, declared=False)
            return
        if ctx.element == "div" and value.lstrip()[:1] == "<":
            # A FHIR Narrative.div is XHTML: read as XML (every node, and what its markup splits,
            # ``Potilas <b>Matti</b> Virtanen``, as a reader reads it). Not declared: a div
            # that is no well-formed XML is read as text instead.
            xhtml = value.encode("utf-8", "surrogatepass")
            yield nested(xhtml, "application/xhtml+xml", where, payload, ctx, state, declared=False)
            return
        yield Field(value, ctx, where)
        if state.whole_elements and ("%" in value or "&" in value or "\\" in value):
            # Escapes no JSON parser undoes (``liisa.korhonen&#64;gmail.com``, ``Liisa%20
            # Korhonen``): a page or a log that shows the string may.
            for form in unescaped_forms(value):
                yield Field(form, ctx, where + "!unescaped", view_of=where)
        if state.whole_elements and "<" in value and (shown := strip_tags(value)) != value:
            # Markup in a string (FHIR markdown allows inline HTML: ``<b>Liisa</b>
            # <i>Korhonen</i>``), as a page that renders it shows it.
            yield Field(shown, ctx, where + "!rendered", view_of=where)
        if ctx.element in _FILE_NAMED:
            words = file_name_words(value.rpartition("/")[2])
            if words is not None:
                # An attachment named after its patient (``Liisa_Korhonen_lahete.pdf``).
                yield Field(words, ctx, where + "!words", view_of=where)


def _object_context(node: _Object, ctx: Context) -> tuple[Role, str | None, dict[str, object]]:
    """The role an object's members are read under, the identifier system it declares, and
    its members as a dict (the last of a duplicated key, as ``json.loads`` keeps)."""
    keys = dict(node)
    role = ctx.role
    resource = keys.get("resourceType")
    if isinstance(resource, str):
        role = FHIR_RESOURCE_ROLES.get(resource, Role.DOCUMENT)
    elif ctx.element == "contact" and role is Role.PROFESSIONAL and "name" not in keys:
        # An Organization.contact that names no one (purpose ADMIN: a functional mailbox, a
        # switchboard) is the organisation's own, not its staff's.
        role = Role.ORGANISATION
    system = keys.get("system")
    return role, normalise_system(system) if isinstance(system, str) else None, keys


def _child_context(key: str, role: Role, system: str | None) -> Context:
    """The context of an object member's value."""
    child_role = FHIR_KEY_ROLES.get(key, role)
    if key == "contact" and role is Role.ORGANISATION:
        child_role = Role.PROFESSIONAL
    return Context(child_role, key, system)


def _has_resource_type(doc: object) -> bool:
    if isinstance(doc, dict):
        return "resourceType" in doc
    return isinstance(doc, _Object) and any(key == "resourceType" for key, _ in doc)


def _root_type(doc: object) -> str:
    """The ``resourceType`` of a document (the last one, as ``json.loads`` keeps), or ""."""
    if isinstance(doc, dict):
        found = doc.get("resourceType")
    elif isinstance(doc, _Object):
        found = next((v for k, v in reversed(doc) if k == "resourceType"), None)
    else:
        found = None
    return found if isinstance(found, str) else ""


#: Members that hold a file name (FHIR ``Attachment.title`` and ``url``): read as words too.
_FILE_NAMED = frozenset({"title", "url"})
_FILE_NAME_MEMBER = re.compile(rb'"(?:title|url)"[ \t\r\n]*:[ \t\r\n]*"([^"\\]{3,1024})"')


class _Duplicated(Exception):
    """A JSON object repeats a key (``_unique``)."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object as ``json.loads`` makes it; raises :class:`_Duplicated` if a key repeats."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Duplicated
    return obj


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        obj.setdefault(key, value)
    return obj


def _decoded_payloads(
    pending: list[tuple[bytes, str, Context]], payload: Payload, state: ScanState
) -> Iterator[Payload]:
    """Nested payloads of the decoded Base64 strings ``pending`` holds (and empty it) in which
    something may fire (``text.live_decoded``); the others are counted as scanned, as the
    pipeline counts a batched payload it need not parse. (Each a payload cost about 10 µs
    of questions the group answers at once: an array of 24-byte digests scanned at 1 MB/s.)"""
    if not pending:
        return
    batch = pending[:]
    pending.clear()
    live = live_decoded([data for data, _, _ in batch], state, lambda: payload.location or "body")
    for number in sorted(live):
        data, where, ctx = batch[number]
        yield nested(data, None, where, payload, ctx, state, declared=False)


def _plain_readings(text: str) -> list[Any]:
    """The document as plain objects every way a receiver takes a repeated key: the last
    (json.loads) and, where any key repeats, the first as well."""
    try:
        return [json.loads(text, object_pairs_hook=_unique, parse_int=_integer)]
    except _Duplicated:
        return [
            json.loads(text, parse_int=_integer),
            json.loads(text, object_pairs_hook=_first_wins, parse_int=_integer),
        ]


def _named_files(raw: bytes, state: ScanState) -> bool:
    """True if a ``title`` or ``url`` member holds a file name whose words (``_string``'s
    reading) the screen does not rule out: the walk must read them (the screen of the raw
    text sees ``Liisa_Korhonen.pdf`` as one word). One screen of all of them: linear."""
    if b'"title"' not in raw and b'"url"' not in raw:
        return False
    names = (
        found[1].rpartition(b"/")[2].decode("utf-8", "replace")
        for found in _FILE_NAME_MEMBER.finditer(raw)
    )
    words = [w for name in names if (w := file_name_words(name)) is not None]
    # (One screen of them all, a line each: its needles stand in every line that could fire.)
    return bool(words) and state.screen(joined_texts(words)) != frozenset()


def _rendered_may_fire(raw: bytes, state: ScanState) -> bool:
    """True if a string's markup, taken out as a page renders it (``_string``), may show what
    the screen of the raw text does not: the raw text is screened again with every tag taken
    out (a tag never spans strings: ``_RAW_TAG`` stops at a quote that is not escaped)."""
    if raw.find(b"<") == -1:
        return False
    shown = _RAW_TAG.sub(b"", raw)
    return shown != raw and state.screen(shown) != frozenset()


#: A tag as it stands in the raw JSON (``text.strip_tags`` takes it out of the string).
_RAW_TAG = re.compile(rb'<(?:[^<>"\\]|\\.)*+>')


def _escapes(raw: bytes) -> bool:
    """True if a string of the raw JSON may hold an escape no JSON parser undoes (a percent
    escape, a character reference or entity, a backslash escape written ``\\\\``): the walk
    reads those strings with them undone as well, which no screen of the raw text does.
    (``\\u`` escapes already send the document to the walk: ``_screenable``.)"""
    if raw.find(b"%") == -1 and raw.find(b"&") == -1 and raw.find(b"\\\\") == -1:
        return False
    return _ESCAPE.search(raw) is not None


#: What starts an escape of ``_escapes`` in the raw JSON.
_ESCAPE = re.compile(rb"%[0-9A-Fa-f]{2}|&(?:#|[A-Za-z][A-Za-z0-9]{1,31};?)|\\\\")


def _screenable(raw: bytes) -> bool:
    """True if the raw JSON shows every string as the walk reads it, with no Base64 inside.

    Not when a ``\\u`` or ``\\/`` escape could spell part of a code, a ``data`` member holds
    Base64 the walk decodes whatever its length, or a string is a Base64 run.
    """
    if raw.find(b"\\") != -1 and (b"\\u" in raw or b"\\/" in raw):
        return False
    if b'"data"' in raw or b'"x5t#S256"' in raw:
        return False  # (Base64 by declaration; a JOSE header's thumbprint, judged in the walk)
    for start, end in base64_spans(raw, b'"', b'"'):
        segment = raw[start:end]
        if b"\\" in segment:
            # Wrapped Base64 (a PEM body, say) reaches JSON with its line breaks escaped; the
            # walk reads the string unescaped, so must this. (Other escapes cannot stand in
            # Base64: \u and \/ were refused above, and a backslash is not in its alphabet.)
            for escape, char in _WHITESPACE_ESCAPES:
                segment = segment.replace(escape, char)
        if base64_content(segment) is not None:
            return False
    return True


_WHITESPACE_ESCAPES = ((b"\\n", b"\n"), (b"\\r", b"\r"), (b"\\t", b"\t"), (b"\\f", b"\f"))


_SYSTEM_MEMBER = re.compile(r'"system"\s*:\s*"([^"\\]*)"')


# A JSON string (RFC 8259 §7, escapes included: a quote after an odd number of backslashes is
# inside it) or a bracket; unrolled and possessive, so each character is read once.
_TOKEN = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"|[{}\[\]]', re.DOTALL)
# A JSON number's integer digits past this many: Python refuses to convert them (int max str
# digits, 4300 by default: CVE-2020-10735), and json.loads would raise ValueError.
_MAX_DIGITS = 4000


class _BigInteger(str):
    """An integer too long to convert; kept as its digits (numbers are no fields)."""

    __slots__ = ()


def _integer(digits: str) -> int | _BigInteger:
    """``parse_int`` for json.loads: an integer, or its digits when there are too many."""
    return int(digits) if len(digits) <= _MAX_DIGITS else _BigInteger(digits)


_DECODER = json.JSONDecoder(object_pairs_hook=_Object, parse_int=_integer)


class _Containers:
    """The object whose member starts at a position of a JSON text, for positions asked in
    increasing order.

    The usual case is answered from the nearest ``{`` (at C speed, within a short reach). Else
    one forward pass over the text, shared by every member asked about, tracks the open
    objects and arrays: linear, where a scan back from each member would read the text again
    for every one (quadratic: 400 members after a 200,000-item array took minutes).
    """

    _REACH = 4096

    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = _TOKEN.finditer(text)
        self._pending: re.Match[str] | None = None
        self._stack: list[tuple[str, int]] = []
        self._reached = 0  # where the forward pass has read up to

    def object_at(self, pos: int) -> int | None:
        """The offset of the ``{`` opening the object whose member starts at ``pos``; None if
        the innermost container there is an array, there is none, or ``pos`` lies inside a
        string (then the match is no member)."""
        text = self._text
        brace = text.rfind("{", max(0, pos - self._REACH), pos)
        if brace != -1:
            # Only flat members (no brackets, no escapes) between the nearest "{" and the
            # member, and quotes paired: that "{" is outside any string and opens the object.
            between = text[brace + 1 : pos]
            if (
                between.count('"') % 2 == 0
                and "\\" not in between
                and "}" not in between
                and "[" not in between
                and "]" not in between
            ):
                return brace
        return self._forward(pos)

    def _forward(self, pos: int) -> int | None:
        stack = self._stack
        while True:
            token = self._pending or next(self._tokens, None)
            self._pending = None
            if token is None:
                break
            start, end = token.span()
            if start >= pos:
                self._pending = token  # the member's own key, or past it: not read yet
                break
            self._reached = end
            char = self._text[start]
            if char == '"':
                continue
            if char in "{[":
                stack.append((char, start))
            elif stack:
                stack.pop()
        if pos < self._reached:
            return None  # inside a string the pass read past
        return stack[-1][1] if stack and stack[-1][0] == "{" else None


class _Finder:
    """The walk's own field for an identifier found without it: its location and context."""

    def __init__(
        self,
        parser: JsonParser,
        doc: Callable[[], object],
        payload: Payload,
        state: ScanState,
        system: str,
        value: str,
        ordinal: int,
    ) -> None:
        self._args = (parser, doc, payload, state.limits)
        self._key = (system, value, ordinal)

    @cached_property
    def _field(self) -> Field | None:
        parser, doc, payload, limits = self._args
        system, value, ordinal = self._key
        for item in parser._walk(doc(), payload, ScanState(limits)):
            if (
                isinstance(item, Field)
                and item.identifier
                and item.value == value
                and item.context.system == system
            ):
                if ordinal == 0:
                    return item
                ordinal -= 1
        return None

    def location(self) -> str:
        found = self._field
        return found.location if found is not None else (self._args[2].location or "/")

    def context(self) -> Context:
        found = self._field
        return found.context if found is not None else self._args[2].context
