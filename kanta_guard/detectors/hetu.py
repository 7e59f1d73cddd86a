"""Detector for the identity-code rules: ``hetu.real``, ``hetu.malformed``, ``hetu.malformed_test``.

Two ways a code is found (DVV's rules, as applied by Kela to the test environments):

* anywhere, as a HETU-shaped token in any value: a *valid* code with individual number 002–899 is
  a real person's (``hetu.real``). An invalid HETU-shaped token in free text is ignored: order
  numbers, timestamps and typos must not stop a tester's day.
* in a structured identity field (the value of an identifier declared under OID 1.2.246.21): the
  value must be a valid code. If it is not, an individual number below 900 (or none readable)
  blocks (``hetu.malformed``: a real code mistyped is still a real person's), a 900-series one
  warns (``hetu.malformed_test``).

What passes is noted too (:class:`Sightings`): the identity fields read and the valid test codes
seen, so that a clean request can say the guard looked. The screen and the detector note what
they classify anyway; nothing is read a second time for it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from .. import idcode
from ..model import HETU_OID, MAX_COUNTED, MAX_TEST_CODES, Field, Hit, Recognised
from ..rules import RuleSpec, rule
from ..search import holds

__all__ = ["MAX_NEEDLES", "HetuDetector", "Sightings"]

# An attribute of a start tag. The name may not start inside another name (the look-behind), and
# every repetition is possessive: each byte of a tag is read a bounded number of times.
_ATTR = re.compile(rb"""(?<![\w:.-])([\w:.-]++)\s*+=\s*+(?:"([^"]*+)"|'([^']*+)')""")
_HETU_OID = HETU_OID.encode("ascii")
_SIGNS = frozenset("+ABCDEFUVWXYabcdefuvwxy")
# How far from the OID a CDA ``II``/``code`` start tag may open, and how long it may run on:
# past that it is no such tag, and the screen cannot tell (the walk reads everything).
_TAG_REACH = 2048
# More needles than this and the screen cannot tell: a consumer looks for each needle in the
# document (or in each line), so their number must stay a constant for its cost to stay linear.
MAX_NEEDLES = 32
# Bytes that show the parsers would read text the bytes do not show as written: an XML
# character reference, a JSON \u escape, a CDATA section that may split a text; each behind
# a byte that is rare in documents, found first (memchr: a multi-byte search costs 20 times it).
_DECODED = ((b"&#", 0), (b"\\u", 0), (b"<![CDATA[", 2))


def _decodes(data: bytes) -> bool:
    """True if ``data`` holds a character reference, a ``\\u`` escape or a CDATA section."""
    return any(holds(data, marker, rare) for marker, rare in _DECODED)


def _escapes_a_code(data: bytes) -> bool:
    """True if undoing the escapes of ``data`` (``idcode.unescaped_readings``) shows a
    real-range token its bytes do not (``131052%2D308T``): then every field is read, and
    :meth:`HetuDetector.detect` undoes them. Only where an escape could stand in a code
    (``idcode.escape_in_code``: a C-level search for three bytes) is the document decoded."""
    if not idcode.escape_in_code(data):
        return False
    text = data.decode("utf-8", "replace")
    seen = {idcode.normalise(idcode.screen_form(t)) for t in idcode.iter_tokens(data)}
    for form in idcode.unescaped_readings(text):
        for reading in idcode.match_readings(form):  # (as ``detect`` reads each form)
            for token in idcode.iter_tokens(reading.encode("utf-8", "surrogatepass")):
                code = idcode.normalise(idcode.screen_form(token))
                if code not in seen and idcode.classify(code) is idcode.Kind.REAL:
                    return True
    return False


def _readings(value: str) -> list[str]:
    """The readings of a field's text :meth:`HetuDetector.detect` matches: ``match_readings``
    of it and of it with its escapes undone (``idcode.unescaped_readings``)."""
    readings = idcode.match_readings(value)
    if ("%" not in value and "\\" not in value and "&" not in value) or not idcode.escape_in_code(
        value.encode("utf-8", "surrogatepass")
    ):
        return readings  # (where the screen decodes a document: the same test)
    extra = idcode.unescaped_readings(value)
    if not extra:
        return readings
    more = (reading for form in extra for reading in idcode.match_readings(form))
    return list(dict.fromkeys([*readings, *more]))


class Sightings:
    """What one scan recognised so far: identity fields read, distinct valid test codes seen.

    Filled by :meth:`HetuDetector.screen` and :meth:`HetuDetector.detect` when the pipeline
    passes one; :meth:`result` is the report's :class:`~kanta_guard.model.Recognised`. At most
    ``MAX_COUNTED`` distinct codes are kept (a flood of codes costs bounded memory; the count is
    then a lower bound).
    """

    __slots__ = ("codes", "identity_fields")

    def __init__(self) -> None:
        self.identity_fields = 0
        self.codes: dict[str, None] = {}

    def code(self, code: str) -> None:
        """Note a valid test code (normalised)."""
        if len(self.codes) < MAX_COUNTED:
            self.codes[code] = None

    def merge(self, other: Sightings) -> None:
        """Add what ``other`` noted (a screen's notes, once its answer is known to hold)."""
        self.identity_fields += other.identity_fields
        for code in other.codes:
            self.code(code)

    def result(self) -> Recognised:
        codes = tuple(itertools.islice(self.codes, MAX_TEST_CODES))
        return Recognised(self.identity_fields, codes, len(self.codes) - len(codes))


class HetuDetector:
    """Finds real-range and malformed personal identity codes (and notes the test codes)."""

    name = "hetu"
    systems = frozenset({HETU_OID})
    #: ``count`` costs a fraction of ``detect`` (the pipeline counts past the findings cap).
    cheap_count = True
    rules: tuple[RuleSpec, ...] = (
        rule("hetu.real"),
        rule("hetu.malformed"),
        rule("hetu.malformed_test"),
    )

    def detect(self, field: Field, notes: Sightings | None = None) -> Iterator[Hit]:
        """Hits for one field: its text is read in every :func:`idcode.match_readings` form
        (once per field), each real code reported once. ``notes``: where the identity field
        and the valid test codes seen are noted (another reading, ``view_of``, adds no field)."""
        if field.identifier and field.context.system == HETU_OID:
            yield from self._structured(field, notes)
            return
        readings = _readings(field.value)
        seen: set[str] = set()
        for number, text in enumerate(readings):
            found: set[str] = set()
            for match in idcode.token_matches_in_text(text):
                code = idcode.normalise(match.group(0))
                kind = idcode.classify(code)
                if kind is not idcode.Kind.REAL:
                    if kind is idcode.Kind.TEST and notes is not None:
                        notes.code(code)
                    continue
                if number and code in seen:
                    continue  # another reading of the same place
                found.add(code)
                yield Hit(
                    "hetu.real",
                    field,
                    code,
                    idcode.mask(code),
                    "valid identity code in the real range (individual number 002-899)",
                )
            seen |= found

    def count(self, field: Field) -> int:
        """How many hits :meth:`detect` would yield for ``field``, cheaply (no hit is built,
        no stdnum call: ``idcode.is_real``): for counting past the findings cap."""
        if field.identifier and field.context.system == HETU_OID:
            return sum(1 for _ in self._structured(field))
        readings = _readings(field.value)
        seen: set[str] = set()
        total = 0
        for number, text in enumerate(readings):
            found: set[str] = set()
            for match in idcode.token_matches_in_text(text):
                date, mid, digits, check = match.groups()
                # TOKEN's middle holds one letter or "+" sign, or else is the sign "-".
                sign = next((c for c in mid if c in _SIGNS), "-")
                code = f"{date}{sign.upper()}{digits}{check.upper()}"
                if idcode.is_real(code) and not (number and code in seen):
                    found.add(code)
                    total += 1
            seen |= found
        return total

    def screen(
        self, data: bytes, *, joined: bool = False, notes: Sightings | None = None
    ) -> frozenset[bytes] | None:
        """Which fields of this document (its UTF-8 text, markup included) could produce a hit?

        The answer is the needles: every real-range token, and every identifier value declared
        under the HETU OID in a CDA ``II``/``code`` tag that is not a valid test code. An empty
        set: none can. None: it cannot tell, and the parser reads every field.

        Why the needles are a superset of what :meth:`detect` fires on (a proof, not examples;
        tests/test_screen.py checks it with random documents):

        1. *Readings.* :meth:`detect` matches a field's text as written and, if it holds a
           character that can change a reading (``idcode.reads_plainly``), normalised. The
           screen answers None for a document holding any such character, so every reading
           that matters is the text as written: NFKC maps no other character to a letter,
           digit, sign, separator or format character, and composition only removes letters
           (a base joined with its mark), which cannot create a token. A document that does
           hold one (or is not UTF-8) has no needles that stand in it as written: the screen
           reads the whole document in every reading (``_cleared``; for bytes that are not
           UTF-8, as ISO-8859-1 and windows-1252, the single-byte readings parsers fall back
           to) and answers "none" only if no reading of it shows a real code or a
           non-test identifier; else None. A field's reading is a part of the document's
           reading (fields end at delimiters, which NFKC keeps, or composes into another
           character that is no part of a token either).
        2. *Decoding.* A field is a stretch of the document as written, but for what parsers
           decode. The screen answers None where that could spell a code (``&#`` character
           references, JSON ``\\u`` escapes, CDATA), and where undoing the escapes a reader
           of the text would undo (percent, backslash, character references:
           ``_escapes_a_code``; :meth:`detect` reads those readings) shows a real-range token
           the bytes do not. What remains cannot: the five predefined
           XML entities and JSON's other escapes stand for characters no token is made of,
           except JSON's whitespace escapes (``\\t`` …), which the byte pattern reads as
           separators; XML's attribute-value and line-end normalisation turn separators into
           separators (a needle then missing from the value makes the XML parser walk).
        3. *Matching.* ``idcode.iter_tokens`` is TOKEN over the UTF-8 bytes, alternative for
           alternative, and a field is bounded in the document by a non-digit (a quote, ``<``,
           ``>``, a line break), so every token in a field is a token of the document with the
           same text, and classifies the same (``idcode.screen_form``).
        4. *Identifier fields.* Values declared under the OID in a start tag are read as the
           XML parser reads them; any other place the OID stands (text, FHIR XML, SAML) gives
           None, but for a JSON ``"system"`` member: JSON parsers yield the identifier fields
           of ``systems`` whatever the screen says.

        Every step is linear: the token search, the digit map and the OID look-ups (each byte
        before an OID is searched once, each tag parsed once; see ``_coded_values``).

        ``joined``: ``data`` is text as a parser decoded it, joined across markup (an XML
        document's text nodes in order), and a field may be any stretch of it: an element's
        text, whose neighbours in ``data`` need not be its own. The needles are then the
        tokens of any stretch (``idcode.iter_loose_tokens``, proven there) that are real, as
        they stand in ``data``; there are no identifier fields in such text, and nothing is
        left to decode (points 1 and 3 above hold as they are).

        ``notes``: where the valid test codes the tokens show and the identifier values that
        are test codes (which no field will then report) are noted; the caller keeps them only
        if the answer holds (not None: else every field is read, and ``detect`` notes them).
        The joined screen notes nothing (its stretches are not fields).
        """
        if joined:
            return _joined_needles(data)
        if _decodes(data) or _escapes_a_code(data):
            return None
        values = _coded_values(data)
        if values is None:
            return None
        if not idcode.reads_plainly(data):
            return _cleared(data, values, notes)
        needles: set[bytes] = set()
        # Each distinct token and value is judged once (a document repeats its patient's code,
        # and a body of one repeated tag is the same judgement thousands of times).
        tokens: set[str] = set()
        for token in idcode.iter_tokens(data):
            if token in tokens:
                continue
            tokens.add(token)
            form = idcode.screen_form(token)
            kind = idcode.classify(form)
            if kind is idcode.Kind.REAL:
                needles.add(token.encode("utf-8", "surrogatepass"))
                if len(needles) > MAX_NEEDLES:
                    return None
            elif kind is idcode.Kind.TEST and notes is not None:
                notes.code(idcode.normalise(form))
        judged: dict[bytes, str | None] = {}  # value -> its test code, None if it is none
        for value in values:
            if not value:
                continue
            if value in judged:
                code = judged[value]
            else:
                text = value.decode("utf-8", "replace")
                test = idcode.classify(text) is idcode.Kind.TEST
                code = judged[value] = idcode.normalise(text) if test else None
            if code is None:
                needles.add(value)  # (read as a field: ``detect`` notes it)
            elif notes is not None:
                notes.identity_fields += 1
                notes.code(code)
        return frozenset(needles) if len(needles) <= MAX_NEEDLES else None

    def _structured(self, field: Field, notes: Sightings | None = None) -> Iterator[Hit]:
        value = field.value.strip()
        if not value:
            return
        if notes is not None and field.view_of is None:
            notes.identity_fields += 1
        readings = idcode.match_readings(value)
        kinds = [idcode.classify(reading) for reading in readings]
        if idcode.Kind.REAL in kinds:
            reading = readings[kinds.index(idcode.Kind.REAL)]
            yield Hit(
                "hetu.real",
                field,
                idcode.normalise(reading),
                idcode.mask(reading),
                "valid identity code in the real range (individual number 002-899) in an "
                "identity field",
            )
            return
        # The normalised reading decides (fullwidth digits of a test code are a test code).
        reading = readings[1] if len(readings) > 1 else readings[0]
        if idcode.classify(reading) is idcode.Kind.TEST:
            if notes is not None:
                notes.code(idcode.normalise(reading))
            return
        code = idcode.normalise(reading)
        number = idcode.individual_number(reading)
        if number is not None and number >= 900:
            yield Hit(
                "hetu.malformed_test",
                field,
                code,
                idcode.mask(reading),
                "identity field holds a 900-series value that is not a valid code "
                "(check character or date wrong)",
            )
        else:
            yield Hit(
                "hetu.malformed",
                field,
                code,
                idcode.mask(reading),
                "identity field holds a value that is not a valid code and not in the 900 "
                "series: it may be a real person's code mistyped",
            )


# In a single-byte reading (ISO-8859-1, windows-1252) only these bytes give a digit in any
# normalised reading (ASCII digits, superscripts ¹ ² ³, fractions ¼ ½ ¾: NFKC "1⁄4"), and only
# the soft hyphen (0xAD, Cf) is removed: a date needs six of them in a row, the soft hyphen
# aside. (windows-1252's 0x80-0x9F hold no digit and no format character.)
_SINGLE_BYTE_DIGITS = bytes(
    0x30 if (0x30 <= b <= 0x39 or b in b"\xb2\xb3\xb9\xbc\xbd\xbe") else 0x78 for b in range(256)
)
_SIX_DIGITS = b"000000"


def _single_byte_shapes() -> bytes:
    """A map of single bytes to what they can be in a token in any reading of them as
    ISO-8859-1 or windows-1252, NFKC-normalised: "0" a digit (``_SINGLE_BYTE_DIGITS``), "A" a
    letter or "+" (a sign or a check character: ASCII letters, and ª º, which NFKC makes a and
    o), "-" a separator (whitespace as ``str.isspace`` in either reading, ASCII and
    windows-1252 dashes), "x" anything else; the soft hyphen (Cf) is deleted."""
    out = bytearray(b"x" * 256)
    for b in range(256):
        chars = {bytes([b]).decode("latin-1"), bytes([b]).decode("cp1252", "replace")}
        if _SINGLE_BYTE_DIGITS[b] == 0x30:
            out[b] = 0x30
        elif b in b"+\xaa\xba" or (chr(b).isascii() and chr(b).isalpha()):
            out[b] = 0x41
        elif b in (0x2D, 0x96, 0x97) or any(c.isspace() for c in chars):
            out[b] = 0x2D
    return bytes(out)


_SINGLE_BYTE_SHAPES = _single_byte_shapes()
# A token's shape in the map above (TOKEN's parts, looser: no look-arounds, any letter).
_SINGLE_BYTE_TOKEN = re.compile(rb"0{6}(?:-*A-*|-+)0{3}-*[0A]")


def _cleared(
    data: bytes, values: list[bytes], notes: Sightings | None = None
) -> frozenset[bytes] | None:
    """The screen of a document whose readings differ from it as written: "none" (an empty
    set) if no reading of the whole document shows a real code and every identifier under the
    OID is a valid test code, else None (needles found in a reading need not stand in the
    bytes). ``notes``: the test codes and identifiers seen on the way (see ``screen``)."""
    try:
        texts = [data.decode("utf-8", "surrogatepass")]
    except UnicodeDecodeError:
        texts = [data.decode("latin-1"), data.decode("cp1252", "replace")]
        shapes = data.translate(_SINGLE_BYTE_SHAPES, b"\xad")
        if _SIX_DIGITS not in shapes or _SINGLE_BYTE_TOKEN.search(shapes) is None:
            # No reading of these bytes holds a token's shape (binary, mostly: a DER
            # certificate's dates are digits, but nothing token-shaped follows them).
            texts = []
    for text in texts:
        for reading in idcode.match_readings(text):
            for match in idcode.token_matches_in_text(idcode.screen_form(reading)):
                kind = idcode.classify(match.group(0))
                if kind is idcode.Kind.REAL:
                    return None
                if kind is idcode.Kind.TEST and notes is not None:
                    notes.code(idcode.normalise(match.group(0)))
    for value in values:
        readings = idcode.match_readings(value.decode("utf-8", "replace").strip())
        for reading in readings:
            if reading and idcode.classify(reading) is not idcode.Kind.TEST:
                return None
        if notes is not None and readings[-1]:
            notes.identity_fields += 1
            notes.code(idcode.normalise(readings[-1]))
    return frozenset()


def _joined_needles(data: bytes) -> frozenset[bytes] | None:
    """The screen of text joined across markup (``HetuDetector.screen``, ``joined``)."""
    if not idcode.reads_plainly(data):
        try:
            text = data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return None
        for reading in idcode.match_readings(text):
            for token in idcode.loose_tokens(reading):
                if idcode.classify(token) is idcode.Kind.REAL:
                    return None  # (a needle of a reading need not stand in the bytes)
        return frozenset()
    needles: set[bytes] = set()
    for token in idcode.iter_loose_tokens(data):
        if idcode.classify(token) is idcode.Kind.REAL:
            needles.add(token.encode("utf-8", "surrogatepass"))
            if len(needles) > MAX_NEEDLES:
                return None
    return frozenset(needles)


def _oid_positions(data: bytes) -> Iterator[int]:
    """Where the HETU OID stands, not as the prefix of a longer OID (a literal search: fast)."""
    size = len(_HETU_OID)
    pos = data.find(_HETU_OID)
    while pos != -1:
        after = data[pos + size : pos + size + 1]
        if not after or after not in b"0123456789.":
            yield pos
        pos = data.find(_HETU_OID, pos + size)


def _json_system(data: bytes, pos: int) -> bool:
    """True if the OID at ``pos`` opens the value of a JSON member ``"system": "[urn:oid:]``."""
    head = data[max(0, pos - 48) : pos]
    if head[-8:].lower() == b"urn:oid:":
        head = head[:-8]
    if head[-1:] != b'"':
        return False
    head = head[:-1].rstrip()
    return head[-1:] == b":" and head[:-1].rstrip().endswith(b'"system"')


def _coded_values(data: bytes) -> list[bytes] | None:
    """The identifier each XML start tag declares under the OID (b"" where none), in order;
    None if the OID stands anywhere else but in a JSON ``"system"`` member.

    Mirrors the XML parser: the system is ``@root`` or else ``@codeSystem``; the identifier is
    ``@extension`` under ``@root``, ``@code`` under ``@codeSystem``.

    Linear: the last ``<`` and ``>`` before each OID are searched for only since the previous
    OID (the bytes before it were searched already), and each tag is parsed once, within
    ``_TAG_REACH`` of its OID on either side (a longer tag is no ``II``/``code``: None).
    """
    values: list[bytes] = []
    read: dict[bytes, bytes | None] = {}
    searched, last_lt, last_gt, tag = 0, -1, -1, -1
    for pos in _oid_positions(data):
        if (lt := data.rfind(b"<", searched, pos)) != -1:
            last_lt = lt
        if (gt := data.rfind(b">", searched, pos)) != -1:
            last_gt = gt
        searched = pos
        if last_lt <= last_gt or pos - last_lt > _TAG_REACH:
            # Not inside a start tag (no "<" since the last ">", or too far back).
            if _json_system(data, pos):
                continue
            return None
        if last_lt == tag:
            continue  # the OID again in a tag already read (root and codeSystem both)
        end = data.find(b">", pos, pos + _TAG_REACH)
        if end == -1:
            return None
        tag = last_lt
        text = data[last_lt:end]
        value = read.get(text, _UNREAD)
        if value is _UNREAD:
            value = read[text] = _tag_value(text, 0, len(text))  # (each distinct tag once)
        if value is None:
            return None
        values.append(value)
    return values


_UNREAD = b"\0unread"  # (no tag's identifier: values are stripped text between quotes)


def _tag_value(data: bytes, start: int, end: int) -> bytes | None:
    """The identifier of the start tag at ``data[start:end]`` if it declares the OID as its
    system, else None."""
    attrs = {
        m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _ATTR.finditer(data, start, end)
    }
    system = attrs.get(b"root") or attrs.get(b"codeSystem")
    if system != _HETU_OID:
        return None
    return attrs.get(b"extension" if b"root" in attrs else b"code", b"").strip()
