"""What every parser shares: the Parser protocol, the per-scan state, Base64 sniffing, OIDs."""

from __future__ import annotations

import binascii
import re
from base64 import urlsafe_b64decode
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol as TypingProtocol

from .. import idcode
from ..decode.archives import inflate_raw
from ..dicom.settings import DicomSettings
from ..errors import UnscannableError
from ..mediatype import MediaType
from ..model import CertificateItem, Context, Field, Party, Payload, Protocol
from ..policy import Limits

__all__ = [
    "JOIN",
    "MIN_BASE64",
    "MIN_HEX_TEXT",
    "SNIFF_TYPES",
    "BlobMemo",
    "Item",
    "Parser",
    "ScanState",
    "base64_content",
    "base64_spans",
    "binary",
    "decode_base64",
    "encoding_mark",
    "file_name_words",
    "hex_text",
    "joined_texts",
    "keep",
    "looks_base64",
    "nested",
    "normalise_system",
    "sift",
    "unescaped_forms",
    "wanted_texts",
]

type Item = Field | Payload | Party | CertificateItem

#: Declared types under which a body is sniffed: XML if it starts with "<", JSON with "{" or "[".
SNIFF_TYPES = frozenset({"", "text/plain", "application/octet-stream"})
#: Shortest string tried as Base64 when nothing declares it (shorter ones are words or numbers).
MIN_BASE64 = 32
_B64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_\-]+={0,2}")
_BASE64_AND_SPACE = (
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \t\r\n\f\v"
)
# Hex digits and dashes only (UUIDs, digests): identifiers, not Base64 content.
_HEXISH = re.compile(rb"[0-9A-Fa-f\-]+")


@dataclass(slots=True)
class ScanState:
    """Mutable state of one scan: the limits, the decoded-bytes budget, the client's protocol."""

    limits: Limits
    #: Which fields of a document with this UTF-8 text could produce a hit: the detectors'
    #: needles, or None when every field must be read (``Detector.screen``).
    screen: Callable[[bytes], frozenset[bytes] | None] = field(default=lambda data: None)
    #: Identifier systems whose identifier fields are always yielded (``Detector.systems``).
    systems: frozenset[str] = frozenset()
    #: Base64 texts already decoded and found inert by this screen (``BlobMemo``); None: no memo.
    inert: BlobMemo | None = None
    #: The screen of decoded text joined across markup, where any stretch may be a field
    #: (``Detector.screen`` with ``joined``); None when it cannot tell.
    screen_joined: Callable[[bytes], frozenset[bytes] | None] = field(default=lambda data: None)
    #: Whether any detector judges parties (persons, organisations): parsers find them only
    #: then (finding them costs a fifth of a CDA's scan).
    parties: bool = True
    #: Whether values are read once more as a reader sees them: an element with mixed content
    #: as a whole, its text joined (names and numbers that markup splits), and a value with the
    #: escapes no parser undoes undone (``base.unescaped_forms``): when a detector of several
    #: words runs (``Detector.whole_elements``; the identity-code detectors read escapes and
    #: split codes themselves).
    whole_elements: bool = True
    #: Whether certificates are judged: parsers then yield every certificate they find
    #: (``CertificateItem``) instead of screening its bytes as an inert blob.
    certificates: bool = False
    #: The policy's ``[dicom]`` settings (the DICOM parser reads them; None: its defaults).
    dicom: DicomSettings | None = None
    protocol: Protocol | None = None
    #: The ``resourceType`` of a FHIR JSON body (``Report.resource``).
    resource: str = ""
    #: The resource type of a FHIR search whose parameters the body holds (``POST
    #: [type]/_search``, a form body): None when the request is none.
    search: str | None = None
    #: The parts of the request's multipart bodies by ``Content-Location`` and by
    #: ``cid:Content-ID``, each its body and Content-Type: where a DICOM JSON or XML object's
    #: ``BulkDataURI`` points (STOW-RS), so that its pixels are read from the part.
    bulk_parts: dict[str, tuple[bytes, str | None]] = field(default_factory=dict)
    decoded_bytes: int = 0
    payloads: int = 0

    def note_protocol(self, protocol: Protocol, resource: str = "") -> None:
        """Record the protocol of the outermost payload that reveals one, and the resource type
        it names (a FHIR JSON body's ``resourceType``)."""
        if self.protocol is None:
            self.protocol = protocol
            self.resource = resource

    def charge(self, size: int, location: str | Callable[[], str]) -> None:
        """Count decoded bytes against ``max_decoded_bytes``; past it, unscannable."""
        self.decoded_bytes += size
        if self.decoded_bytes > self.limits.max_decoded_bytes:
            raise UnscannableError(
                "too large: decoded content exceeds the "
                f"{self.limits.max_decoded_bytes}-byte limit",
                location if isinstance(location, str) else location(),
            )


class BlobMemo:
    """Base64 texts (certificates, mostly) that decoded to plain bytes no detector's screen
    named anything in, with their decoded length; kept for one Scanner, whose screen decides.

    A system under test signs every document with the same certificate, so the same 1-3 KB of
    Base64 comes in request after request. Shorter texts (signature and digest values, which
    differ per document) are not kept; neither are long ones (documents, not certificates).
    """

    MIN_TEXT, MAX_TEXT, MAX_ENTRIES = 1024, 16 * 1024, 256

    def __init__(self) -> None:
        self._known: dict[bytes, int] = {}
        #: Base64 texts of certificates, with their DER: judged in every request (the judge
        #: remembers its verdicts), but not decoded again.
        self._certificates: dict[bytes, bytes] = {}

    def certificate(self, text: bytes) -> bytes | None:
        """The DER of a Base64 text known to be a certificate, else None."""
        return self._certificates.get(text)

    def add_certificate(self, text: bytes, der: bytes) -> None:
        if not self.MIN_TEXT <= len(text) <= self.MAX_TEXT:
            return
        if len(self._certificates) >= self.MAX_ENTRIES:
            self._certificates.clear()
        self._certificates[text] = der

    def get(self, text: bytes) -> int | None:
        """The decoded length of a known inert text, else None."""
        return self._known.get(text) if self.MIN_TEXT <= len(text) <= self.MAX_TEXT else None

    def add(self, text: bytes, decoded: int) -> None:
        if not self.MIN_TEXT <= len(text) <= self.MAX_TEXT:
            return
        if len(self._known) >= self.MAX_ENTRIES:
            self._known.clear()  # a new set of certificates: start over
        self._known[text] = decoded


class Parser(TypingProtocol):
    """Claims the payloads it understands and yields their fields (and nested payloads)."""

    name: str

    def claims(self, media: MediaType, payload: Payload) -> bool:
        """True if this parser reads payloads of this media type (declared or sniffed)."""
        ...

    def parse(self, payload: Payload, media: MediaType, state: ScanState) -> Iterator[Item]:
        """Yield every field of the payload; raise UnscannableError if it cannot be fully read."""
        ...


#: What separate texts screened together are joined with: a line of "#", which no field of
#: theirs continues into. (A bare line break was not enough: whitespace may stand between a
#: code's parts, so ``010181`` ending one text and ``-900C`` opening the next was noted as a
#: recognised test code no text holds.)
JOIN = b"\n#\n"


def joined_texts(texts: Iterable[str]) -> bytes:
    """``texts`` as one text to screen, each on its own lines (``JOIN``), UTF-8."""
    return JOIN.join(text.encode("utf-8", "surrogatepass") for text in texts)


def wanted_texts(state: ScanState, texts: list[str]) -> list[str] | None:
    """The screen's needles for a handful of values, as text: which values need fields.

    None: every value does (the screen cannot tell); an empty list: none does.
    """
    needles = state.screen(joined_texts(texts))
    if needles is None:
        return None
    return [needle.decode("utf-8", "replace") for needle in needles]


def keep(value: str, wanted: list[str] | None) -> bool:
    """Whether a plain-text field of this value could fire (see ``wanted_texts``)."""
    return wanted is None or any(needle in value for needle in wanted)


def unescaped_forms(value: str) -> list[str]:
    """A value's readings with its escapes undone (``idcode.unescaped_readings``: percent
    escapes, backslash escapes, character references, and all of them together) that differ
    from it; a line break an escape spells reads as a space (``Matti%0AVirtanen`` is still
    one name). For a text, string or attribute value that holds escapes no parser undid
    (``liisa.korhonen&#64;gmail.com`` in a JSON string, ``Liisa%20Korhonen`` in an XML
    attribute): whoever shows it, a page or a log, may."""
    return list(
        dict.fromkeys(
            form.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
            for form in idcode.unescaped_readings(value)
        )
    )


#: What separates the words of a file name (``Liisa_Korhonen_lausunto.pdf``), between
#: letters: an underscore or a dot (a hyphen stays: ``Anna-Liisa``).
_FILE_NAME_GAP = re.compile(r"(?<=[^\W\d_])[_.]+(?=[^\W\d_])")


def file_name_words(name: str) -> str | None:
    """A file name read as the words it is made of, where underscores or dots join them
    (``Liisa_Korhonen_lausunto.pdf`` → ``Liisa Korhonen lausunto pdf``: a system that names
    an attachment after its patient); None where none does."""
    if "_" not in name and "." not in name:
        return None
    words = _FILE_NAME_GAP.sub(" ", name)
    return words if words != name else None


def normalise_system(system: str) -> str:
    """``urn:oid:1.2.246.21`` → ``1.2.246.21``; other systems unchanged (but stripped)."""
    system = system.strip()
    if system[:8].lower() == "urn:oid:":
        return system[8:]
    return system


def looks_base64(text: str) -> bool:
    """True for a long string of Base64 (or Base64url), possibly wrapped in lines.

    Wrapped as encoders and people wrap it: lines of any width from 16 characters up, not
    necessarily equal (RFC 2045 §6.8 caps MIME lines at 76, RFC 7468 writes 64, IHE XDS inline
    documents and hand-built messages break after 20 and then at 60 or 76), LF, CRLF or runs
    of whitespace between them. The first line may be shorter (the markup before it took the
    rest of the editor's line), and so may the last. Natural text is not Base64: its words are
    shorter than 16 characters, or it holds punctuation or letters outside the alphabet. Hex
    strings and UUIDs are identifiers, not encoded content.
    """
    return _compact(text.encode("utf-8", "replace")) is not None


def base64_content(text: str | bytes) -> bytes | None:
    """What ``looks_base64`` text decodes to; None if it is not such text.

    Nor is text that holds a real-range identity code as written (``HETU131052-308Tabc…`` is
    Base64url to a decoder): it is text first, and a parser that reads only the decoded form
    of what decodes must read it as text.
    """
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else text
    compact = _compact(raw)
    # (Hex digits alone are no Base64 to ``_compact`` or ``_short``: identifiers, or text in
    # hex, read after them; but hex behind a prefix that Base64 has too is read first.)
    if raw[:66].lstrip(_SPACE)[:2] in _HEX_PREFIXES and (spelt := hex_text(raw)) is not None:
        return spelt
    if compact is None:
        if len(raw) < MIN_SHORT_BASE64:
            return None  # (shorter than a short token or a hex text: most form values, words)
        short = _short(raw)
        return short if short is not None else hex_text(raw)
    if _holds_real_code(raw):
        return None
    data = _decode(compact)
    if data is not None and binary(data):
        # Raw DEFLATE or zlib of something (a SAML message of the HTTP-Redirect binding, put
        # in a JSON member or an attribute): no magic number shows it, so it is tried, and
        # what a receiver inflates is the content (the compressed bytes show nothing).
        inflated = inflate_raw(data, MAX_INFLATED)
        if inflated is not None:
            return inflated
    return data


def encoding_mark(text: str | bytes) -> str:
    """The mark a location gets for what ``base64_content`` (or a head token's reading) decoded
    ``text`` from: ``!hex`` for text written in hex digits, else ``!base64`` (a tester looks
    for the encoding the mark names). Asked only of what decoded."""
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else text
    return "!hex" if hex_text(raw) is not None else "!base64"


def hex_text(raw: bytes) -> bytes | None:
    """Text written in hex digits, one token (whitespace around it aside) or lines of one
    (``_unwrapped_hex``): XML Schema's
    ``hexBinary``, a database's ``bytea`` or ``varbinary`` shown as ``\\x4869…`` or
    ``0x4869…``, a log's dump. Decoded if it is ``MIN_HEX_TEXT`` bytes or more and spells text
    (UTF-8, no control character but whitespace); digests, UUIDs and other identifiers in hex
    decode to bytes that are not (a 16-byte digest is printable once in ten million), and
    stay identifiers. Not where it holds a real-range code as written (text first: see
    ``base64_content``). A C-level pass over its first bytes rules out most texts."""
    token = raw.strip(_SPACE) if raw[:1] in _SPACE or raw[-1:] in _SPACE else raw
    if (
        len(token) < 2 * MIN_HEX_TEXT
        or token[:24].translate(None, _HEX_PREFIX_AND_SPACE)  # (Base64 fails here, at once)
        or token.translate(None, _HEX_PREFIX_AND_SPACE)
    ):
        return None
    if token.translate(None, _HEX_AND_PREFIX):
        joined = _unwrapped_hex(token)
        if joined is None:
            return None
        token = joined
    prefix = next((p for p in _PREFIXES if token.startswith(p)), b"")
    digits = token[len(prefix) :]
    if not digits or len(digits) % 2 or digits.translate(None, _HEX_BYTES):
        return None
    head = bytes.fromhex(digits[:64].decode("ascii"))
    if len(head.translate(None, _TEXT_CONTROLS)) != len(head):
        return None  # (a control byte in its first 32: no text; a long run of digits is none)
    decoded = bytes.fromhex(digits.decode("ascii"))
    if not _printable(decoded) or _holds_real_code(token):
        return None
    return decoded


def _unwrapped_hex(token: bytes) -> bytes | None:
    """Hex wrapped in lines (``hexBinary`` pretty-printed, a long value an editor broke; an XML
    attribute value reads its line breaks as spaces), its chunks joined; None unless it is
    that: every chunk but the last ``_MIN_LINE`` digits or more (byte pairs written apart,
    ``31 33 31``, are no such text: a row of two-digit numbers would read as one)."""
    chunks = token.split()
    if len(chunks) < 2 or any(len(chunk) < _MIN_LINE for chunk in chunks[:-1]):
        return None
    return b"".join(chunks)


#: The fewest bytes a hex text is read for: a code alone (11 characters) is 22 digits.
MIN_HEX_TEXT = 11
_HEX_AND_PREFIX = b"0123456789ABCDEFabcdefxX\\"
_HEX_PREFIX_AND_SPACE = _HEX_AND_PREFIX + b" \t\r\n\f\v"  # (and _SPACE)
#: What a hex text's prefix starts with (``0x``, ``\x``, ``x`` and a digit pair's first).
_HEX_PREFIXES = frozenset(
    b"0x 0X \\x".split() + [b"x" + bytes([c]) for c in b"0123456789ABCDEFabcdef"]
)
#: The prefixes a hex text may have (a backslash escaped in JSON is two), longest first.
_PREFIXES = (b"\\\\x", b"\\x", b"0x", b"0X", b"x")
_HEX_BYTES = b"0123456789ABCDEFabcdef"


#: What Base64 content may inflate to (``base64_content``) before it is taken for a bomb.
MAX_INFLATED = 64 * 1024 * 1024


def binary(data: bytes) -> bool:
    """True if ``data`` is no text: not UTF-8, or holding a control byte but whitespace."""
    if len(data.translate(None, _TEXT_CONTROLS)) != len(data):
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


#: Control bytes text does not hold (whitespace aside).
_TEXT_CONTROLS = bytes((*range(0x09), 0x0B, *range(0x0E, 0x20), 0x7F))


#: The shortest Base64 that can spell a code: an 11-character code is 15 characters of
#: Base64url without padding, 16 with it. From here up to ``MIN_BASE64``, a text is decoded
#: only if it is one token and decodes to printable text (``_short``).
MIN_SHORT_BASE64 = 15
_SHORT_TOKEN = re.compile(rb"[A-Za-z0-9+/]{15,31}={0,2}|[A-Za-z0-9_\-]{15,31}={0,2}")
_SPACE = b" \t\r\n\f\v"


def _short(raw: bytes) -> bytes | None:
    """What a short Base64 text decodes to: one token of ``MIN_SHORT_BASE64`` to
    ``MIN_BASE64`` characters (whitespace around it aside) whose decoding is printable text.

    Words, codes and identifiers of that length are common, so the cheap tests come first: the
    length (a valid one: not 1 past a multiple of 4; padding only to a multiple of 4), the
    alphabet, not digits only and not letters of one case only (Base64 of text mixes them; a
    word or a number does not), not hex digits only (digests, UUIDs). What decodes must be
    UTF-8 with no control character but whitespace: random identifiers decode to bytes that
    are not.
    """
    token = raw.strip(_SPACE) if raw[:1] in _SPACE or raw[-1:] in _SPACE else raw
    size = len(token)
    if not MIN_SHORT_BASE64 <= size < MIN_BASE64:
        return None
    body = token.rstrip(b"=")
    if len(body) % 4 == 1 or (len(body) != size and size % 4):
        return None
    # (bytes.isalpha and friends: one C-level pass each, no copy.)
    if body.isdigit() or (body.isalpha() and (body.islower() or body.isupper())):
        return None
    if _SHORT_TOKEN.fullmatch(token) is None or _HEXISH.fullmatch(body) is not None:
        return None
    decoded = _decode(token)
    if decoded is None:
        return None
    if not _printable(decoded):
        # (Raw DEFLATE of a code alone is 13 bytes: 20 characters of Base64. At most 23 bytes
        # cannot inflate past 24 KB: no bomb.)
        decoded = inflate_raw(decoded, MAX_INFLATED) or b""
        if not decoded or not _printable(decoded):
            return None
    if _holds_real_code(token):
        return None  # (text first: see base64_content)
    return decoded


#: Every byte but the ASCII digits (``_holds_real_code`` counts the digits by deleting these).
_NOT_DIGITS = bytes(b for b in range(256) if not 0x30 <= b <= 0x39)


def _holds_real_code(text: bytes) -> bool:
    """True if ASCII ``text`` (Base64 and whitespace) holds a real-range code as written.

    A code shows nine ASCII digits at least (six of the date, three of the individual number,
    whatever its century sign and check character), so text with fewer holds none: most
    Base64 tokens are ruled out by one C-level pass, without the token search."""
    if len(text.translate(None, _NOT_DIGITS)) < 9:
        return False
    return any(idcode.classify(t) is idcode.Kind.REAL for t in idcode.find_tokens(text))


_PRINTABLE_SPACE = str.maketrans("\t\r\n", "   ")
#: Printable ASCII, tab and line breaks: the bytes ``_printable`` takes without decoding.
_PRINTABLE_ASCII = bytes((0x09, 0x0A, 0x0D, *range(0x20, 0x7F)))


def _printable(data: bytes) -> bool:
    """UTF-8 text with no control character but whitespace."""
    rest = data.translate(None, _PRINTABLE_ASCII)
    if not rest:
        return True  # (printable ASCII, tabs and line breaks only: one C-level pass)
    try:
        shown = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return shown.translate(_PRINTABLE_SPACE).isprintable()


#: The shortest line of wrapped Base64 between the first and the last (see ``looks_base64``).
_MIN_LINE = 16


def _compact(text: bytes) -> bytes | None:
    """The Base64 characters of ``text`` without line breaks, if it looks like Base64."""
    if len(text) < MIN_BASE64 or text.translate(None, _BASE64_AND_SPACE):
        return None  # too short, or a character no Base64(url) text has (one C-level pass)
    lines = text.split()
    if not lines:
        return None
    if len(lines) > 1:
        # Every line but the first and the last is a whole line (at least _MIN_LINE), and
        # some line is: words of prose are shorter.
        if max(map(len, lines)) < _MIN_LINE:
            return None
        for line in lines[1:-1]:
            if len(line) < _MIN_LINE:
                return None
    compact = b"".join(lines)
    if (
        len(compact) < MIN_BASE64
        or _B64.fullmatch(compact) is None
        or _HEXISH.fullmatch(compact) is not None
    ):
        return None
    return compact


def _decode(compact: bytes) -> bytes | None:
    """Base64 (validated: binascii's strict mode) or Base64url (as ``urlsafe_b64decode`` reads
    it), padded; None if it does not decode. (``b64decode(validate=True)`` is the same strict
    decoding behind two Python calls, which cost more than the decoding of a short token.)"""
    compact += b"=" * (-len(compact) % 4)
    try:
        if b"-" in compact or b"_" in compact:
            return urlsafe_b64decode(compact)
        return binascii.a2b_base64(compact, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def base64_spans(
    data: bytes, opener: bytes, closer: bytes, *, long_only: bool = False
) -> Iterator[tuple[int, int]]:
    """Segments of ``data`` that may be Base64: ``(start, end)`` from after an ``opener`` to the
    next ``closer`` (``>``/``<`` for XML text, quotes for XML attribute values and JSON
    strings). A superset of what ``base64_content`` accepts, which the caller checks each with:
    every text that ``base64_content`` accepts, standing between an opener and a closer (and
    holding neither), is given (tests/test_parsers_base.py holds this with hypothesis). The
    segments of long Base64 come first, in order, then those of short Base64 (``_short``).

    For XML text (``>`` ... ``<``) the segment starts after the *last* ``>`` before the ``<``:
    a ``>`` inside an attribute value (``<a x=">">``) must not hide the text after the tag.
    ``long_only``: quoted segments must start with ``MIN_BASE64`` bytes of the alphabet or
    whitespace, not 16: faster where most quoted values are short (XML attributes), and as
    complete where no escapes shorten what is read (every accepted text is that long).
    """
    long = list(_long_spans(data, opener, closer, long_only))
    yield from long
    # Short Base64 (``_short``: one token, whitespace around it): a second search, after the
    # first, each segment once. (One pattern with both as alternatives costs more than the
    # two: re's alternation is slow.)
    # (The pattern that also takes a hex text's ``\x`` prefix costs a fifth more a search: it
    # is searched with only where one stands.)
    hex_prefix = _backslash_x(data)
    short = _short_pattern(opener, closer, opener == closer and not long_only, hex_prefix)
    given = set(long) if long else None
    for match in short.finditer(data):
        span = match.span(1)
        if given is None or span not in given:
            yield span


def _long_spans(
    data: bytes, opener: bytes, closer: bytes, long_only: bool
) -> Iterator[tuple[int, int]]:
    pattern = _span_pattern(opener, closer, long_only)
    first_line = _FIRST_LINE.match
    same = opener == closer
    search = pattern.search
    pos = 0
    while (match := search(data, pos)) is not None:
        end = data.find(closer, match.end())
        if end == -1:
            return
        start = match.start() + 1 if same else data.rfind(opener, match.start(), end) + 1
        # The closer of this segment may open the next one (quotes): search again from it.
        pos = end
        # A segment shorter than MIN_BASE64 is short Base64 or none (``_compact`` refuses it;
        # escapes only shorten what is read): the short search gives it if ``_short`` may take it.
        if end - start >= MIN_BASE64 and first_line(data, start, end) is not None:
            yield start, end


def _backslash_x(data: bytes) -> bool:
    """Whether ``\\x`` may stand in ``data``: each backslash looked at (memchr), past
    ``_FEW_BACKSLASHES`` of them, yes. (``data.find(b"\\\\x")``, a two-byte search, cost 17 µs on a
    31 KB CDA, the short search's price again.)"""
    at, seen = data.find(b"\\"), 0
    while at != -1:
        if data[at + 1 : at + 2] == b"x" or seen == _FEW_BACKSLASHES:
            return True
        seen += 1
        at = data.find(b"\\", at + 1)
    return False


_FEW_BACKSLASHES = 64


@lru_cache(maxsize=16)
def _short_pattern(
    opener: bytes, closer: bytes, json: bool, hex_prefix: bool = False
) -> re.Pattern[bytes]:
    """One token of short Base64 between ``opener`` and ``closer``, whitespace (in JSON, also
    a whitespace escape) around it, as group 1. The closer is looked ahead at, not taken (a
    quote that closes one segment may open the next). Every repetition is bounded or
    possessive: an attempt costs the whitespace run and 33 bytes, and whitespace runs are read
    once each (an attempt starts only at an opener)."""
    space = rb"(?:[ \t\r\n\f\v]|\\[nrtf])*+" if json else rb"[ \t\r\n\f\v]*+"
    token = rb"[A-Za-z0-9+/_\-]{15,31}+={0,2}+"
    if hex_prefix:
        # (A hex text may open with a backslash: ``\x4869…``, its backslash escaped in JSON.)
        token = rb"(?:\\{1,2}x)?+" + token
    return re.compile(
        re.escape(opener) + b"(" + space + token + space + b")(?=" + re.escape(closer) + b")"
    )


@lru_cache(maxsize=8)
def _span_pattern(opener: bytes, closer: bytes, long_only: bool = False) -> re.Pattern[bytes]:
    # A literal first byte, so re finds candidates fast. Inside quotes (JSON strings, XML
    # attribute values), 16 bytes of Base64, whitespace or escapes rule out most strings at
    # once (JSON keys are followed by a colon). XML text after ">" is often a long run of
    # indentation: there, MIN_BASE64 bytes without a "<" are cheaper to ask for (on a 31 KB
    # corpus CDA: 22 µs against 150 µs). Neither class holds the closer, so no match runs
    # past the end of the segment it starts.
    if opener == closer:
        run = MIN_BASE64 if long_only else 16
        return re.compile(re.escape(opener) + rb"[A-Za-z0-9+/=_\- \t\r\n\f\v\\]{%d}" % run)
    return re.compile(re.escape(opener) + b"[^" + re.escape(closer) + b"]{%d}" % MIN_BASE64)


# What every text ``_compact`` accepts starts with: whitespace (or a JSON whitespace escape),
# then a line of at least 16 Base64 characters, or a shorter first line and then one of 16.
# Natural text fails at its first or second space.
_WS = rb"(?:[ \t\n\r\f\v]|\\[nrtf])"
_B64_CHAR = rb"[A-Za-z0-9+/=_\-]"
_FIRST_LINE = re.compile(
    _WS
    + rb"*(?:\\{1,2}x)?(?:"  # (a hex text's ``\x`` prefix, its backslash escaped in JSON)
    + _B64_CHAR
    + b"{16}|"
    + _B64_CHAR
    + b"{1,15}"
    + _WS
    + b"+"
    + _B64_CHAR
    + b"{16})"
)


def decode_base64(text: str) -> bytes | None:
    """Decode Base64 or Base64url (whitespace and missing padding tolerated); None if it is not."""
    try:
        compact = b"".join(text.encode("ascii").split())
    except UnicodeEncodeError:
        return None
    return _decode(compact) if compact else None


#: Items asked together at most (``sift``): a bounded group, so halving it costs each byte a
#: bounded number of questions (log2 of this, plus one).
SIFT_SIZE = 16


def sift[T](items: list[T], clear: Callable[[list[T]], bool], size: int = SIFT_SIZE) -> list[T]:
    """The items ``clear`` does not rule out, in order: groups of at most ``size`` are asked
    together (``clear`` of a group must hold for each of its items, as a screen of their bytes
    joined by line breaks holds for each); a group not ruled out is halved and each half asked
    again, down to single items, which are what is returned if still not ruled out.

    Linear: each item is asked about in at most log2(``size``) + 1 groups. (All or nothing per
    group made one chance "&#" in a thousand random Base64 values send them all, one by one,
    to the text parser.)"""
    out: list[tuple[int, T]] = []
    groups = [list(enumerate(items[i : i + size], i)) for i in range(0, len(items), size)]
    groups.reverse()
    while groups:
        group = groups.pop()
        if clear([item for _, item in group]):
            continue
        if len(group) == 1:
            out.append(group[0])
            continue
        half = len(group) // 2
        groups.append(group[half:])
        groups.append(group[:half])
    return [item for _, item in out]


def nested(
    data: bytes,
    content_type: str | None,
    location: str | Callable[[], str],
    parent: Payload,
    context: Context | Callable[[], Context],
    state: ScanState,
    *,
    declared: bool,
) -> Payload:
    """A payload found inside another, one level deeper, charged against the budget."""
    state.charge(len(data), location)
    return Payload(
        data,
        content_type,
        location,
        context,
        depth=parent.depth + 1,
        declared=declared,
    )
