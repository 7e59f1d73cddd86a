"""XML parser: SOAP 1.1/1.2 envelopes, HL7 V3 messages, CDA R2 (with ``hl7fi:``), FHIR XML, SAML.

Every attribute, text node, tail, comment and processing instruction is a field, and so is every
name: element and attribute names (with their prefixes), namespace URIs declared with
``xmlns``, processing-instruction targets. Identity codes hide in places no list of paths
foresees (Kela's own documents put them in ``relatedSubject/code/@code``, observation values and
narrative). Text is also judged as a reader sees it: where markup splits a code
(``0101<b/>70-…``, a comment inside it), the joined text around each such place is a field too
(``_glue_windows``). Base64 is decoded where it is declared (CDA ``representation="B64"``, FHIR
``base64Binary`` such as ``Binary/data/@value`` and ``Attachment/data/@value``, whatever its
length) and where a text, tail or attribute value looks like it. When the HTTP charset and the
document's own encoding (BOM or XML declaration) disagree, both readings are scanned: a receiver
may use either. Structure only adds context:
the role (``roles.XML_ROLES``), the OID an identifier is declared under, and which values *are*
identifiers (CDA ``II`` extension under ``@root``, ``@code`` under ``@codeSystem``, FHIR
``identifier/value`` under ``system``, a SAML ``AttributeValue`` under its ``Name``).

Parsing is lxml with entities unresolved, no DTD, no network (lxml ≥ 6.1; CVE-2026-41066): a
document declaring a DOCTYPE is unscannable, since text inside unresolved entities would be
invisible to the scan.
"""

from __future__ import annotations

import bisect
import codecs
import dataclasses
import re
from collections.abc import Callable, Iterator
from functools import cached_property, lru_cache, partial
from typing import Any, cast

from lxml import etree

from ..charset import sniff_bom, xml_declared_encoding
from ..dicom.settings import DEFAULT_DUMMIES
from ..dicom.xds import xds_parties
from ..encoding import decode_content
from ..errors import UnscannableError
from ..idcode import mask_any_form, quote_input
from ..mediatype import MediaType, parse_media_type, sniff_document
from ..model import CertificateItem, Context, Field, Party, Payload, Protocol, Role
from ..roles import FHIR_KEY_ROLES, FHIR_RESOURCE_ROLES, XML_ROLES
from ..search import holds
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
from .certificate import (
    certificate_items,
    hex_certificate,
    looks_like_certificate,
    markup_certificate_items,
)
from .jose import jose_nested
from .parties import fhir_xml_parties, saml_parties, v3_parties
from .text import live_decoded, strip_tags, text_fields

__all__ = ["XmlParser"]

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
FHIR_NS = "http://hl7.org/fhir"
_FHIR_PREFIX = "{" + FHIR_NS + "}"
_PROTOCOLS = {SOAP11_NS: Protocol.SOAP11, SOAP12_NS: Protocol.SOAP12, FHIR_NS: Protocol.FHIR_XML}


@lru_cache(maxsize=32)
def _parser(encoding: str | None) -> etree.XMLParser:
    """A hardened parser; ``encoding`` overrides the document's own (an HTTP charset wins)."""
    return etree.XMLParser(
        encoding=encoding,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
        recover=False,
        collect_ids=False,
    )


def _parser_for(media: MediaType) -> etree.XMLParser:
    """The hardened parser for a payload of this media type (its charset overriding the
    document's); LookupError for a charset no codec knows."""
    charset = media.params.get("charset")
    return _parser(charset.lower() if charset else None)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _step(el: etree._Element) -> str:
    """One XPath step with a position when siblings share the name."""
    name = _local(el.tag) if isinstance(el.tag, str) else "node()"
    parent = el.getparent()
    if parent is None:
        if not isinstance(el.tag, str):
            kind = "comment()" if isinstance(el, etree._Comment) else "processing-instruction()"
            return "/" + kind
        return "/" + name
    if not isinstance(el.tag, str):
        siblings = [c for c in parent if not isinstance(c.tag, str)]
        kind = "comment()" if isinstance(el, etree._Comment) else "processing-instruction()"
        return f"/{kind}[{siblings.index(el) + 1}]"
    before = sum(1 for _ in el.itersiblings(el.tag, preceding=True))
    if before or next(el.itersiblings(el.tag), None) is not None:
        return f"/{name}[{before + 1}]"
    return "/" + name


def _child_steps(parent: etree._Element) -> dict[etree._Element, str]:
    """``_step`` of each child of ``parent``, in one pass over them (and one to count)."""
    counts: dict[object, int] = {}
    for child in parent:
        tag = child.tag if isinstance(child.tag, str) else None
        counts[tag] = counts.get(tag, 0) + 1
    seen: dict[object, int] = {}
    table: dict[etree._Element, str] = {}
    for child in parent:
        if isinstance(child.tag, str):
            n = seen[child.tag] = seen.get(child.tag, 0) + 1
            name = _local(child.tag)
            table[child] = f"/{name}[{n}]" if counts[child.tag] > 1 else "/" + name
        else:
            n = seen[None] = seen.get(None, 0) + 1
            kind = "comment()" if isinstance(child, etree._Comment) else "processing-instruction()"
            table[child] = f"/{kind}[{n}]"
    return table


_CLARK_NS = re.compile(r"\{[^}]*\}")


def _xpath(el: etree._Element) -> str:
    """A readable XPath: local names, positions among same-named siblings where they repeat."""
    parent = el.getparent()
    if isinstance(el.tag, str) and parent is not None:
        # lxml's ElementPath of the element (C-level): the same steps, with namespaces.
        tree = el.getroottree()
        relative = _CLARK_NS.sub("", tree.getelementpath(el))
        return f"/{_local(tree.getroot().tag)}/{relative}"
    steps = [_step(a) for a in el.iterancestors()]
    steps.reverse()
    return "".join(steps) + _step(el)


def _locate(payload: Payload, el: etree._Element, suffix: str) -> str:
    """The location of a node: the payload's own location, then the node's XPath."""
    prefix = payload.location
    return f"{prefix}:{_xpath(el)}{suffix}" if prefix else f"{_xpath(el)}{suffix}"


def _named_role(el: etree._Element, parent_local: str | None) -> Role | None:
    """The role an element names itself, if any (else it inherits its parent's)."""
    local = _local(el.tag)
    if el.tag.startswith(_FHIR_PREFIX):
        if local == "contact" and parent_local == "Organization":
            # An Organization.contact is a member of its staff when it names one, else the
            # organisation's own (purpose ADMIN: a functional mailbox, a switchboard), as the
            # JSON parser and the parties read it.
            named = el.find(_FHIR_PREFIX + "name") is not None
            return Role.PROFESSIONAL if named else Role.ORGANISATION
        return (
            FHIR_RESOURCE_ROLES.get(local)
            or FHIR_KEY_ROLES.get(local)
            or (Role.DOCUMENT if local[:1].isupper() else None)
        )
    if local == "text" and parent_local == "section":
        return Role.NARRATIVE
    return XML_ROLES.get(local)


def _parent_context(el: etree._Element, payload: Payload) -> Context:
    """The context of the node holding ``el``'s tail (or a comment): its parent's."""
    parent = el.getparent()
    return _context_of(parent, payload.context) if parent is not None else payload.context


def _context_of(el: etree._Element, base: Context) -> Context:
    """An element's context from its ancestors (for nodes found without the walk).

    The same answer as the walk's: the nearest element that names a role decides.
    """
    attrib = el.attrib
    return Context(
        _role_of(el, base.role), _local(el.tag), attrib.get("root") or attrib.get("codeSystem")
    )


def _role_of(
    el: etree._Element, base: Role, memo: dict[etree._Element, Role] | None = None
) -> Role:
    """The role of the nearest element, ``el`` or an ancestor, that names one (else ``base``).
    ``memo``: the roles found before, kept for every element passed on the way up (the nearest
    element naming a role decides for each of them): elements that share ancestors, as a
    document's parties do, walk each chain once."""
    passed: list[etree._Element] = []
    role = base
    node: etree._Element | None = el
    while node is not None:
        if memo is not None and (known := memo.get(node)) is not None:
            role = known
            break
        parent = node.getparent()
        passed.append(node)
        named = _named_role(node, _local(parent.tag) if parent is not None else None)
        if named is not None:
            role = named
            break
        node = parent
    if memo is not None:
        for node in passed:
            memo[node] = role
    return role


class XmlParser:
    """Parses XML payloads (declared ``*/xml``, ``*+xml``; or sniffed as XML)."""

    name = "xml"

    def claims(self, media: MediaType, payload: Payload) -> bool:
        if media.is_xml:
            return True
        # Sniffed past a BOM, whitespace and UTF-16/32 NUL bytes (XML 1.0 Appendix F): XML sent
        # as application/octet-stream or text/plain is still read as XML.
        return media.type in SNIFF_TYPES and sniff_document(payload.data) == "application/xml"

    def parse(self, payload: Payload, media: MediaType, state: ScanState) -> Iterator[Item]:
        other = _other_reading(payload.data, media)
        if other is None:
            yield from self._parse_reading(payload, media, state)
            return
        # The HTTP charset and the document's own encoding disagree (RFC 7303 §3.2 lets the
        # charset win; many receivers read the declaration): both readings are scanned. The
        # second one's fields are readings of the same places (``Field.view_of``), so a code
        # both show is reported once; its nested content the first reading had is skipped.
        seen: set[bytes] = set()
        for item in self._parse_reading(payload, media, state):
            if isinstance(item, Payload):
                seen.add(item.data)
            yield item
        try:
            self._parse_tree(payload, other)
        except UnscannableError:
            return  # that reading does not decode: no receiver reads the document so
        # (Past here an error is the scan's: too much decoded content, invalid declared Base64.)
        for item in self._parse_reading(payload, other, state, parties=False):
            if isinstance(item, Party | CertificateItem):
                continue  # (the first reading found them)
            if isinstance(item, Payload):
                if item.data not in seen:
                    yield item
                continue
            yield dataclasses.replace(item, view_of=item.location)

    def _parse_reading(
        self, payload: Payload, media: MediaType, state: ScanState, *, parties: bool = True
    ) -> Iterator[Item]:
        """One reading of the document: its tree, and what the screens make of the tree's text.

        The tree is always built: libxml2's reading is the one every detector judges. Two
        screens then say which fields need reading (``Detector.screen``): one over the
        document's markup as the parser read it (``_markup_reading``), one over its text joined
        across markup as a reader sees it (lxml's text serialisation: every text node in
        order). When neither names anything, only Base64 content is looked for; when the
        markup screen names needles, only the nodes holding them are read (``_targeted``);
        else every node is (``_walk``).
        """
        strict = payload.declared and media.is_xml
        raw = _utf8_as_sent(payload.data, media)
        # A document as written is screened before its tree is built, while its bytes are
        # still in the processor's cache (the parse evicts them).
        early = raw is not None and _as_written(raw)
        wanted = None
        if early and raw is not None and not _declares_base64(raw):
            wanted = state.screen(raw)
        try:
            root = self._parse_tree(payload, media)
        except UnscannableError:
            if strict:
                raise
            yield from _fallback_text(payload, state)
            return
        self._note_protocol(etree.QName(root).namespace or "", state)
        if parties and state.parties:
            dummies = state.dicom.dummies if state.dicom is not None else DEFAULT_DUMMIES
            yield from _parties(root, payload, dummies)
        if raw is None:
            raw = _utf8(payload.data, media, root)
        markup = _markup_reading(raw, root)
        if markup is not raw:
            wanted = None if _declares_base64(markup) else state.screen(markup)
        if wanted is not None:
            joined = etree.tostring(root, method="text", encoding="utf-8")
            glue = state.screen_joined(joined)
            if not wanted and glue == frozenset():
                yield from _mixed_fields(root, markup, payload, state)
                yield from _row_fields(root, payload, state)
                yield from _file_name_fields(root, payload, state)
                yield from _unescaped_fields(root, markup, payload, state)
                yield from self._nested_only(lambda: root, markup, payload, state)
                return
            # Needles are found by the markup before them in the document as sent (its lines
            # are the tree's source lines); in a re-serialisation only the walk finds them.
            targeted: list[Item] | None = None
            if not wanted:
                targeted = []
            elif markup is raw:
                targeted = self._targeted(root, raw, wanted, payload, state)
            if targeted is not None:
                yield from targeted
                if glue != frozenset():
                    # (The pieces joined are the text serialised above: its needles stand.)
                    yield from _glue_fields(_text_pieces(root), payload, state, (glue,))
                yield from _mixed_fields(root, markup, payload, state)
                yield from _row_fields(root, payload, state)
                yield from _file_name_fields(root, payload, state)
                yield from _unescaped_fields(root, markup, payload, state)
                yield from self._nested_only(lambda: root, markup, payload, state)
                return
        yield from self._walk(root, payload, state)

    @staticmethod
    def _note_protocol(namespace: str, state: ScanState) -> None:
        protocol = _PROTOCOLS.get(namespace)
        if protocol is not None:
            state.note_protocol(protocol)

    def _targeted(
        self,
        root: etree._Element,
        raw: bytes,
        needles: frozenset[bytes],
        payload: Payload,
        state: ScanState,
    ) -> list[Item] | None:
        """The fields of the nodes holding a needle, each with its context from its ancestors.

        Each place a needle stands in the raw text names the markup before it: a start tag (the
        needle is in its name, attributes, namespace declarations or text), an end tag (in the
        element's tail), a comment or PI (its target, text or tail). The nodes of that name are
        then asked for the needle, by lxml's C-level tag filter. None if a needle is found in no
        node so (an entity or whitespace normalisation changed it): then only the full walk can
        be trusted. Base64 is left to ``_nested_only``, which the caller runs after.
        """
        found: dict[tuple[etree._Element, str], None] = {}
        texts = {needle: needle.decode("utf-8", "replace") for needle in needles}
        # Every place a needle stands, grouped by the markup before it: each group's candidate
        # nodes are then read once (not once per place: a code repeated in many siblings would
        # cost their square).
        groups: dict[tuple[str, str], tuple[set[int | None], set[str]]] = {}
        places: list[tuple[int, str]] = []
        for needle, text in texts.items():
            offset = raw.find(needle)
            while offset != -1:
                places.append((offset, text))
                offset = raw.find(needle, offset + len(needle))
        places.sort()
        line, counted = 1, 0  # lines counted once, in document order
        for offset, text in places:
            start = raw.rfind(b"<", 0, offset)
            if start == -1:
                continue
            if start >= counted:
                line += raw.count(b"\n", counted, start)
                counted = start
            else:  # (markup before an earlier place's: count back)
                line -= raw.count(b"\n", start, counted)
                counted = start
            key, on_line = _markup_at(raw, start, line)
            lines, wanted = groups.setdefault(key, (set(), set()))
            lines.add(on_line)
            wanted.add(text)
        held: set[str] = set()
        for key, (lines, wanted) in groups.items():
            _holders(root, key, lines, wanted, found, held)
        if len(held) < len(texts):
            return None  # a needle no node holds as written: only the walk can be trusted
        # Findings in document order, as the walk would give them (by source line).
        order = {"misc": 0, "name": 1, "attr": 2, "text": 3, "tail": 4}
        items: list[Item] = []
        for el, kind in sorted(found, key=lambda k: (k[0].sourceline or 0, order[k[1]])):
            if kind == "misc":
                items.extend(self._misc(el, payload, _parent_context(el, payload)))
                continue
            if kind == "tail":
                ctx = _parent_context(el, payload)
                items.append(
                    Field(
                        el.tail or "", ctx, partial(_locate, payload, el, "/following::text()[1]")
                    )
                )
                continue
            ctx = _context_of(el, payload.context)
            if kind == "name":
                parent = el.getparent()
                inherited = parent.nsmap if parent is not None else {}
                items.extend(_names(el, ctx, payload, inherited))
            elif kind == "attr":
                items.extend(self._attributes(el, el.attrib, ctx, payload, state, sniff=False))
            else:
                items.extend(self._text(el, el.text or "", ctx, payload, state, sniff=False))
        return items

    def _nested_only(
        self,
        tree: Callable[[], etree._Element],
        raw: bytes,
        payload: Payload,
        state: ScanState,
    ) -> Iterator[Item]:
        """The fast path: no field can fire, so only Base64 content is looked for, in the text.

        Element text, tails and attribute values made of a long Base64 run are decoded and
        yielded as nested payloads; the node holding one (and the tree, if none was built) is
        looked up only if something inside is reported.
        """
        found: list[tuple[bytes, bytes, bool]] = []
        certificates: list[tuple[bytes, bytes, bool]] = []
        jose: list[tuple[bytes, bytes, bool]] = []  # texts holding a JOSE compact token
        memo = state.inert
        spans = [(span, False) for span in base64_spans(raw, b">", b"<")]
        for quote in (b'"', b"'"):
            if raw.find(quote) != -1:
                spans.extend(
                    (span, True) for span in base64_spans(raw, quote, quote, long_only=True)
                )
        for (start, end), attr in spans:
            segment = raw[start:end]
            if memo is not None and (known := memo.get(segment)) is not None:
                state.charge(known, "body")
                state.payloads += 1  # (screened as a nested payload: counted as one)
                continue
            if state.certificates and memo is not None:
                der = memo.certificate(segment)
                if der is not None:
                    certificates.append((segment, der, attr))
                    continue
            data = base64_content(segment)
            if data is None:
                if state.certificates and (der := hex_certificate(segment)) is not None:
                    certificates.append((segment, der, attr))  # (DER written in hex)
                    continue
                if segment.find(b"ey") != -1:
                    jose.append((segment, b"", attr))
                continue
            if state.certificates and looks_like_certificate(data):
                # Judged, not screened as a blob (and never remembered as inert).
                certificates.append((segment, data, attr))
                if memo is not None:
                    memo.add_certificate(segment, data)
                continue
            found.append((segment, data, attr))
        if certificates:
            yield from self._holders_of(certificates, tree, payload, state, kind="certificate")
        if jose:
            yield from self._holders_of(jose, tree, payload, state, kind="jose")
        if not found:
            return
        # What the text parser would conclude of each (signature values, digests), in a few
        # screens and without nested payloads: the inert ones, in which nothing can fire, are
        # only counted; the others become payloads.
        live = live_decoded([data for _, data, _ in found], state)
        inert = [entry for number, entry in enumerate(found) if number not in live]
        if memo is not None:
            for segment, data, _ in inert:
                memo.add(segment, len(data))
        if live:
            yield from self._holders_of([found[n] for n in sorted(live)], tree, payload, state)

    @staticmethod
    def _holders_of(
        found: list[tuple[bytes, bytes, bool]],
        tree: Callable[[], etree._Element],
        payload: Payload,
        state: ScanState,
        *,
        kind: str = "",
    ) -> Iterator[Item]:
        """Nested payloads of decoded Base64 texts, located at their holders (looked up only
        if something inside is reported). ``kind`` "certificate": the texts are DER
        certificates, yielded as such (``certificate_items``) without a parser's dispatch;
        "jose": the texts hold JOSE compact tokens (``jose_nested``)."""
        ordinals: dict[tuple[str, bool], int] = {}
        nodes = _NodeIndex(tree)
        for segment, data, attr in found:
            # (Keyed as the index keys the node's text: the segment as written may hold blanks
            # or a line break around it that another node's copy does not.)
            key = _NodeIndex.key(segment.decode("utf-8", "replace"), attr)
            ordinal = ordinals.get((key, attr), 0)
            ordinals[key, attr] = ordinal + 1
            holder = _Holder(nodes, key, payload, ordinal, attr, encoding_mark(segment))
            if kind == "certificate":
                state.charge(len(data), holder.location)
                yield from certificate_items(data, holder.location, holder.context)
                continue
            if kind == "jose":
                yield from jose_nested(segment, holder.location, payload, holder.context, state)
                continue
            yield nested(
                data, None, holder.location, payload, holder.context, state, declared=False
            )

    def _parse_tree(self, payload: Payload, media: MediaType) -> etree._Element:
        try:
            parser = _parser_for(media)
        except LookupError:
            charset = media.params.get("charset") or ""
            raise UnscannableError(
                f"unknown charset {quote_input(charset, 32)}", payload.location or "body"
            ) from None
        try:
            root = etree.fromstring(payload.data, parser)
        except etree.XMLSyntaxError as exc:
            # libxml2 quotes names and text of the document: masked in every form it could take.
            msg = mask_any_form(str(exc.msg or "syntax error"))
            raise UnscannableError(
                f"XML parse error at line {exc.lineno}: {msg}", payload.location or "body"
            ) from None
        except (LookupError, ValueError) as exc:
            raise UnscannableError(
                f"XML cannot be decoded: {type(exc).__name__}", payload.location or "body"
            ) from None
        docinfo: Any = root.getroottree().docinfo
        if docinfo.doctype or docinfo.internalDTD is not None:
            raise UnscannableError(
                "XML declares a DOCTYPE: entities and DTDs are refused, their content would be "
                "invisible to the scan",
                payload.location or "body",
            )
        return root

    def _walk(self, root: etree._Element, payload: Payload, state: ScanState) -> Iterator[Item]:
        base_role = payload.context.role
        contexts: list[Context] = [Context(base_role)]
        nsmaps: list[dict[str | None, str]] = [{}]
        # The text as a reader sees it, piece by piece in document order (comments and PIs
        # left out): where markup splits it, the joined text is judged too (``_glue_fields``).
        pieces = _Pieces()
        texts = pieces.items
        # Comments and PIs before/after the root element are part of the document too.
        for sibling in root.itersiblings(preceding=True):
            yield from self._misc(sibling, payload, contexts[0])
        for event, el in etree.iterwalk(root, events=("start", "end", "comment", "pi")):
            if event == "end":
                contexts.pop()
                nsmaps.pop()
                pieces.end(el)
                tail = el.tail
                if tail:
                    texts.append((tail, el, True, contexts[-1]))
                    if not tail.isspace():
                        yield from self._loose_text(el, tail, contexts[-1], payload, state)
                continue
            if event != "start":
                yield from self._misc(el, payload, contexts[-1])
                if el.tail:
                    texts.append((el.tail, el, True, contexts[-1]))
                continue
            local = _local(el.tag)
            parent_ctx = contexts[-1]
            role = _named_role(el, parent_ctx.element) or parent_ctx.role
            attrib = el.attrib
            system = attrib.get("root") or attrib.get("codeSystem")
            ctx = Context(role, local, system)
            contexts.append(ctx)
            nsmap = el.nsmap
            yield from _names(el, ctx, payload, nsmaps[-1], nsmap)
            nsmaps.append(nsmap)
            if attrib:
                yield from self._attributes(el, attrib, ctx, payload, state)
            pieces.start(el)
            text = el.text
            if text:
                texts.append((text, el, False, ctx))
                if not text.isspace():
                    yield from self._text(el, text, ctx, payload, state)
        for sibling in root.itersiblings():
            yield from self._misc(sibling, payload, contexts[0])
        yield from _glue_fields(pieces, payload, state)
        yield from _mixed_fields(root, None, payload, state, screened=False)
        yield from _row_fields(root, payload, state, screened=False)
        yield from _file_name_fields(root, payload, state, screened=False)
        yield from _unescaped_fields(root, None, payload, state, screened=False)

    def _attributes(
        self,
        el: etree._Element,
        attrib: etree._Attrib,
        ctx: Context,
        payload: Payload,
        state: ScanState,
        *,
        sniff: bool = True,
    ) -> Iterator[Item]:
        id_attr = None
        if ctx.system is not None:
            if "root" in attrib:
                id_attr = "extension"
            elif "codeSystem" in attrib:
                id_attr = "code"
        fhir = el.tag.startswith(_FHIR_PREFIX)
        if fhir and ctx.element in ("value", "code") and "value" in attrib:
            system = _fhir_system(el)
            if system is not None:
                ctx = Context(ctx.role, ctx.element, system)
                id_attr = "value"
        declared = fhir and _fhir_base64(ctx.element or "")
        for name, value in attrib.items():
            if not value:
                continue
            attr = _local(str(name))
            value = str(value)
            where = partial(_locate, payload, el, "/@" + attr)
            yield Field(value, ctx, where, identifier=attr == id_attr)
            if declared and attr == "value":
                # FHIR R4 base64Binary (Binary.data, Attachment.data, valueBase64Binary): Base64
                # by declaration, whatever its length; the sibling contentType is its type.
                data = decode_base64(value)
                if data is not None:
                    media_type = _fhir_content_type(el)
                    yield nested(
                        data,
                        media_type,
                        partial(_locate, payload, el, f"/@{attr}!base64"),
                        payload,
                        ctx,
                        state,
                        declared=media_type is not None,
                    )
                    continue
            if sniff and (data := base64_content(value)) is not None:
                where_b64 = partial(_locate, payload, el, f"/@{attr}{encoding_mark(value)}")
                yield nested(data, None, where_b64, payload, ctx, state, declared=False)
            elif sniff and "ey" in value:
                where_attr = partial(_locate, payload, el, f"/@{attr}")
                yield from jose_nested(_bytes(value), where_attr, payload, ctx, state)

    def _text(
        self,
        el: etree._Element,
        text: str,
        ctx: Context,
        payload: Payload,
        state: ScanState,
        *,
        sniff: bool = True,
    ) -> Iterator[Item]:
        where = partial(_locate, payload, el, "/text()")
        if el.get("representation") == "B64":
            data = decode_base64(text)
            if data is None:
                raise UnscannableError(
                    'element declared representation="B64" holds invalid Base64',
                    mask_any_form(_locate(payload, el, "")),
                )
            data = _decompressed(el, data, payload, state)
            yield nested(
                data,
                el.get("mediaType"),
                _locate(payload, el, "!base64"),
                payload,
                ctx,
                state,
                declared=el.get("mediaType") is not None,
            )
            return
        identifier = ctx.element == "AttributeValue" and _saml_system(el) is not None
        if identifier:
            ctx = Context(ctx.role, ctx.element, _saml_system(el))
        # The text itself is read whether or not it also decodes: text that merely looks like
        # Base64 is still what a reader sees.
        yield Field(text, ctx, where, identifier=identifier)
        if sniff and (data := base64_content(text)) is not None:
            where_b64 = _locate(payload, el, encoding_mark(text))
            yield nested(data, None, where_b64, payload, ctx, state, declared=False)
        elif sniff and "ey" in text:
            yield from jose_nested(_bytes(text), where, payload, ctx, state)
        elif sniff and state.certificates and (der := hex_certificate(_bytes(text))) is not None:
            # (A certificate's DER written in hex: some systems fill a text so.)
            state.charge(len(der), _locate(payload, el, "!hex"))
            yield from certificate_items(der, _locate(payload, el, "!hex"), ctx)

    def _loose_text(
        self, el: etree._Element, tail: str, ctx: Context, payload: Payload, state: ScanState
    ) -> Iterator[Item]:
        """A tail (text after an element, inside its parent): the text, and Base64 in it."""
        yield Field(tail, ctx, partial(_locate, payload, el, "/following::text()[1]"))
        if (data := base64_content(tail)) is not None:
            mark = encoding_mark(tail)
            where = partial(_locate, payload, el, f"/following::text()[1]{mark}")
            yield nested(data, None, where, payload, ctx, state, declared=False)
        elif "ey" in tail:
            where = partial(_locate, payload, el, "/following::text()[1]")
            yield from jose_nested(_bytes(tail), where, payload, ctx, state)

    def _misc(self, node: etree._Element, payload: Payload, ctx: Context) -> Iterator[Item]:
        """Comments and processing instructions: their target, text and tail."""
        if isinstance(node, etree._ProcessingInstruction) and node.target:
            yield Field(str(node.target), ctx, partial(_locate, payload, node, "/name()"))
        if node.text and not node.text.isspace():
            yield Field(node.text, ctx, partial(_locate, payload, node, ""))
        if node.tail and not node.tail.isspace():
            yield Field(node.tail, ctx, partial(_locate, payload, node, "/following::text()[1]"))


def _names(
    el: etree._Element,
    ctx: Context,
    payload: Payload,
    inherited: dict[str | None, str],
    nsmap: dict[str | None, str] | None = None,
) -> Iterator[Field]:
    """An element's names: its qualified name, its attributes' names, and the namespaces it
    declares (prefix and URI), each where it stands (``…/name()``, ``…/@a/name()``,
    ``…/namespace::p``)."""
    local = _local(el.tag)
    prefix = el.prefix
    qname = f"{prefix}:{local}" if prefix else local
    yield Field(qname, ctx, partial(_locate, payload, el, "/name()"))
    for name in el.attrib:
        attr = _local(str(name))
        yield Field(attr, ctx, partial(_locate, payload, el, f"/@{attr}/name()"))
    if nsmap is None:
        nsmap = el.nsmap
    if nsmap == inherited:
        return
    for ns_prefix, uri in nsmap.items():
        if inherited.get(ns_prefix) == uri:
            continue
        axis = f"/namespace::{ns_prefix or 'xmlns'}"
        if ns_prefix:
            yield Field(ns_prefix, ctx, partial(_locate, payload, el, axis + "/name()"))
        yield Field(uri, ctx, partial(_locate, payload, el, axis))


#: FHIR R4 elements of type base64Binary (Binary.data, Attachment.data, Signature.data,
#: Device.udiCarrier.carrierAIDC, value[x] and defaultValue[x] as base64Binary).
_FHIR_B64 = frozenset({"data", "carrierAIDC"})


def _fhir_base64(local: str) -> bool:
    return local in _FHIR_B64 or local.endswith("Base64Binary")


def _fhir_content_type(el: etree._Element) -> str | None:
    """The ``contentType/@value`` beside a FHIR ``data`` element (Binary, Attachment)."""
    parent = el.getparent()
    if parent is None:
        return None
    found = parent.find(f"{{{FHIR_NS}}}contentType")
    value = found.get("value") if found is not None else None
    return value or None


def _fhir_system(el: etree._Element) -> str | None:
    """For FHIR XML ``identifier/value`` or ``coding/code``: the sibling ``system/@value``."""
    parent = el.getparent()
    if parent is None:
        return None
    system = parent.find(f"{{{FHIR_NS}}}system")
    if system is None or not system.get("value"):
        return None
    return normalise_system(system.get("value", ""))


def _saml_system(el: etree._Element) -> str | None:
    """For a SAML ``AttributeValue``: its ``Attribute/@Name`` as an OID, if it is one (a URN OID
    or a dotted OID) and no attribute of a person's name or contact details (those are text the
    name and contact rules read: an e-mail in ``mail`` passed as an identifier)."""
    parent = el.getparent()
    if parent is None or _local(parent.tag) != "Attribute":
        return None
    system = normalise_system(parent.get("Name") or "")
    if not _OID.fullmatch(system) or system in _PERSON_ATTRIBUTES:
        return None
    return system


_OID = re.compile(r"[0-2](?:\.\d+)+")
#: The X.500/LDAP attribute types of a person's name and contact details (RFC 4519, RFC 4524,
#: inetOrgPerson RFC 2798): cn, sn, givenName, initials, title, street, postalAddress,
#: postalCode, telephoneNumber, facsimileTelephoneNumber, mail, mobile, homePhone,
#: homePostalAddress, displayName.
_PERSON_ATTRIBUTES = frozenset(
    (
        "2.5.4.3",
        "2.5.4.4",
        "2.5.4.42",
        "2.5.4.43",
        "2.5.4.12",
        "2.5.4.9",
        "2.5.4.16",
        "2.5.4.17",
        "2.5.4.20",
        "2.5.4.23",
        "0.9.2342.19200300.100.1.3",
        "0.9.2342.19200300.100.1.41",
        "0.9.2342.19200300.100.1.20",
        "0.9.2342.19200300.100.1.39",
        "2.16.840.1.113730.3.1.241",
    )
)


def _parties(
    root: etree._Element, payload: Payload, dummies: frozenset[str] = DEFAULT_DUMMIES
) -> Iterator[Party]:
    """The persons and organisations of a CDA/HL7 V3 or FHIR XML document, and the patients
    of IHE XDS metadata (``parties``); ``dummies``: the policy's DICOM dummy values."""

    def locate(el: etree._Element) -> str:
        return _locate(payload, el, "")

    roles: dict[etree._Element, Role] = {}  # (the parties share their ancestors)

    def role_of(el: etree._Element) -> Role:
        return _role_of(el, payload.context.role, roles)

    yield from v3_parties(root, locate, role_of)
    yield from fhir_xml_parties(root, locate, role_of)
    yield from saml_parties(root, locate, role_of)
    # IHE XDS metadata (a RAD-68 or any ITI-41 request): the patient of ``sourcePatientInfo``.
    yield from xds_parties(root, locate, dummies)


#: HL7 V3 CompressionAlgorithm codes an ED (CDA ``nonXMLBody/text``) may declare, read by their
#: bytes as any payload is (gzip, bzip2: by their magic numbers), or undone here (deflate and
#: zlib have none to sniff). Any other (``Z``, ``Z7``) is refused: it would pass unread.
_SNIFFED_COMPRESSIONS = frozenset(("GZ", "BZ"))
_DEFLATE_COMPRESSIONS = frozenset(("DF", "ZL"))


def _decompressed(el: etree._Element, data: bytes, payload: Payload, state: ScanState) -> bytes:
    """An ED's decoded bytes undone from the ``compression`` it declares (see above)."""
    compression = (el.get("compression") or "").strip().upper()
    if not compression or compression in _SNIFFED_COMPRESSIONS:
        return data
    where = mask_any_form(_locate(payload, el, ""))
    if compression in _DEFLATE_COMPRESSIONS:
        try:
            return decode_content(data, "deflate", max_size=state.limits.max_decoded_bytes)
        except UnscannableError as exc:
            raise UnscannableError(
                f"element declared compression={quote_input(compression, 8)}: {exc.reason}", where
            ) from None
    raise UnscannableError(
        f"element declared compression={quote_input(compression, 8)}, which the guard does not "
        "read (GZ, DF, ZL and BZ are read)",
        where,
    )


def _fallback_text(payload: Payload, state: ScanState) -> Iterator[Item]:
    """A sniffed payload that turned out not to be XML is scanned as text instead, and the
    certificates written in its bytes are read (no parser reads its Base64 as such). XHTML that
    is no XML (a FHIR ``Narrative.div`` written as HTML) is read as a browser renders it too:
    its tags taken out (``text_fields``' HTML view)."""
    xhtml = parse_media_type(payload.content_type).type == "application/xhtml+xml"
    yield from text_fields(payload, strict=False, html_text=xhtml)
    yield from markup_certificate_items(payload, state)


_NAME_END = re.compile(rb"[\s/>]")


def _markup_at(raw: bytes, start: int, line: int) -> tuple[tuple[str, str], int | None]:
    """The markup starting at ``start`` on ``line``: (its kind, its local name), and the line
    its node starts on (None for an end tag, whose node started elsewhere)."""
    # A start tag, comment or PI is the node whose sourceline is the line its markup starts on.
    if raw.startswith(b"<!--", start):
        return ("comment", ""), line
    if raw.startswith(b"<?", start):
        return ("pi", ""), line
    closing = raw.startswith(b"</", start)
    begin = start + (2 if closing else 1)
    end = _NAME_END.search(raw, begin)
    name = raw[begin : end.start() if end else len(raw)].decode("utf-8", "replace")
    local = name.rpartition(":")[2]
    return ("end" if closing else "start", local), None if closing else line


def _holders(
    root: etree._Element,
    key: tuple[str, str],
    lines: set[int | None],
    texts: set[str],
    found: dict[tuple[etree._Element, str], None],
    held: set[str],
) -> None:
    """Add the nodes of this markup (on these lines; None: any) holding one of ``texts``, and
    note in ``held`` the texts found so."""
    category, local = key
    kinds: tuple[str, ...]
    if category == "comment":
        candidates, kinds = root.getroottree().iter(etree.Comment), ("misc",)
    elif category == "pi":
        candidates, kinds = root.getroottree().iter(etree.ProcessingInstruction), ("misc",)
    else:
        candidates = root.iter("{*}" + local)
        kinds = ("tail",) if category == "end" else ("name", "attr", "text", "tail")
    any_line = None in lines
    for node in candidates:
        # (lxml-stubs type sourceline wrongly; it is an int, or None.)
        if not any_line and cast(int | None, node.sourceline) not in lines:
            continue
        for kind in kinds:
            for text in texts:
                if kind == "misc":
                    hit = (
                        text in (node.text or "")
                        or text in (node.tail or "")
                        or text in (getattr(node, "target", None) or "")
                    )
                elif kind == "name":
                    hit = _in_names(node, text)
                elif kind == "attr":
                    hit = any(text in value for value in node.attrib.values())
                elif kind == "text":
                    hit = text in (node.text or "")
                else:
                    hit = text in (node.tail or "")
                if hit:
                    found[node, kind] = None
                    held.add(text)


def _in_names(el: etree._Element, text: str) -> bool:
    """True if ``text`` stands in the element's name, an attribute's name or a namespace it
    declares (prefix or URI)."""
    if text in (el.prefix or "") or text in _local(el.tag):
        return True
    if any(text in _local(str(name)) for name in el.attrib):
        return True
    parent = el.getparent()
    inherited = parent.nsmap if parent is not None else {}
    return any(
        text in (prefix or "") or text in uri
        for prefix, uri in el.nsmap.items()
        if inherited.get(prefix) != uri
    )


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _declares_base64(markup: bytes) -> bool:
    """True if an element may declare Base64 content: CDA ``representation``, a FHIR
    ``base64Binary`` element. The walk decodes it whatever its length (and refuses it if
    invalid), which the Base64 screen of the fast path, by length, does not."""
    if b"representation" in markup:
        return True
    return b"hl7.org/fhir" in markup and _FHIR_B64_TAG.search(markup) is not None


_FHIR_B64_TAG = re.compile(rb"<(?:[^\s/>:]+:)?(?:data|carrierAIDC|[A-Za-z]+Base64Binary)[\s/>]")
# What the serialiser writes as character references in UTF-8 output: whitespace in attribute
# values (and CR in text), which the tree holds as the characters.
_WHITESPACE_REFS = ((b"&#9;", b"\t"), (b"&#10;", b"\n"), (b"&#13;", b"\r"))


def _as_written(raw: bytes) -> bool:
    """True if the document holds no ``&`` and no CDATA section (see ``_markup_reading``)."""
    return raw.find(b"&") == -1 and not holds(raw, b"<![CDATA[", 2)


def _markup_reading(raw: bytes | None, root: etree._Element) -> bytes:
    """The document's markup as the parser read it, in UTF-8: the screen's input.

    The document itself (as UTF-8) where it shows every value as the tree holds it: no ``&``
    (no entity or character reference) and no CDATA section. There each field of the tree (a
    text, an attribute value, a name, a namespace URI, a comment, a PI) stands in the bytes
    as written, but for the parser's line-end and attribute-value normalisation, which turns
    whitespace into whitespace. Anywhere else, the tree re-serialised: libxml2 writes each
    value as the tree holds it, but for ``& < > "`` (escaped: no part of any token) and the
    whitespace it writes as references (put back here); CDATA comes out as text.
    """
    if raw is not None and _as_written(raw):
        return raw
    markup = etree.tostring(root.getroottree(), encoding="utf-8")
    for ref, char in _WHITESPACE_REFS:
        markup = markup.replace(ref, char)
    return markup


# -- Text joined across markup ---------------------------------------------------------------
#
# A reader of mixed content sees ``0101<b/>70-308T`` or ``0101<!-- x -->70-308T`` as one text
# (XML 1.0 §3.2.2 mixed content; the CDA R2 narrative block; XHTML in FHIR ``Narrative.div``):
# the text of an element is its text nodes and its descendants', in order (XPath's string
# value), and a code is a code of that text if it is one of *some* element's text. Node by
# node, neither piece is a code.
#
# Joining every element's text for every ancestor would cost the document's size times its
# depth. Instead the document's text is one stream of pieces (``_Pieces``, each element's
# range of them recorded as the walk passes), and the joined screen (``Detector.screen`` with
# ``joined``) names the needles any element's text could fire on: tokens of any stretch of the
# stream. Each place a needle stands across markup is judged in the smallest element holding
# all of it, with the neighbours it has there (an ancestor's text has the same ones or more
# digits around it, never fewer: if the smallest element's text holds no code there, no
# element's does). Linear: one search per needle, one climb per place (each climb passes only
# elements the stream has closed since the previous one, or the same ones).
#
# Where the screen cannot name needles (a text whose readings differ from it as written, more
# needles than a screen gives), windows around the markup are judged instead (``_glue_windows``).
# Every split of a code leaves a digit next to the markup (its groups are digits), so only
# markers with a digit within 8 bytes count. A code has 10 or 11 letters and digits, so a split
# leaves at most 10 on a side. Around each such marker two windows are judged: 10 letters and
# digits back and 9 on, located at the text before the marker; 1 back and 10 on, located at
# the text after it. Back, a window stops at the previous marker; on, it crosses markers: a
# code split more than once is found at its first split only. Each window is a reading of the
# text it is located at (``Field.view_of``): a code that text holds by itself (a whole code has
# 10 letters and digits or more, so it can stand on the 10-side only) is not reported twice. A
# window reaches at most 64 bytes to a side. Where its edge cuts next to a digit, the digit
# stays (and a "9" after it, or before the left edge, which no code starts with): cutting makes
# up no code. (The windows do not know elements: a code split by markup and touching digits
# across an element boundary on both sides, ``<td>5</td><td>0101<b/>70-308T</td>5``, is found
# by the needles only.)


# -- Mixed content as a reader reads it ----------------------------------------------------------

#: Markup that may hold mixed content (an element whose text, not all whitespace, lies beside a
#: child element, comment or PI): text that is not whitespace after a tag and before a start tag,
#: comment, PI or CDATA section; or after an end tag, an empty-element tag, a comment or a PI.
#: A superset (``>`` in an attribute value, a CDATA section anywhere: the XPath decides), each
#: pattern anchored on a literal and possessive throughout: one pass, linear.
_TEXT_THEN_CHILD = re.compile(rb">\s*+[^\s<][^<]*+<(?!/)")
_END_THEN_TEXT = re.compile(rb"</[^<>]*+>\s*+[^\s<]")
_CLOSE_THEN_TEXT = re.compile(rb">(?<=[-/?]>)\s*+[^\s<]")
#: The elements with mixed content (libxml2's XPath: C speed).
_MIXED = etree.XPath("//*[text()[normalize-space()]][* or comment() or processing-instruction()]")


def _maybe_mixed(raw: bytes) -> bool:
    """True unless the document as written certainly has no mixed content (see above)."""
    return (
        _TEXT_THEN_CHILD.search(raw) is not None
        or _END_THEN_TEXT.search(raw) is not None
        or _CLOSE_THEN_TEXT.search(raw) is not None
        or raw.find(b"<![CDATA[") != -1
    )


def _to_read[T](
    found: list[tuple[T, str]], state: ScanState, screened: bool
) -> Iterator[tuple[T, str]]:
    """The pairs of ``found`` (a node, a text read from it) whose text needs a field: each,
    unless ``screened``; else those holding a needle of one screen of all the texts, a line
    each (a needle stands in every line that could fire), none if it rules every one out."""
    if not screened or not found:
        yield from found
        return
    wanted = state.screen(joined_texts(text for _, text in found))
    if wanted == frozenset():
        return
    for node, text in found:
        if wanted is None or any(needle in _bytes(text) for needle in wanted):
            yield node, text


def _mixed_fields(
    root: etree._Element,
    raw: bytes | None,
    payload: Payload,
    state: ScanState,
    *,
    screened: bool = True,
) -> Iterator[Field]:
    """Each outermost element with mixed content as one field: its text as a reader joins it
    (``Matti <b>Virtanen</b>``, ``Ma<!-- -->tti``: the string value, comments and PIs left out),
    so that a name, a number or a code that markup splits is judged whole. A reading of the
    element (``Field.view_of``): what its nodes reported on their own is not reported again.

    ``raw``: the document as the screens read it (its markup decides whether mixed content can
    be there at all); ``screened``: the joined texts are screened, and only fields holding a
    needle are read (False: every one is, as the full walk reads everything).
    """
    if not state.whole_elements or (raw is not None and not _maybe_mixed(raw)):
        return
    found = cast(list[etree._Element], _MIXED(root))
    if not found:
        return
    chosen = set(found)
    # The outermost ones: their texts are disjoint, so reading them is linear in the text.
    outer = [el for el in found if not any(a in chosen for a in el.iterancestors())]
    texts = [(el, "".join(str(piece) for piece in el.itertext())) for el in outer]
    paths = _XPaths()
    for el, text in _to_read(texts, state, screened):
        path = paths.of(el)
        where = f"{payload.location}:{path}" if payload.location else path
        yield Field(text, _context_of(el, payload.context), where, view_of=where)


#: A table row and its cells (CDA narrative ``tr``/``td``/``th``, XHTML's in a FHIR div).
_ROW, _CELL_TAGS = "{*}tr", ("{*}td", "{*}th")


def _row_fields(
    root: etree._Element, payload: Payload, state: ScanState, *, screened: bool = True
) -> Iterator[Field]:
    """Each table row of two cells or more as one field, its cells' texts side by side as a
    reader sees them (``<td>Liisa</td><td>Korhonen</td>``: a name whose parts a table of
    given names and surnames puts in two columns), a reading of the row (``Field.view_of``).
    Rows are found by lxml's C-level tag filter (a few microseconds on a document without
    any); ``screened``: the rows are screened together first, and only those holding a needle
    are read (False: every one is)."""
    if not state.whole_elements:
        return
    rows = list(root.iter(_ROW))
    if not rows:
        return
    found: list[tuple[etree._Element, str]] = []
    # A row whose cell holds a table is layout, not a record: only the innermost rows are
    # read, so that no text is read once for each table around it (linear, however deep).
    outer = _enclosing_rows(rows)
    for row in rows:
        if row in outer:
            continue
        cells = [
            cell.text or "" if not len(cell) else "".join(str(piece) for piece in cell.itertext())
            for cell in row.iterchildren(_CELL_TAGS)
        ]
        if len(cells) > 1 and (text := _cell_runs(cells)):
            found.append((row, text))
    paths = _XPaths()
    for row, text in _to_read(found, state, screened):
        path = paths.of(row)
        where = f"{payload.location}:{path}" if payload.location else path
        yield Field(text, _context_of(row, payload.context), where + "!cells", view_of=where)


def _cell_runs(cells: list[str]) -> str:
    """The runs of a row's cells that a name could cross, each as one line: consecutive cells
    where one ends in a letter and the next opens with a capital (``Maija Liisa | Testinen``),
    side by side. Only they: a row's other cells (numbers, units, dates) read on their own
    already, and a phone-number detector would read every row of a table of results again."""
    runs: list[str] = []
    run = [cells[0].strip()]
    for cell in cells[1:]:
        cell = cell.strip()
        if run[-1][-1:].isalpha() and cell[:1].isupper():
            run.append(cell)
            continue
        if len(run) > 1:
            runs.append(" ".join(" ".join(run).split()))
        run = [cell]
    if len(run) > 1:
        runs.append(" ".join(" ".join(run).split()))
    return "\n".join(runs)


def _enclosing_rows(rows: list[etree._Element]) -> set[etree._Element]:
    """The rows of ``rows`` that hold another: each row's nearest enclosing row, found by
    walking up from it, every element passed remembered with the answer (so that each
    element is passed once: linear)."""
    nearest: dict[etree._Element, etree._Element | None] = {}
    outer: set[etree._Element] = set()
    for row in rows:
        passed: list[etree._Element] = []
        node = row.getparent()
        found: etree._Element | None = None
        while node is not None:
            if node in nearest:
                found = nearest[node]
                break
            passed.append(node)
            if _local(str(node.tag)) == "tr":
                found = node
                break
            node = node.getparent()
        for element in passed:
            nearest[element] = found
        if found is not None:
            outer.add(found)
    return outer


#: Elements whose ``value`` may be a file name: FHIR ``Attachment.title`` and ``url``, a CDA
#: ``reference`` (of an ``observationMedia``, a ``nonXMLBody``), as the JSON parser reads them.
_FILE_NAMED = ("{*}title", "{*}url", "{*}reference")


def _file_name_fields(
    root: etree._Element, payload: Payload, state: ScanState, *, screened: bool = True
) -> Iterator[Field]:
    """The ``value`` of each element that may hold a file name, read as the words it joins
    (``Liisa_Korhonen_lausunto.pdf``: an attachment named after its patient; the screens of the
    document see one word), a reading of the attribute (``Field.view_of``). The elements are
    found by lxml's C-level tag filter (a few microseconds a CDA; ``bytes.find`` of the three
    names in the markup cost ten times more). ``screened``: the words are screened together
    first, and only those holding a needle are read (False: every one is)."""
    if not state.whole_elements:
        return  # (no detector of names runs)
    found: list[tuple[etree._Element, str]] = []
    for el in root.iter(_FILE_NAMED):
        value = el.get("value")
        if value and (words := file_name_words(value.rpartition("/")[2])) is not None:
            found.append((el, words))
    for el, words in _to_read(found, state, screened):
        where = _locate(payload, el, "/@value")
        yield Field(words, _context_of(el, payload.context), where + "!words", view_of=where)


#: A character reference to "%", "&" or a backslash, in a document as written.
_ESCAPE_REFERENCE = re.compile(rb"&#(?:0*(37|38|60|92)|[xX]0*(25|26|3[cC]|5[cC]));")
_REFERENCED = {
    b"37": "%", b"25": "%", b"38": "&", b"26": "&", b"60": "<", b"3c": "<", b"92": "\\", b"5c": "\\"
}  # fmt: skip


def _escape_starts(raw: bytes) -> str:
    """The characters an escape starts with ("%", "&", a backslash) that a text or attribute
    value parsed from ``raw`` may hold: written so, or as a reference (``&amp;``, ``&#37;``).
    A few ``bytes.find`` calls: most documents hold none."""
    found = ""
    if raw.find(b"%") != -1:
        found += "%"
    if raw.find(b"\\") != -1:
        found += "\\"
    if raw.find(b"&") != -1:
        if raw.find(b"&amp;") != -1 or _misc_in(raw):
            found += "&"  # (written so, or in a comment, CDATA or a PI, which hold it as it is)
        if raw.find(b"&lt;") != -1:
            found += "<"  # (markup escaped in a text or a value: FHIR markdown's inline HTML)
        if raw.find(b"&#") != -1:
            for match in _ESCAPE_REFERENCE.finditer(raw):
                char = _REFERENCED[(match[1] or match[2]).lower()]
                if char not in found:
                    found += char
    return found


def _misc_in(raw: bytes) -> bool:
    """Whether ``raw`` may hold a comment, a CDATA section or a processing instruction (the
    XML declaration aside)."""
    if raw.find(b"<!") != -1:
        return True
    return raw.find(b"<?") != -1 and (raw.find(b"<?", 1) != -1 or not raw.startswith(b"<?xml"))


@lru_cache(maxsize=64)
def _escape_holders(texts: str, attributes: str, misc: bool) -> etree.XPath:
    """The text nodes holding one of ``texts``, the attribute values holding one of
    ``attributes`` (each asked only for the characters that may stand there) and, if
    ``misc``, the comments and processing instructions holding one of ``attributes``."""

    def holding(chars: str) -> str:
        return " or ".join(f"contains(., '{char}')" for char in chars)

    paths = []
    if texts:
        paths.append(f"//text()[{holding(texts)}]")
    if attributes:
        paths.append(f"/descendant-or-self::*/@*[{holding(attributes)}]")
    if misc:
        paths.append(f"//comment()[{holding(attributes)}]")
        paths.append(f"//processing-instruction()[{holding(attributes)}]")
    return etree.XPath(" | ".join(paths))


_MISC = (etree._Comment, etree._ProcessingInstruction)


def _unescaped_fields(
    root: etree._Element,
    raw: bytes | None,
    payload: Payload,
    state: ScanState,
    *,
    screened: bool = True,
) -> Iterator[Field]:
    """Texts and attribute values holding escapes the parser does not undo (a percent escape,
    a backslash escape, a character reference written as ``&amp;#64;``), read with them undone
    as well (``base.unescaped_forms``; ``…!unescaped``, a reading of the node): ``Liisa%20
    Korhonen``, ``liisa&amp;#64;gmail.com`` passed, the screens of the document read them as
    written.

    ``raw``: the document as the screens read it (None: as written); only the characters an
    escape starts with that it shows (``_escape_starts``) are looked for, in text only if the
    text serialised holds them (an XPath costs a tenth of the scan). ``screened``: the undone
    forms are screened, and only those holding a needle are read (False: every one is)."""
    if not state.whole_elements:
        return
    source = raw if raw is not None else etree.tostring(root)
    starts = _escape_starts(source)
    if not starts:
        return
    joined = etree.tostring(root, method="text", encoding="utf-8")
    in_text = "".join(char for char in starts if joined.find(char.encode()) != -1)
    found: list[tuple[tuple[Any, str], str]] = []  # ((node, reading's suffix), reading)
    misc = _misc_in(source)
    for value in cast(list[Any], _escape_holders(in_text, starts, misc)(root)):
        text = str(value.text if isinstance(value, _MISC) else value)
        found.extend(((value, "!unescaped"), form) for form in unescaped_forms(text))
        if "<" in text and (shown := strip_tags(text)) != text:
            found.append(((value, "!rendered"), shown))  # (escaped markup, as a page shows it)
    if not found:
        return
    read: Any = None  # (the node of the readings before: its place is found once)
    for (value, suffix), form in _to_read(found, state, screened):
        if value is not read:
            read = value
            where, ctx = _escape_holder_place(value, payload)
        yield Field(form, ctx, where + suffix, view_of=where)


def _escape_holder_place(value: Any, payload: Payload) -> tuple[str, Context]:
    """Where a node ``_escape_holders`` found stands, and its context: a comment or a PI, an
    attribute value, a tail or an element's text."""
    if isinstance(value, _MISC):
        return _locate(payload, value, ""), _parent_context(value, payload)
    el = value.getparent()
    if value.is_attribute:
        return _locate(payload, el, "/@" + _local(str(value.attrname))), _context_of(
            el, payload.context
        )
    if value.is_tail:
        return _locate(payload, el, "/following::text()[1]"), _parent_context(el, payload)
    return _locate(payload, el, "/text()"), _context_of(el, payload.context)


class _Pieces:
    """The document's text pieces in document order (texts, and tails of elements, comments
    and PIs; comments' and PIs' own text is no part of it), and the range of pieces each
    element holds: its text and its descendants', not its tail."""

    __slots__ = ("_open", "extent", "items")

    def __init__(self) -> None:
        self.items: list[tuple[str, etree._Element, bool, Context | None]] = []
        self.extent: dict[etree._Element, tuple[int, int]] = {}
        self._open: dict[etree._Element, int] = {}

    def start(self, el: etree._Element) -> None:
        self._open[el] = len(self.items)

    def end(self, el: etree._Element) -> None:
        self.extent[el] = (self._open.pop(el), len(self.items))

    def enclosing(self, first: int, last: int) -> tuple[etree._Element, int, int] | None:
        """The smallest element holding pieces ``first`` to ``last``, with its range."""
        _, el, is_tail, _ = self.items[first]
        node = el.getparent() if is_tail else el
        while node is not None:
            begin, end = self.extent[node]
            if begin <= first and last < end:
                return node, begin, end
            node = node.getparent()
        return None


def _digit_or_space(byte: bytes) -> bytes:
    """A neighbour as the token pattern sees it: a digit, or anything else (a space)."""
    return byte if byte.isdigit() else b" " if byte else b""


def _glue_fields(
    pieces: _Pieces,
    payload: Payload,
    state: ScanState,
    screened: tuple[frozenset[bytes] | None] | None = None,
) -> Iterator[Field]:
    """Fields for text joined across markup: each place a needle of the joined screen stands
    across markup, in the smallest element holding it (see above); windows where the screen
    names no needles. ``screened``: the joined screen's answer for this text, if asked already.

    Only the places found are located (an XPath costs as much as the siblings before its
    node: locating every piece of a long run of inline markup would cost its square).
    """
    items = pieces.items
    if len(items) < 2:
        return
    blobs = [text.encode("utf-8", "surrogatepass") for text, _, _, _ in items]
    joined_all = b"".join(blobs)
    needles = state.screen_joined(joined_all) if screened is None else screened[0]
    if needles == frozenset():
        return
    if needles is None:
        yield from _glue_windows_fields(items, blobs, payload)
        return
    starts: list[int] = []
    offset = 0
    for blob in blobs:
        starts.append(offset)
        offset += len(blob)
    places: dict[tuple[int, bytes], tuple[etree._Element, bytes]] = {}
    for needle in needles:
        at = joined_all.find(needle)
        while at != -1:
            end = at + len(needle)
            first = bisect.bisect_right(starts, at) - 1
            last = bisect.bisect_right(starts, end - 1) - 1
            held = pieces.enclosing(first, last) if last > first else None
            if held is not None:
                el, begin, stop = held
                inside_before = at > starts[first] or first > begin
                inside_after = end < starts[last] + len(blobs[last]) or last + 1 < stop
                before = joined_all[at - 1 : at] if inside_before else b""
                after = joined_all[end : end + 1] if inside_after else b""
                text = _digit_or_space(before) + needle + _digit_or_space(after)
                places[at, needle] = (el, text)
            at = joined_all.find(needle, at + 1)
    paths = _XPaths()
    for (_, _), (el, text) in sorted(places.items(), key=lambda kv: kv[0][0]):
        path = paths.of(el)
        where = f"{payload.location}:{path}" if payload.location else path
        yield Field(
            text.decode("utf-8", "replace"),
            _context_of(el, payload.context),
            where,
            view_of=where,
        )


def _glue_windows_fields(
    items: list[tuple[str, etree._Element, bool, Context | None]],
    blobs: list[bytes],
    payload: Payload,
) -> Iterator[Field]:
    """The windows of ``_glue_windows`` over the pieces, as fields located at the text piece
    before or after their marker, each a reading of it."""
    offsets: dict[int, int] = {}
    offset = -1
    for index, blob in enumerate(blobs[:-1]):
        offset += len(blob) + 1
        offsets[offset] = index
    stream = b"\0".join(blobs)
    chosen = [(items[offsets[pos] + after], text) for pos, after, text in _glue_windows(stream)]
    paths = _XPaths()
    for (_, el, is_tail, ctx), text in chosen:
        if ctx is None:
            ctx = _parent_context(el, payload) if is_tail else _context_of(el, payload.context)
        path = paths.of(el) + ("/following::text()[1]" if is_tail else "/text()")
        where = f"{payload.location}:{path}" if payload.location else path
        yield Field(text.decode("utf-8", "replace"), ctx, where, view_of=where)


_NEAR_DIGIT = re.compile(rb"\0(?=[^\0]{0,8}?(?:[0-9]|\xef\xbc[\x90-\x99]))")
_NEAR_DIGIT_REVERSED = re.compile(rb"\0(?=[^\0]{0,8}?(?:[0-9]|[\x90-\x99]\xbc\xef))")
# The side after a marker crosses further markers (a code split twice is found at its first
# split); the side before one stops at the previous marker (so a code split twice is not found
# again at its second).
_SIDES = {n: re.compile(rb"(?:[^0-9A-Za-z]*[0-9A-Za-z]){0,%d}" % n) for n in (9, 10)}
_BACK_SIDES = {n: re.compile(rb"(?:[^0-9A-Za-z\0]*[0-9A-Za-z]){0,%d}" % n) for n in (1, 10)}
_REACH = 64
_DIGITS = frozenset(b"0123456789")
#: (letters and digits back, on, located at the text after the marker)
_WINDOWS = ((10, 9, False), (1, 10, True))


def _glue_windows(stream: bytes) -> Iterator[tuple[int, bool, bytes]]:
    """For each marker (NUL) of ``stream`` a code could be split at, and each window around
    it: the marker's offset, whether the window is located after it, and its joined text."""
    if b"\0" not in stream:
        return
    size = len(stream)
    reverse = stream[::-1]
    markers = {m.start() for m in _NEAR_DIGIT.finditer(stream)}
    markers.update(size - 1 - m.start() for m in _NEAR_DIGIT_REVERSED.finditer(reverse))
    for pos in sorted(markers):
        back = size - pos
        for reach_back, reach_on, after_marker in _WINDOWS:
            left_end = _side(reverse, back, reach_back, _BACK_SIDES)
            right_end = _side(stream, pos + 1, reach_on, _SIDES)
            left = reverse[back:left_end][::-1]
            right = stream[pos + 1 : right_end]
            before = reverse[left_end : left_end + 1]
            if before == b"\0":  # the text before that marker is joined to this one
                before = reverse[left_end + 1 : left_end + 2]
            after = stream[right_end : right_end + 1]
            head = b"9" if before and before[0] in _DIGITS else b""
            tail = after + b"9" if after and after[0] in _DIGITS else b""
            joined = left.replace(b"\0", b"") + right.replace(b"\0", b"")
            yield pos, after_marker, head + joined + tail


def _side(data: bytes, start: int, count: int, sides: dict[int, re.Pattern[bytes]]) -> int:
    """Where a window side that starts at ``start`` ends: after ``count`` letters and digits,
    or ``_REACH`` bytes."""
    match = sides[count].match(data, start, min(len(data), start + _REACH))
    return match.end() if match is not None else start


class _XPaths:
    """``_xpath`` of many elements, each parent's children counted once (``_xpath`` counts an
    element's preceding siblings each time: for every one of a long run, their square)."""

    def __init__(self) -> None:
        self._steps: dict[etree._Element, str] = {}
        self._paths: dict[etree._Element, str] = {}

    def of(self, el: etree._Element) -> str:
        parent = el.getparent()
        if parent is None or not isinstance(el.tag, str):
            return _xpath(el)
        chain: list[etree._Element] = []
        node: etree._Element | None = el
        while node is not None and node not in self._paths and node.getparent() is not None:
            chain.append(node)
            node = node.getparent()
        base = "" if node is None or node.getparent() is None else self._paths[node]
        if node is not None and node.getparent() is None:
            base = "/" + _local(node.tag)
        for step_el in reversed(chain):
            base = f"{base}/{self._step(step_el)}"
            self._paths[step_el] = base
        return self._paths[el]

    def _step(self, el: etree._Element) -> str:
        if el not in self._steps:
            parent = el.getparent()
            assert parent is not None
            counts: dict[str, int] = {}
            for child in parent:
                if isinstance(child.tag, str):
                    counts[child.tag] = counts.get(child.tag, 0) + 1
            seen: dict[str, int] = {}
            for child in parent:
                if isinstance(child.tag, str):
                    seen[child.tag] = seen.get(child.tag, 0) + 1
                    name = _local(child.tag)
                    many = counts[child.tag] > 1
                    self._steps[child] = f"{name}[{seen[child.tag]}]" if many else name
        return self._steps[el]


def _text_pieces(root: etree._Element) -> _Pieces:
    """The document's text pieces, as the walk collects them, without their contexts
    (``_glue_fields`` finds those of the few it reports)."""
    pieces = _Pieces()
    items = pieces.items
    for event, el in etree.iterwalk(root, events=("start", "end", "comment", "pi")):
        if event == "start":
            pieces.start(el)
            if el.text:
                items.append((el.text, el, False, None))
            continue
        if event == "end":
            pieces.end(el)
        if el.tail:
            items.append((el.tail, el, True, None))
    return pieces


# -- Two readings of one document ------------------------------------------------------------


def _codec(name: str) -> codecs.CodecInfo | None:
    try:
        return codecs.lookup(name)
    except LookupError:
        return None


def _other_reading(data: bytes, media: MediaType) -> MediaType | None:
    """The media type to read the document by its own encoding, when an HTTP charset says
    otherwise and the two readings can differ; else None.

    The document's own encoding: its BOM, else its XML declaration, else UTF-16/32 by its NUL
    bytes, else UTF-8 (XML 1.0 §4.3.3, Appendix F).
    """
    charset = media.params.get("charset")
    if not charset:
        return None
    own = sniff_bom(data) or xml_declared_encoding(data)
    if own is None:
        own = "utf-16" if data[:1] == b"\0" or data[1:2] == b"\0" else "utf-8"
    http, doc = _codec(charset), _codec(own)
    if http is None or doc is None or http.name == doc.name:
        return None
    if data.isascii() and _ascii_compatible(http) and _ascii_compatible(doc):
        return None  # both read ASCII as ASCII: one reading
    params = {key: value for key, value in media.params.items() if key != "charset"}
    return MediaType(media.type, params)


def _ascii_compatible(info: codecs.CodecInfo) -> bool:
    try:
        return "<a x='1'>".encode(info.name) == b"<a x='1'>"
    except (UnicodeError, LookupError):
        return False


_UTF8_NAMES = frozenset({"utf8", "ascii", "usascii"})


def _is_utf8(name: str) -> bool:
    return name.lower().replace("-", "").replace("_", "") in _UTF8_NAMES


def _utf8_as_sent(data: bytes, media: MediaType) -> bytes | None:
    """The document itself if the parser will read it as UTF-8 (or ASCII); else None.

    The parser's precedence: an HTTP charset overrides, then a byte order mark, then the XML
    declaration; without any of them XML is UTF-8 (NUL bytes show UTF-16/32 without a mark).
    """
    charset = media.params.get("charset")
    if charset:
        return data if _is_utf8(charset) else None
    bom = sniff_bom(data)
    if bom is not None:
        return data if bom == "utf-8" else None
    if data[:1] == b"\0" or data[1:2] == b"\0":
        return None
    declared = xml_declared_encoding(data)
    return data if declared is None or _is_utf8(declared) else None


def _utf8(data: bytes, media: MediaType, root: etree._Element) -> bytes | None:
    """The document as UTF-8 for the screen: itself when it already is, else re-encoded from
    the encoding the parser read it in (the HTTP charset, the BOM, the XML declaration, NUL
    bytes of UTF-16/32, UTF-8: XML 1.0 Appendix F). None if that cannot be told."""
    encoding = media.params.get("charset") or sniff_bom(data) or xml_declared_encoding(data)
    if encoding is None:
        if data[:1] == b"\0" or data[1:2] == b"\0":
            return None  # UTF-16/32 without a mark: the walk reads it
        encoding = "utf-8"
    if _is_utf8(encoding):
        return data
    try:
        return data.decode(encoding).lstrip("\ufeff").encode("utf-8")
    except (LookupError, UnicodeError):
        return None


class _NodeIndex:
    """Where each text, tail and attribute value of a document stands, in the order of
    ``root.iter()`` (an element's text, then its tail, then its attributes), built on the first
    lookup by one walk of the tree. (A walk per lookup made a document of many Base64 texts,
    each located when read, cost quadratic time: 2 s for 3000 texts.)"""

    def __init__(self, tree: Callable[[], etree._Element]) -> None:
        self._tree = tree
        self._texts: dict[str, list[tuple[etree._Element, str]]] | None = None
        self._attrs: dict[str, list[tuple[etree._Element, str]]] | None = None
        #: Each parent's children's XPath steps (``_step``), built the first time one is asked.
        self._steps: dict[etree._Element, dict[etree._Element, str]] = {}

    def path(self, el: etree._Element) -> str:
        """``_xpath(el)``, each step looked up in its parent's table: a step's position among
        its siblings costs a pass over them (lxml's ``getelementpath`` too), so locating
        each of many siblings that way is quadratic."""
        steps: list[str] = []
        node = el
        while (parent := node.getparent()) is not None:
            table = self._steps.get(parent)
            if table is None:
                table = self._steps[parent] = _child_steps(parent)
            steps.append(table[node])
            node = parent
        steps.append(_step(node))
        steps.reverse()
        return "".join(steps)

    @staticmethod
    def key(text: str, attr: bool) -> str:
        """What a text read from the document's bytes is as the parser gives it: stripped,
        line breaks as LF (XML 1.0 §2.11); an attribute value with its whitespace normalised
        (§3.3.3)."""
        if attr:
            return " ".join(text.split())
        return text.replace("\r\n", "\n").replace("\r", "\n").strip()

    def find(self, key: str, attr: bool, ordinal: int) -> tuple[etree._Element, str]:
        """The ``ordinal``-th node holding a text of this ``key`` and where in it: "" (its
        text), "tail" or an attribute's local name."""
        if attr:
            if self._attrs is None:
                self._attrs = self._index(attrs=True)
            places = self._attrs.get(key, ())
        else:
            if self._texts is None:
                self._texts = self._index(attrs=False)
            places = self._texts.get(key, ())
        if ordinal < len(places):
            return places[ordinal]
        return self._tree(), ""  # unreachable for text taken from this document

    def _index(self, *, attrs: bool) -> dict[str, list[tuple[etree._Element, str]]]:
        index: dict[str, list[tuple[etree._Element, str]]] = {}
        for el in self._tree().iter():
            if attrs:
                for name, attr_value in el.attrib.items():
                    key = self.key(str(attr_value), attr=True)
                    index.setdefault(key, []).append((el, _local(str(name))))
                continue
            for where, text in (("", el.text), ("tail", el.tail)):
                if text:
                    index.setdefault(text.strip(), []).append((el, where))  # (LF already)
        return index


class _Holder:
    """The node whose text (or attribute value) is a Base64 run, looked up only when asked."""

    def __init__(
        self,
        nodes: _NodeIndex,
        key: str,
        payload: Payload,
        ordinal: int,
        attr: bool = False,
        mark: str = "!base64",
    ) -> None:
        self._nodes, self._key, self._payload = nodes, key, payload
        self._mark = mark  # (what the text was decoded from: encoding_mark)
        self._ordinal = ordinal  # the same text may stand in several nodes: which one
        self._attr = attr
        self._where: str | None = None  # (asked by every reading of what it holds: kept)

    @cached_property
    def _node(self) -> tuple[etree._Element, str]:
        """The node and where in it: "" (its text), "tail" or an attribute's local name."""
        return self._nodes.find(self._key, self._attr, self._ordinal)

    def location(self) -> str:
        if self._where is None:
            el, where = self._node
            if where == "tail":
                suffix = f"/following::text()[1]{self._mark}"
            else:
                suffix = f"/@{where}{self._mark}" if where else self._mark
            prefix = self._payload.location
            path = self._nodes.path(el)
            self._where = f"{prefix}:{path}{suffix}" if prefix else f"{path}{suffix}"
        return self._where

    def context(self) -> Context:
        el, where = self._node
        parent = el.getparent() if where == "tail" else el
        base = self._payload.context
        return _context_of(parent, base) if parent is not None else base
