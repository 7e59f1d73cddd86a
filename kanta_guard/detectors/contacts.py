"""Detector for the contact rules: ``email.personal`` and ``phone.personal``.

An e-mail address or telephone number in any field of a person (a patient, guardian,
professional, narrative text) is personal data unless it is test data: an address in a domain
reserved for testing (RFC 2606, RFC 6761), or one the policy or the test-identity registry
lists. Organisations' contact details (a hospital's switchboard, a functional mailbox) are not
personal data, and the SOAP addressing of a message names endpoints, not people: both skipped.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator
from typing import Protocol

from .. import contacts, idcode
from ..charset import sniff_bom, sniff_wide
from ..model import Field, Hit, Role
from ..rules import RuleSpec, rule
from ..search import holds

__all__ = ["ContactDetector", "ContactRegistry"]

#: More needles than this and the screen cannot tell (``hetu.MAX_NEEDLES``: a consumer looks for
#: each needle in every field, so their number must stay a constant).
MAX_NEEDLES = 32
_SKIPPED = frozenset({Role.ORGANISATION, Role.MESSAGE})
# Markers of text the parsers decode into something the bytes do not show: an XML character
# reference, a JSON \u escape, a CDATA section, each found by its rarest byte first.
_DECODED = ((b"&#", 0), (b"\\u", 0), (b"\\U", 0), (b"<![CDATA[", 2))
# A percent-escape (forms, URLs) of "@" or of a character a phone number is written with
# (space, brackets, "+", "-", ".", "/", digits, "[", "]", "~", any non-ASCII byte).
# A domain no valid address has: it starts with a dot or a hyphen, or has no dot between
# labels (email_validator requires a dotted, globally resolvable name; a superset kept).
_NO_DOMAIN = re.compile(r"[.\-]|[^.]*\Z")
_IDNA_DOTS = str.maketrans("\u3002\uff0e\uff61", "...")
_PERCENT = re.compile(rb"%(?:0[9ADad]|[23][0-9A-Fa-f]|40|5[BDbd]|7[Ee]|[89A-Fa-f][0-9A-Fa-f])")
# Bytes of a region (contacts.phone_regions) as the bytes of an ASCII-compatible document show
# it, with the whitespace an XML attribute value turns into spaces (XML 1.0 §3.3.3) and the
# UTF-8 bytes of the only region characters below U+0640 (no-break space, soft hyphen).
_REGION_BYTES = rb"[0-9 \-.()\[\]/~+\t\r\n]|\xc2[\xa0\xad]"
_B_REGION = re.compile(rb"(?:" + _REGION_BYTES + rb")*[0-9](?:" + _REGION_BYTES + rb")*")
# Where a number find_phones could report starts in the bytes, and runs on to a plausible end
# (``contacts._plausible``): "+", "(", "[" or "0", not after a letter, a digit or "digit." (nor
# after a JSON escape such as \n, whose letter is no letter in the decoded text); then at least
# four more digits, at most eight bytes of punctuation apart (libphonenumber allows four
# characters; XML reads CR LF as one, UTF-8 writes a no-break space in two); ending at a digit
# that no letter, digit or "-digit" follows. Runs of digits and of punctuation are taken whole,
# so that a failure is found without backtracking into them.
_B_SEP = rb"(?:[ \-.()\[\]/~+\t\r\n]|\xc2[\xa0\xad])"
_B_START = re.compile(
    rb"[+(\[0](?:(?<![0-9A-Za-z].)|(?<=\\[nrtbf].))(?<![0-9][./\-].)"
    rb"(?=(?:" + _B_SEP + rb"{0,8}[0-9]){4})(?:" + _B_SEP + rb"{0,8}+[0-9]++)+"
    rb"(?![0-9A-Za-z])(?![./\-][0-9])"
)
_DIGIT_RUN = re.compile(r"\d+")
# A UTF-8 lead byte of a character at or past U+0640: the first non-ASCII decimal digits
# (U+0660) and all of libphonenumber's other punctuation are there.
_NEAR = bytes(range(0xD9))
# What a local part may end with, and what a field may hold just before an "@" as decoded
# from the bytes (";" ends an entity such as &amp;).
_LOCAL_END = frozenset(b"!#$%&'*+-/=?^_`{|}~.\";") | frozenset(range(0x30, 0x3A))


#: What a contact detector can look for (``ContactDetector(kinds=…)``).
KINDS = frozenset({"email", "phone"})


class ContactRegistry(Protocol):
    """The test-identity registry, as far as contacts go: registered test persons' e-mail
    addresses and phone numbers (E.164) are test data."""

    def email_allowed(self, address: str) -> bool: ...

    def phone_allowed(self, e164: str) -> bool: ...


class ContactDetector:
    """Finds personal e-mail addresses and phone numbers in every field of a person."""

    name = "contacts"
    #: Names and numbers that markup splits are read joined (``Detector.detect``).
    whole_elements = True
    systems: frozenset[str] = frozenset()
    rules: tuple[RuleSpec, ...] = (rule("email.personal"), rule("phone.personal"))

    def __init__(
        self,
        allowed_emails: frozenset[str] = frozenset(),
        allowed_email_domains: frozenset[str] = frozenset(),
        allowed_phones: frozenset[str] = frozenset(),
        registry: ContactRegistry | None = None,
        *,
        kinds: frozenset[str] = KINDS,
    ) -> None:
        """``kinds``: what it looks for, "email" and/or "phone". The scanner runs one detector
        of each: past the findings cap, a rule whose findings can no longer change the verdict
        is not looked for (``Scanner._quiet``), and the two rules' actions differ by default
        (e-mail blocks, phones warn)."""
        if not kinds or kinds - KINDS:
            raise ValueError(f"kinds must be some of {sorted(KINDS)}")
        self._email, self._phone = "email" in kinds, "phone" in kinds
        if kinds != KINDS:
            self.name = "email" if self._email else "phone"
            self.rules = tuple(r for r in ContactDetector.rules if r.id.startswith(self.name))
        self._emails = frozenset(e for a in allowed_emails if (e := _normal_email(a)))
        self._domains = frozenset(d.strip().lower().rstrip(".") for d in allowed_email_domains)
        self._phones = frozenset(p for a in allowed_phones if (p := _normal_phone(a)))
        self._registry = registry

    def __repr__(self) -> str:  # the lists are test data, but their size is all one needs
        return (
            f"ContactDetector(<{len(self._emails)} e-mails>, <{len(self._domains)} domains>, "
            f"<{len(self._phones)} phones>, registry={self._registry is not None})"
        )

    # -- what passes ------------------------------------------------------------------------

    def _domain_allowed(self, domain: str) -> bool:
        domain = domain.lower().rstrip(".")
        if contacts.reserved_email("x@" + domain):
            return True
        return any(domain == d or domain.endswith("." + d) for d in self._domains)

    def email_allowed(self, address: str) -> bool:
        """True if the (normalised) address is test data: reserved, listed, in an allowed
        domain, or the registry's."""
        if self._domain_allowed(contacts.email_domain(address)):
            return True
        if address in self._emails or _fold(address) in self._emails:
            return True
        return self._registry is not None and self._registry.email_allowed(address)

    def phone_allowed(self, e164: str) -> bool:
        """True if the number (E.164) is listed in the policy or the registry."""
        if e164 in self._phones:
            return True
        return self._registry is not None and self._registry.phone_allowed(e164)

    # -- detection --------------------------------------------------------------------------

    def detect(self, field: Field) -> Iterator[Hit]:
        """Hits for one field: every e-mail address and phone number in its value that is
        not test data, unless the field belongs to an organisation or the message frame."""
        value = field.value
        if field.identifier and (field.context.system or "").lower() not in _CONTACT_SYSTEMS:
            return  # an identifier (CDA id/@extension, code/@code, FHIR identifier.value)
        has_at = self._email and contacts.may_hold_email(value)
        has_digits = self._phone and _digits_enough(value)
        if not (has_at or has_digits):
            return
        found = contacts.find_emails(value) if has_at else []
        emails = [(value[a:b], address) for a, b, address in found]
        if has_at and not value.isascii():
            # Read as a reader sees it too: NFKC, format characters (a zero-width space, a soft
            # hyphen pasted from a word processor) removed or as spaces (idcode.match_readings;
            # the address parser refuses them as written).
            seen = {address for _, address in emails}
            readings = idcode.match_readings(value)[1:]
            if not readings and _dots_more(value):
                # (A dot only NFKC shows, U+2024 or "⒈", is no character the identity-code
                # readings count as changing: a reader still sees ``liisa@gmail.com``.)
                readings = [unicodedata.normalize("NFKC", value)]
            for reading in readings:
                for a, b, address in contacts.find_emails(reading):
                    # (The same address, or one whose local part a format character cut as
                    # written: "maija<ZWSP>.virtanen@…" shows "virtanen@…" as written.)
                    if not any(address.endswith(x) or x.endswith(address) for x in seen):
                        seen.add(address)
                        emails.append((reading[a:b], address))
        # Numbers are matched one at a time (the matcher is slow): a caller that stops early
        # does not pay for the rest of a long field.
        phones = contacts.iter_phones(value) if has_digits else iter(())
        first = next(phones, None)
        # The role is looked up last: a field found without the walk computes it by walking.
        if not (emails or first) or field.role in _SKIPPED:
            return
        # (Each hit's value, which only its keyed hash shows, is the address normalised and
        # the number in E.164: one person's address or number hashes alike however written,
        # ``liisa%40gmail.com`` or ``040 123 4567``, so that another reading of the same field
        # is not reported again and the campaign report counts it as one value.)
        if emails:
            for _, address in emails:
                if not self.email_allowed(address):
                    yield Hit(
                        "email.personal",
                        field,
                        address,
                        contacts.mask_email(address),
                        "e-mail address outside the reserved test domains, not listed in "
                        "the policy or the registry",
                    )
        if first is not None:
            for _, _, e164 in itertools.chain((first,), phones):
                if not self.phone_allowed(e164):
                    yield Hit(
                        "phone.personal",
                        field,
                        e164,
                        contacts.mask_phone(e164),
                        "telephone number not listed in the policy or the registry",
                    )

    def count(self, field: Field) -> int:
        """How many hits :meth:`detect` would yield for ``field``."""
        return sum(1 for _ in self.detect(field))

    # -- the screen -------------------------------------------------------------------------

    def screen(self, data: bytes, *, joined: bool = False) -> frozenset[bytes] | None:
        """Which fields of this document (its UTF-8 text, markup included) could produce a hit?

        Needles: for each "@" that could be an address :meth:`detect` reports, "@" and the
        domain as it stands; for each region of digits (``contacts.phone_regions``) that could
        hold a number it reports, the region's runs of digits. None: it cannot tell.

        Why a field with a hit holds a needle (the argument; tests/test_detectors_contacts.py
        checks it with random documents):

        1. *Decoding.* A field is a stretch of the document as written, but for what parsers
           decode. The screen answers None where decoding could make an "@" or a digit, or
           join text (``&#`` character references, ``\\u`` escapes, CDATA, a percent-escape
           of "@" or of a character of a phone number). What remains decodes into characters
           no address's domain and no region holds (``&amp;`` and its kind, JSON's ``\\"``
           and ``\\n``), or into a space from whitespace (XML attribute values) or "+"
           (forms), which the screen reads as part of a region already.
        2. *Boundaries.* Fields end where markup or a separator stands (a quote, "<", ">",
           "&", "=", a line break): never a letter, digit, "-", "." or a non-ASCII character.
           So a field holding the "@" of an address holds the whole domain the document shows
           after it, and a region of a field lies inside a region of the document.
        3. *E-mail.* :meth:`detect` passes an address by its domain whatever its local part
           (which a boundary may cut: ``email=a@x``), so an "@" whose domain is reserved or
           allowed is no needle; any other one is ("@" + domain is in every field holding it).
        4. *Phones.* :func:`contacts.find_phones` reads each region on its own and applies
           rules that only reject; a number it reports starts a run of digits and ends one,
           so the region's runs of digits as they stand are needles. A region written plainly
           (ASCII digits, spaces, "-", ".", brackets, a leading "+") is the same text in every
           field holding it, and is no needle if ``find_phones`` finds nothing in it or only
           listed numbers.
        5. *Readings.* :meth:`detect` also reads an address in a field's NFKC reading with
           format characters removed (``idcode.match_readings``: a zero-width space or a soft
           hyphen in an address). A reading changes an address's domain only where such a
           character stands in the domain as written or ends it: there the screen cannot tell
           (None); elsewhere every reading's domain is the one written, and its needle
           stands in the field.
           (Numbers: libphonenumber reads them as written, format characters and every
           script's digits included, and the regions hold them.)

        ``joined``: ``data`` is decoded text joined across markup and any stretch of it may be
        a field, so a domain or a region may be cut anywhere: the needles are each "@" with
        the characters either side, and every digit of every region.

        Linear: each "@" is read a bounded distance either side; regions are found by one
        regular-expression pass, and each is read once.
        """
        if joined:
            return self._screen_joined(data)
        if any(holds(data, marker, rare) for marker, rare in _DECODED):
            return None
        email = self._email
        if email and b"\xef" in data and (b"\xef\xbc\xa0" in data or b"\xef\xb9\xab" in data):
            return None  # an "@" written fullwidth or small (contacts.find_emails reads it)
        if b"%" in data and b"\0" not in data and _PERCENT.search(data):
            # (Binary, with NUL bytes, is no form or URL: nothing percent-decodes it.)
            return None
        needles: set[bytes] = set()
        text: str | None = None
        if email and b"@" in data:
            text = _decoded(data)
            if text is None:
                return None
            if not self._email_needles(text, needles):
                return None
        # Binary (NUL bytes, no UTF-16 text: a DER certificate, a signature value) holds no
        # number anyone reads: its runs of digit bytes are lengths and serials. (A limitation
        # for numbers in unknown binary formats: in the README.)
        if (
            self._phone
            and not (b"\0" in data and sniff_wide(data) is None)
            and not self._phone_needles(data, text, needles)
        ):
            return None
        return frozenset(needles) if len(needles) <= MAX_NEEDLES else None

    def _email_needles(self, text: str, needles: set[bytes]) -> bool:
        at = text.find("@")
        while at != -1:
            end = contacts.domain_end(text, at)  # (the scan detect makes)
            # The domain and the character that ends it (past trailing dots and hyphens): a
            # character there that a reading removes or turns into a domain's (a soft hyphen,
            # a fullwidth letter) gives that reading another domain (point 5).
            tail = end
            while tail < len(text) and text[tail] in ".-\u3002\uff0e\uff61":  # (as domain_end)
                tail += 1
            window = text[at + 1 : tail + 1]
            if not window.isascii() and (
                not idcode.changing_characters().isdisjoint(window) or _dots_more(window)
            ):
                if not _dotless_in_every_reading(text, at):
                    return False
                at = text.find("@", at + 1)
                continue  # (no reading gives this "@" a domain with a dot: no address)
            before = text[at - 1] if at else ""
            if (
                end > at + 1
                and before
                and (ord(before) > 0x7F or ord(before) in _LOCAL_END or before.isalpha())
            ):
                domain = text[at + 1 : end]
                # (IDNA reads the ideographic and fullwidth full stops as dots, and so does the
                # address parser: "gmail．com" is gmail.com.)
                dotted = domain.translate(_IDNA_DOTS) if not domain.isascii() else domain
                # A percent-escape or entity right after could lengthen the domain decoded.
                if _NO_DOMAIN.match(dotted) and text[end : end + 1] != "%":
                    pass  # no address has this domain (email_validator wants labels, a dot)
                elif not (self._domain_allowed(dotted) and text[end : end + 1] != "%"):
                    needles.add(("@" + domain).encode("utf-8", "surrogatepass"))
                    if len(needles) > MAX_NEEDLES:
                        return False
            at = text.find("@", at + 1)
        return True

    def _phone_needles(self, data: bytes, text: str | None, needles: set[bytes]) -> bool:
        if data.isascii() or not data.translate(None, _NEAR):
            # ASCII-compatible bytes, no character at or past U+0640: no digit but ASCII's.
            # (Lazily: the loop below gives up past MAX_NEEDLES, and a body of numbers holds
            # tens of thousands of regions.)
            regions: Iterator[tuple[tuple[str, str], str]] = _byte_regions(data)
        else:
            text = text if text is not None else _decoded(data)
            if text is None:
                return False
            regions = (
                (_context(text, s, e), text[s:e]) for s, e in contacts.phone_regions(_spaced(text))
            )
        read: set[str] = set()  # each distinct region (with its context) is read once
        for (before, after), region in regions:
            glued = before + region + after
            if glued in read:
                continue
            read.add(glued)
            # (libphonenumber reads every script's digits, and a fullwidth plus sign or
            # bracket as the ASCII one: the starts and ends are found in that reading.)
            shape = glued
            if not glued.isascii() and _OTHER_SHAPES.search(glued) is not None:
                shape = glued.translate(_ASCII_SHAPES)  # (slow: only where it changes some)
            if not (_CAN_START.search(shape) and _CAN_END.search(shape)):
                continue  # no place a number find_phones reports could start or end
            if _plain(region):
                # The letters or digits around it stand in every field holding it (point 2),
                # and reject what they reject there; each number reported is a needle as it
                # stands (a field holding it holds all of it: no boundary falls in a region).
                found = contacts.find_phones(glued)
                for start, end, e164 in found:
                    if not self.phone_allowed(e164):
                        needles.add(glued[start:end].encode("utf-8"))
                if len(needles) > MAX_NEEDLES:
                    return False
                continue
            for run in _DIGIT_RUN.findall(region):
                needles.add(run.encode("utf-8"))
                if len(needles) > MAX_NEEDLES:
                    return False
        return True

    def _screen_joined(self, data: bytes) -> frozenset[bytes] | None:
        # Contacts are judged node by node: an address or a number split by markup
        # (``040 <b>123</b> 4567``) is not read joined (a limitation, in the README).
        return frozenset()


# Where a number find_phones reports can start and end (``contacts._plausible``: not after a
# letter, a digit or "digit." / "digit-" / "digit/"; not before their mirror images).
_CAN_START = re.compile(r"(?<![0-9A-Za-z])(?<![0-9][./\-])[+(\[0]")
_CAN_END = re.compile(r"[0-9](?![0-9A-Za-z])(?![./\-][0-9])")
#: Every script's digits as ASCII ones, fullwidth "+", "(" and "[" as ASCII ones.
_ASCII_SHAPES = {**contacts.ascii_digits(), 0xFF08: "(", 0xFF3B: "["}
_OTHER_SHAPES = re.compile(r"(?![0-9])\d|[\uff08\uff0b\uff3b]")
_REGION_ASCII = frozenset(b"0123456789 -.()[]/~+\t\r\n")
#: ``contacts.MIN_PHONE_DIGITS`` ASCII digits (stops at the last one: a long region is not read
#: to its end, and the two classes are disjoint, so it never backtracks).
_ENOUGH_DIGITS = re.compile(rb"[^0-9]*(?:[0-9][^0-9]*){%d}" % contacts.MIN_PHONE_DIGITS)


def _byte_regions(data: bytes) -> Iterator[tuple[tuple[str, str], str]]:
    """The regions of ASCII-compatible bytes that hold a number's start (``_B_START``), each
    once, with the letters or digits around them (``_context``)."""
    done = 0
    for match in _B_START.finditer(data):
        start = match.start()
        if start < done:
            continue  # in the region just read
        while start > done:
            if data[start - 1] in _REGION_ASCII:
                start -= 1
            elif data[start - 1] in (0xA0, 0xAD) and start >= 2 and data[start - 2] == 0xC2:
                start -= 2
            else:
                break
        region = _B_REGION.match(data, start)
        if region is None:  # (cannot happen: a start is followed by digits)
            continue
        done = region.end()
        raw = region.group(0)
        if _ENOUGH_DIGITS.match(raw) is not None:
            yield _context(data, start, done), raw.decode("utf-8", "replace")


# (Any script's digits: a region's characters as written are the same in every field holding
# it, and libphonenumber reads every Nd digit.)
_PLAIN = re.compile(r"[+\uff0b]?[\d ().\-]+")


def _plain(region: str) -> bool:
    """A region written the same in every field that holds it (screen, point 4)."""
    return _PLAIN.fullmatch(region) is not None


def _context[T: (str, bytes)](data: T, start: int, end: int) -> tuple[str, str]:
    """The letter or digit just before and just after ``data[start:end]`` ("" where there is
    none, or where the one before is the letter of a JSON escape such as ``\\n``)."""
    before = data[start - 1 : start] if start else data[:0]
    after = data[end : end + 1]
    if start >= 2 and data[start - 2 : start - 1] in ("\\", b"\\"):
        before = data[:0]
    out = []
    for char in (before, after):
        text = char.decode("latin-1") if isinstance(char, bytes) else char
        out.append(text if text.isascii() and text.isalnum() else "")
    return out[0], out[1]


def _spaced(text: str) -> str:
    """The text with the whitespace an XML attribute value reads as spaces, as spaces.

    One ``str.replace`` per character present (C speed), not ``str.translate`` with a table,
    which looks every character up in a dict (about 5 MB/s)."""
    for char in "\t\r\n":
        if char in text:
            text = text.replace(char, " ")
    return text


#: FHIR ContactPoint systems: a value under one of them is a contact, not an identifier (the
#: parsers mark ``system``/``value`` pairs as identifiers whatever the system).
_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})


def _dots_more(window: str) -> bool:
    """True if the NFKC form of ``window`` shows more dots (or "@") than it: a one dot leader
    (U+2024) or "⒈" is no character the identity-code readings count as changing, but in a
    field a soft hyphen makes read, it is a dot, and ``liisa@gmail․gmail`` an address."""
    form = unicodedata.normalize("NFKC", window)
    return any(form.count(mark) > window.count(mark) for mark in ".@\u3002")


def _dotless_in_every_reading(text: str, at: int) -> bool:
    """True if no reading of ``text`` (``idcode.match_readings``) gives the "@" at ``at`` a
    domain holding a dot or an IDNA full stop: then no address has it (email_validator
    wants a dot), whatever the characters a reading changes in it (random bytes read one
    byte a character hold many: "ª", "½", a soft hyphen).

    The domain of every reading ends before the first ASCII character after the "@" that is
    no domain character, no whitespace (a reading removes it), none of "<", "=", ">" (which
    NFC composes with a following U+0338) and no escape's start ("%", "&", "\\": decoded
    readings are others); every reading of what stands before it is that text's NFKC with
    characters removed or made spaces, ASCII digits or dashes, none of which makes a dot that
    the NFKC of the whole does not show. Read at most ``_DOT_REACH`` characters ahead (else:
    False, cannot tell): linear."""
    end, limit = at + 1, min(len(text), at + 1 + _DOT_REACH)
    while end < limit:
        char = text[end]
        if char.isascii() and not (char.isalnum() or char.isspace() or char in "-.<=>"):
            break
        end += 1
    else:
        return False
    if text[end] in "%&\\":
        return False
    stretch = text[at + 1 : end]
    return not any(
        dot in form
        for form in (stretch, unicodedata.normalize("NFKC", stretch))
        for dot in ".\u3002\uff0e\uff61"
    )


#: How far past an "@" ``_dotless_in_every_reading`` looks for the end of its domain.
_DOT_REACH = 300


def _decoded(data: bytes) -> str | None:
    """The text of ``data``: UTF-8, or else one character a byte, as the text parser reads
    bytes that are not UTF-8 (ISO-8859-1; windows-1252 differs only in 0x80-0x9F, which hold
    no digit, "@", "+" or bracket)."""
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        if sniff_bom(data) is not None or sniff_wide(data) is not None:
            return None  # UTF-16/32: the text parser reads it so, not a byte a character
        return data.decode("latin-1")


_ANY_DIGITS = re.compile(r"\d(?:\D{0,8}\d){4}")


def _digits_enough(value: str) -> bool:
    """Whether a value could hold a number at all (cheap: most values hold none)."""
    return _ANY_DIGITS.search(value) is not None


def _fold(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local.lower()}@{domain}"


def _normal_email(address: str) -> str | None:
    parsed = contacts.parse_email(address)
    return _fold(parsed) if parsed is not None else None


def _normal_phone(number: str) -> str | None:
    return contacts.phone_e164(number)
