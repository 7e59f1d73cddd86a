"""Multipart parser: every part of ``multipart/related`` (MTOM/XOP, DICOMweb STOW-RS) and
``multipart/form-data`` is scanned, its headers as fields and its body as a nested payload.

Nothing of the body is left unread: the preamble and epilogue (RFC 2046 §5.1.1 asks readers to
ignore them; lenient ones do not) are nested payloads too, every part header name is a field,
and header values are also read decoded (RFC 2047 encoded words, RFC 2231 / RFC 8187
``filename*``, percent-encoded file names: ``multipart.header_readings``).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..mediatype import MediaType
from ..model import Context, Field, Payload
from ..multipart import header_readings, split_multipart
from .base import Item, ScanState, file_name_words, nested

__all__ = ["MultipartParser"]


class MultipartParser:
    """Splits a multipart body with the binary-safe parser of :mod:`kanta_guard.multipart`."""

    name = "multipart"

    def claims(self, media: MediaType, payload: Payload) -> bool:
        return media.type.startswith("multipart/")

    def parse(self, payload: Payload, media: MediaType, state: ScanState) -> Iterator[Item]:
        split = split_multipart(
            payload.data, payload.content_type or "", max_parts=state.limits.max_parts
        )
        base = payload.location + "/" if payload.location else ""
        role = payload.context.role
        # Every part is known before any is read: a DICOM object's bulk data (STOW-RS) may
        # stand in a later part than the metadata pointing at it.
        for part in split.parts:
            held = (part.body, part.content_type)
            location = part.header("content-location")
            if location and location.strip():
                state.bulk_parts.setdefault(location.strip(), held)
            if part.content_id and part.content_id.strip("<> \t"):
                state.bulk_parts.setdefault("cid:" + part.content_id.strip("<> \t"), held)
        for where, around in (
            (f"{base}preamble", split.preamble),
            (f"{base}epilogue", split.epilogue),
        ):
            if around.strip():
                yield nested(around, None, where, payload, Context(role), state, declared=False)
        for part in split.parts:
            where = f"{base}part[{part.index}]"
            for number, (name, value) in enumerate(part.headers):
                ctx = Context(role, name.lower())
                at = f"{where}#{name}"
                yield Field(value, ctx, at)
                # A name is a field too; located by its index, since a location must not repeat
                # what it holds (a code in a name would otherwise show in the location).
                yield Field(name, ctx, f"{where}/header-name:{number}")
                if "=?" in value or "%" in value or "*" in value:
                    readings = header_readings(value)
                    if readings:
                        # One field for them all (a code found in several is one finding); a
                        # line break is no part of any code.
                        yield Field("\n".join(readings), ctx, at + "!decoded", view_of=at)
            words = file_name_words(part.filename) if part.filename else None
            if words is not None:
                # (Another reading of the header that holds the name: one finding per place.)
                header = next(
                    (n for n, _ in part.headers if n.lower() == "content-disposition"), None
                )
                at = f"{where}#{header}" if header else f"{where}#filename"
                yield Field(words, Context(role, "filename"), at + "!words", view_of=at)
            yield nested(
                part.body,
                part.content_type,
                where,
                payload,
                Context(role, part.name or part.content_id),
                state,
                declared=part.content_type is not None,
            )
