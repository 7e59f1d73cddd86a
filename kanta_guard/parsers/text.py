"""Text parser: anything no other parser claims is read as text, line by line.

Nothing is skipped because its type is unfamiliar: a PDF, a DICOM object or an unknown binary is
decoded leniently (ISO-8859-1 where it is not UTF-8, so every ASCII character is seen) and every
line is a field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..charset import decode_text, sniff_bom
from ..mediatype import MediaType
from ..model import Field, Payload
from .base import Item, ScanState

__all__ = ["TextParser", "text_fields"]


def text_fields(
    payload: Payload,
    *,
    strict: bool,
    charset: str | None = None,
    screen: Callable[[bytes], bool] | None = None,
) -> Iterator[Item]:
    """One field per non-blank line, located as ``line N``; none if ``screen`` rules hits out."""
    if screen is not None and _ascii_compatible(payload.data, charset) and not strict:
        # The screen looks for ASCII (and UTF-8 dashes): on an ASCII-compatible text it can read
        # the bytes as they are, without decoding a binary it will most likely rule out.
        if not screen(payload.data):
            return
        screen = None
    text = decode_text(payload.data, charset, strict=strict)
    if screen is not None and not screen(text.encode("utf-8", "surrogatepass")):
        return
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
        yield from text_fields(
            payload, strict=charset is not None, charset=charset, screen=state.screen
        )


def _ascii_compatible(data: bytes, charset: str | None) -> bool:
    """True if ``decode_text`` would read these bytes with an ASCII-compatible charset."""
    if charset is not None:
        return charset.lower().replace("-", "").replace("_", "") in _ASCII_COMPATIBLE
    if data[:2] in (b"<\x00", b"\x00<"):  # BOM-less UTF-16 XML, which decode_text reads
        return False
    return sniff_bom(data) in (None, "utf-8", "utf-8-sig")


_ASCII_COMPATIBLE = frozenset({"utf8", "ascii", "usascii", "iso88591", "latin1", "cp1252"})
