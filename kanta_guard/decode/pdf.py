"""PDF: every page's text, every object's strings, every stream decoded (content, metadata,
form fields, annotations, embedded files), read with pypdf.

pypdf (maintained, pure Python, no system libraries, its own caps on decoded stream sizes)
parses the file and undoes the stream filters (ISO 32000-2 §7.4: Flate, LZW, ASCII85,
ASCIIHex, RunLength). Text shown on a page is extracted through the fonts' encodings
(``PageObject.extract_text``), since a content stream may spell a code in pieces
(``[(1310)-20(52...)] TJ``) or in a font's own codes; the content stream itself is read too.
Every object in the cross-reference table is walked, reachable or not, so a string in an
orphaned object or an unusual key is read as well as one in ``/Info``.

An encrypted PDF is read only if it opens with the empty user password (as a viewer opens it
without asking); otherwise it is unscannable, as is one pypdf cannot parse.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import (
    ArrayObject,
    ByteStringObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    PdfObject,
    StreamObject,
    TextStringObject,
)

from ..errors import UnscannableError
from . import Piece

# pypdf warns about every odd PDF (a missing EOF marker, a bad header), quoting bytes of it: in
# the proxy that would fill mitmproxy's event log, in `kanta-guard scan` stderr, with request
# content. What matters reaches the scan as an exception or as what the reader returns.
logging.getLogger("pypdf").setLevel(logging.ERROR)

__all__ = ["pdf_pieces"]

#: Objects walked per PDF, as a multiple of ``max_parts``: a bound on the time one file costs.
OBJECTS_PER_PART = 100
# Streams whose content pypdf has already parsed into the objects that are walked (§7.5.7,
# §7.5.8): read again they would only repeat them.
_PARSED_STREAMS = frozenset({"/ObjStm", "/XRef"})
# Image filters whose output is still an encoded image (§7.4.8-§7.4.10): handed on as is.
_IMAGE_FILTERS = {"/DCTDecode": "image/jpeg", "/JPXDecode": "image/jp2"}


def pdf_pieces(data: bytes, *, max_parts: int, location: str) -> Iterator[Piece]:
    """The text and streams of a PDF; unscannable if it cannot be parsed or decrypted, or
    has more than ``max_parts`` pages."""
    try:
        yield from _pieces(data, max_parts, location)
    except UnscannableError:
        raise
    except (PyPdfError, Exception) as exc:  # pypdf raises many kinds on malformed input
        raise UnscannableError(f"PDF cannot be read ({type(exc).__name__})", location) from None


def _pieces(data: bytes, max_parts: int, location: str) -> Iterator[Piece]:
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted and not reader.decrypt(""):
        raise UnscannableError("encrypted PDF (it needs a password to be read)", location)
    labels: dict[int, str] = {}
    trailer = reader.trailer
    info = trailer.get("/Info")
    if isinstance(info, IndirectObject):
        labels[info.idnum] = "metadata"
    root = trailer.get("/Root")
    catalog = root.get_object() if root is not None else None
    if isinstance(catalog, DictionaryObject):
        xmp = catalog.get("/Metadata")
        if isinstance(xmp, IndirectObject):
            labels[xmp.idnum] = "metadata/XMP"
        _label_fields(catalog, labels)
    pages = reader.pages
    if len(pages) > max_parts:
        raise UnscannableError(f"PDF has {len(pages)} pages (at most {max_parts} read)", location)
    contents: dict[int, str] = {}
    for number, page in enumerate(pages, start=1):
        where = f"page[{number}]"
        if page.indirect_reference is not None:
            labels[page.indirect_reference.idnum] = where
        for ref in _content_refs(page):
            contents[ref] = where
            labels[ref] = f"{where}/content"
        yield Piece(where, text=page.extract_text())
    if isinstance(info, DictionaryObject):  # a direct /Info dictionary in the trailer
        yield from _walk(info, "metadata", contents)
    seen = 0
    limit = OBJECTS_PER_PART * max_parts
    for idnum, generation in _object_ids(reader):
        seen += 1
        if seen > limit:
            raise UnscannableError(f"PDF has more than {limit} objects", location)
        obj = reader.get_object(IndirectObject(idnum, generation, reader))
        if obj is None:
            continue
        label = labels.get(idnum, f"object[{idnum}]")
        yield from _walk(obj, label, contents, idnum)


def _object_ids(reader: PdfReader) -> Iterator[tuple[int, int]]:
    """Every object number in the cross-reference table(s), with its generation."""
    for generation, table in reader.xref.items():
        for idnum in table:
            yield idnum, generation
    for idnum in reader.xref_objStm:
        yield idnum, 0


def _content_refs(page: DictionaryObject) -> list[int]:
    """Object numbers of a page's content streams (§7.8.2: one stream or an array of them)."""
    raw = page.get("/Contents")
    refs = raw if isinstance(raw, ArrayObject) else [raw]
    return [ref.idnum for ref in refs if isinstance(ref, IndirectObject)]


def _label_fields(catalog: DictionaryObject, labels: dict[int, str]) -> None:
    """Name the interactive form's field objects by their qualified names (§12.7.4.2)."""
    form = catalog.get("/AcroForm")
    form = form.get_object() if form is not None else None
    if not isinstance(form, DictionaryObject):
        return
    stack: list[tuple[PdfObject, str]] = [(ref, "") for ref in form.get("/Fields", [])]
    visited: set[int] = set()
    while stack:
        ref, parent = stack.pop()
        if not isinstance(ref, IndirectObject) or ref.idnum in visited:
            continue
        visited.add(ref.idnum)
        field = ref.get_object()
        if not isinstance(field, DictionaryObject):
            continue
        part = str(field.get("/T", ""))
        name = f"{parent}.{part}" if parent and part else part or parent
        labels[ref.idnum] = f"field[{name}]"
        stack.extend((kid, name) for kid in field.get("/Kids", []))


def _walk(
    obj: PdfObject, label: str, contents: dict[int, str], idnum: int | None = None
) -> Iterator[Piece]:
    """The strings and names in one object (direct values inside it included), and its stream
    decoded; keys are text too (a private key can hold anything)."""
    stack: list[tuple[PdfObject, str]] = [(obj, label)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, IndirectObject):
            continue  # walked as an object of its own
        if isinstance(node, StreamObject):
            yield from _stream(node, where, contents.get(idnum) if idnum is not None else None)
        if isinstance(node, DictionaryObject):
            for key, value in node.items():
                name = str(key)[1:]
                if not name.isascii() or not name.isalnum():
                    yield Piece(f"{where}#key", text=name)
                stack.append((value, f"{where}/{name}"))
        elif isinstance(node, ArrayObject):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(node))
        elif isinstance(node, TextStringObject):
            if node:
                yield Piece(where, text=str(node))
        elif isinstance(node, ByteStringObject):
            if node:
                yield Piece(where, text=bytes(node).decode("latin-1"))
        elif isinstance(node, NameObject):
            yield Piece(where, text=str(node)[1:])


def _stream(stream: StreamObject, where: str, page: str | None) -> Iterator[Piece]:
    """A stream's decoded content: a page's content stream as another reading of its text,
    an embedded file or an image as data to identify, anything else as data too."""
    kind = stream.get("/Type")
    if kind in _PARSED_STREAMS:
        return
    filters = stream.get("/Filter")
    names = [str(f) for f in filters] if isinstance(filters, ArrayObject) else [str(filters)]
    image = _IMAGE_FILTERS.get(names[-1]) if filters is not None else None
    try:
        data = stream.get_data()
    except (NotImplementedError, PyPdfError, ValueError) as exc:
        if stream.get("/Subtype") != "/Image":
            raise UnscannableError(
                f"PDF stream with filter {'/'.join(n.lstrip('/') for n in names)} cannot be "
                f"decoded ({type(exc).__name__})"
            ) from None
        data = stream._data  # pixels in a format pypdf cannot decode: the imaging issue's
    if not data:
        return
    if page is not None:
        yield Piece(f"{where}/stream", data=data, media_type="text/plain", view_of=page)
        return
    media: str | None = image
    if kind == "/Metadata":
        media = "application/xml"  # XMP (§14.3.2)
    elif kind == "/EmbeddedFile":
        subtype = stream.get("/Subtype")  # a MIME type written as a name (§7.11.4)
        media = str(subtype)[1:] if isinstance(subtype, NameObject) else None
    yield Piece(f"{where}/stream", data=data, media_type=media)
