"""E-mail addresses, phone numbers and street addresses: parsed, found in text, compared, masked.

Pure functions over maintained parsers: ``email_validator`` (RFC 5321/5322/6531 syntax, IDNA
2008 via ``idna``) for e-mail addresses, ``phonenumbers`` (Google's libphonenumber metadata) for
telephone numbers. Nothing here goes to the network (``check_deliverability=False``).

Reserved names (RFC 2606 §2-3, RFC 6761 §6): ``example.com``, ``example.net``, ``example.org``
and every name under ``.example``, ``.test``, ``.invalid`` and ``.localhost`` can belong to no
one, so an address there is test data by construction.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import cache, lru_cache
from typing import NamedTuple
from urllib.parse import unquote

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import phonenumbermatcher as _matcher

from .names import fold

__all__ = [
    "MIN_PHONE_DIGITS",
    "RESERVED_DOMAINS",
    "RESERVED_SUFFIXES",
    "ascii_digits",
    "domain_end",
    "email_domain",
    "find_emails",
    "find_phones",
    "iter_phones",
    "mask_address",
    "mask_email",
    "mask_name",
    "mask_phone",
    "may_hold_email",
    "may_hold_number",
    "normalise_address",
    "parse_email",
    "phone_e164",
    "phone_regions",
    "reserved_email",
    "telecom",
]

#: Second-level names reserved for documentation (RFC 2606 §3), their subdomains too.
RESERVED_DOMAINS: frozenset[str] = frozenset({"example.com", "example.net", "example.org"})
#: Top-level names reserved for testing and documentation (RFC 2606 §2, RFC 6761 §6).
RESERVED_SUFFIXES: tuple[str, ...] = (".example", ".test", ".invalid", ".localhost")

# -- e-mail ----------------------------------------------------------------------------------

# RFC 5322 §3.2.3 atext, the characters of an unquoted local part (with the dots between atoms).
_ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~."
)
# Longest local part (RFC 5321 §4.5.3.1.1) and domain (RFC 1035 §2.3.4, as text) looked at: a
# run past them is no address, and the scan around each "@" stays bounded (linear in the text).
_MAX_LOCAL = 64
_MAX_DOMAIN = 255
# Label separators IDNA maps to "." (UTS 46: ideographic, fullwidth and halfwidth full stops).
_IDNA_DOTS = frozenset("\u3002\uff0e\uff61")


def _domain_char(char: str) -> bool:
    """A character that can stand in a domain as written: LDH, a dot, or a non-ASCII letter,
    digit or mark (an IDN label before IDNA maps it)."""
    if char.isascii():
        return char.isalnum() or char in "-."
    return char in _IDNA_DOTS or unicodedata.category(char)[0] in "LMN"


def _local_char(char: str) -> bool:
    """A character of an unquoted local part: atext, or any non-ASCII character (RFC 6531)."""
    return char in _ATEXT or (not char.isascii() and not char.isspace())


def email_domain(address: str) -> str:
    """The domain of an address, lower-cased, without a trailing dot ("" if it has none)."""
    _, at, domain = address.rpartition("@")
    return domain.lower().rstrip(".") if at else ""


def _reserved_domain(domain: str) -> bool:
    domain = domain.lower().rstrip(".")
    if any(domain == name or domain.endswith("." + name) for name in RESERVED_DOMAINS):
        return True
    return any(domain == suffix[1:] or domain.endswith(suffix) for suffix in RESERVED_SUFFIXES)


def reserved_email(address: str) -> bool:
    """True if the address's domain is reserved for testing or documentation (RFC 2606, 6761)."""
    return _reserved_domain(email_domain(address))


def parse_email(text: str) -> str | None:
    """The address normalised (local part as written, domain lower-cased and IDNA-decoded to
    Unicode, no surrounding whitespace or ``mailto:``) if ``text`` is one e-mail address, else
    None.

    ``email_validator`` does the parsing (quoted local parts allowed, SMTPUTF8 allowed, no DNS).
    It refuses the special-use names of RFC 6761 (``.test``, ``.invalid``, ``.localhost``) as
    undeliverable; an address there is still an address (a test one), so its local part is
    checked under a stand-in domain and the domain kept as written, lower-cased.
    """
    text = text.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:].split("?", 1)[0].strip()  # RFC 6068: hfields after "?"
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return None
    try:
        result = validate_email(
            text, check_deliverability=False, allow_smtputf8=True, allow_quoted_local=True
        )
    except EmailNotValidError:
        if not _reserved_domain(domain) or not _plain_domain(domain):
            return None
        try:
            validate_email(
                local + "@example.com",
                check_deliverability=False,
                allow_smtputf8=True,
                allow_quoted_local=True,
            )
        except EmailNotValidError:
            return None
        return f"{local}@{domain.lower().rstrip('.')}"
    if len(result.domain.rpartition(".")[2]) < 2:
        # No top-level domain of one character is delegated (the root zone has none: IANA's
        # list): such an address reaches no one. Binary read as text makes them ("‡œ@6º.é").
        return None
    return f"{local}@{result.domain}"


_LDH_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.ASCII)


def _plain_domain(domain: str) -> bool:
    """True for an ASCII domain of LDH labels (RFC 1123 §2.1), a trailing dot allowed."""
    labels = domain.lower().rstrip(".").split(".")
    return len(domain) <= _MAX_DOMAIN and all(_LDH_LABEL.fullmatch(label) for label in labels)


def _local_start(text: str, at: int) -> int | None:
    """Where the local part ending before ``text[at]`` (an "@") starts, or None if none can.

    A quoted local part (RFC 5321 §4.1.2 Quoted-string) runs back to its opening quote; a
    dot-atom back over atext, but not past two dots in a row (no atom is empty) nor a leading
    dot. Bounded: a run longer than a local part can be is no address.
    """
    if at and text[at - 1] == '"':
        pos = at - 2
        floor = max(0, at - 2 - 2 * _MAX_LOCAL)
        while pos >= floor:
            if text[pos] == '"' and (pos == 0 or text[pos - 1] != "\\"):
                return pos
            pos -= 1
        return None
    pos = at
    while pos > 0 and at - pos <= _MAX_LOCAL and _local_char(text[pos - 1]):
        pos -= 1
    if at - pos > _MAX_LOCAL:
        return None  # longer than a local part can be
    double = text.rfind("..", pos, at)
    if double != -1:
        pos = double + 2  # no atom is empty: the local part starts after the last ".."
    while pos < at and text[pos] == ".":
        pos += 1
    return pos if pos < at else None


def domain_end(text: str, at: int) -> int:
    """Where the domain starting after ``text[at]`` (an "@") ends: the run of domain
    characters (at most ``_MAX_DOMAIN + 1`` read), without trailing dots or hyphens (the end
    of a sentence, a dash after the address)."""
    end = at + 1
    limit = min(len(text), at + 2 + _MAX_DOMAIN)
    while end < limit and _domain_char(text[end]):
        end += 1
    while end > at + 1 and text[end - 1] in ".-\u3002\uff0e\uff61":
        end -= 1
    return end


#: The commercial at's other forms, which NFKC reads as "@" (fullwidth, small): one character
#: each, so text with them replaced keeps its positions.
_OTHER_ATS = {0xFF20: "@", 0xFE6B: "@"}
#: A run an address percent-encoded in a URI can lie in (``mailto:a%40b.fi``): no space, quote
#: or bracket that ends a URI in text or markup.
_URI_RUN = re.compile(r"[^\s\"'<>()\[\]]*%40[^\s\"'<>()\[\]]*")


def may_hold_email(text: str) -> bool:
    """Whether :func:`find_emails` can find anything in ``text`` (cheap: most values hold no
    "@" in any form)."""
    return "@" in text or "%40" in text or "\uff20" in text or "\ufe6b" in text


def find_emails(text: str) -> list[tuple[int, int, str]]:
    """Every e-mail address in free text: (start, end, normalised address).

    Candidates around each "@" (a linear scan: each is read back at most a local part's
    length and forward at most a domain's), each validated with :func:`parse_email`. An "@"
    written fullwidth or small (U+FF20, U+FE6B: NFKC's "@") counts as one; a URI's run with a
    percent-encoded "@" (``mailto:liisa%40gmail.com``: RFC 6068, a mail client decodes it) is
    read percent-decoded too, and its addresses span the whole run.
    """
    if "\uff20" in text or "\ufe6b" in text:
        text = text.translate(_OTHER_ATS)
    found = _emails_at(text)
    if "%40" in text:
        seen = {address for _, _, address in found}
        for run in _URI_RUN.finditer(text):
            for _, _, address in _emails_at(unquote(run.group())):
                if address not in seen:
                    seen.add(address)
                    found.append((run.start(), run.end(), address))
        found.sort()
    return found


def _emails_at(text: str) -> list[tuple[int, int, str]]:
    found: list[tuple[int, int, str]] = []
    at = text.find("@")
    while at != -1:
        start = _local_start(text, at)
        end = domain_end(text, at)
        if start is not None and end > at + 1:
            address = parse_email(text[start:end])
            if address is not None:
                found.append((start, end, address))
        at = text.find("@", at + 1)
    return found


# -- telephone numbers ---------------------------------------------------------------------

#: Fewest digits a reported number is written with: a Finnish number with its trunk prefix "0"
#: has at least six (national numbers are 5-12 digits: ITU-T E.164 FI), and a number in
#: international form a country code and at least five (the shortest VALID ones in the
#: metadata, Austria's and Germany's, are six). Five leaves a margin; tests check it.
MIN_PHONE_DIGITS = 5
# libphonenumber's punctuation inside a number (phonenumberutil._VALID_PUNCTUATION, without
# "x", which is a letter here) and its leading characters (plus signs, opening brackets).
_PUNCT = (
    "\\-\u2010-\u2015\u2212\u30fc\uff0d-\uff0f \u00a0\u00ad\u200b\u2060\u3000().\\[\\]/~"
    "\u2053\u223c\uff5e\uff08\uff09\uff3b\uff3d"
)
_PLUS = "+\uff0b"
#: A stretch of text a phone number can lie in: digits, number punctuation, plus signs.
#: :func:`find_phones` reads each such region on its own, so what it finds in a region does not
#: depend on the text around it, but for rules that only reject (``_plausible``).
_REGION = re.compile(rf"[\d{_PUNCT}{_PLUS}]*\d[\d{_PUNCT}{_PLUS}]*")
#: The same regions, found from their first digit (``_REGION`` alone tries every start inside a
#: run of spaces with no digit, reading the run to its end each time: the square of the run, and
#: text is full of indentation; a look-behind at each start instead costs a step per character):
#: a digit and the run after it; the punctuation before it is taken back one character at a time.
_REGION_FROM_DIGIT = re.compile(rf"\d[\d{_PUNCT}{_PLUS}]*+")
_REGION_PUNCT = re.compile(rf"[{_PUNCT}{_PLUS}]")
# Written as people write a phone number: a plus sign or an opening bracket, or a trunk or
# international prefix "0" (any script's zero: libphonenumber reads every Nd digit).
_STARTS = frozenset("+\uff0b(\uff08[\uff3b")
# A Finnish identity code's first ten characters (DDMMYY, century sign, individual number)
# and dates: day.month.year, year-month-day, with any of the separators people use.
_HETU_SHAPE = re.compile(r"\d{6}[-+A-FU-Ya-fu-y\u2010-\u2015\u2212]\d{3}")
_DATE_SHAPE = re.compile(
    r"\d{1,2}[./\-]\d{1,2}[./\-](?:\d{4}|\d{2})|\d{4}[./\-]\d{1,2}[./\-]\d{1,2}", re.ASCII
)


def _zero(char: str) -> bool:
    return unicodedata.digit(char, -1) == 0 and unicodedata.category(char) == "Nd"


def phone_e164(text: str, region: str = "FI") -> str | None:
    """A phone number in E.164 (``+358401234567``) if ``text`` is one, else None.

    ``tel:`` URIs (RFC 3966, parameters such as ``;ext=`` and ``;phone-context=`` allowed),
    spaces, dashes, dots, slashes and brackets, a trunk prefix "0" (Finnish numbers) and an
    international prefix "00" are accepted; words around the number are not. A number need
    only be *possible* (its length fits the country's plan): validity depends on metadata of
    number ranges that changes, and a real person's number must not pass for being unlisted.
    """
    text = text.strip()
    if text[:4].lower() == "tel:":
        number, _, params = text[4:].partition(";")
        candidate = number.strip()
        rfc3966 = "tel:" + number.strip() + (";" + params if params else "")
    else:
        candidate = rfc3966 = text
    if not candidate or not _REGION.fullmatch(candidate):
        return None
    try:
        parsed = phonenumbers.parse(rfc3966, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_regions(text: str) -> Iterator[tuple[int, int]]:
    """The regions (start, end) of ``text`` that :func:`find_phones` reads: maximal runs of
    digits, number punctuation and plus signs holding at least ``MIN_PHONE_DIGITS`` digits."""
    done = 0
    punct = _REGION_PUNCT.match
    for match in _REGION_FROM_DIGIT.finditer(text):
        # (The run before ended at a character of no region: the walk back stops there.)
        start, end = match.start(), match.end()
        while start > done and punct(text, start - 1) is not None:
            start -= 1
        done = end
        if _ENOUGH_DIGITS.match(text, start, end) is not None:
            yield start, end


#: ``MIN_PHONE_DIGITS`` digits, each followed by what is not one: matched from a region's start,
#: it stops at the fifth digit (a C-level count that does not read a long region to its end;
#: ``\d`` and ``\D`` are disjoint, so it never backtracks).
_ENOUGH_DIGITS = re.compile(rf"\D*(?:\d\D*){{{MIN_PHONE_DIGITS}}}")


def find_phones(text: str, region: str = "FI") -> list[tuple[int, int, str]]:
    """Phone numbers in free text: (start, end, E.164), found by libphonenumber's matcher.

    Leniency VALID: a number must be valid for its country, not merely possible. Measured on
    dates (``12.03.2024``, ``2024-03-12``, ``3.12.2024``), identity codes (``010181-900C``),
    OIDs (``1.2.246.21``, the digits after a dot of a longer one) and bare identifiers
    (``ID 123456789``), POSSIBLE reads every one of them as a Finnish number; VALID none
    (``tests/test_contacts.py`` holds the table). Numbers written with a trunk prefix, an
    international prefix or a plus sign are valid ones.

    On top of the matcher (rules that only ever reject): a number is written starting with a
    plus sign, an opening bracket or a zero (a trunk or international prefix: a bare run of
    digits is an identifier); it does not continue a word or a number (no letter or digit
    before or after it, no "digit." before it); and it is not shaped like an identity code or a
    date. Each region (``phone_regions``) is matched on its own.
    """
    return list(iter_phones(text, region))


def iter_phones(text: str, region: str = "FI") -> Iterator[tuple[int, int, str]]:
    """:func:`find_phones` one number at a time: a region is matched only when the number
    before it has been taken (a caller that stops early, past the findings cap, does not pay
    for the rest)."""
    for start, end in phone_regions(text):
        # (Other scripts' zeros are not in _CAN_START: a region holding one is matched.)
        if text[start:end].isascii() and _CAN_START.search(text, start, end) is None:
            continue  # no place in it a number _plausible keeps could start (the matcher is slow)
        for at, raw, e164 in _matched(text[start:end], region):
            offset = start + at
            if _plausible(text, offset, offset + len(raw), raw):
                yield offset, offset + len(raw), e164


#: Where a number :func:`_plausible` keeps can start: "+", "(", "[" or a zero, not glued to a
#: letter or digit before it, nor after "digit." / "digit-" / "digit/" (a superset of its rule).
_CAN_START = re.compile(r"(?<![0-9A-Za-z])(?<![0-9][./\-])[+(\[\uff0b\uff08\uff3b0\uff10]")


_NUMBER_TYPES = (
    "fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number",
    "voip", "pager", "uan", "voicemail",
)  # fmt: skip


def _type_patterns(country_code: int) -> list[str]:
    """Every number type's pattern of national significant numbers for the regions of a
    country code, each once: a number libphonenumber calls valid fits one of them
    (``is_valid_number`` asks for one type's pattern and more)."""
    patterns: dict[str, None] = {}
    for metadata in _metadata(country_code):
        for kind in _NUMBER_TYPES:
            desc = getattr(metadata, kind, None)
            if desc is not None and desc.national_number_pattern:
                patterns[desc.national_number_pattern] = None
    return list(patterns)


def _metadata(country_code: int) -> list[phonenumbers.PhoneMetadata]:
    found = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()):
        metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
            country_code, region
        )
        if metadata is not None:
            found.append(metadata)
    return found


def _valid_358_patterns() -> list[str]:
    """The number types of country code 358 (Finland and Åland)."""
    return _type_patterns(358)


type _Prefix = tuple[re.Pattern[str], str | None]


class _Country(NamedTuple):
    """What :func:`_international_may_be_valid` asks of a country code."""

    #: Its number types as one pattern.
    types: re.Pattern[str]
    #: The lengths its national numbers may have (its regions' general descriptions: a valid
    #: number has one); empty if some region does not say.
    lengths: frozenset[int]
    #: Its regions' national prefixes as ``parse`` strips them after the code
    #: (``national_prefix_for_parsing``), with the rule some regions rewrite the number with
    #: (``national_prefix_transform_rule``).
    prefixes: tuple[_Prefix, ...]


@lru_cache(maxsize=256)
def _international(country_code: int) -> _Country:
    """What a country code's metadata says of valid numbers (``_Country``)."""
    types = re.compile(
        "|".join(f"(?:{p})" for p in _type_patterns(country_code)) or "(?!)", re.ASCII
    )
    prefixes: dict[_Prefix, None] = {}
    lengths: set[int] = set()
    said = True
    for metadata in _metadata(country_code):
        if metadata.national_prefix_for_parsing:
            pattern = re.compile(metadata.national_prefix_for_parsing)
            prefixes[pattern, metadata.national_prefix_transform_rule or None] = None
        general = metadata.general_desc
        possible = [n for n in (general.possible_length or ()) if n > 0] if general else []
        said = said and bool(possible)
        lengths.update(possible)
    return _Country(types, frozenset(lengths) if said else frozenset(), tuple(prefixes))


def _international_may_be_valid(digits: str) -> bool | None:
    """Whether ``digits`` after a plus sign or an international prefix could be read as a
    valid number of some country: its country code as ``parse`` takes it (the first of its
    1-3 leading digits that is one; none starts with "0"), and the rest as it is, with a
    national prefix of one of its regions taken off, or rewritten by that region's rule
    (``_maybe_strip_national_prefix_carrier_code``), fitting one of its number types. None if
    no country code starts it (``parse`` then raises, or after a plus sign reads the digits
    again as if there were none)."""
    if not digits or digits[0] == "0":
        return None
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    country = _international(code)
    lengths = country.lengths

    def fits(number: str) -> bool:
        return (not lengths or len(number) in lengths) and bool(country.types.fullmatch(number))

    rest = digits[size:]
    if fits(rest):
        return True
    for prefix, rule in country.prefixes:
        found = prefix.match(rest)
        if found is None:
            continue
        groups = found.groups()
        if rule is not None and groups and groups[-1] is not None:
            if fits(prefix.sub(rule, rest, count=1)):
                return True
        elif fits(rest[found.end() :]):
            return True
    return False


#: A national significant number of 358 as ``parse`` may read it from a string's digits: a
#: trunk prefix "0" taken off, or the country code "358" and up to two trunk prefixes after
#: it (it strips one reading the country code and one after: 3580025120914 is +35825120914),
#: then a number type's pattern (what is left keeps its leading zeros, as the "Italian
#: leading zero", and no Finnish type starts with one).
_NATIONAL_358 = re.compile(
    "(?:0|3580{0,2})?(?:" + "|".join(f"(?:{p})" for p in _valid_358_patterns()) + ")", re.ASCII
)
#: Finland's international prefix, as ``parse`` reads it (``_parse_prefix_as_idd``: a prefix
#: followed by a "0" is none, since no country code starts with one).
_FI = phonenumbers.PhoneMetadata.metadata_for_region("FI")
_IDD = re.compile((_FI.international_prefix if _FI is not None else None) or "00").match
#: Where ``parse`` starts reading a number: its first digit or plus sign.
_NUMBER_START = re.compile(r"[+0-9]")
_NOT_ASCII_DIGITS = re.compile(r"[^0-9]+")
#: The matcher's splits of a candidate that is no number as a whole (its ``_INNER_MATCHES``).
_INNER: tuple[re.Pattern[str], ...] | None = getattr(_matcher, "_INNER_MATCHES", None)


def _parsed_strings(candidate: str) -> Iterator[str]:
    """Every string the matcher parses for ``candidate`` (``PhoneNumberMatcher._extract_match``
    and ``_extract_inner_match``): the candidate, then for each inner pattern the text before
    its first match and each match's group, from each match's start on. (The matcher trims
    what follows a string's last digit or letter first: the digits are the same.)"""
    yield candidate
    for pattern in _INNER or ():
        found = pattern.search(candidate)
        if found is not None:
            yield candidate[: found.start()]
        while found is not None:
            yield found.group(1)
            found = pattern.search(candidate, found.start() + 1)


@cache
def ascii_digits() -> dict[int, str]:
    """Every decimal digit (Unicode Nd) to its ASCII digit, and the fullwidth plus sign to "+"."""
    table = {
        point: str(unicodedata.decimal(chr(point)))
        for point in range(0x80, 0x20000)
        if unicodedata.category(chr(point)) == "Nd"
    }
    table[0xFF0B] = "+"
    return table


def may_hold_number(candidate: str) -> bool:
    """False only if libphonenumber's matcher (leniency VALID, default region FI) finds no
    number in ``candidate``, a candidate of its own pattern: a few regular-expression
    searches, where the matcher's parses cost 70-200 µs a candidate (a body of distinct
    numbers that are none, such as dates, decimals or ``(0) 12345678``, cost that each).

    Why (for a candidate without an extension marker, "~", the only kind it judges; its
    digits of other scripts read as ASCII ones, as ``parse`` reads them; anything else is
    True): the matcher parses the candidate and its inner splits
    (``_parsed_strings``, the same patterns) and reports the first that is a valid number.
    ``parse`` reads a string from its first digit or plus sign, and all the digits after it (a
    region holds no letters). After a plus sign (unless no country code follows: then it reads
    the digits again without it), or an international prefix (Finland's: "00" or "99…",
    before a digit that is not "0"), a country code follows and the rest, with at
    most a national prefix of its regions taken off, must fit one of its number types
    (``_international_may_be_valid``; a country whose national numbers ``parse`` rewrites is
    True). Else the country code is 358 and the national significant number is the digits
    with a trunk prefix "0", or "358" and up to two "0", taken off at most, and it must fit a
    number type of Finland or Åland (``_NATIONAL_358``). tests/test_contacts.py holds it to
    the matcher on random regions.
    """
    if _INNER is None or "~" in candidate or "\uff5e" in candidate:
        return True
    if not candidate.isascii():
        # Every script's digits as ASCII ones, a fullwidth plus sign as "+": parse reads them
        # so, and no split of the matcher's falls on a digit.
        candidate = candidate.translate(ascii_digits())
    national = _NATIONAL_358.fullmatch
    for text in _parsed_strings(candidate):
        start = _NUMBER_START.search(text)
        if start is None:
            continue
        digits = _NOT_ASCII_DIGITS.sub("", text[start.start() :])
        if text[start.start()] == "+":
            after_plus = _international_may_be_valid(digits)
            if after_plus:
                return True
            if after_plus is not None:
                continue
            # No country code after the plus sign: parse reads the digits again without it.
        idd = _IDD(digits)
        if idd is not None and len(digits) > idd.end() and digits[idd.end()] != "0":
            if _international_may_be_valid(digits[idd.end() :]):
                return True
            continue
        if national(digits):
            return True
    return False


@lru_cache(maxsize=65536)
def _matched(chunk: str, region: str) -> tuple[tuple[int, str, str], ...]:
    """libphonenumber's matches in one region: (offset, raw text, E.164). Cached: the matcher
    costs 70-200 µs a region, a system under test sends the same numbers and identifiers
    request after request, and one request's screen and detection ask for the same regions
    (a cache smaller than a request's distinct regions made each cost twice: a body of 62,000
    distinct numbers). At most some 10 MB."""
    matches: list[tuple[int, str, str]] = []
    for offset, match in _matches(chunk, region):
        raw, at = match.raw_string, offset + match.start
        # An opening square bracket the matcher took along (JSON arrays, "[040 …]").
        while raw[:1] in ("[", "\uff3b") and len(raw) > 1:
            raw, at = raw[1:], at + 1
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        matches.append((at, raw, e164))
    return tuple(matches)


# libphonenumber's matcher's own candidate patterns (module constants of phonenumbermatcher),
# for :func:`_matches` to walk the candidates as it does; None if a release renamed them.
_CANDIDATE: re.Pattern[str] | None = getattr(_matcher, "_PATTERN", None)
_SECOND_NUMBER: re.Pattern[str] | None = getattr(_matcher, "_SECOND_NUMBER_START_PATTERN", None)


def _matches(chunk: str, region: str) -> Iterator[tuple[int, phonenumbers.PhoneNumberMatch]]:
    """What ``PhoneNumberMatcher(chunk, region, Leniency.VALID)`` finds, as (offset, match
    within the candidate at that offset), without parsing a candidate :func:`may_hold_number` rules
    out (the matcher costs 70-200 µs a candidate; a region of a megabyte of digit groups is
    ten thousand candidates), by :func:`may_hold_number`.

    The matcher's own loop (``PhoneNumberMatcher._find``), with its own patterns: the next
    candidate is its pattern's next match from where the last one ended, cut before a second
    number's start; a candidate that yields no number moves the search past it; one that
    yields a number moves it past the number. A candidate that may hold one is given to the
    matcher whole, and its first number taken: what the matcher finds in a candidate depends
    on the candidate alone (and on the text after it for a time stamp, which needs a ":" no
    region holds). One difference: the matcher's bound of 65,535 tries a text is one a
    candidate here (it can only find more). tests/test_contacts.py holds the two to the same
    matches on random regions, long ones included."""
    leniency = phonenumbers.Leniency.VALID
    if region != "FI" or _CANDIDATE is None or _SECOND_NUMBER is None:
        for match in phonenumbers.PhoneNumberMatcher(chunk, region, leniency):
            yield 0, match
        return
    index = 0
    while (found := _CANDIDATE.search(chunk, index)) is not None:
        start = found.start()
        candidate = chunk[start : found.end()]
        second = _SECOND_NUMBER.search(candidate)
        if second is not None:
            candidate = candidate[: second.start()]
        if may_hold_number(candidate):
            first = next(iter(phonenumbers.PhoneNumberMatcher(candidate, region, leniency)), None)
            if first is not None:
                yield start, first
                index = start + max(1, first.end)
                continue
        index = start + max(1, len(candidate))


def _plausible(text: str, start: int, end: int, raw: str) -> bool:
    """The rejecting rules of :func:`find_phones` for the number ``text[start:end]``."""
    first = raw[0]
    if first not in _STARTS and not _zero(first):
        return False
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    if before.isalnum() or after.isalnum():
        return False
    if before in "./-" and start >= 2 and text[start - 2].isdecimal():
        return False  # the tail of a dotted number (an OID) or of a range
    if after in ".-/" and end + 1 < len(text) and text[end + 1].isdecimal():
        return False
    digits = "".join(c for c in raw if not c.isspace())
    return not (_HETU_SHAPE.search(digits) or _DATE_SHAPE.fullmatch(digits))


# -- telecom values --------------------------------------------------------------------------

_PHONE_SCHEMES = ("tel:", "fax:", "sms:", "modem:")
_PHONE_SYSTEMS = frozenset({"phone", "fax", "sms", "pager"})


def telecom(value: str, system: str | None = None) -> tuple[str, str] | None:
    """A CDA ``telecom/@value`` or FHIR ``ContactPoint`` as (kind, normalised value).

    ``("email", address)`` for ``mailto:`` or FHIR system ``email``; ``("phone", e164)`` for
    ``tel:``, ``fax:``, ``sms:`` (CDA TEL, RFC 3966) or a FHIR system ``phone``, ``fax``,
    ``sms``, ``pager``; ``("url", value)`` for http(s). None for what is neither (empty, a
    nullFlavor, a number that is not one), and for a value without a scheme or system that is
    neither an address nor a number.
    """
    value = value.strip()
    if not value:
        return None
    lowered = value.lower()
    sys = (system or "").strip().lower()
    if lowered.startswith("mailto:") or sys == "email":
        address = parse_email(value)
        return ("email", address) if address is not None else None
    for scheme in _PHONE_SCHEMES:
        if lowered.startswith(scheme):
            e164 = phone_e164("tel:" + value[len(scheme) :])
            return ("phone", e164) if e164 is not None else None
    if lowered.startswith(("http://", "https://")) or sys == "url":
        return ("url", value)
    if sys in _PHONE_SYSTEMS:
        e164 = phone_e164(value)
        return ("phone", e164) if e164 is not None else None
    if sys:
        return None  # "other": nothing this module knows how to judge
    if "@" in value:
        address = parse_email(value)
        return ("email", address) if address is not None else None
    e164 = phone_e164(value)
    return ("phone", e164) if e164 is not None else None


# -- street addresses ------------------------------------------------------------------------

_NON_WORD = re.compile(r"[\W_]+")


def normalise_address(text: str) -> str:
    """The form addresses are compared in (the policy's, the registry's, a document's): folded
    as names are (:func:`kanta_guard.names.fold`: case, diacritics, the ae/oe spellings),
    punctuation to spaces, whitespace collapsed.

    >>> normalise_address("Testikatu 1 A 2,  00100 Helsinki")
    'testikatu 1 a 2 00100 helsinki'
    """
    return " ".join(_NON_WORD.sub(" ", fold(text)).split())


# -- masking: what a tester may see of a value -------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+")


def mask_name(text: str) -> str:
    """Each part of a name to its first letter and one "*" per other letter ("Maija
    Virtanen" → "M**** V*******"); separators kept, digits hidden."""
    masked = _WORD.sub(lambda m: m.group(0)[0] + "*" * (len(m.group(0)) - 1), text)
    return re.sub(r"\d", "*", masked)


def mask_phone(e164: str) -> str:
    """``+358401234567`` → ``+358 40 *** **67``: the country code, the first two digits of the
    national number and its last two; the rest as "*". A national number too short to hide at
    least three digits between them keeps only its first two."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return "+" + "*" * max(0, sum(c.isdigit() for c in e164) - 1)
    national = phonenumbers.national_significant_number(parsed)
    head, rest = national[:2], national[2:]
    tail = rest[-2:] if len(rest) >= 5 else ""
    hidden = "*" * (len(rest) - len(tail))
    body = hidden + tail
    if len(body) > 4:
        body = body[:-4] + " " + body[-4:]
    return f"+{parsed.country_code} {head} {body}".rstrip()


def mask_email(address: str) -> str:
    """``maija.virtanen@gmail.com`` → ``*@gmail.com``: the domain kept (a tester needs it to
    see why), the local part never shown."""
    _, at, domain = address.rpartition("@")
    return "*@" + domain.strip() if at else "*"


_POSTAL_CODE = re.compile(r"(?<!\d)(\d{5})(?!\d)")


def mask_address(text: str) -> str:
    """``Testikatu 1 A 2, 00100 Helsinki`` → ``T******** *, 00*** H*******``: the street name
    to its first letter, the house number and the rest of the street to one "*", the postal
    code's first two digits, the city's first letter."""
    match = _POSTAL_CODE.search(text)
    if match is None:
        return _mask_street(text.strip())
    street = text[: match.start()].strip().rstrip(",").strip()
    city = text[match.end() :].strip().lstrip(",").strip()
    parts = [_mask_street(street)] if street else []
    place = match.group(1)[:2] + "***" + (" " + mask_name(city) if city else "")
    return ", ".join([*parts, place])


def _mask_street(street: str) -> str:
    words: list[str] = []
    for word in street.split():
        if any(c.isdigit() for c in word):
            words.append("*")
            break  # the number, and all after it (staircase, flat): one "*"
        words.append(mask_name(word))
    return " ".join(words)
