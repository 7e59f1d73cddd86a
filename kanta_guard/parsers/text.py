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
from ..decode.sniff import sniff
from ..dicom.read import is_part10
from ..errors import UnscannableError
from ..mediatype import MediaType, parse_media_type, sniffed_type
from ..model import Context, Field, Payload
from .base import (
    JOIN,
    MIN_SHORT_BASE64,
    Item,
    ScanState,
    base64_content,
    binary,
    decode_base64,
    encoding_mark,
    nested,
    sift,
)
from .jose import jose_tokens

__all__ = [
    "DECODED_GROUP",
    "TextParser",
    "base64_body",
    "base64_tokens",
    "clear_as_bytes",
    "lines_only",
    "live_decoded",
    "strip_tags",
    "text_fields",
]

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
    # Escapes a reader undoes (``Matti%20M%C3%A4kinen``, ``matti&#64;example.fi`` outside
    # HTML, ``\u00e4`` in a pasted string): a text (not a binary) that holds any is read with
    # them undone as well, line by line (``line N!unescaped``).
    unescape = _unescapes(data)
    # The screen looks for ASCII (and UTF-8 dashes): on an ASCII-compatible text it can rule a
    # binary out on its bytes as they are, without decoding it.
    if (
        screen is not None
        and not strict
        and not unescape
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
                views.setdefault(strip_tags(text), suffix + _RENDERED)
                if _CELL_GAP.search(text) is not None:
                    # A table row's cells side by side, as a browser shows them (a name's
                    # parts in two columns); on one line only, so that lines keep their
                    # numbers.
                    views.setdefault(strip_tags(_CELL_GAP.sub(" ", text)), suffix + _CELLS)
    if unescape:
        for text, suffix in list(views.items()):
            for form in _unescaped(text):
                views.setdefault(form, suffix + _UNESCAPED)
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
    derived = suffix.endswith((_RENDERED, _CELLS, _UNESCAPED))
    base = (
        where + suffix.removesuffix(_RENDERED).removesuffix(_CELLS).removesuffix(_UNESCAPED)
        if derived
        else where
    )
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
            if not _label_first(payload.data):
                return
            # (A first line shorter than the next: it may be a label word, the Base64 after it.)
        # Base64 standing in the text (``Potilas TVRNeE1EVXk... ok``, a wrapped block after a
        # label): each token, or block of lines, that base64_content reads, is read decoded.
        yield from _inline_base64(payload, charset, state, whole=decoded is not None)
        if payload.depth and not payload.declared and binary(payload.data):
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


def lines_only(payload: Payload, media: MediaType, room: int) -> str | None:
    """Whether :meth:`TextParser.parse` of ``payload`` (untyped, under ``media``) yields
    nothing but fields of its lines, and which: "text" for UTF-8 with no control character
    but whitespace and no byte order mark (one reading, its bytes: the lines ``state.screen``
    of its bytes asks for); "binary..." for other bytes read in an ASCII-compatible way (no
    UTF-16/32 mark or NUL pattern) that do not inflate within ``room`` bytes (their lines
    are read in every reading, unless the screen of their bytes rules them all out:
    ``clear_as_bytes``; "binary+utf-8", "binary+nul" and so on: only bytes of one kind may be
    screened together); None for anything else. Neither holds a quoted-printable escape
    (another reading) or a run of the Base64 alphabet ``MIN_SHORT_BASE64`` long (a token to
    decode), nor is a body of Base64 lines (``base64_body``), HTML, or sniffed as another
    type; and neither holds a PEM block or a JOSE token, which the pipeline looks for in a
    payload's bytes. (Whether another parser claims it is the caller's to ask.)"""
    data = payload.data
    if media.is_html or _ANY_RUN.search(data) is not None or _quoted_printable(data) is not None:
        return None
    if b"-----BEGIN " in data or next(jose_tokens(data), None) is not None:
        return None  # (the pipeline's searches of a payload's bytes would find these)
    if base64_body(data) is not None:
        return None  # (Base64 wrapped in lines shorter than a token: decoded as a body)
    if _unescapes(data):
        return None  # (read with its escapes undone too: another reading)
    if sniffed_type(media, data) is not media:
        return None
    if not binary(data):
        return None if data.startswith(b"\xef\xbb\xbf") else "text"
    if sniff_bom(data) not in (None, "utf-8") or sniff_wide(data) is not None:
        return None
    try:
        if inflate_raw(data, room) is not None:
            return None
    except UnscannableError:
        return None  # (parsed alone, it says so)
    # Which binary: a screen reads a document by what all of it is (UTF-8 or one byte a
    # character; with NUL bytes, no phone numbers), so only bytes alike may be joined.
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        utf8 = ""
    else:
        utf8 = "+utf-8"
    return "binary" + utf8 + ("+nul" if b"\0" in data else "")


def clear_as_bytes(data: bytes, screen: _Screen) -> bool:
    """True if the screen of ``data`` (untyped bytes) rules out every field of every reading
    of them (``text_fields`` then yields none)."""
    return _clear_as_bytes(data, None, False, screen)


def live_decoded(
    found: list[bytes], state: ScanState, where: str | Callable[[], str] = "body"
) -> set[int]:
    """The numbers of the decoded texts ``found`` (untyped payloads one level down: Base64 in
    an XML text, a JSON string, a line of text) in which something may fire, asked before any
    becomes a payload; the rest are inert, and the caller only counts them. Inert: read as
    its lines alone (``lines_only``; and no container or DICOM file, which another parser
    would claim: what ``Scanner._plain`` asks of a payload), and the screen of it and others
    like it joined (``JOIN``) rules out every line: of the UTF-8 ones, of their bytes; of the
    others, of every reading (``clear_as_bytes``), in groups (``sift``). (It once asked less,
    and Base64 of a gzip, of quoted-printable or of Base64 wrapped short, in an XML text,
    passed unread.)

    Texts are first asked in groups whether each is plain text (``_plain_texts``: checks of
    their bytes joined, each of which holds for every text if it holds for the join), which
    spares most of them the per-text questions (tests/test_parsers_text.py holds the answer
    to ``lines_only`` text by text).

    The inert ones are charged against the budget (at ``where``, their holder) and counted as
    scanned payloads, as the pipeline counts a batched payload it need not parse; the caller
    makes payloads of the others."""
    room = max(state.limits.max_decoded_bytes - state.decoded_bytes, 0)
    live: set[int] = set()
    texts: list[int] = []
    blobs: dict[str, list[int]] = {}  # (by kind: only bytes alike are screened together)
    for first in range(0, len(found), DECODED_GROUP):
        numbers = range(first, min(first + DECODED_GROUP, len(found)))
        if len(numbers) > 1 and _plain_texts(found[first : numbers.stop]):
            texts.extend(numbers)
            continue
        for number in numbers:
            data = found[number]
            kind = lines_only(Payload(data, None, "", depth=1, declared=False), _UNTYPED, room)
            if kind is None or sniff(data) is not None or is_part10(data):
                live.add(number)
            elif kind == "text":
                texts.append(number)
            else:
                blobs.setdefault(kind, []).append(number)

    def joined(group: list[int]) -> bytes:
        return JOIN.join(found[number] for number in group)

    clear = frozenset[bytes]()
    live.update(sift(texts, lambda group: state.screen(joined(group)) == clear, DECODED_GROUP))
    for same in blobs.values():
        live.update(sift(same, lambda group: clear_as_bytes(joined(group), state.screen)))
    if len(live) < len(found):
        state.charge(sum(len(data) for n, data in enumerate(found) if n not in live), where)
        state.payloads += len(found) - len(live)
    return live


def _plain_texts(group: list[bytes]) -> bool:
    """True only if each of ``group`` is plain text: ``lines_only`` of it, untyped, is
    "text", and no container or DICOM file (``sniff``, ``is_part10``).

    Asked of their bytes joined by ``JOIN`` where a check holds for the join only if it holds
    for each text: no control byte but whitespace and valid UTF-8 (JOIN is ASCII: no
    sequence spans it), no run of the Base64 alphabet as long as a token (JOIN holds no such
    byte), no "=" (quoted-printable), no escape marker, no PEM block or JOSE token, no text
    starting like a document (each starts at the join's start or after JOIN: a "JOIN" inside
    a text only makes the answer "no" more often). Then, of each text, only what
    a join cannot show: a byte order mark, a body of Base64 lines, a container's magic
    number. Conservative: a "no" only sends the group to the per-text questions."""
    data = JOIN.join(group)
    if (
        binary(data)
        or _ANY_RUN.search(data) is not None
        or b"=" in data
        or b"%" in data
        or b"\\" in data
        or b"&" in data
        or b"-----BEGIN " in data
        or _DOCUMENT_START.search(data) is not None
        or next(jose_tokens(data), None) is not None
    ):
        return False
    for text in group:
        if (
            text.startswith(b"\xef\xbb\xbf")
            or (len(text) >= _MIN_BODY_BASE64 and not text.translate(None, _ALPHABET_AND_SPACE))
            or sniff(text) is not None
            or is_part10(text)
        ):
            return False
    return True


#: Where a text of a join may start like a document (``sniff_document``: after whitespace, "<",
#: "{" or "["): at the join's start or after ``JOIN``.
_DOCUMENT_START = re.compile(rb"(?:\A|\n#\n)[\x00 \t\r\n\f\v]*[<{\[]")
#: Decoded texts screened together at most (``live_decoded``): as the pipeline batches them.
DECODED_GROUP = 128
_UNTYPED = parse_media_type(None)


#: A run of either Base64 alphabet (or a mix) as long as the shortest token read.
_ANY_RUN = re.compile(rb"[A-Za-z0-9+/_\-]{%d}" % MIN_SHORT_BASE64)


def _inline_base64(
    payload: Payload, charset: str | None, state: ScanState, *, whole: bool
) -> Iterator[Payload]:
    """Nested payloads of the Base64 in a text's lines (``base64_tokens``), each located at
    the line it starts on: ``line N!base64``, ``line N-M!base64`` for a block of lines.
    ``whole``: the body was read as one Base64 text already (``base64_body``). The decoded
    texts in which nothing can fire (``live_decoded``) are only counted, as the pipeline
    counts a batched payload it need not parse."""
    data = _as_ascii(payload.data, charset)
    read = {data.strip()} if whole else None
    tokens = list(base64_tokens(data, read))
    if not tokens:
        return
    live = live_decoded(
        [decoded for _, _, decoded in tokens], state, lambda: payload.location or "body"
    )
    base = payload.location + ":" if payload.location else ""  # (as text_fields names lines)
    line, counted = 1, 0
    for number in sorted(live):
        start, end, decoded = tokens[number]
        line += _line_ends(data, counted, start)
        counted = start
        last = line + _line_ends(data, start, end)
        mark = encoding_mark(data[start:end])
        where = f"{base}line {line}" + (f"-{last}" if last != line else "") + mark
        yield nested(decoded, None, where, payload, payload.context, state, declared=False)


def base64_tokens(data: bytes, read: set[bytes] | None = None) -> Iterator[tuple[int, int, bytes]]:
    """``(start, end, decoded)`` of the Base64 in a text's bytes, as ``base.base64_content``
    reads it (its lengths and checks: ``MIN_SHORT_BASE64`` characters up, one alphabet, not
    hex digits only, short tokens only where they decode to printable text, no real-range code
    as written, DEFLATE inflated): every run of the Base64(url) alphabet that long, its "="
    padding after it, and every block of such runs on consecutive lines (a document pasted
    wrapped, its first line possibly after a label), decoded together; each distinct text
    once (``read``: texts read already). The segments of JOSE tokens are none (their own search
    reads them).

    The screen is two C-level passes (a translation and a search for a run's length), so text
    without a run that long costs about 2 ms a megabyte; every later step reads each byte a
    bounded number of times (a block's bytes twice at most): linear.
    """
    seen = read if read is not None else set()
    group: list[tuple[int, int]] = []  # runs on consecutive lines
    for start, end, joined in _runs(data):
        if joined or not group:
            group.append((start, end))
            continue
        yield from _group(data, group, seen)
        group = [(start, end)]
    if group:
        yield from _group(data, group, seen)


def _group(
    data: bytes, runs: list[tuple[int, int]], seen: set[bytes]
) -> Iterator[tuple[int, int, bytes]]:
    """The decodings of a run, or of runs on consecutive lines (a wrapped block, its first
    and last lines possibly shorter than a run: ``_HEAD``, ``_TAIL``), each run alone where
    no reading of the block decodes. A block is read from each place it may start (a short
    first line, the first run, and the second where the first is shorter than it: a label
    word alone on its line) to each place it may end (a short last line, the last run): a
    few passes over its bytes at most (six decodings)."""
    first, end = runs[0][0], runs[-1][1]
    starts, ends = [first], [end]
    if len(runs) > 1 and runs[0][1] - first < runs[1][1] - runs[1][0]:
        starts.append(runs[1][0])
    if (head := _head(data, first)) is not None:
        starts.insert(0, head)
    if (tail := _TAIL.match(data, end)) is not None:
        ends.insert(0, tail.end())
    if len(runs) > 1 or len(starts) > 1 or len(ends) > 1:
        if data.find(b"-----BEGIN ", max(first - _MAX_PEM_LINE, 0), runs[0][1]) != -1:
            # A PEM block (RFC 7468 §2; its boundary's "LABEL-----" is a run too): the
            # pipeline's PEM search reads it (pem_items), as in every other payload.
            return
        found = []
        known = False  # (a reading read already: its runs were then too)
        for start in starts:
            for stop in ends:
                block = data[start:stop]
                if block in seen:
                    known = True
                    continue
                seen.add(block)
                if (decoded := base64_content(block)) is not None:
                    found.append((start, stop, decoded))
        # Every reading of the block that is text, widest first: a short last line may be the
        # block's or a word after a token ("...IA" then "x": the token read with the word
        # decodes to text too, and it hides what stands at the token's end, a code's check
        # character followed by a decoded digit), and so may a short first line. Else the
        # widest that is a container (a narrower one would be truncated), else every one (no
        # reading is text: the wrong ones are noise, the right one, if any, unknown bytes).
        texts = [f for f in found if not binary(f[2])]
        if not texts:
            texts = [f for f in found if sniff(f[2]) is not None][:1]
        if texts:
            yield from texts
            return
        if found or known:
            yield from found
            return
    for start, stop in runs:
        token = data[start:stop]
        if token not in seen:
            seen.add(token)
            if (decoded := base64_content(token)) is not None:
                yield start, stop, decoded


def _head(data: bytes, first: int) -> int | None:
    """Where a short first line of a block starts (1 to 14 characters of the alphabet ending
    the line before ``first``, nothing of the alphabet before them), or None. Bounded: a
    line break and blanks back, then at most 15 bytes."""
    at = first
    while at > 0 and data[at - 1] in _BLANKS and first - at <= _MAX_LINE_GAP:
        at -= 1
    gap = data[at:first]
    if gap.count(b"\n") != 1 or not _LINE_GAP.fullmatch(gap):
        return None
    stop = at
    while at > 0 and data[at - 1] in _B64_BYTES and stop - at <= MIN_SHORT_BASE64:
        at -= 1
    if not 0 < stop - at < MIN_SHORT_BASE64:
        return None
    return at


def _runs(data: bytes) -> Iterator[tuple[int, int, bool]]:
    """``(start, end, joined)`` of each run of at least ``MIN_SHORT_BASE64`` Base64(url)
    characters, up to two "=" after it included, but runs that dots join where the first starts
    like a JOSE header, ``ey`` (a compact token's segments: ``jose.py`` reads them);
    ``joined``: only a line break and blanks stand between it and the run before."""
    mapped = data.translate(_RUN_MAP)
    size = len(data)
    previous = stopped = -2  # (where the run before ended, and its padding)
    jose = False
    at = mapped.find(_RUN)
    while at != -1:
        end = mapped.find(b" ", at + MIN_SHORT_BASE64)
        if end == -1:
            end = size
        stop = end
        if data[end : end + 1] == b"=":
            stop += 2 if data[end + 1 : end + 2] == b"=" else 1
        before = previous == at - 1 and data[previous] == _DOT
        if not before:
            jose = data.startswith(b"ey", at)  # (the first of runs dots join: a JOSE header?)
        if not (
            jose
            and (before or (end < size and data[end] == _DOT and mapped.startswith(_RUN, end + 1)))
        ):
            joined = (
                at - stopped <= _MAX_LINE_GAP
                and data.find(b"\n", stopped, at) != -1
                and _LINE_GAP.fullmatch(data, stopped, at) is not None
            )
            yield at, stop, joined
        previous, stopped = end, stop
        at = mapped.find(_RUN, end)


def _label_first(data: bytes) -> bool:
    """Whether a text's first line is shorter than its second (blanks aside)."""
    head = data[:4096].lstrip()  # (lines of Base64 are at most a few hundred bytes)
    first, _, rest = head.partition(b"\n")
    return len(first.strip()) < len(rest.lstrip().partition(b"\n")[0].strip())


def _line_ends(data: bytes, start: int, end: int) -> int:
    """How many lines end (CR LF, CR, LF) in ``data[start:end]``, neither end inside a CR LF."""
    return (
        data.count(b"\n", start, end)
        + data.count(b"\r", start, end)
        - data.count(b"\r\n", start, end)
    )


def _as_ascii(data: bytes, charset: str | None) -> bytes:
    """The text's bytes where ASCII characters are single bytes as written (an ASCII-compatible
    charset, the common case: the bytes themselves), else its first reading in UTF-8."""
    if charset is not None:
        wide = charset.lower().replace("-", "").replace("_", "") not in _ASCII_COMPATIBLE
    else:
        wide = sniff_bom(data) not in (None, "utf-8") or sniff_wide(data) is not None
    if not wide:
        return data
    return readings(data, charset, strict=False)[0][0].encode("utf-8", "surrogatepass")


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
_B64_BYTES = frozenset(_B64_ALPHABET)
_BLANKS = frozenset(b" \t\r\n")
#: Every Base64(url) character to "a", every other byte to a space (one translation).
_RUN_MAP = bytes(0x61 if byte in _B64_ALPHABET else 0x20 for byte in range(256))
_RUN = b"a" * MIN_SHORT_BASE64
_DOT = 0x2E
#: What stands between two lines of a wrapped block: one line break, blanks around it.
_LINE_GAP = re.compile(rb"[ \t]*\r?\n[ \t]*")
_MAX_LINE_GAP = 64  # (longer: indentation no wrapped Base64 has)
#: How far before a block its PEM boundary line may begin.
_MAX_PEM_LINE = 80 + _MAX_LINE_GAP
#: A block's last line, shorter than a run, after its last run (its padding included).
_TAIL = re.compile(rb"[ \t]*\r?\n[ \t]*[A-Za-z0-9+/_\-]{1,14}={0,2}(?![A-Za-z0-9+/_\-=])")


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
_CELLS = "!cells"
#: The markup between two cells of a table row on one line (``</td><td>``, ``</td> <th x>``).
_CELL_GAP = re.compile(r"</t[dh][ \t]*>[ \t]*<t[dh](?:[ \t][^<>\n]*)?>", re.IGNORECASE)
_UNESCAPED = "!unescaped"
#: An escape a reader undoes: a percent escape, a backslash escape (``idcode``'s list), a
#: character reference or an entity.
_ESCAPE = re.compile(rb"%[0-9A-Fa-f]{2}|\\.|&(?:#|[A-Za-z][A-Za-z0-9]{1,31};?)", re.DOTALL)


def _unescapes(data: bytes) -> bool:
    """True if ``data`` is a text (not a binary: ``base.binary``) holding an escape that
    ``idcode.unescape_ways`` undoes."""
    if b"%" not in data and b"\\" not in data and b"&" not in data:
        return False
    if _ESCAPE.search(data) is None or binary(data):
        return False
    text = data.decode("utf-8")
    return any(way != text for way in idcode.unescape_ways(text))


def _unescaped(text: str) -> list[str]:
    """``text`` with its escapes undone, one text for each way of ``idcode.unescape_ways``
    that changes it, line by line: line N of each is line N of ``text`` (lines end at CR LF,
    CR or LF, as text_fields numbers them), a line break an escape spells reads as a space
    (``Matti%0AVirtanen``: the name is still read whole)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ways: list[list[str]] = [[], [], [], []]
    changed = [False] * 4
    for line in lines:
        if "%" not in line and "\\" not in line and "&" not in line:
            for way in ways:
                way.append(line)
            continue
        for number, form in enumerate(idcode.unescape_ways(line)):
            if form != line:
                changed[number] = True
                form = form.replace("\r", " ").replace("\n", " ")
            ways[number].append(form)
    return list(dict.fromkeys("\n".join(way) for way, c in zip(ways, changed, strict=True) if c))


#: Where ``str.splitlines`` ends a line (a needle holding one stands on two lines).
_LINE_END = re.compile("[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
#: An HTML tag, comment or doctype (no nesting: one linear pass).
_TAGS = re.compile(r"<[^<>]*>")


def strip_tags(text: str) -> str:
    """``text`` with its tags taken out, as a page that renders it shows it (a name or a code
    that inline markup splits, ``Lii<b></b>sa``, is read whole; one linear pass)."""
    return _TAGS.sub("", text)


_ASCII_COMPATIBLE = frozenset({"utf8", "ascii", "usascii", "iso88591", "latin1", "cp1252"})
