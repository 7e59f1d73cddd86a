"""XML parser: SOAP 1.1/1.2 envelopes, HL7 V3 messages, CDA R2 (with ``hl7fi:``), FHIR XML, SAML.

Every attribute, text node, tail, comment and processing instruction is a field: identity codes
hide in places no list of paths foresees (Kela's own documents put them in
``relatedSubject/code/@code``, observation values and narrative). Structure only adds context:
the role (``roles.XML_ROLES``), the OID an identifier is declared under, and which values *are*
identifiers (CDA ``II`` extension under ``@root``, ``@code`` under ``@codeSystem``, FHIR
``identifier/value`` under ``system``, a SAML ``AttributeValue`` under its ``Name``).

Parsing is lxml with entities unresolved, no DTD, no network (lxml ≥ 6.1; CVE-2026-41066): a
document declaring a DOCTYPE is unscannable, since text inside unresolved entities would be
invisible to the scan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache, cached_property, lru_cache, partial
from typing import Any, cast

from lxml import etree

from ..charset import sniff_bom, xml_declared_encoding
from ..errors import UnscannableError
from ..idcode import mask_any_form, quote_input
from ..mediatype import MediaType
from ..model import Context, Field, Payload, Protocol, Role
from ..roles import FHIR_KEY_ROLES, FHIR_RESOURCE_ROLES, XML_ROLES
from .base import (
    SNIFF_TYPES,
    Item,
    ScanState,
    base64_content,
    base64_spans,
    decode_base64,
    nested,
    normalise_system,
)
from .text import text_fields

__all__ = ["XmlParser"]

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
FHIR_NS = "http://hl7.org/fhir"
_FHIR_PREFIX = "{" + FHIR_NS + "}"
_PROTOCOLS = {SOAP11_NS: Protocol.SOAP11, SOAP12_NS: Protocol.SOAP12, FHIR_NS: Protocol.FHIR_XML}


@lru_cache(maxsize=32)
def _parser(encoding: str | None, check: bool = False) -> etree.XMLParser:
    """A hardened parser; ``encoding`` overrides the document's own (an HTTP charset wins).

    ``check``: the same parser with a target that builds nothing (``_Checker``), for documents
    whose fields need no reading: libxml2 still reads every byte under the same rules.
    """
    # (lxml-stubs require every callback of a target; lxml calls only those it has.)
    target: Any = _Checker() if check else None
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
        target=target,
    )


class _Checker:
    """An lxml parser target that keeps nothing but whether a DOCTYPE was declared.

    With a target, lxml calls back only the methods it has, so a document is read (and refused
    if malformed) at about half the cost of building its tree.
    """

    def __init__(self) -> None:
        self.declared = False

    def doctype(self, name: str | None, pubid: str | None, system: str | None) -> None:
        self.declared = True

    def close(self) -> bool:
        declared, self.declared = self.declared, False
        return declared


def _parser_for(media: MediaType, check: bool = False) -> etree.XMLParser:
    """The hardened parser for a payload of this media type (its charset overriding the
    document's); LookupError for a charset no codec knows."""
    charset = media.params.get("charset")
    return _parser(charset.lower() if charset else None, check)


def _well_formed(payload: Payload, media: MediaType) -> bool:
    """True if the hardened parser reads the document without an error and it has no DOCTYPE.

    False for anything else: the tree parse then gives the verdict and the exact reason.
    """
    try:
        parser = _parser_for(media, check=True)
        parser.target.declared = False  # (a previous document may have failed mid-way)
        declared = etree.fromstring(payload.data, parser)
    except (etree.XMLSyntaxError, LookupError, ValueError):
        return False
    if declared:
        return False
    # Namespace errors (an undeclared prefix) do not stop a target parse; they are logged.
    log = parser.error_log
    return not log or not log.filter_from_errors()


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
    role = base.role
    node: etree._Element | None = el
    while node is not None:
        parent = node.getparent()
        named = _named_role(node, _local(parent.tag) if parent is not None else None)
        if named is not None:
            role = named
            break
        node = parent
    attrib = el.attrib
    return Context(role, _local(el.tag), attrib.get("root") or attrib.get("codeSystem"))


class XmlParser:
    """Parses XML payloads (declared ``*/xml``, ``*+xml``; or sniffed by a leading ``<``)."""

    name = "xml"

    def claims(self, media: MediaType, payload: Payload) -> bool:
        if media.is_xml:
            return True
        return media.type in SNIFF_TYPES and payload.data.lstrip()[:1] == b"<"

    def parse(self, payload: Payload, media: MediaType, state: ScanState) -> Iterator[Item]:
        strict = payload.declared and media.is_xml
        # Screened first, on the raw bytes: when no field can fire, no tree is built.
        raw = _utf8_as_sent(payload.data, media)
        wanted = state.screen(raw) if raw is not None and _screenable(raw) else None
        if wanted == frozenset() and raw is not None:
            namespace = _root_namespace(raw)
            if namespace is not None and _well_formed(payload, media):
                self._note_protocol(namespace, state)
                tree = cache(partial(self._parse_tree, payload, media))
                yield from self._nested_only(tree, raw, payload, state)
                return
        try:
            root = self._parse_tree(payload, media)
        except UnscannableError:
            if strict:
                raise
            yield from _fallback_text(payload)
            return
        self._note_protocol(etree.QName(root).namespace or "", state)
        if raw is None:
            # Not UTF-8 as sent: the screen reads it re-encoded, as the parser decoded it.
            raw = _utf8(payload.data, media, root)
            wanted = state.screen(raw) if raw is not None and _screenable(raw) else None
        if wanted is not None:
            targeted = self._targeted(root, raw or b"", wanted, payload, state) if wanted else []
            if targeted is not None:
                yield from targeted
                yield from self._nested_only(lambda: root, raw or b"", payload, state)
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
        needle is in its attributes or text), an end tag (in the element's tail), a comment or PI.
        The nodes of that name are then asked for the needle, by lxml's C-level tag filter. None
        if a needle is found in no node so (an entity or whitespace normalisation changed it):
        then only the full walk can be trusted.
        """
        found: dict[tuple[etree._Element, str], None] = {}
        for needle in needles:
            text = needle.decode("utf-8", "replace")
            hits = 0
            offset = raw.find(needle)
            while offset != -1:
                hits += _holders(root, raw, offset, text, found)
                offset = raw.find(needle, offset + len(needle))
            if not hits:
                return None
        # Findings in document order, as the walk would give them (by source line).
        order = {"misc": 0, "attr": 1, "text": 2, "tail": 3}
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
            if kind == "attr":
                items.extend(self._attributes(el, el.attrib, ctx, payload))
            else:
                items.extend(self._text(el, el.text or "", ctx, payload, state))
        return items

    def _nested_only(
        self,
        tree: Callable[[], etree._Element],
        raw: bytes,
        payload: Payload,
        state: ScanState,
    ) -> Iterator[Item]:
        """The fast path: no field can fire, so only Base64 content is looked for, in the text.

        Element text made of a long Base64 run is decoded and yielded as a nested payload; the
        element holding it (and the tree, if none was built) is looked up only if something
        inside is reported.
        """
        found: list[tuple[bytes, bytes]] = []
        memo = state.inert
        for start, end in base64_spans(raw, b">", b"<"):
            # (A ">" inside an attribute value starts a segment that holds markup: no Base64.)
            segment = raw[start:end]
            if memo is not None and (known := memo.get(segment)) is not None:
                state.charge(known, "body")
                continue
            data = base64_content(segment)
            if data is not None:
                found.append((segment, data))
        if not found:
            return
        plain = [data for _, data in found if _plain(data)]
        if len(plain) == len(found) and state.screen(b"\0".join(plain)) == frozenset():
            # What the text parser would conclude of each (certificates, signature values), in
            # one screen and without nested payloads: nothing in them can fire.
            state.charge(sum(map(len, plain)), "body")
            if memo is not None:
                for segment, data in found:
                    memo.add(segment, len(data))
            return
        ordinals: dict[str, int] = {}
        for segment, data in found:
            text = segment.decode("utf-8", "replace")
            ordinal = ordinals.get(text, 0)
            ordinals[text] = ordinal + 1
            holder = _Holder(tree, text, payload, ordinal)
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
        # Comments and PIs before/after the root element are part of the document too.
        for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
            yield from self._misc(sibling, payload, contexts[0])

        for event, el in etree.iterwalk(root, events=("start", "end", "comment", "pi")):
            if event == "end":
                contexts.pop()
                tail = el.tail
                if tail and not tail.isspace():
                    yield Field(
                        tail, contexts[-1], partial(_locate, payload, el, "/following::text()[1]")
                    )
                continue
            if event != "start":
                yield from self._misc(el, payload, contexts[-1])
                continue
            local = _local(el.tag)
            parent_ctx = contexts[-1]
            role = _named_role(el, parent_ctx.element) or parent_ctx.role
            attrib = el.attrib
            system = attrib.get("root") or attrib.get("codeSystem")
            ctx = Context(role, local, system)
            contexts.append(ctx)
            if attrib:
                yield from self._attributes(el, attrib, ctx, payload)
            text = el.text
            if text and not text.isspace():
                yield from self._text(el, text, ctx, payload, state)

    def _attributes(
        self, el: etree._Element, attrib: etree._Attrib, ctx: Context, payload: Payload
    ) -> Iterator[Item]:
        id_attr = None
        if ctx.system is not None:
            if "root" in attrib:
                id_attr = "extension"
            elif "codeSystem" in attrib:
                id_attr = "code"
        if (
            ctx.element in ("value", "code")
            and "value" in attrib
            and el.tag.startswith(_FHIR_PREFIX)
        ):
            system = _fhir_system(el)
            if system is not None:
                ctx = Context(ctx.role, ctx.element, system)
                id_attr = "value"
        for name, value in attrib.items():
            if not value:
                continue
            attr = _local(str(name))
            value = str(value)
            yield Field(
                value,
                ctx,
                partial(_locate, payload, el, "/@" + attr),
                identifier=attr == id_attr,
            )

    def _text(
        self,
        el: etree._Element,
        text: str,
        ctx: Context,
        payload: Payload,
        state: ScanState,
    ) -> Iterator[Item]:
        where = partial(_locate, payload, el, "/text()")
        if el.get("representation") == "B64":
            data = decode_base64(text)
            if data is None:
                raise UnscannableError(
                    'element declared representation="B64" holds invalid Base64',
                    mask_any_form(_locate(payload, el, "")),
                )
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
        if (data := base64_content(text)) is not None:
            yield nested(
                data, None, _locate(payload, el, "!base64"), payload, ctx, state, declared=False
            )
            return
        identifier = ctx.element == "AttributeValue" and _saml_system(el) is not None
        if identifier:
            ctx = Context(ctx.role, ctx.element, _saml_system(el))
        yield Field(text, ctx, where, identifier=identifier)

    def _misc(self, node: etree._Element, payload: Payload, ctx: Context) -> Iterator[Item]:
        """Comments and processing instructions: their text and their tail."""
        if node.text and not node.text.isspace():
            yield Field(node.text, ctx, partial(_locate, payload, node, ""))
        if node.tail and not node.tail.isspace():
            yield Field(node.tail, ctx, partial(_locate, payload, node, "/following::text()[1]"))


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
    """For a SAML ``AttributeValue``: its ``Attribute/@Name`` as an OID, if it is a URN OID."""
    parent = el.getparent()
    if parent is None or _local(parent.tag) != "Attribute":
        return None
    name = parent.get("Name")
    return normalise_system(name) if name else None


def _fallback_text(payload: Payload) -> Iterator[Item]:
    """A sniffed payload that turned out not to be XML is scanned as text instead."""
    yield from text_fields(payload, strict=False)


_NAME_END = re.compile(rb"[\s/>]")


def _holders(
    root: etree._Element,
    raw: bytes,
    offset: int,
    text: str,
    found: dict[tuple[etree._Element, str], None],
) -> int:
    """Add the nodes holding ``text`` whose markup precedes ``offset``; return how many."""
    start = raw.rfind(b"<", 0, offset)
    if start == -1:
        return 0
    # The markup starts on this line: a start tag, comment or PI is the node whose sourceline
    # it is (an end tag's node started elsewhere).
    line: int | None = raw.count(b"\n", 0, start) + 1
    kinds: tuple[str, ...]
    if raw.startswith(b"<!--", start):
        candidates, kinds = root.getroottree().iter(etree.Comment), ("misc",)
    elif raw.startswith(b"<?", start):
        candidates, kinds = root.getroottree().iter(etree.ProcessingInstruction), ("misc",)
    else:
        closing = raw.startswith(b"</", start)
        begin = start + (2 if closing else 1)
        end = _NAME_END.search(raw, begin)
        name = raw[begin : end.start() if end else len(raw)].decode("utf-8", "replace")
        local = name.rpartition(":")[2]
        candidates = root.iter("{*}" + local)
        kinds = ("tail",) if closing else ("attr", "text", "tail")
        if closing:
            line = None
    count = 0
    for node in candidates:
        # (lxml-stubs type sourceline wrongly; it is an int, or None.)
        if line is not None and cast(int | None, node.sourceline) != line:
            continue
        for kind in kinds:
            if kind == "misc":
                hit = text in (node.text or "") or text in (node.tail or "")
            elif kind == "attr":
                hit = False
                for value in node.attrib.values():
                    if text in value:
                        hit = True
                        break
            elif kind == "text":
                hit = text in (node.text or "")
            else:
                hit = text in (node.tail or "")
            if hit:
                found[node, kind] = None
                count += 1
    return count


def _plain(data: bytes) -> bool:
    """Decoded bytes that would be read as ASCII-compatible text, not as a document."""
    if data[:2] in (b"<\x00", b"\x00<"):  # BOM-less UTF-16
        return False
    head = data[:64].lstrip()
    return not head.startswith((b"<", b"{", b"[", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"))


def _screenable(raw: bytes) -> bool:
    """True if the raw text shows every value as the walk would read it.

    Not when a character reference could spell a code the screen cannot see, CDATA could split
    a text, or an element declares Base64 (the walk decodes it, and refuses it if invalid). The
    checks search single bytes, which is fast, and look closer only where one is found.
    """
    amp = raw.find(b"&")
    while amp != -1:
        if raw[amp + 1 : amp + 2] == b"#":
            return False
        amp = raw.find(b"&", amp + 1)
    if raw.find(b"[") != -1 and b"<![CDATA[" in raw:
        return False
    return b"representation" not in raw


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


# The root element's start tag after the prolog (XML declaration, PIs, comments, whitespace).
_ROOT_TAG = re.compile(
    rb"""(?:\xef\xbb\xbf)?(?:[ \t\r\n]|<\?.*?\?>|<!--.*?-->)*"""
    rb"""<([^\s/>]+)((?:[ \t\r\n]+[^\s=/>]+[ \t\r\n]*=[ \t\r\n]*(?:"[^"]*"|'[^']*'))*)"""
    rb"""[ \t\r\n]*/?>""",
    re.DOTALL,
)
_XMLNS = re.compile(
    rb"""[ \t\r\n](xmlns(?::[^\s=]+)?)[ \t\r\n]*=[ \t\r\n]*(?:"([^"]*)"|'([^']*)')"""
)


def _root_namespace(raw: bytes) -> str | None:
    """The namespace of the root element, read off its start tag ("" for none), as lxml would.

    The root declares every prefix it uses itself. None if the start tag cannot be read so (the
    caller then builds the tree).
    """
    match = _ROOT_TAG.match(raw)
    if match is None:
        return None
    prefix, colon, _ = match.group(1).rpartition(b":")
    wanted = b"xmlns:" + prefix if colon else b"xmlns"
    for decl in _XMLNS.finditer(match.group(2)):
        if decl.group(1) == wanted:
            value = decl.group(2) if decl.group(2) is not None else decl.group(3)
            return value.decode("utf-8", "replace")
    return "" if not colon else None


def _utf8(data: bytes, media: MediaType, root: etree._Element) -> bytes | None:
    """The document as UTF-8 for the screen: itself when it already is, else re-encoded."""
    docinfo: Any = root.getroottree().docinfo
    encoding = media.params.get("charset") or docinfo.encoding or "UTF-8"
    if _is_utf8(encoding):
        return data
    try:
        return data.decode(encoding).encode("utf-8")
    except (LookupError, UnicodeError):
        return None


class _Holder:
    """The node whose text is a Base64 run, looked up in the tree only when asked."""

    def __init__(
        self, tree: Callable[[], etree._Element], text: str, payload: Payload, ordinal: int
    ) -> None:
        self._tree, self._text, self._payload = tree, text.strip(), payload
        self._ordinal = ordinal  # the same text may stand in several nodes: which one

    @cached_property
    def _node(self) -> tuple[etree._Element, bool]:
        skip = self._ordinal
        root = self._tree()
        for el in root.iter():
            for is_tail, value in ((False, el.text), (True, el.tail)):
                if value and value.strip() == self._text:
                    if not skip:
                        return el, is_tail
                    skip -= 1
        return root, False  # unreachable for text taken from this document

    def location(self) -> str:
        el, tail = self._node
        return _locate(self._payload, el, "/following::text()[1]!base64" if tail else "!base64")

    def context(self) -> Context:
        el, tail = self._node
        parent = el.getparent() if tail else el
        base = self._payload.context
        return _context_of(parent, base) if parent is not None else base
