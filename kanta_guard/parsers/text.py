"""Text parser: anything no other parser claims is read as text, line by line.

Nothing is skipped because its type is unfamiliar: a PDF, a DICOM object or an unknown binary is
decoded leniently (ISO-8859-1 where it is not UTF-8, so every ASCII character is seen) and every
line is a field.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..charset import decode_text
from ..mediatype import MediaType
from ..model import Field, Payload
from .base import Item, ScanState

__all__ = ["TextParser", "text_fields"]


def text_fields(payload: Payload, *, strict: bool, charset: str | None = None) -> Iterator[Item]:
    """One field per non-blank line, located as ``line N``."""
    text = decode_text(payload.data, charset, strict=strict)
    prefix = payload.location + ":" if payload.location else ""
    for number, line in enumerate(text.splitlines(), start=1):
        if line and not line.isspace():
            yield Field(line, payload.context, f"{prefix}line {number}")


class TextParser:
    """Claims every payload: the last entry of the registry."""

    name = "text"

    def claims(self, media: MediaType, payload: Payload) -> bool:
        return True

    def parse(self, payload: Payload, media: MediaType, state: ScanState) -> Iterator[Item]:
        charset = media.params.get("charset")
        # A declared charset must hold (fail closed); without one, decode leniently.
        yield from text_fields(payload, strict=charset is not None, charset=charset)
