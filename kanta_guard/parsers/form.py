"""Form parser: ``application/x-www-form-urlencoded`` bodies, and the query-string logic it
shares with the URL (FHIR search tokens ``system|value``).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl

from ..charset import decode_text
from ..mediatype import MediaType
from ..model import Context, Field, Payload
from .base import (
    Item,
    ScanState,
    base64_content,
    keep,
    nested,
    normalise_system,
    wanted_texts,
)

__all__ = ["FormParser", "param_fields"]

_NESTED_STARTS = ("<", "{", "[")


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
    wanted = wanted_texts(state, [text for pair in pairs for text in pair])
    for name, value in pairs:
        where = f"{prefix}{name}"
        if keep(name, wanted):
            yield Field(name, ctx, where + "#name")
        if not value:
            continue
        if value.lstrip().startswith(_NESTED_STARTS):
            yield nested(
                value.encode("utf-8"),
                None,
                where,
                payload,
                Context(ctx.role, name),
                state,
                declared=False,
            )
            continue
        if (data := base64_content(value)) is not None:
            yield nested(data, None, where + "!base64", payload, ctx, state, declared=False)
            continue
        if "|" not in value:
            if keep(value, wanted):
                yield Field(value, Context(ctx.role, name), where)
            continue
        # FHIR search: token parameters are [system]|[code], several OR-ed with commas; the code
        # of a token is an identifier under its system, the rest is text.
        for token in value.split(","):
            system, bar, code = token.partition("|")
            if bar and system and code:
                if keep(system, wanted):
                    yield Field(system, Context(ctx.role, name), where)
                yield Field(
                    code, Context(ctx.role, name, normalise_system(system)), where, identifier=True
                )
            elif keep(token, wanted):
                yield Field(token, Context(ctx.role, name), where)


class FormParser:
    """Parses URL-encoded form bodies; each value is a field and may hold nested content."""

    name = "form"

    def claims(self, media: MediaType, payload: Payload) -> bool:
        return media.type == "application/x-www-form-urlencoded"

    def parse(self, payload: Payload, media: MediaType, state: ScanState) -> Iterator[Item]:
        charset = media.params.get("charset") or "utf-8"
        text = decode_text(payload.data, charset, strict=False)
        pairs = parse_qsl(text, keep_blank_values=True, encoding=charset, errors="replace")
        prefix = (payload.location + ":" if payload.location else "") + "form:"
        yield from param_fields(pairs, prefix, payload.context, payload, state)
