"""Decoding containers into what they hold: archives, compressed streams, PDFs, image metadata.

Each reader turns the bytes of one container into :class:`Piece` values (a short text read as a
field, or bytes to be parsed in turn, with where they were found); ``parsers/container.py`` turns
those into fields and nested payloads. A container that cannot be read completely (encrypted,
corrupt, a method the guard has no decoder for, past a limit) raises
:class:`~kanta_guard.errors.UnscannableError`: what is not read is not forwarded.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Piece"]


@dataclass(frozen=True, slots=True)
class Piece:
    """One thing found in a container: ``text`` to read as a field, or ``data`` to parse.

    ``where`` is relative to the container (``word/document.xml``, ``page[2]``,
    ``metadata/Author``); ``media_type`` is a hint for ``data`` (from a member's name or the
    container's own declaration), never a promise. ``view_of`` names the piece this one is
    another reading of (a page's content stream beside its extracted text).
    """

    where: str
    text: str | None = None
    data: bytes | None = None
    media_type: str | None = None
    view_of: str | None = None
