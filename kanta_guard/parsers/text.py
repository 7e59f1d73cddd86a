"""Text parser: anything no other parser claims is read as text, line by line, every way.

Nothing is skipped because its type is unfamiliar: a PDF, a DICOM object or an unknown binary is
decoded leniently (ISO-8859-1 where it is not UTF-8, so every ASCII character is seen) and every
line is a field. A label that lies is not believed: a body whose bytes start like XML or JSON is
handed to that parser (``mediatype.sniffed_type``), and a body that is nothing but Base64 is
decoded and scanned as well. Where a receiver could read the bytes another way (another charset,
HTML character references), every reading is scanned (``charset.readings``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator

from .. import idcode
from ..charset import readings, sniff_bom, sniff_wide
from ..decode.archives import inflate_raw
from ..errors import UnscannableError
from ..mediatype import MediaType, sniffed_type
from ..model import Context, Field, Payload
from .base import Item, ScanState, binary, decode_base64, nested

__all__ = ["TextParser", "base64_body", "text_fields"]

type _Screen = Callable[[bytes], frozenset[bytes] | None]

# windows-1252's en and em dash (0x96, 0x97) as the ASCII hyphen: what the screen of the raw
# bytes must also see, for the windows-1252 reading (charset.readings) of single-byte text.
_CP1252_DASHES = bytes.maketrans(b"\x96\x97", b"--")
# Where such a dash could be a code's century sign: before its individual number (idcode.TOKEN
# allows a space, a tab or a no-break space between), so a binary's stray 0x96 costs no screen.
_CP1252_DASH = re.compile(rb"[\x96\x97][ \t\xa0]?[0-9]")
# A whole body of Base64 (RFC 4648 §4, §5): lines of the alphabet, of any widths (PEM and MIME
# write 64 or 76, hand-made and some libraries other widths), padding at the end only.
_BASE64_BODY = re.compile(
    rb"[ \t\r\n]*(?:[A-Za-z0-9+/]+[ \t]*\r?\n[ \t]*)*[A-Za-z0-9+/]+={0,2}[ \t\r\n]*"
    rb"|[ \t\r\n]*(?:[A-Za-z0-9_\-]+[ \t]*\r?\n[ \t]*)*[A-Za-z0-9_\-]+={0,2}[ \t\r\n]*"
)
_ALPHABET_AND_SPACE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_- \t\r\n"
_HEX_AND_SPACE = b"0123456789ABCDEFabcdef- \t\r\n"


def text_fields(
    payload: Payload,
    *,
    strict: bool,
    charset: str | None = None,
    screen: _Screen | None = None,
    html_text: bool = False,
    quoted_printable: bool = False,
) -> Iterator[Item]:
    """One field per non-blank line of every reading of the payload (``charset.readings``),
    those lines ``screen`` asks for: ``line N`` in the first reading, ``line N!how`` in the
    others (``utf-16-le``, ``cp1252+replace``, ``html``: character references undone).

    ``quoted_printable``: a text holding quoted-printable escapes (``=3D``, ``=\r\n``) is
    read QP-decoded as well (``line N!qp``), as a mail client or a MIME library would show it
    without a Content-Transfer-Encoding to tell it to."""
    data = payload.data
    unqp = _quoted_printable(data) if quoted_printable else None
    # The screen looks for ASCII (and UTF-8 dashes): on an ASCII-compatible text it can rule a
    # binary out on its bytes as they are, without decoding it.
    if (
        screen is not None
        and not strict
        and _clear_as_bytes(data, charset, html_text, screen)
        and (unqp is None or _clear_as_bytes(unqp, charset, html_text, screen))
    ):
        return
    prefix = payload.location + ":" if payload.location else ""
    found = readings(data, charset, strict=strict)
    if unqp is not None:
        # (Its lines are not numbered alike: soft line breaks are gone. Lenient: the escapes
        # may spell bytes the declared charset does not hold.)
        found = found + [(text, "qp+" + how) for text, how in readings(unqp, charset, strict=False)]
    views: dict[str, str]  # text -> location suffix
    if len(found) == 1 and not (html_text and "&" in found[0][0]):
        views = {found[0][0]: ""}  # (the common case: one reading)
        found = []
    else:
        views = {}
    for number, (text, how) in enumerate(found):
        views.setdefault(text, "" if number == 0 else "!" + how)
        if html_text and "&" in text:
            # WHATWG HTML §13.2.5.72: character references (&#48; &#x30; &amp;) in text, as a
            # browser shows them; html.unescape implements that table.
            views.setdefault(html.unescape(text), ("!" + how if number else "") + "!html")
    if html_text:
        # The text as a browser renders it: tags taken out, so a code split by inline markup
        # (``1310<b></b>52-308T``) is read whole (one linear pass).
        for text, suffix in list(views.items()):
            if "<" in text:
                views.setdefault(_TAGS.sub("", text), suffix + _RENDERED)
    context = payload.context
    for text, suffix in views.items():
        needles: list[str] | None = None
        if screen is not None:
            wanted = screen(text.encode("utf-8", "surrogatepass"))
            if wanted == frozenset():
                continue
            if wanted:
                needles = [n.decode("utf-8", "replace") for n in wanted]
        # Lines end at CR LF, CR or LF only (RFC 9112 §2.2 reads no others): the line breaks
        # str.splitlines also knows (U+0085, in ISO-8859-1 but "…" in windows-1252) would
        # number the lines of two readings differently.
        if len(views) == 1:
            lines = text.splitlines()  # (one reading: nothing to number alike)
        else:
            lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        for number, line in enumerate(lines, start=1):
            if not line or line.isspace():
                continue
            if needles is not None and not any(n in line for n in needles):
                continue
            where = f"{prefix}line {number}"
            yield _line_field(line, context, where, suffix)
        # What a line break splits: a line-by-line reading misses a code whose parts stand on
        # two lines (``010170`` and ``-123X``: any whitespace separates its parts).
        for first, last, value in _broken(text, needles):
            where = f"{prefix}line {first}" + (f"-{last}" if last != first else "")
            yield _line_field(value, context, where, suffix)


def _line_field(value: str, context: Context, where: str, suffix: str) -> Field:
    """A field of one line (or lines) of a view: ``where`` in the first reading, ``where`` and
    ``suffix`` in the others."""
    if not suffix:
        return Field(value, context, where)
    # Another reading of the same line: a code the first reading reported there is not
    # reported again (Field.view_of); a rendered view, one its reading reported.
    rendered = suffix.endswith(_RENDERED)
    base = where + suffix.removesuffix(_RENDERED) if rendered else where
    return Field(value, context, where + suffix, view_of=base)


def _broken(text: str, needles: list[str] | None) -> Iterator[tuple[int, int, str]]:
    """Tokens a line break runs through, with the lines they start and end on: the needles
    that hold a line break (the screen's needles stand in the text as written), or, where the
    screen named none, every such token of every reading (``idcode.broken_tokens``)."""
    if needles is None:
        yield from idcode.broken_tokens(text)
        return
    for needle in needles:
        if _LINE_END.search(needle) is None:
            continue
        at = text.find(needle)
        if at == -1:
            continue
        first = _line_number(text, at)
        yield first, first + _line_number(needle, len(needle)) - 1, needle


def _line_number(text: str, at: int) -> int:
    """The number of the line (CR LF, CR or LF ends one) that ``text[at]`` stands on."""
    return 1 + text.count("\n", 0, at) + text.count("\r", 0, at) - text.count("\r\n", 0, at)


class TextParser:
    """Claims every payload: the last entry of the registry."""

    name = "text"

    def claims(self, media: MediaType, payload: Payload) -> bool:
        return True

    def parse(self, payload: Payload, media: MediaType, state: ScanState) -> Iterator[Item]:
        sniffed = sniffed_type(media, payload.data)
        if sniffed is not media:
            # The label is generic or lies (JSON labelled image/png, XML behind a BOM labelled
            # application/octet-stream): the bytes are handed to the parser of what they look
            # like, undeclared, so that one reads them as text if they do not parse after all.
            charset = sniffed.params.get("charset")
            yield Payload(
                payload.data,
                sniffed.type + (f"; charset={charset}" if charset else ""),
                payload.where,
                payload.owner,
                depth=payload.depth,
                declared=False,
            )
            return
        charset = media.params.get("charset")
        # A declared charset must hold (fail closed); without one, decode leniently.
        yield from text_fields(
            payload,
            strict=charset is not None,
            charset=charset,
            screen=state.screen,
            html_text=media.is_html,
            quoted_printable=True,
        )
        decoded = base64_body(payload.data)
        if decoded is not None:
            # A text/plain or application/octet-stream body that is itself Base64 (a document
            # sent encoded): what it decodes to is scanned too.
            location = (payload.location or "body") + "!base64"
            yield nested(decoded, None, location, payload, payload.context, state, declared=False)
        elif payload.depth and not payload.declared and binary(payload.data):
            # Unrecognised bytes found inside something (decoded Base64, a member): raw DEFLATE
            # (a SAML message in the HTTP-Redirect binding, wherever it was put) or zlib has no
            # magic number, so it is tried; what inflates is scanned.
            room = max(state.limits.max_decoded_bytes - state.decoded_bytes, 0)
            location = (payload.location or "body") + "!deflate"
            try:
                inflated = inflate_raw(payload.data, room)
            except UnscannableError as exc:
                raise UnscannableError(exc.reason, location) from None
            if inflated is not None:
                yield nested(
                    inflated, None, location, payload, payload.context, state, declared=False
                )


def base64_body(data: bytes) -> bytes | None:
    """What a body consisting of nothing but Base64 (or Base64url) lines decodes to, else None.

    Lines may have any widths (``base.looks_base64`` asks one width of a text inside a document,
    where words are the risk; a whole body of the alphabet alone is encoded content). Too short
    (under ``MIN_BASE64`` characters), hex digits only, or text with a space inside a line: not.
    """
    if (
        len(data) < _MIN_BODY_BASE64
        or data[:64].translate(None, _ALPHABET_AND_SPACE)  # (most text fails here, at once)
        or data.translate(None, _ALPHABET_AND_SPACE)
        or not data.translate(None, _HEX_AND_SPACE)
        or _BASE64_BODY.fullmatch(data) is None
    ):
        return None
    text = data.decode("ascii")
    if len("".join(text.split())) < _MIN_BODY_BASE64:
        return None
    return decode_base64(text)


#: The shortest whole body read as Base64: a code alone (11 characters) is 16 in Base64, and a
#: body that is all alphabet is encoded content (``base.MIN_BASE64`` is for texts inside
#: documents, where words are the risk).
_MIN_BODY_BASE64 = 16


# Quoted-printable (RFC 2045 §6.7): "=" and two hex digits (upper case in the RFC, either case
# to the decoders in use: Python's quopri, Java Mail), or a soft line break ("=" at a line's end,
# whitespace before the break tolerated, rule 3).
_QP = re.compile(rb"=(?:([0-9A-Fa-f]{2})|[ \t]*(?:\r\n|\n|\r))")


def _quoted_printable(data: bytes) -> bytes | None:
    """``data`` QP-decoded if it holds a quoted-printable escape, else None (one linear pass;
    an "=" that starts no escape stays, as decoders keep it)."""
    if data.find(b"=") == -1 or _QP.search(data) is None:
        return None
    return _QP.sub(_unescape_qp, data)


def _unescape_qp(match: re.Match[bytes]) -> bytes:
    digits = match.group(1)
    return b"" if digits is None else bytes((int(digits, 16),))


def _clear_as_bytes(data: bytes, charset: str | None, html_text: bool, screen: _Screen) -> bool:
    """True if the screen of the raw bytes rules out every field of every reading: the bytes
    read as an ASCII-compatible text (no UTF-16/32 mark or NUL pattern), no character
    reference to undo, and neither they nor their windows-1252 dashes show a needle."""
    if charset is not None:
        if charset.lower().replace("-", "").replace("_", "") not in _ASCII_COMPATIBLE:
            return False
    elif sniff_bom(data) not in (None, "utf-8"):
        return False
    if sniff_wide(data) is not None or (html_text and (b"&" in data or b"<" in data)):
        return False  # (character references to undo, tags to take out: other readings)
    if screen(data) != frozenset():
        return False
    if _CP1252_DASH.search(data) is not None:
        return screen(data.translate(_CP1252_DASHES)) == frozenset()
    return True


_RENDERED = "!rendered"
#: Where ``str.splitlines`` ends a line (a needle holding one stands on two lines).
_LINE_END = re.compile("[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
#: An HTML tag, comment or doctype (no nesting: one linear pass).
_TAGS = re.compile(r"<[^<>]*>")
_ASCII_COMPATIBLE = frozenset({"utf8", "ascii", "usascii", "iso88591", "latin1", "cp1252"})
