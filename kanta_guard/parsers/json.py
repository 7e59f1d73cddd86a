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

import json
from collections.abc import Iterator

from ..charset import decode_text
from ..errors import UnscannableError
from ..mediatype import MediaType
from ..model import Context, Field, Payload, Protocol, Role
from ..roles import FHIR_KEY_ROLES, FHIR_RESOURCE_ROLES
from .base import (
    Item,
    ScanState,
    base64_runs,
    decode_base64,
    looks_base64,
    nested,
    normalise_system,
)

__all__ = ["JsonParser"]

_SNIFF_TYPES = frozenset({"", "text/plain", "application/octet-stream"})


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
        return media.type in _SNIFF_TYPES and payload.data.lstrip()[:1] in (b"{", b"[")

    def parse(self, payload: Payload, media: MediaType, state: ScanState) -> Iterator[Item]:
        strict = payload.declared and media.is_json
        location = payload.location or "body"
        try:
            text = decode_text(payload.data, media.params.get("charset"), strict=True)
            doc = json.loads(text, object_pairs_hook=_Object)
        except json.JSONDecodeError as exc:
            if not strict:
                from .text import text_fields

                yield from text_fields(payload, strict=False)
                return
            raise UnscannableError(
                f"JSON parse error at line {exc.lineno} column {exc.colno}: {exc.msg}", location
            ) from None
        except UnscannableError:
            if strict:
                raise
            from .text import text_fields

            yield from text_fields(payload, strict=False)
            return
        except RecursionError:
            raise UnscannableError("JSON nested too deeply", location) from None
        if "fhir" in media.type or (
            isinstance(doc, _Object) and any(k == "resourceType" for k, _ in doc)
        ):
            state.note_protocol(Protocol.FHIR_JSON)
        raw = text.encode("utf-8", "surrogatepass")
        if _screenable(raw) and state.screen(raw) == frozenset():
            return  # no field can fire and nothing is encoded inside: the walk would find nothing
        yield from self._walk(doc, payload, state)

    def _walk(self, doc: object, payload: Payload, state: ScanState) -> Iterator[Item]:
        prefix = payload.location + ":" if payload.location else ""
        # (value, pointer, context, identifier-system or None)
        stack: list[tuple[object, str, Context, str | None]] = [(doc, "", payload.context, None)]
        while stack:
            node, pointer, ctx, id_system = stack.pop()
            if isinstance(node, str):
                yield from self._string(node, pointer, ctx, id_system, prefix, payload, state)
            elif isinstance(node, _Object):
                keys = dict(node)
                role = ctx.role
                resource = keys.get("resourceType")
                if isinstance(resource, str):
                    role = FHIR_RESOURCE_ROLES.get(resource, Role.DOCUMENT)
                system = keys.get("system")
                system = normalise_system(system) if isinstance(system, str) else None
                obj_ctx = (
                    Context(role, ctx.element, system) if role is not ctx.role or system else ctx
                )
                children: list[tuple[object, str, Context, str | None]] = []
                for key, value in node:
                    child_pointer = f"{pointer}/{_escape(key)}"
                    yield Field(key, obj_ctx, f"{prefix}{child_pointer}#key")
                    child_role = FHIR_KEY_ROLES.get(key, role)
                    if key == "contact" and role is Role.ORGANISATION:
                        child_role = Role.PROFESSIONAL
                    child_ctx = Context(child_role, key, system)
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

    def _string(
        self,
        value: str,
        pointer: str,
        ctx: Context,
        id_system: str | None,
        prefix: str,
        payload: Payload,
        state: ScanState,
    ) -> Iterator[Item]:
        where = prefix + (pointer or "/")
        if id_system is not None:
            yield Field(value, Context(ctx.role, ctx.element, id_system), where, identifier=True)
            return
        if looks_base64(value):
            data = decode_base64(value)
            if data is not None:
                yield nested(data, None, where + "!base64", payload, ctx, state, declared=False)
                return
        yield Field(value, ctx, where)


def _screenable(raw: bytes) -> bool:
    """True if the raw JSON shows every string as the walk reads it, with no Base64 inside.

    Not when a ``\\u`` or ``\\/`` escape could spell part of a code, a ``data`` member holds
    Base64 the walk decodes whatever its length, or a string is a Base64 run.
    """
    if raw.find(b"\\") != -1 and (b"\\u" in raw or b"\\/" in raw):
        return False
    if b'"data"' in raw:
        return False
    for pos in base64_runs(raw):
        start, end = raw.rfind(b'"', 0, pos), raw.find(b'"', pos)
        if end != -1 and looks_base64(raw[start + 1 : end].decode("utf-8", "replace")):
            return False
    return True
