"""Multipart parser: every part of ``multipart/related`` (MTOM/XOP, DICOMweb STOW-RS) and
``multipart/form-data`` is scanned, its headers as fields and its body as a nested payload.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..mediatype import MediaType
from ..model import Context, Field, Payload
from ..multipart import parse_multipart
from .base import Item, ScanState, nested

__all__ = ["MultipartParser"]


class MultipartParser:
    """Splits a multipart body with the binary-safe parser of :mod:`kanta_guard.multipart`."""

    name = "multipart"

    def claims(self, media: MediaType, payload: Payload) -> bool:
        return media.type.startswith("multipart/")

    def parse(self, payload: Payload, media: MediaType, state: ScanState) -> Iterator[Item]:
        parts = parse_multipart(
            payload.data, payload.content_type or "", max_parts=state.limits.max_parts
        )
        base = payload.location + "/" if payload.location else ""
        for part in parts:
            where = f"{base}part[{part.index}]"
            for name, value in part.headers:
                yield Field(value, Context(payload.context.role, name.lower()), f"{where}#{name}")
            yield nested(
                part.body,
                part.content_type,
                where,
                payload,
                Context(payload.context.role, part.name or part.content_id),
                state,
                declared=part.content_type is not None,
            )
