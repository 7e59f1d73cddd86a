"""Container parser: archives, compressed streams, PDFs and images, identified by their bytes.

A payload is claimed when its first bytes show a container (``decode.sniff.sniff``: a zip
declared ``text/plain`` is a zip) or when its label names one and the bytes show nothing else
(a JSON document declared ``image/png`` is handed on as JSON). What the container holds comes
out as fields (names, comments, metadata strings, a page's text) and nested payloads (members,
streams, embedded files), parsed in turn by the registry with their type from their name or
their bytes: a docx's ``word/document.xml`` goes to the XML parser.

Fail closed: an encrypted, corrupt or unknown container declared as one, more members than
``max_parts``, more decoded bytes than ``max_decoded_bytes`` are unscannable. Only an image
that was merely sniffed and that Pillow cannot open is read as text instead, as any unknown
binary is.

The container's own bytes are read as text too, for what lies outside the structure the
readers follow (a gzip header's file name, data after a JPEG's end, an unreferenced PDF
object); lines that repeat what a field or member already showed are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..decode import Piece
from ..decode.archives import NotAZipError, decompress, tar_pieces, zip_pieces
from ..decode.images import image_pieces
from ..decode.pdf import pdf_pieces
from ..decode.sniff import (
    COMPRESSED_TYPES,
    IMAGE_TYPES,
    PDF,
    UNREADABLE_TYPES,
    ZIP,
    container_type,
    sniff,
    type_for_name,
)
from ..errors import UnscannableError
from ..mediatype import MediaType
from ..model import Field, Payload
from .base import Item, ScanState, keep, nested, wanted_texts
from .text import text_fields

__all__ = ["ContainerParser"]

#: Fields screened together (one screen call per batch, not per name or tag).
BATCH = 64
_TAGS = {ZIP: "zip", "application/x-tar": "tar", PDF: "pdf"}
_NAMES = {
    "application/gzip": "gzip",
    "application/x-bzip2": "bzip2",
    "application/x-xz": "xz",
    "application/x-lzma": "lzma",
    "application/zstd": "zstd",
    "application/x-brotli": "br",
}


class ContainerParser:
    """Claims containers by magic number or label; must come before the XML, JSON and text
    parsers, which would read a container's bytes as a document or as lines."""

    name = "container"

    def claims(self, media: MediaType, payload: Payload) -> bool:
        return sniff(payload.data) is not None or container_type(media.type) is not None

    def parse(self, payload: Payload, media: MediaType, state: ScanState) -> Iterator[Item]:
        sniffed = sniff(payload.data)
        label = container_type(media.type)
        kind = sniffed or label or ""
        base = payload.location or "body"
        document = sniffed is None and payload.data.lstrip()[:1] in (b"<", b"{", b"[")
        if document and kind not in COMPRESSED_TYPES:
            # The label names a container, the bytes are a document: the bytes win.
            yield _as_document(payload)
            return
        if kind in UNREADABLE_TYPES:
            raise UnscannableError(
                f"{kind} content: the guard cannot read this container format", base
            )
        pieces = self._pieces(kind, payload, state, base)
        try:
            first = next(pieces, None)  # the container is opened here
        except Exception as exc:
            # Any failure of a third-party reader (Pillow raises ValueError, SyntaxError,
            # struct.error … on odd headers; found by make fuzz) means: not readable as this.
            if document:
                yield _as_document(payload)  # (a compressed type's label on a document)
                return
            declared = payload.declared and label is not None
            if kind in IMAGE_TYPES or kind.startswith("image/"):
                if not declared:
                    yield from text_fields(payload, strict=False, screen=state.screen)
                    return
                raise UnscannableError(
                    f"{kind} content that cannot be read as one ({_reason(exc)})", base
                ) from None
            if sniffed is None and not declared:
                yield from text_fields(payload, strict=False, screen=state.screen)
                return
            if isinstance(exc, UnscannableError):
                raise
            raise UnscannableError(f"{kind} cannot be read ({_reason(exc)})", base) from None
        if first is not None:
            yield from self._items(_chain(first, pieces, base), kind, payload, state, base)
        if kind != ZIP and _appended_zip(payload.data):
            yield from self._appended(payload, state, base)

    def _appended(self, payload: Payload, state: ScanState, base: str) -> Iterator[Item]:
        """A zip after another file (a JPEG or PDF with an archive glued on: zip readers find
        the end of central directory record from the end, APPNOTE §4.3.16). Read if it opens;
        a chance ``PK\\5\\6`` in pixel data that opens as nothing is no archive; one that opens
        is read whole, or refused (its bytes before its first entry are the file's, read
        above)."""
        limits = state.limits
        room = max(limits.max_decoded_bytes - state.decoded_bytes, 0)
        pieces = zip_pieces(
            payload.data,
            max_entries=limits.max_parts,
            max_size=room,
            location=base,
            appended=True,
        )
        try:
            first = next(pieces, None)
        except NotAZipError:
            return
        if first is not None:
            yield from self._items(_chain(first, pieces, base), ZIP, payload, state, base)

    def _pieces(
        self, kind: str, payload: Payload, state: ScanState, base: str
    ) -> Iterator[Item | Piece]:
        limits = state.limits
        room = max(limits.max_decoded_bytes - state.decoded_bytes, 0)
        data = payload.data
        if kind in COMPRESSED_TYPES:
            name = _NAMES[kind]
            content = decompress(data, kind, room, base)
            yield nested(
                content, None, f"{base}!{name}", payload, payload.context, state, declared=False
            )
        elif kind == ZIP:
            yield from zip_pieces(data, max_entries=limits.max_parts, max_size=room, location=base)
        elif kind == "application/x-tar":
            yield from tar_pieces(data, max_entries=limits.max_parts, max_size=room, location=base)
        elif kind == PDF:
            yield from pdf_pieces(data, max_parts=limits.max_parts, location=base)
        else:
            yield from image_pieces(
                data, kind, max_parts=limits.max_parts, max_size=room, location=base
            )

    def _items(
        self,
        pieces: Iterable[Item | Piece],
        kind: str,
        payload: Payload,
        state: ScanState,
        base: str,
    ) -> Iterator[Item]:
        """Fields and nested payloads of the pieces, then the container's own bytes as text
        where they show a needle no field or member did."""
        raw = state.screen(payload.data)
        left = set(raw) if raw else set()
        tag = _TAGS.get(kind)
        prefix = f"{base}!{tag}:" if tag else f"{base}!"
        batch: list[Piece] = []
        for piece in pieces:
            if isinstance(piece, Piece) and piece.text is not None:
                batch.append(piece)
                if len(batch) < BATCH:
                    continue
            for item in self._flush(batch, payload, state, prefix):
                _cross_off(left, item)
                yield item
            batch = []
            if isinstance(piece, Piece) and piece.data is not None:
                piece_items: Iterable[Item] = self._data(piece, payload, state, prefix)
            elif isinstance(piece, Piece):
                continue
            else:
                piece_items = (piece,)
            for item in piece_items:
                _cross_off(left, item)
                yield item
        for item in self._flush(batch, payload, state, prefix):
            _cross_off(left, item)
            yield item
        if raw is None or left:
            needles = frozenset(left)
            own = Payload(payload.data, None, f"{base}!raw", payload.owner, payload.depth)
            screen = state.screen if raw is None else (lambda data: needles)
            yield from text_fields(own, strict=False, screen=screen)

    @staticmethod
    def _flush(
        batch: list[Piece], payload: Payload, state: ScanState, prefix: str
    ) -> Iterator[Item]:
        if not batch:
            return
        texts = [p.text or "" for p in batch]
        wanted = wanted_texts(state, texts)
        for piece, text in zip(batch, texts, strict=True):
            if text and keep(text, wanted):
                view_of = prefix + piece.view_of if piece.view_of else None
                yield Field(text, payload.context, prefix + piece.where, view_of=view_of)

    @staticmethod
    def _data(piece: Piece, payload: Payload, state: ScanState, prefix: str) -> Iterator[Item]:
        data = piece.data or b""
        where = prefix + piece.where
        if piece.view_of is not None:
            # Another reading of a field already yielded (a page's content stream beside its
            # extracted text): its lines say again what that field reported, and are not
            # reported twice.
            state.charge(len(data), where)
            own = Payload(data, None, where, payload.owner, payload.depth + 1)
            page = prefix + piece.view_of
            for line in text_fields(own, strict=False, screen=state.screen):
                if isinstance(line, Field):
                    yield Field(line.value, line.context, line.where, view_of=page)
            return
        media = piece.media_type or type_for_name(piece.where)
        yield nested(data, media, where, payload, payload.context, state, declared=False)


def _appended_zip(data: bytes) -> bool:
    """True if an end of central directory record lies where a zip's would (in the last
    22 + 65535 bytes: the record and the longest archive comment, APPNOTE §4.3.16)."""
    return data.rfind(b"PK\x05\x06", max(len(data) - 65557, 0)) != -1


def _chain(first: Item | Piece, rest: Iterator[Item | Piece], base: str) -> Iterator[Item | Piece]:
    """The pieces again; a reader failing after its first piece fails the scan (what it has
    given is partial, and what it has not given would pass unread)."""
    yield first
    try:
        yield from rest
    except UnscannableError:
        raise
    except Exception as exc:  # any reader failure midway: what is left would pass unread
        raise UnscannableError(f"container cannot be read ({type(exc).__name__})", base) from None


def _cross_off(left: set[bytes], item: Item) -> None:
    """Remove from ``left`` the needles this field or member shows (it reports them itself)."""
    if not left:
        return
    if isinstance(item, Field):
        data = item.value.encode("utf-8", "surrogatepass")
    elif isinstance(item, Payload):
        data = item.data
    else:
        return  # a party: its values are fields of their own
    for needle in [n for n in left if n in data]:
        left.discard(needle)


def _as_document(payload: Payload) -> Payload:
    """The payload again, its type left to the XML and JSON parsers' sniffing (not charged
    again: the same bytes)."""
    return Payload(
        payload.data, None, payload.where, payload.owner, payload.depth + 1, declared=False
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnscannableError):
        return exc.reason
    return type(exc).__name__
