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
    screen: Callable[[bytes], frozenset[bytes] | None] | None = None,
) -> Iterator[Item]:
    """One field per non-blank line, located as ``line N``: the lines ``screen`` asks for."""
    # The screen looks for ASCII (and UTF-8 dashes): on an ASCII-compatible text it can rule a
    # binary out on its bytes as they are, without decoding it.
    if (
        screen is not None
        and not strict
        and _ascii_compatible(payload.data, charset)
        and screen(payload.data) == frozenset()
    ):
        return
    text = decode_text(payload.data, charset, strict=strict)
    needles: list[str] | None = None
    if screen is not None:
        wanted = screen(text.encode("utf-8", "surrogatepass"))
        if wanted == frozenset():
            return
        if wanted:
            needles = [n.decode("utf-8", "replace") for n in wanted]
    prefix = payload.location + ":" if payload.location else ""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line or line.isspace():
            continue
        if needles is not None and not any(n in line for n in needles):
            continue
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
