"""The supplier's registry of Kela-issued test identities: who may appear in test traffic.

Kela hands each supplier its own 900-series test identity codes, separately for independent and
for joint testing (a joint code only for the test cases it was requested for). The registry
lists them with their registered names and any test contact details, so the guard can tell a
registered test person from a real one: a real name on a registered code, an unregistered code,
a code used in the wrong pool. It is a documented file the policy points to, read once at
start-up; anything wrong in it stops start-up with a :class:`RegistryError` naming the file and
line (never showing a real-range code unmasked).

TOML format (``tests/fixtures/registry.toml`` is a complete commented example)::

    # optional: test contact details any identity may use
    [contacts]
    phones = ["+358 40 0000001"]          # compared in E.164 (phonenumbers, region FI)
    emails = ["testi@example.com"]        # compared lower-cased
    addresses = ["Testitie 1, 00100 Helsinki"]   # compared by normalise_address()

    [[identity]]                          # one table per test identity
    code = "010181-900C"                  # required: a valid 900-series code
    given = "Maija Liisa"                 # required: a string (names split on whitespace) or a list
    family = "Testinen"                   # required: a string or a list
    pool = "independent"                  # required: "independent" or "joint"
    cases = ["TC-101"]                    # joint: required, non-empty; independent: refused
    role = "patient"                      # optional: patient, guardian, related-person,
                                          #   professional, author, … (a person's role)
    terhikki = "10012345678"              # optional: Valvira's professional number
    phones = ["+358401234567"]            # optional: this identity's test contact details
    emails = ["maija.testinen@example.com"]
    addresses = ["Testikatu 1 A 2, 00100 Helsinki"]

CSV format: a header row naming the columns (``code,given,family,pool`` required;
``cases,role,terhikki,phones,emails,addresses`` optional, in any order), one identity a row, list
cells separated by ``;``, UTF-8 (a byte order mark is allowed), an empty cell an absent key. A row
with only ``phones``, ``emails`` or ``addresses`` cells filled (no code, no name) holds shared
test contact details, like ``[contacts]``.

Loading 100,000 identities takes under a second (``bench/registry_load.py``). A file in the
layout a generator writes (TOML: one ``key = "string"`` or ``key = ["string", …]`` a line, keys in
any order, ``[[identity]]`` and a first ``[contacts]`` header, comments after values and between
tables; CSV: any file) takes a fast path: a TOML table is matched whole by one pattern, a CSV row
is picked by column, each distinct value (a name, a pool, a list of cases or phones) is validated
once, and each identity is kept as one plain tuple (the collector untracks it on its first pass;
:class:`TestIdentity` values are made when looked up). Anything else, a bad entry included, is
read by the full path: a line reader of the plain subset of TOML, else ``tomllib`` (which words
every syntax error), and a validator of each key that names the file and line of any problem.
``tests/test_registry.py`` holds the two paths to agreeing on what they accept and read.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import operator
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, NamedTuple

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from . import idcode, names
from .contacts import normalise_address
from .errors import PolicyError
from .model import Role

__all__ = [
    "Pool",
    "Registry",
    "RegistryError",
    "TestIdentity",
    "empty_registry",
    "load_registry",
    "normalise_address",
    "parse_registry",
    "parse_registry_csv",
]


class RegistryError(PolicyError, ValueError):
    """A bad registry: the message names the file and line (and never shows a real-range code
    unmasked). A :class:`~kanta_guard.errors.PolicyError`: a bad registry stops start-up like a
    bad policy."""


class Pool(StrEnum):
    """Kela's two pools of test codes, which must not be cross-used."""

    INDEPENDENT = "independent"
    JOINT = "joint"


class TestIdentity(NamedTuple):
    """One registered test identity, validated and normalised.

    ``given`` and ``family`` are the names as written in the registry; ``given_parts`` and
    ``family_parts`` their folded parts (:func:`kanta_guard.names.name_parts`), computed once at
    load, for matching. The repr shows the code (a 900-series one), the pool and the line, never
    the names or contact details.

    A named tuple, immutable: a registry of 100,000 builds as many, and a frozen dataclass's
    constructor (one ``object.__setattr__`` a field) took 0.18 s of the load, a tuple's 0.04.
    """

    code: str
    given: tuple[str, ...]
    family: tuple[str, ...]
    pool: Pool
    cases: frozenset[str]
    role: str | None
    terhikki: str | None
    phones: frozenset[str]
    emails: frozenset[str]
    addresses: frozenset[str]
    line: int
    given_parts: tuple[str, ...]
    family_parts: tuple[str, ...]

    @property
    def professional(self) -> bool:
        return self.role == "professional"

    def __repr__(self) -> str:
        return f"TestIdentity(code={self.code!r}, pool={str(self.pool)!r}, line={self.line})"


#: Not a test class, whatever pytest makes of the name.
TestIdentity.__test__ = False  # type: ignore[attr-defined]

#: The one empty set of cases, phones, e-mails or addresses (``frozenset()`` makes a new one).
_NO_STRINGS: frozenset[str] = frozenset()


#: An identity as the registry holds it: TestIdentity's fields, with the pool as its string and
#: the cases and contact details as sorted tuples. A plain tuple of strings, ints, None and
#: tuples of strings, so the collector untracks it on its first pass and never walks it again (a
#: TestIdentity or a frozenset stays tracked: 100,000 of each were walked by every collection).
_Row = tuple[
    str,
    tuple[str, ...],
    tuple[str, ...],
    str,
    tuple[str, ...],
    str | None,
    str | None,
    tuple[str, ...],
    tuple[str, ...],
    tuple[str, ...],
    int,
    tuple[str, ...],
    tuple[str, ...],
]
_ROLE: Final = 5
_GIVEN_PARTS: Final = 11
_FAMILY_PARTS: Final = 12


def _row(identity: TestIdentity) -> _Row:
    return (
        identity.code,
        identity.given,
        identity.family,
        identity.pool.value,
        tuple(sorted(identity.cases)),
        identity.role,
        identity.terhikki,
        tuple(sorted(identity.phones)),
        tuple(sorted(identity.emails)),
        tuple(sorted(identity.addresses)),
        identity.line,
        identity.given_parts,
        identity.family_parts,
    )


def _identity(row: _Row) -> TestIdentity:
    (code, given, family, pool, cases, role, terhikki, phones, emails, addresses, line, gp, fp) = (
        row
    )
    return TestIdentity(
        code,
        given,
        family,
        _POOLS[pool],
        frozenset(cases) if cases else _NO_STRINGS,
        role,
        terhikki,
        frozenset(phones) if phones else _NO_STRINGS,
        frozenset(emails) if emails else _NO_STRINGS,
        frozenset(addresses) if addresses else _NO_STRINGS,
        line,
        gp,
        fp,
    )


class Registry:
    """The loaded registry: look-ups by code, by name and by contact detail.

    Names are indexed by each folded family part, so :meth:`named` reads only the identities
    sharing the written family name's first part, never the whole registry. Identities are
    held as plain tuples (:data:`_Row`) and handed out as :class:`TestIdentity` values, each
    made when first looked up.
    """

    __slots__ = (
        "_addresses",
        "_by_code",
        "_by_family",
        "_by_terhikki",
        "_emails",
        "_given",
        "_made",
        "_phones",
        "digest",
        "path",
    )

    def __init__(
        self,
        identities: Iterable[TestIdentity],
        *,
        phones: Iterable[str] = (),
        emails: Iterable[str] = (),
        addresses: Iterable[str] = (),
        path: Path | None = None,
        digest: str = "",
    ) -> None:
        rows = [_row(identity) for identity in identities]
        by_code = {row[0]: row for row in rows}
        by_family: dict[str, _Row | list[_Row]] = {}
        given: set[str] = set()
        all_phones, all_emails, all_addresses = set(phones), set(emails), set(addresses)
        by_terhikki: dict[str, _Row] = {}
        for row in rows:
            if row[6]:
                by_terhikki[row[6]] = row
            _index(by_family, row)
            given.update(row[_GIVEN_PARTS])
            all_phones.update(row[7])
            all_emails.update(row[8])
            all_addresses.update(row[9])
        self._set(by_code, by_family, by_terhikki, given, all_phones, all_emails, all_addresses)
        self.path = path
        self.digest = digest or "sha256:" + hashlib.sha256(b"").hexdigest()

    def _set(
        self,
        by_code: dict[str, _Row],
        by_family: dict[str, _Row | list[_Row]],
        by_terhikki: dict[str, _Row],
        given: Iterable[str],
        phones: Iterable[str],
        emails: Iterable[str],
        addresses: Iterable[str],
    ) -> None:
        self._by_code = by_code
        # A bucket of several identities a tuple (untracked by the collector like the rows).
        self._by_family: dict[str, _Row | tuple[_Row, ...]] = {
            part: tuple(bucket) if type(bucket) is list else bucket  # type: ignore[misc]
            for part, bucket in by_family.items()
        }
        self._by_terhikki = by_terhikki
        self._given = frozenset(given)
        self._phones = frozenset(phones)
        self._emails = frozenset(emails)
        self._addresses = frozenset(addresses)
        self._made: dict[str, TestIdentity] = {}

    def _identity(self, row: _Row) -> TestIdentity:
        """The identity of a row, made once (then remembered: only identities looked up are
        made, so the collector has no 100,000 of them to walk)."""
        made = self._made.get(row[0])
        if made is None:
            made = self._made[row[0]] = _identity(row)
        return made

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self) -> Iterator[TestIdentity]:
        return map(_identity, self._by_code.values())

    def __repr__(self) -> str:
        return f"Registry(path={self.path!r}, identities={len(self)}, digest={self.digest!r})"

    def get(self, code: str) -> TestIdentity | None:
        """The identity registered under ``code`` (in any written form: normalised first)."""
        row = self._by_code.get(code) or self._by_code.get(idcode.normalise(code))
        return None if row is None else self._identity(row)

    def professional_number(self, terhikki: str) -> TestIdentity | None:
        """The identity registered with this Terhikki number (Valvira's register of health
        care professionals, OID 1.2.246.537.26), if any."""
        row = self._by_terhikki.get(terhikki.strip())
        return None if row is None else self._identity(row)

    def named(
        self,
        given: tuple[str, ...],
        family: tuple[str, ...],
        *,
        professional: bool | None = None,
    ) -> list[TestIdentity]:
        """The identities whose registered name this written name (folded parts) is
        (:func:`kanta_guard.names.same_name`), in registry order.

        ``professional=True``: only role "professional" entries; False: only the others;
        None: all. Reads one index bucket (the first family part's), never the registry.
        """
        if len(family) > 1 and family[-1] == "tes":
            family = family[:-1]
        if not family:
            return []
        bucket = self._by_family.get(family[0])
        if bucket is None:
            return []
        rows: tuple[_Row, ...] = (bucket,) if type(bucket[0]) is str else bucket  # type: ignore[assignment]
        matches = names.name_matches
        return [
            self._identity(row)
            for row in rows
            if (professional is None or (row[_ROLE] == "professional") is professional)
            and matches(row[_GIVEN_PARTS], row[_FAMILY_PARTS], given, family)
        ]

    def knows_family(self, folded_part: str) -> bool:
        """True if any identity's family name has this folded part (for narrative text)."""
        return folded_part in self._by_family

    def knows_given(self, folded_part: str) -> bool:
        """True if any identity's given names have this folded part."""
        return folded_part in self._given

    def phone_allowed(self, e164: str) -> bool:
        """True if the number (E.164) is any identity's or listed in ``[contacts]``."""
        return e164 in self._phones

    def email_allowed(self, address: str) -> bool:
        """True if the address is any identity's or listed in ``[contacts]`` (case-insensitive)."""
        lowered = address.strip().lower()
        if lowered in self._emails:
            return True
        if lowered.isascii():
            return False
        # An internationalised address: compare email-validator's normal form (NFC, IDNA).
        try:
            return _email(address.strip()) in self._emails
        except ValueError:
            return False

    def address_allowed(self, text: str) -> bool:
        """True if the address, normalised (:func:`normalise_address`), is a registered one."""
        return normalise_address(text) in self._addresses


def _index(by_family: dict[str, _Row | list[_Row]], row: _Row) -> None:
    """Files ``row`` under each of its distinct family parts."""
    parts = row[_FAMILY_PARTS]
    for part in parts if len(parts) == 1 else dict.fromkeys(parts):
        bucket = by_family.get(part)
        if bucket is None:
            by_family[part] = row
        elif type(bucket) is list:
            bucket.append(row)
        else:
            by_family[part] = [bucket, row]  # type: ignore[list-item]


def empty_registry() -> Registry:
    """A registry with no identities and no contacts (useful for tests)."""
    return Registry(())


# -- Values --------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _phone(text: str) -> str | None:
    """A phone number in E.164 (parsed as Finnish without a country code), or None.

    Cached: phonenumbers takes tens of microseconds a number, and registries repeat a few
    shared test numbers.
    """
    try:
        number = phonenumbers.parse(text, "FI")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# RFC 5322 dot-atom in ASCII: what email-validator accepts as a plain local part.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")


@lru_cache(maxsize=4096)
def _domain(domain: str) -> str | EmailNotValidError:
    """email-validator's normal form of a domain, or its reason for refusing it. Cached: a
    registry has a few domains and many addresses."""
    try:
        return _validate("x@" + domain).split("@", 1)[1]
    except EmailNotValidError as exc:
        return exc


def _validate(address: str) -> str:
    # test_environment: the "test" TLD (RFC 6761) is for test addresses like these.
    result = validate_email(address, check_deliverability=False, test_environment=True)
    return str(result.normalized)


def _email(address: str) -> str:
    """An e-mail address in its compared form (email-validator's normal form, lower-cased), or
    ValueError with email-validator's reason.

    An ASCII dot-atom local part (nearly every address) is checked here and only the domain by
    email-validator, once per domain; anything else goes to email-validator whole.
    """
    local, at, domain = address.rpartition("@")
    if at and len(address) <= 200 and len(local) <= 64 and _DOT_ATOM.fullmatch(local):
        normal = _domain(domain)
        if isinstance(normal, EmailNotValidError):
            raise ValueError(str(normal))
        return f"{local}@{normal}".lower()
    try:
        return _validate(address).lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


# -- Reading TOML --------------------------------------------------------------------------------

#: One ``[[identity]]`` table or the ``[contacts]`` table as read: its header's line, its values
#: and each key's line.
_Entry = tuple[int, dict[str, Any], dict[str, int]]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BASIC = r'"[^"\\\x00-\x08\x0a-\x1f\x7f]*"'
_LITERAL = r"'[^'\x00-\x08\x0a-\x1f\x7f]*'"
_STRING = rf"(?:{_BASIC}|{_LITERAL})"
_WS = r"[ \t]*+"
_ARRAY = rf"\[{_WS}(?:{_STRING}{_WS}(?:,{_WS}{_STRING}{_WS})*+(?:,{_WS})?)?\]"
_COMMENT = r"(?:#[^\x00-\x08\x0a-\x1f\x7f]*)?"
# A line of the plain subset, whatever its spacing: a key and a string or an array of strings,
# a header of ours, or nothing; then a comment or nothing.
_LINE = re.compile(
    rf"{_WS}(?:([A-Za-z0-9_-]+){_WS}={_WS}({_STRING}|{_ARRAY})"
    rf"|(\[\[){_WS}identity{_WS}\]\]|(\[){_WS}contacts{_WS}\])?{_WS}{_COMMENT}"
)
# The canonical array (what a generator writes): basic strings, ", " between them.
_CANONICAL_ARRAY = re.compile(r'\[(?:"[^"\\]*"(?:, "[^"\\]*")*)?\]')
_STRINGS = re.compile(r"\"([^\"]*)\"|'([^']*)'")
#: The keys of an identity, in the documented order (also the CSV columns).
_COLUMNS = (
    "code",
    "given",
    "family",
    "pool",
    "cases",
    "role",
    "terhikki",
    "phones",
    "emails",
    "addresses",
)
_KNOWN = frozenset(_COLUMNS)


def _value(raw: str) -> str | list[str]:
    """A string or array value of the plain subset, as tomllib would read it."""
    if raw[0] == "[":
        return [basic or literal for basic, literal in _STRINGS.findall(raw)]
    return raw[1:-1]


def _read_plain(text: str) -> tuple[list[_Entry], _Entry | None] | None:
    """The identities and contacts of a file in the plain subset of TOML, or None if the file
    holds anything else (then tomllib reads it).

    Every line is checked: a canonical ``key = "value"`` line by string tests, any other by the
    :data:`_LINE` pattern. A construct spanning lines (a multi-line string or array) opens with
    a line outside the subset, so no line is ever read out of its context.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if _CONTROL.search(text):
        return None
    entries: list[_Entry] = []
    contacts: _Entry | None = None
    values: dict[str, Any] | None = None
    lines: dict[str, int] = {}
    known, canonical = _KNOWN, _CANONICAL_ARRAY.fullmatch
    for number, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        key, eq, raw = line.partition(" = ")
        value: str | list[str]
        if eq and key in known and "\\" not in raw:
            first = raw[:1]
            if first == '"' and raw[-1] == '"' and raw.count('"') == 2:
                value = raw[1:-1]
            elif first == "[" and canonical(raw):
                value = raw[1:-1].split('"')[1::2]
            else:
                key, value = "", ""
        elif line == "[[identity]]":
            values, lines = {}, {}
            entries.append((number, values, lines))
            continue
        else:
            key, value = "", ""
        if not key:
            match = _LINE.fullmatch(line)
            if match is None:
                return None
            key, raw, table, section = match.groups()
            if table:
                values, lines = {}, {}
                entries.append((number, values, lines))
                continue
            if section:
                if contacts is not None:
                    return None  # a table defined twice: tomllib words it
                values, lines = {}, {}
                contacts = (number, values, lines)
                continue
            if not key:
                continue  # blank or a comment
            value = _value(raw)
        if values is None or key in values:
            return None  # a top-level key, or a key given twice: tomllib words it
        values[key] = value
        lines[key] = number
    return entries, contacts


_TABLE_HEADER = re.compile(
    r"""^[ \t]*\[\[[ \t]*(?:identity|"identity"|'identity')[ \t]*\]\]""", re.M
)
_ANY_HEADER = re.compile(r"^[ \t]*\[", re.M)
_KEY = re.compile(r"""[ \t]*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))[ \t]*=""")


def _top_line(text: str, key: str) -> int:
    """Best-effort line of a top-level key or table header ``key`` (0: not found)."""
    pattern = re.compile(
        rf"""^[ \t]*(?:\[\[?[ \t]*)?["']?{re.escape(key)}["']?[ \t]*(?:=|\]|\.)""", re.M
    )
    found = pattern.search(text)
    return text.count("\n", 0, found.start()) + 1 if found else 0


def _key_lines(text_lines: list[str], start: int) -> dict[str, int]:
    """The line of each key of the table whose header is line ``start`` (1-based), up to the
    next header."""
    found: dict[str, int] = {}
    for number in range(start + 1, len(text_lines) + 1):
        line = text_lines[number - 1]
        if line.lstrip(" \t").startswith("["):
            break
        match = _KEY.match(line)
        if match:
            found.setdefault(next(g for g in match.groups() if g is not None), number)
    return found


def _read_toml(text: str, source: str) -> tuple[list[_Entry], _Entry | None]:
    """The identities and contacts of any TOML file, by tomllib, with the lines found again
    (tomllib gives none): the N-th ``[[identity]]`` header is the N-th entry's line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{source}: not valid TOML: {exc}") from None
    for key in data:
        if key not in ("identity", "contacts"):
            raise RegistryError(
                f"{_at(source, _top_line(text, key))}unknown key {idcode.quote_input(key)} "
                "(expected [contacts] and [[identity]] tables)"
            )
    text_lines = text.replace("\r\n", "\n").split("\n")
    entries: list[_Entry] = []
    identities = data.get("identity", [])
    if not isinstance(identities, list) or not all(isinstance(t, dict) for t in identities):
        raise RegistryError(
            f"{_at(source, _top_line(text, 'identity'))}identity must be [[identity]] tables"
        )
    headers = [text.count("\n", 0, m.start()) + 1 for m in _TABLE_HEADER.finditer(text)]
    if len(headers) != len(identities):  # an inline array of tables: one line for them all
        headers = [_top_line(text, "identity")] * len(identities)
    for line, table in zip(headers, identities, strict=True):
        keys = _key_lines(text_lines, line) if line else {}
        entries.append((line, table, keys))
    contacts: _Entry | None = None
    if "contacts" in data:
        table = data["contacts"]
        line = _top_line(text, "contacts")
        if not isinstance(table, dict):
            raise RegistryError(f"{_at(source, line)}contacts must be a [contacts] table")
        contacts = (line, table, _key_lines(text_lines, line) if line else {})
    return entries, contacts


# -- Reading CSV ---------------------------------------------------------------------------------

_LIST_COLUMNS = frozenset(("given", "cases", "phones", "emails", "addresses"))
_CONTACT_KEYS = frozenset(("phones", "emails", "addresses"))


def _read_csv(text: str, source: str) -> tuple[list[_Entry], _Entry | None]:
    """The identities and contacts of a CSV file: each row's line is the line it starts on."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise RegistryError(f"{source}: empty CSV file: expected a header row")
        columns = [name.strip().lower() for name in header]
        for name in columns:
            if name not in _COLUMNS:
                raise RegistryError(
                    f"{source}, line 1: unknown column {idcode.quote_input(name)} "
                    f"(known: {', '.join(_COLUMNS)})"
                )
        if len(set(columns)) != len(columns):
            raise RegistryError(f"{source}, line 1: a column is named twice")
        for name in ("code", "given", "family", "pool"):
            if name not in columns:
                raise RegistryError(f"{source}, line 1: missing column {name!r}")
        entries: list[_Entry] = []
        contacts: dict[str, Any] = {}
        contact_lines: dict[str, int] = {}
        first_contacts = 0
        line = reader.line_num + 1
        width = len(columns)
        pairs = [(name, name in _LIST_COLUMNS) for name in columns]
        # (Every key of a row stands on the line the row starts on: the checker falls back to
        # the entry's line for a key not in its table, so the rows share one empty table.)
        on_row: dict[str, int] = {}
        for row in reader:
            start, line = line, reader.line_num + 1
            if not "".join(row).strip():
                continue
            if len(row) > width:
                raise RegistryError(f"{source}, line {start}: {len(row)} cells, {width} columns")
            values: dict[str, Any] = {}
            for (name, listed), cell in zip(pairs, row, strict=False):
                if not cell or not (cell := cell.strip()):
                    continue
                if not listed:
                    values[name] = cell
                elif ";" in cell:
                    values[name] = [item for part in cell.split(";") if (item := part.strip())]
                else:
                    values[name] = [cell]
            if values.keys() <= _CONTACT_KEYS:
                first_contacts = first_contacts or start
                for name, items in values.items():
                    contacts.setdefault(name, []).extend(items)
                    contact_lines.setdefault(name, start)
                continue
            if "given" in values and len(values["given"]) == 1:
                values["given"] = values["given"][0]
            entries.append((start, values, on_row))
    except csv.Error as exc:
        raise RegistryError(f"{source}, line {reader.line_num}: not valid CSV: {exc}") from None
    return entries, (first_contacts, contacts, contact_lines) if contacts else None


# -- Validating ----------------------------------------------------------------------------------

_REQUIRED = frozenset(("code", "given", "family", "pool"))
_POOLS = {pool.value: pool for pool in Pool}
#: The roles an identity can have: a person's (model.Role without the non-person ones).
_ROLES = frozenset(str(r) for r in Role) - {
    "organisation",
    "narrative",
    "document",
    "message",
    "url",
    "header",
    "unknown",
}


def _at(source: str, line: int) -> str:
    return f"{source}, line {line}: " if line else f"{source}: "


def _kind(value: object) -> str:
    """A value's TOML type in words, for an error (never the value itself)."""
    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a float")):
        if isinstance(value, kind):
            return name
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


class _Checker:
    """Validates the entries of one file; remembers what is shared (codes seen, phones)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.codes: dict[str, int] = {}
        self.names: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {}
        #: One set of test cases for the identities listing the same ones (a registry's joint
        #: codes share a few campaigns' cases): fewer objects for the collector to walk.
        self.cases: dict[tuple[str, ...], frozenset[str]] = {}

    def fail(self, entry: _Entry, key: str | None, message: str) -> RegistryError:
        line = entry[2].get(key, entry[0]) if key else entry[0]
        return RegistryError(_at(self.source, line) + message)

    def strings(self, entry: _Entry, key: str, value: object) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(entry, key, f"{key} must be an array of strings, not {_kind(value)}")
        return value

    def contacts(
        self, entry: _Entry, table: Mapping[str, Any], what: str
    ) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
        phones: set[str] = set()
        emails: set[str] = set()
        addresses: set[str] = set()
        if "phones" in table:
            for index, text in enumerate(self.strings(entry, "phones", table["phones"]), 1):
                e164 = _phone(text)
                if e164 is None:
                    raise self.fail(
                        entry,
                        "phones",
                        f"{what}phones[{index}] is not a phone number (phonenumbers, region FI)",
                    )
                phones.add(e164)
        if "emails" in table:
            for index, text in enumerate(self.strings(entry, "emails", table["emails"]), 1):
                try:
                    emails.add(_email(text.strip()))
                except ValueError as exc:
                    raise self.fail(
                        entry, "emails", f"{what}emails[{index}] is not a valid e-mail: {exc}"
                    ) from None
        if "addresses" in table:
            for index, text in enumerate(self.strings(entry, "addresses", table["addresses"]), 1):
                normal = normalise_address(text)
                if not normal:
                    raise self.fail(entry, "addresses", f"{what}addresses[{index}] is empty")
                addresses.add(normal)
        return frozenset(phones), frozenset(emails), frozenset(addresses)

    def name(
        self, entry: _Entry, key: str, value: object
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """A name as written (a string's whitespace-separated names, or a list) and its parts.

        Cached by the string: the same names recur across a registry."""
        if isinstance(value, str):
            found = self.names.get((key, value))
            if found is not None:
                return found
            written = tuple(value.split()) if key == "given" else (value.strip(),)
            parts = names.name_parts(" ".join(written))
            if not parts or not all(written):
                raise self.fail(entry, key, f"{key} must not be empty")
            self.names[(key, value)] = written, parts
            return written, parts
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(
                entry, key, f"{key} must be a string or an array of strings, not {_kind(value)}"
            )
        written = tuple(v.strip() for v in value if v.strip())
        parts = names.name_parts(" ".join(written))
        if not parts or not all(written):
            raise self.fail(entry, key, f"{key} must not be empty")
        return written, parts

    def identity(self, entry: _Entry) -> TestIdentity:
        line, table, _ = entry
        if not _KNOWN.issuperset(table):
            unknown = table.keys() - _KNOWN
            key = min(unknown, key=lambda k: entry[2].get(k, 0))
            raise self.fail(
                entry,
                key,
                f"unknown key {idcode.quote_input(key)} in [[identity]] "
                f"(known: {', '.join(_COLUMNS)})",
            )
        if not table.keys() >= _REQUIRED:
            for key in _COLUMNS:
                if key in _REQUIRED and key not in table:
                    raise self.fail(
                        entry, None, f"[[identity]] is missing the required key {key!r}"
                    )
        raw = table["code"]
        if not isinstance(raw, str):
            raise self.fail(entry, "code", f"code must be a string, not {_kind(raw)}")
        # A code written in its normal form (nearly all) needs no normalising.
        code = raw if idcode.is_test(raw) else idcode.normalise(raw)
        if code is not raw and not idcode.is_test(code):
            kind = idcode.classify(code)
            if kind is idcode.Kind.REAL:
                raise self.fail(
                    entry,
                    "code",
                    f"code {idcode.mask(code)} is a real person's identity code (individual "
                    "number below 900): only Kela-issued 900-series test codes may be registered",
                )
            if kind is idcode.Kind.INVALID:
                raise self.fail(
                    entry,
                    "code",
                    f"code {idcode.mask(code)} is not a valid identity code (format, date or "
                    "check character)",
                )
        first = self.codes.setdefault(code, line)
        if first != line:
            raise self.fail(
                entry, "code", f"duplicate code {code}: registered on line {first} and line {line}"
            )
        given, given_parts = self.name(entry, "given", table["given"])
        family, family_parts = self.name(entry, "family", table["family"])
        pool = _POOLS.get(table["pool"]) if isinstance(table["pool"], str) else None
        if pool is None:
            raise self.fail(entry, "pool", 'pool must be "independent" or "joint"')
        cases = _NO_STRINGS
        if "cases" in table:
            listed = self.strings(entry, "cases", table["cases"])
            listed_key = tuple(listed)
            known = self.cases.get(listed_key)
            if known is None:
                known = frozenset(c.strip() for c in listed if c.strip())
                self.cases[listed_key] = known
            cases = known
        if pool is Pool.JOINT and not cases:
            raise self.fail(
                entry,
                "cases" if "cases" in table else None,
                f"joint-testing code {code} has no test cases: list the cases it was requested "
                'for (cases = ["TC-1"])',
            )
        if pool is Pool.INDEPENDENT and cases:
            raise self.fail(
                entry,
                "cases",
                f"independent-testing code {code} lists test cases: cases are for joint-testing "
                "codes only",
            )
        role = table.get("role")
        if role is not None and (not isinstance(role, str) or role not in _ROLES):
            raise self.fail(entry, "role", f"role must be one of {', '.join(sorted(_ROLES))}")
        terhikki = table.get("terhikki")
        if terhikki is not None:
            if not isinstance(terhikki, str) or not terhikki.strip():
                raise self.fail(
                    entry, "terhikki", f"terhikki must be a non-empty string, not {_kind(terhikki)}"
                )
            terhikki = terhikki.strip()
        phones, emails, addresses = _NO_CONTACTS
        if "phones" in table or "emails" in table or "addresses" in table:
            phones, emails, addresses = self.contacts(entry, table, "")
        return TestIdentity(
            code,
            given,
            family,
            pool,
            cases,
            role,
            terhikki,
            phones,
            emails,
            addresses,
            line,
            given_parts,
            family_parts,
        )


_NO_CONTACTS: tuple[frozenset[str], frozenset[str], frozenset[str]] = (
    _NO_STRINGS,
    _NO_STRINGS,
    _NO_STRINGS,
)


def _build(
    entries: list[_Entry],
    contacts: _Entry | None,
    source: str,
    path: Path | None,
    data: bytes,
) -> Registry:
    """Validate what was read and index it."""
    checker = _Checker(source)
    identities = [checker.identity(entry) for entry in entries]
    shared = _NO_CONTACTS
    if contacts is not None:
        unknown = contacts[1].keys() - _CONTACT_KEYS
        if unknown:
            key = min(unknown, key=lambda k: contacts[2].get(k, 0))
            raise checker.fail(
                contacts,
                key,
                f"unknown key {idcode.quote_input(key)} in [contacts] "
                "(known: phones, emails, addresses)",
            )
        shared = checker.contacts(contacts, contacts[1], "contacts: ")
    return Registry(
        identities,
        phones=shared[0],
        emails=shared[1],
        addresses=shared[2],
        path=path,
        digest="sha256:" + hashlib.sha256(data).hexdigest(),
    )


# -- The fast path -------------------------------------------------------------------------------
#
# A generated registry of 100,000 identities is read without building a table of values and
# lines an entry (the full path's ``_Entry``) and validated without ``_Checker``'s per-key
# bookkeeping: each identity's values go straight from the regular expression's groups (TOML) or
# the CSV row to their checks, each distinct value is converted once (names, pools, cases, roles
# and shared phones recur), and the identity becomes one plain tuple (``_Row``). Anything the fast
# path does not accept as is (a key out of the plain layout, a code in another written form, any
# invalid value) raises ``_NotPlain`` and the full path reads the file from the start: it accepts
# what it accepts and words every error with its line, as before.


class _NotPlain(Exception):
    """The fast path met something it does not take as is: the full path reads the file."""


class _Fast:
    """Validates and indexes identities given as strings, exactly as :class:`_Checker` would
    (``tests/test_registry.py`` holds the two to agreeing); raises :class:`_NotPlain` where it
    would not simply accept.

    ``csv``: the values are CSV cells (stripped, an empty one absent, lists ``;``-separated,
    a given-name cell with a ``;`` a list of names); else TOML values of the plain layout
    (absent is None, lists the text between an array's brackets, names with their quotes or
    brackets: a name may be either).
    """

    def __init__(self, csv: bool) -> None:
        self.csv = csv
        absent = "" if csv else None
        self.by_code: dict[str, _Row] = {}
        self.by_family: dict[str, _Row | list[_Row]] = {}
        self.by_terhikki: dict[str, _Row] = {}
        self.given_parts: set[str] = set()
        self.phones: set[str] = set()
        self.emails: set[str] = set()
        self.addresses: set[str] = set()
        Name = tuple[tuple[str, ...], tuple[str, ...]]
        self.given: dict[str | None, Name] = {}
        self.family: dict[str | None, Name] = {}
        self.pools: dict[str | None, str] = {}
        self.cases: dict[str | None, tuple[str, ...]] = {absent: ()}
        self.roles: dict[str | None, str | None] = {absent: None}
        self.phone_lists: dict[str | None, tuple[str, ...]] = {absent: ()}
        self.email_lists: dict[str | None, tuple[str, ...]] = {absent: ()}
        self.address_lists: dict[str | None, tuple[str, ...]] = {absent: ()}

    def add(
        self,
        line: int,
        code: str | None,
        given: str | None,
        family: str | None,
        pool: str | None,
        cases: str | None,
        role: str | None,
        terhikki: str | None,
        phones: str | None,
        emails: str | None,
        addresses: str | None,
        _rest: object = None,
    ) -> None:
        """One identity: its line and its values (for TOML the groups of ``_BLOCK``)."""
        if code is None:
            raise _NotPlain
        if self.csv:
            code = code.strip()
        # A code in its normal form only (a generator writes it so): any other goes to the
        # full path, which normalises it or words why it is refused.
        if not idcode.is_test(code):
            raise _NotPlain
        try:
            written_given, given_parts = self.given[given]
        except KeyError:
            written_given, given_parts = self._given(given)
        try:
            written_family, family_parts = self.family[family]
        except KeyError:
            written_family, family_parts = self._family(family)
        try:
            pool_value = self.pools[pool]
        except KeyError:
            pool_value = self._pool(pool)
        try:
            listed = self.cases[cases]
        except KeyError:
            listed = self._cases(cases)
        if (pool_value == "joint") is not bool(listed):
            raise _NotPlain  # a joint code without cases, an independent one with
        try:
            role_value = self.roles[role]
        except KeyError:
            role_value = self._role(role)
        if terhikki is not None:
            terhikki = terhikki.strip()
            if not terhikki:
                if not self.csv:
                    raise _NotPlain
                terhikki = None
        try:
            phone_list = self.phone_lists[phones]
        except KeyError:
            phone_list = self._phones(phones)
        try:
            email_list = self.email_lists[emails]
        except KeyError:
            email_list = self._emails(emails)
        try:
            address_list = self.address_lists[addresses]
        except KeyError:
            address_list = self._addresses(addresses)
        row: _Row = (
            code,
            written_given,
            written_family,
            pool_value,
            listed,
            role_value,
            terhikki,
            phone_list,
            email_list,
            address_list,
            line,
            given_parts,
            family_parts,
        )
        if self.by_code.setdefault(code, row) is not row:
            raise _NotPlain  # a duplicate code
        if terhikki:
            self.by_terhikki[terhikki] = row
        if len(family_parts) != 1:
            _index(self.by_family, row)
            return
        # (_index inlined for the usual one-part family name.)
        part = family_parts[0]
        bucket = self.by_family.get(part)
        if bucket is None:
            self.by_family[part] = row
        elif type(bucket) is list:
            bucket.append(row)
        else:
            self.by_family[part] = [bucket, row]  # type: ignore[list-item]

    def shared(self, phones: str | None, emails: str | None, addresses: str | None) -> None:
        """Test contact details any identity may use (``[contacts]``, a CSV contacts row)."""
        for raw, cache, convert in (
            (phones, self.phone_lists, self._phones),
            (emails, self.email_lists, self._emails),
            (addresses, self.address_lists, self._addresses),
        ):
            if raw not in cache:
                convert(raw)

    def registry(self, path: Path | None, data: bytes) -> Registry:
        registry = Registry.__new__(Registry)
        registry._set(
            self.by_code,
            self.by_family,
            self.by_terhikki,
            self.given_parts,
            self.phones,
            self.emails,
            self.addresses,
        )
        registry.path = path
        registry.digest = "sha256:" + hashlib.sha256(data).hexdigest()
        return registry

    # Conversions of a value not met before (each remembered under its text).

    def _list(self, raw: str | None) -> list[str]:
        """A list value's strings (an absent one is cached before this is asked)."""
        if raw is None:
            raise _NotPlain
        if not self.csv:
            return raw.split('"')[1::2]  # the canonical array: '"a", "b"'
        return [item for part in raw.split(";") if (item := part.strip())]

    def _given(self, raw: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if raw is None:
            raise _NotPlain
        if self.csv:
            items = self._list(raw) if ";" in raw else [raw.strip()]
            # (A cell of one name reads as a string: its names split on whitespace.)
            written = tuple(items) if len(items) > 1 else tuple("".join(items).split())
        elif raw[0] == "[":  # an array of names (the TOML value with its delimiters)
            written = tuple(v.strip() for v in raw.split('"')[1::2] if v.strip())
        else:
            written = tuple(raw[1:-1].split())
        parts = names.name_parts(" ".join(written))
        if not parts:
            raise _NotPlain
        self.given_parts.update(parts)
        self.given[raw] = written, parts
        return written, parts

    def _family(self, raw: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if raw is None:
            raise _NotPlain
        written: tuple[str, ...]
        if self.csv:
            written = (raw.strip(),)
        elif raw[0] == "[":
            written = tuple(v.strip() for v in raw.split('"')[1::2] if v.strip())
        else:
            written = (raw[1:-1].strip(),)
        parts = names.name_parts(" ".join(written))
        if not parts or not all(written):
            raise _NotPlain
        self.family[raw] = written, parts
        return written, parts

    def _pool(self, raw: str | None) -> str:
        value = raw.strip() if self.csv and raw is not None else raw
        if value not in _POOLS or value is None:
            raise _NotPlain
        self.pools[raw] = value
        return value

    def _cases(self, raw: str | None) -> tuple[str, ...]:
        listed = tuple(sorted({c.strip() for c in self._list(raw) if c.strip()}))
        self.cases[raw] = listed
        return listed

    def _role(self, raw: str | None) -> str | None:
        value = raw.strip() or None if self.csv and raw is not None else raw
        if value is not None and value not in _ROLES:
            raise _NotPlain
        self.roles[raw] = value
        return value

    def _phones(self, raw: str | None) -> tuple[str, ...]:
        found: list[str] = []
        for text in self._list(raw):
            e164 = _phone(text)
            if e164 is None:
                raise _NotPlain
            found.append(e164)
        self.phones.update(found)
        self.phone_lists[raw] = value = tuple(sorted(set(found)))
        return value

    def _emails(self, raw: str | None) -> tuple[str, ...]:
        try:
            found = [_email(text.strip()) for text in self._list(raw)]
        except ValueError:
            raise _NotPlain from None
        self.emails.update(found)
        self.email_lists[raw] = value = tuple(sorted(set(found)))
        return value

    def _addresses(self, raw: str | None) -> tuple[str, ...]:
        found = [normalise_address(text) for text in self._list(raw)]
        if not all(found):
            raise _NotPlain
        self.addresses.update(found)
        self.address_lists[raw] = value = tuple(sorted(set(found)))
        return value


# The plain layout a generator writes: ``key = "value"`` and ``key = ["a", "b"]`` lines (basic
# strings without escapes), a comment after a value or a header allowed, blank and comment lines
# between tables. No control character but tab and newline anywhere (what TOML forbids in
# strings and comments: the patterns cover the whole text, so none is left unchecked).
_CHAR = r"[^\"\\\x00-\x08\x0a-\x1f\x7f]"  # a character of a basic string without escapes
_S = rf'"({_CHAR}*+)"'
_A = rf'\[((?:"{_CHAR}*+"(?:, "{_CHAR}*+")*+)?)\]'
_END = r"[ \t]*+(?:#[^\x00-\x08\x0a-\x1f\x7f]*+)?\n"
#: A name: a string or an array of strings, with its delimiters (the two read differently).
_V = rf'("{_CHAR}*+"|\[(?:"{_CHAR}*+"(?:, "{_CHAR}*+")*+)?\])'
_FILLER = rf"((?:{_END})*+)"
#: One ``[[identity]]`` table: its keys in any order (a key given twice is caught by counting
#: the lines against the groups), then blank and comment lines. Groups: the ten keys in
#: ``_COLUMNS`` order, then the filler.
_BLOCK = re.compile(
    rf"\[\[identity\]\]{_END}"
    rf"(?:(?:code = {_S}|given = {_V}|family = {_V}|pool = {_S}|cases = {_A}|role = {_S}"
    rf"|terhikki = {_S}|phones = {_A}|emails = {_A}|addresses = {_A}){_END})*+"
    rf"{_FILLER}"
)
#: What comes before the first identity: blank and comment lines, a ``[contacts]`` table.
_HEAD = re.compile(
    rf"{_FILLER}(?:\[contacts\]{_END}"
    rf"(?:(?:phones = {_A}|emails = {_A}|addresses = {_A}){_END})*+{_FILLER})?"
)


def _fast_toml(text: str) -> _Fast:
    """A TOML registry in the plain layout, validated; :class:`_NotPlain` if it is not one."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")  # (a lone CR is a control character: refused)
    if text and not text.endswith("\n"):
        text += "\n"
    fast = _Fast(csv=False)
    count = text.count
    head = _HEAD.match(text)
    assert head is not None  # (every group may be empty)
    if head.start(5) >= 0:  # [contacts]: a key line a value, no key twice
        phones, emails, addresses = head.group(2, 3, 4)
        if count("\n", head.end(1), head.start(5)) != 4 - (phones, emails, addresses).count(None):
            raise _NotPlain
        fast.shared(phones, emails, addresses)
    pos = head.end()
    line = 1 + count("\n", 0, pos)
    add = fast.add
    for match in _BLOCK.finditer(text, pos):
        start, rest = match.start(), match.start(11)
        if start != pos:
            raise _NotPlain
        groups = match.groups()
        keys = count("\n", start, rest)
        if keys != 11 - groups.count(None):  # the header, then a line a key
            raise _NotPlain
        add(line, *groups)
        pos = match.end()
        line += keys + count("\n", rest, pos)
    if pos != len(text):
        raise _NotPlain
    return fast


def _fast_csv(text: str) -> _Fast:
    """A CSV registry, validated; :class:`_NotPlain` at anything the full path must word."""
    reader = csv.reader(io.StringIO(text, newline=""))
    fast = _Fast(csv=True)
    try:
        header = next(reader, None)
        if header is None:
            raise _NotPlain
        columns = [name.strip().lower() for name in header]
        width = len(columns)
        if len(set(columns)) != width or not _KNOWN >= set(columns) >= _REQUIRED:
            raise _NotPlain
        # Each row padded to one cell past its columns (an empty one), the values picked in
        # _COLUMNS order, an absent column the empty cell.
        pick = operator.itemgetter(*(columns.index(k) if k in columns else width for k in _COLUMNS))
        pads = [[""] * (width + 1 - n) for n in range(width + 1)]
        add, shared = fast.add, fast.shared
        line = reader.line_num + 1
        for row in reader:
            start, line = line, reader.line_num + 1
            if len(row) > width:
                raise _NotPlain
            row += pads[len(row)]
            cells = pick(row)
            if cells[0] or cells[1] or cells[2] or cells[3] or cells[4] or cells[5] or cells[6]:
                add(start, *cells)
            else:  # a blank row, or a row of shared contact details
                shared(*cells[7:])
    except csv.Error:
        raise _NotPlain from None
    return fast


def parse_registry(text: str, source: str = "<registry>") -> Registry:
    """A registry from TOML text; :class:`RegistryError` naming ``source`` and the line on any
    problem."""
    text = text.removeprefix("\ufeff")
    with _no_gc():
        try:
            return _fast_toml(text).registry(None, text.encode("utf-8"))
        except _NotPlain:
            pass
        read = _read_plain(text) or _read_toml(text, source)
        return _build(*read, source, None, text.encode("utf-8"))


def parse_registry_csv(text: str, source: str = "<registry>") -> Registry:
    """A registry from CSV text (the format in the module docstring)."""
    text = text.removeprefix("\ufeff")
    with _no_gc():
        try:
            return _fast_csv(text).registry(None, text.encode("utf-8"))
        except _NotPlain:
            pass
        return _build(*_read_csv(text, source), source, None, text.encode("utf-8"))


def load_registry(path: str | Path) -> Registry:
    """Read a registry file: TOML (``.toml``) or CSV (``.csv``), UTF-8 (a byte order mark is
    allowed). :class:`RegistryError` on any problem, naming the file and line."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".csv"):
        raise RegistryError(f"{path}: a registry is a .toml or a .csv file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"cannot read registry file {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path}: not UTF-8 (byte {exc.start})") from None
    source = str(path)
    with _no_gc():
        try:
            return (_fast_csv if suffix == ".csv" else _fast_toml)(text).registry(path, data)
        except _NotPlain:
            pass
        if suffix == ".csv":
            read = _read_csv(text, source)
        else:
            read = _read_plain(text) or _read_toml(text, source)
        return _build(*read, source, path, data)


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while a registry loads: it would walk the millions
    of young objects a load creates (none of them in a cycle) again and again, a third of the
    load's time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
