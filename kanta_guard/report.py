"""A test campaign's blocked-request log summed up: by verdict, rule, role, host, day, location and
repeated value, for the terminal, a self-contained HTML page or JSON.

Pure: log files in (JSON Lines as :mod:`kanta_guard.eventlog` writes them, rotated backups and
gzip-compressed copies included), a :class:`Summary` out, and renderers from a summary to text
(:func:`render_text`) and HTML (:func:`render_html`). A log may be gigabytes: it is read once,
line by line, and only counters are kept (one per distinct rule, role, host, day, location and
keyed hash); a table's top rows are picked with a heap, not a sort of every key.

Tolerant but honest: a line that is not JSON, not an object or not a record the guard writes is
counted as unreadable (its file and line number kept, the first :data:`UNREADABLE_KEPT` of them)
and never stops the report. Records are masked when written; every string read from the log is
masked again (:func:`~kanta_guard.idcode.mask_any_form`: a hand-edited or older log, a code in an
escaped form) and keyed hashes are kept only in the guard's own form. Renderers escape control
and format characters (a host holding a terminal escape sequence or a bidi override), and HTML
escapes everything it shows.
"""

from __future__ import annotations

import dataclasses
import gzip
import heapq
import html
import io
import json
import os
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import KantaGuardError
from .idcode import mask_any_form

__all__ = [
    "MAX_LINE_BYTES",
    "UNREADABLE_KEPT",
    "FileRead",
    "Location",
    "LogReadError",
    "Repeat",
    "Row",
    "Summary",
    "Table",
    "Unreadable",
    "headline",
    "log_files",
    "reading_line",
    "render_html",
    "render_text",
    "summarise",
]

#: A longer line is unreadable (a record holds at most ``MAX_FINDINGS`` findings: a few kB), and
#: reading stops at this many bytes of it, so memory stays bounded whatever the file holds.
MAX_LINE_BYTES = 4 * 2**20
#: How many unreadable lines are listed (file and line); all of them are counted.
UNREADABLE_KEPT = 20
#: Terminal tables fit this many columns.
WIDTH = 100

_VERDICTS = ("block", "warn", "pass")
_HASH = re.compile(r"hmac:[0-9a-f]{16}")
_GZIP_MAGIC = b"\x1f\x8b"


class LogReadError(KantaGuardError, OSError):
    """A log file is missing or cannot be read; the message names it (masked) and says why."""


# -- the summary ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a table: a rule, role, host or day, the requests it appears in (by verdict)
    and its findings."""

    key: str
    requests: int
    blocked: int
    warned: int
    findings: int


@dataclass(frozen=True, slots=True)
class Table:
    """The top rows of a table and how many distinct keys it had in all."""

    rows: tuple[Row, ...]
    total: int


@dataclass(frozen=True, slots=True)
class Location:
    """Where a rule fired (an XPath, a JSON pointer, a header): findings and requests there."""

    rule: str
    location: str
    findings: int
    requests: int


@dataclass(frozen=True, slots=True)
class Repeat:
    """A value (known by its keyed hash) found in more than one request: the same person's code
    sent again and again. ``evidence`` is the masked form first seen; times are UTC."""

    value_hash: str
    evidence: str
    rules: tuple[str, ...]
    findings: int
    requests: int
    first: str
    last: str


@dataclass(frozen=True, slots=True)
class FileRead:
    """One file read: its non-blank lines, the request and event records among them, the rest."""

    path: str
    lines: int
    requests: int
    events: int
    unreadable: int
    compressed: bool


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A line that is not a record: where it is and why (never what it holds)."""

    path: str
    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class Summary:
    """What a log says about a test campaign. Tables hold their top rows (``top``; 0: all).

    ``requests`` counts request records (blocked, warned, and passed ones should a log hold
    any); ``events`` the guard's other records by kind (``policy``, ``registry``,
    ``log-recovered``). ``findings_omitted`` sums what records counted past their findings
    cap: findings tables do not include those. ``repeated`` lists keyed hashes found in two
    requests or more (``repeated_total`` of them). ``first``/``last`` are the earliest and latest
    record times (ISO 8601, UTC). ``days`` holds every day with a request, in order.
    """

    files: tuple[FileRead, ...]
    top: int
    requests: int
    blocked: int
    warned: int
    passed: int
    findings: int
    findings_omitted: int
    events: tuple[tuple[str, int], ...]
    rules: Table
    roles: Table
    hosts: Table
    days: tuple[Row, ...]
    locations: tuple[Location, ...]
    locations_total: int
    repeated: tuple[Repeat, ...]
    repeated_total: int
    first: str | None
    last: str | None
    unreadable: int
    unreadable_lines: tuple[Unreadable, ...]

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values (``--format json``)."""
        return dataclasses.asdict(self)


# -- finding the files ----------------------------------------------------------------------------


def log_files(paths: Iterable[Path], *, rotated: bool = True) -> tuple[Path, ...]:
    """The files to read for ``paths``: each with, when ``rotated``, its backups (``LOG.N`` …
    ``LOG.1``, oldest first, each possibly ``.gz``) before it, as :class:`EventLog` rotates them.
    A file named twice (or reached twice, through a link or as a backup also named) is read once.

    Raises :class:`LogReadError` for a path that does not exist or is not a file, before
    anything is read.
    """
    seen: set[tuple[int, int]] = set()
    found: list[Path] = []
    for path in paths:
        for candidate in (*(_backups(path) if rotated else ()), path):
            try:
                stat = candidate.stat()
            except OSError as exc:
                raise LogReadError(_cannot(candidate, exc)) from None
            if not os.path.isfile(candidate):
                raise LogReadError(f"cannot read {_shown_path(candidate)}: not a file")
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                found.append(candidate)
    return tuple(found)


def _backups(path: Path) -> list[Path]:
    """``path``'s rotated backups, oldest (highest number) first; none when ``path`` is none."""
    if not path.is_file():
        return []  # the caller reports the file itself
    pattern = re.compile(rf"{re.escape(path.name)}\.([0-9]{{1,6}})(\.gz)?")
    numbered: list[tuple[int, str]] = []
    try:
        with os.scandir(path.parent) as entries:
            for entry in entries:
                match = pattern.fullmatch(entry.name)
                if match and entry.is_file():
                    numbered.append((int(match.group(1)), entry.name))
    except OSError as exc:
        raise LogReadError(_cannot(path.parent, exc)) from None
    # As many as a policy keeps (``[log] backups``, a handful): sorting them is not a step
    # over the log's size.
    return [path.with_name(name) for _, name in sorted(numbered, reverse=True)]


def _cannot(path: Path, exc: OSError) -> str:
    return f"cannot read {_shown_path(path)}: {exc.strerror or type(exc).__name__}"


def _shown_path(path: Path | str) -> str:
    return _mask(str(path))


# -- reading and counting -------------------------------------------------------------------------


class _Count:
    """A mutable row while reading: requests are counted once per record (``_last``)."""

    __slots__ = ("_last", "blocked", "findings", "requests", "warned")

    def __init__(self) -> None:
        self.requests = self.blocked = self.warned = self.findings = 0
        self._last = -1

    def request(self, number: int, verdict: str) -> None:
        if self._last == number:
            return
        self._last = number
        self.requests += 1
        if verdict == "block":
            self.blocked += 1
        elif verdict == "warn":
            self.warned += 1

    def row(self, key: str) -> Row:
        return Row(key, self.requests, self.blocked, self.warned, self.findings)


class _Value(_Count):
    """A keyed hash while reading: also its first evidence, its rules and when it was seen."""

    __slots__ = ("evidence", "first", "last", "rules")

    def __init__(self, evidence: str, time: datetime) -> None:
        super().__init__()
        self.evidence = evidence
        self.rules: dict[str, None] = {}
        self.first = self.last = time


@dataclass(frozen=True, slots=True)
class _Finding:
    rule: str
    role: str
    location: str
    evidence: str
    value_hash: str


class _Tally:
    """Everything counted so far, over all files."""

    def __init__(self) -> None:
        self.requests = self.blocked = self.warned = self.passed = 0
        self.findings = self.findings_omitted = 0
        self.events: dict[str, int] = {}
        self.rules: dict[str, _Count] = {}
        self.roles: dict[str, _Count] = {}
        self.hosts: dict[str, _Count] = {}
        self.days: dict[str, _Count] = {}
        self.locations: dict[tuple[str, str], _Count] = {}
        self.values: dict[str, _Value] = {}
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.unreadable = 0
        self.unreadable_lines: list[Unreadable] = []

    def bad(self, path: str, line: int, reason: str) -> None:
        self.unreadable += 1
        if len(self.unreadable_lines) < UNREADABLE_KEPT:
            self.unreadable_lines.append(Unreadable(path, line, reason))

    def when(self, time: datetime) -> None:
        if self.first is None or time < self.first:
            self.first = time
        if self.last is None or time > self.last:
            self.last = time

    def event(self, kind: str, time: datetime) -> None:
        self.when(time)
        self.events[kind] = self.events.get(kind, 0) + 1

    def request(
        self,
        time: datetime,
        verdict: str,
        host: str,
        rules: list[str],
        findings: list[_Finding],
        omitted: int,
    ) -> None:
        self.when(time)
        number = self.requests
        self.requests += 1
        if verdict == "block":
            self.blocked += 1
        elif verdict == "warn":
            self.warned += 1
        else:
            self.passed += 1
        self.findings += len(findings)
        self.findings_omitted += omitted
        day = _bucket(self.days, time.date().isoformat())
        day.request(number, verdict)
        day.findings += len(findings)
        where = _bucket(self.hosts, host)
        where.request(number, verdict)
        where.findings += len(findings)
        for rule in rules:
            _bucket(self.rules, rule).request(number, verdict)
        for finding in findings:
            for count in (
                _bucket(self.rules, finding.rule),
                _bucket(self.roles, finding.role),
                _bucket(self.locations, (finding.rule, finding.location)),
            ):
                count.request(number, verdict)
                count.findings += 1
            if finding.value_hash:
                value = self.values.get(finding.value_hash)
                if value is None:
                    value = self.values[finding.value_hash] = _Value(finding.evidence, time)
                value.request(number, verdict)
                value.findings += 1
                value.rules[finding.rule] = None
                value.first, value.last = min(value.first, time), max(value.last, time)


def _bucket[K](table: dict[K, _Count], key: K) -> _Count:
    count = table.get(key)
    if count is None:
        count = table[key] = _Count()
    return count


def summarise(paths: Iterable[Path], *, rotated: bool = True, top: int = 10) -> Summary:
    """Read the logs at ``paths`` (with their rotated backups when ``rotated``: see
    :func:`log_files`) and sum them up; tables keep their ``top`` rows (0: every row).

    Raises :class:`LogReadError` when a file is missing or cannot be read (nothing is summed up
    from a partial set of files); unreadable lines inside a file are counted, not raised.
    A log rotated while it is read may have a record counted twice or not at all.
    """
    if top < 0:
        raise ValueError("top must be 0 or more")
    files = log_files(paths, rotated=rotated)
    tally = _Tally()
    read: list[FileRead] = []
    for path in files:
        read.append(_read_file(path, tally))
    return _summary(tally, tuple(read), top)


def _read_file(path: Path, tally: _Tally) -> FileRead:
    """Count one file's lines into ``tally`` (gzip undone when its first bytes say so)."""
    shown = _shown_path(path)
    lines = requests = events = 0
    before = tally.unreadable
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw) if compressed else raw
            number = 0
            try:
                for number, line in _lines(stream):
                    if line is None:
                        lines += 1
                        tally.bad(shown, number, f"longer than {MAX_LINE_BYTES} bytes")
                        continue
                    if not line.strip():
                        continue
                    lines += 1
                    kind = _take(line, tally, shown, number)
                    if kind == "request":
                        requests += 1
                    elif kind == "event":
                        events += 1
            except (EOFError, gzip.BadGzipFile, zlib.error):
                # A compressed backup cut short or damaged: what was read counts, the rest is
                # one unreadable stretch.
                tally.bad(shown, number + 1, "compressed data damaged; the rest of it unread")
    except OSError as exc:
        raise LogReadError(_cannot(path, exc)) from None
    unreadable = tally.unreadable - before
    return FileRead(shown, lines, requests, events, unreadable, compressed)


def _lines(stream: io.BufferedIOBase) -> Iterator[tuple[int, bytes | None]]:
    """Numbered lines split on ``\\n`` alone (as :func:`eventlog.read_records`); None for one
    longer than :data:`MAX_LINE_BYTES`, whose rest is skipped without being kept."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = stream.readline(MAX_LINE_BYTES)
            yield number, None
        else:
            yield number, line


def _take(line: bytes, tally: _Tally, path: str, number: int) -> str | None:
    """Count one line; ``request``, ``event`` or None (unreadable, counted as such)."""
    try:
        value: object = json.loads(line)
    except UnicodeDecodeError:
        tally.bad(path, number, "not UTF-8")
        return None
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than json allows
        tally.bad(path, number, "not JSON")
        return None
    if not isinstance(value, dict):
        tally.bad(path, number, "not a JSON object")
        return None
    time = _time(value.get("time"))
    if time is None:
        tally.bad(path, number, "not a record: no time in ISO 8601")
        return None
    if "event" in value:
        kind = value["event"]
        if not isinstance(kind, str) or not kind:
            tally.bad(path, number, "not a record: event is not a name")
            return None
        tally.event(_mask(kind), time)
        return "event"
    parsed = _request(value)
    if isinstance(parsed, str):
        tally.bad(path, number, f"not a record: {parsed}")
        return None
    verdict, host, rules, findings, omitted = parsed
    tally.request(time, verdict, host, rules, findings, omitted)
    return "request"


def _time(value: object) -> datetime | None:
    """A record's time (``2026-03-01T09:30:00.000Z``) in UTC; None if it is none."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        time = datetime.fromisoformat(value)
    except ValueError:
        return None
    if time.tzinfo is None:
        return time.replace(tzinfo=UTC)
    return time.astimezone(UTC)


_Request = tuple[str, str, list[str], list[_Finding], int]


def _request(value: dict[str, Any]) -> _Request | str:
    """A request record's counted parts, or why it is not one."""
    verdict = value.get("verdict")
    if verdict not in _VERDICTS:
        return "no verdict (block, warn, pass) and no event"
    host = value.get("host", "")
    if not isinstance(host, str):
        return "host is not a string"
    rules = value.get("rules", [])
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        return "rules is not a list of names"
    raw_findings = value.get("findings", [])
    if not isinstance(raw_findings, list):
        return "findings is not a list"
    findings: list[_Finding] = []
    for raw in raw_findings:
        finding = _finding(raw)
        if finding is None:
            return "a finding is not an object of strings with a rule"
        findings.append(finding)
    omitted = value.get("findings_omitted", 0)
    if isinstance(omitted, bool) or not isinstance(omitted, int) or omitted < 0:
        return "findings_omitted is not a count"
    # The rules of the record and of its findings, once each (a record lists them already;
    # one written by hand might not).
    named = dict.fromkeys(_mask(r) for r in rules)
    named.update(dict.fromkeys(f.rule for f in findings))
    return str(verdict), _mask(host) or "(none)", list(named), findings, omitted


def _finding(raw: object) -> _Finding | None:
    if not isinstance(raw, dict):
        return None
    parts = [raw.get(key, "") for key in ("rule", "role", "location", "evidence", "value_hash")]
    if not all(isinstance(part, str) for part in parts) or not parts[0]:
        return None
    rule, role, location, evidence, value_hash = parts
    # A keyed hash is kept only in the guard's own form: anything else might be a value.
    value_hash = value_hash if _HASH.fullmatch(value_hash) else ""
    return _Finding(
        _mask(rule), _mask(role) or "unknown", _mask(location), _mask(evidence), value_hash
    )


@lru_cache(maxsize=4096)
def _mask(text: str) -> str:
    """A string from the log masked in every form. Rules, roles, hosts and locations repeat
    from record to record: a bounded cache spares masking them again."""
    return mask_any_form(text)


def _summary(tally: _Tally, files: tuple[FileRead, ...], top: int) -> Summary:
    def table(counts: dict[str, _Count]) -> Table:
        best = _top(counts.items(), top, lambda kv: (-kv[1].requests, -kv[1].findings, kv[0]))
        return Table(tuple(count.row(key) for key, count in best), len(counts))

    locations = _top(
        tally.locations.items(),
        top,
        lambda kv: (-kv[1].findings, -kv[1].requests, kv[0]),
    )
    repeated = [(h, v) for h, v in tally.values.items() if v.requests > 1]
    best_values = _top(repeated, top, lambda kv: (-kv[1].requests, -kv[1].findings, kv[0]))
    return Summary(
        files=files,
        top=top,
        requests=tally.requests,
        blocked=tally.blocked,
        warned=tally.warned,
        passed=tally.passed,
        findings=tally.findings,
        findings_omitted=tally.findings_omitted,
        # Event kinds are the guard's own few names.
        events=tuple(sorted(tally.events.items())),
        rules=table(tally.rules),
        roles=table(tally.roles),
        hosts=table(tally.hosts),
        # One row a day: a campaign's calendar, not the log's size, bounds the sort.
        days=tuple(count.row(day) for day, count in sorted(tally.days.items())),
        locations=tuple(
            Location(rule, location, count.findings, count.requests)
            for (rule, location), count in locations
        ),
        locations_total=len(tally.locations),
        repeated=tuple(
            Repeat(
                value_hash,
                value.evidence,
                tuple(value.rules),
                value.findings,
                value.requests,
                _iso(value.first),
                _iso(value.last),
            )
            for value_hash, value in best_values
        ),
        repeated_total=len(repeated),
        first=None if tally.first is None else _iso(tally.first),
        last=None if tally.last is None else _iso(tally.last),
        unreadable=tally.unreadable,
        unreadable_lines=tuple(tally.unreadable_lines),
    )


def _top[T](items: Iterable[T], top: int, key: Callable[[T], Any]) -> list[T]:
    """The ``top`` smallest by ``key`` (a heap: linear in the items for a fixed ``top``); all of
    them, sorted, for 0."""
    return sorted(items, key=key) if top == 0 else heapq.nsmallest(top, items, key=key)


def _iso(time: datetime) -> str:
    return time.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


# -- showing it -----------------------------------------------------------------------------------


def _shown(text: str) -> str:
    """``text`` with control, format and line-separator characters as ``\\uXXXX``: a terminal
    escape or a bidi override in a log string must not act on the reader's screen."""
    if text.isprintable():
        return text
    return "".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
        for c in text
    )


def _number(value: int) -> str:
    return f"{value:,}"


#: The columns of the files-read table (text and HTML).
_FILE_COLUMNS = ("file", "lines", "requests", "events", "unreadable")


def _file_rows(summary: Summary) -> list[list[str]]:
    """The rows of the files-read table, one per file read."""
    return [
        [
            f.path + (" (gzip)" if f.compressed else ""),
            _number(f.lines),
            _number(f.requests),
            _number(f.events),
            _number(f.unreadable),
        ]
        for f in summary.files
    ]


def _plural(value: int, noun: str) -> str:
    return f"{value:,} {noun}{'s' * (value != 1)}"


def _of(shown: int, total: int) -> str:
    """`` (top 10 of 12)`` when a table shows only some of its rows."""
    return f" (top {shown} of {total:,})" if shown < total else ""


def _range(summary: Summary) -> str:
    if summary.first is None or summary.last is None:
        return "no records"
    return f"{_minute(summary.first)} to {_minute(summary.last)} UTC"


def _minute(iso: str) -> str:
    return iso[:16].replace("T", " ")


def headline(summary: Summary) -> str:
    """One line: how many requests, blocked and warned, over which time."""
    parts = [_plural(summary.requests, "request")]
    if summary.requests:
        parts.append(
            f"{_number(summary.blocked)} blocked, {_number(summary.warned)} warned"
            + (f", {_number(summary.passed)} passed" if summary.passed else "")
        )
    return f"{', '.join(parts)}; {_range(summary)}"


def reading_line(summary: Summary) -> str:
    """One line: files and lines read, and how many lines were unreadable (with the first)."""
    lines = sum(f.lines for f in summary.files)
    events = sum(count for _, count in summary.events)
    text = (
        f"{_plural(len(summary.files), 'file')} read: {_plural(lines, 'line')}, "
        f"{_plural(summary.requests, 'request')}, {_plural(events, 'event')}, "
        f"{_number(summary.unreadable)} unreadable"
    )
    if summary.unreadable_lines:
        first = summary.unreadable_lines[0]
        text += f" (first: {_shown(first.path)}:{first.line}, {first.reason})"
    return text


# -- text -----------------------------------------------------------------------------------------


def _cut(text: str, width: int) -> str:
    """``text`` in ``width`` characters, the middle cut out (``…``): a location's end names the
    field, its start the document."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def _text_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]
) -> list[str]:
    """Aligned columns within :data:`WIDTH` (indented by two): numbers right-aligned, the widest
    text columns cut in the middle until the table fits."""
    cells = [[_shown(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    excess = 2 + sum(widths) + 2 * (len(widths) - 1) - WIDTH
    for column in sorted(
        (i for i in range(len(widths)) if i not in numeric), key=widths.__getitem__, reverse=True
    ):
        if excess <= 0:
            break
        floor = max(len(headers[column]), 10)
        cut = min(excess, widths[column] - floor)
        if cut > 0:
            widths[column] -= cut
            excess -= cut

    def line(values: Sequence[str]) -> str:
        out = [
            _cut(v, w).rjust(w) if i in numeric else _cut(v, w).ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return ("  " + "  ".join(out)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(row) for row in cells)]


def _more(shown: int, total: int, what: str) -> list[str]:
    return [f"  … and {_number(total - shown)} more {what}"] if total > shown else []


def _row_cells(row: Row) -> list[str]:
    return [
        row.key,
        _number(row.requests),
        _number(row.blocked),
        _number(row.warned),
        _number(row.findings),
    ]


_ROW_HEADERS = ("requests", "blocked", "warned", "findings")


def render_text(summary: Summary) -> str:
    """The summary as plain-text tables that fit 100 columns (masked values only)."""
    top = summary.top
    out = [f"kanta-guard report: {headline(summary)}"]
    if summary.findings_omitted:
        out.append(
            f"({_number(summary.findings_omitted)} findings past the records' cap are counted "
            "in the verdicts only)"
        )

    def section(title: str, body: list[str]) -> None:
        out.extend(["", title, *body])

    def rows_of(table: Table, name: str, what: str) -> None:
        title = f"By {name}" + _of(len(table.rows), table.total)
        if not table.rows:
            section(title, ["  none"])
            return
        section(
            title,
            _text_table((name, *_ROW_HEADERS), [_row_cells(r) for r in table.rows], {1, 2, 3, 4})
            + _more(len(table.rows), table.total, what),
        )

    rows_of(summary.rules, "rule", "rules")
    rows_of(summary.roles, "role", "roles")
    rows_of(summary.hosts, "host", "hosts")
    days = summary.days[-top:] if top else summary.days
    section(
        "By day (UTC)"
        + (
            f", the last {len(days)} of {len(summary.days)}"
            if len(days) < len(summary.days)
            else ""
        ),
        _text_table(("day", *_ROW_HEADERS), [_row_cells(r) for r in days], {1, 2, 3, 4})
        if days
        else ["  none"],
    )
    section(
        "Top locations",
        _text_table(
            ("rule", "location", "findings", "requests"),
            [
                [loc.rule, loc.location, _number(loc.findings), _number(loc.requests)]
                for loc in summary.locations
            ],
            {2, 3},
        )
        + _more(len(summary.locations), summary.locations_total, "locations")
        if summary.locations
        else ["  none"],
    )
    section(
        "Repeated values (one keyed hash in several requests)",
        _text_table(
            ("value hash", "evidence", "rules", "requests", "findings", "first", "last"),
            [
                [
                    r.value_hash,
                    r.evidence,
                    ", ".join(r.rules),
                    _number(r.requests),
                    _number(r.findings),
                    r.first[:10],
                    r.last[:10],
                ]
                for r in summary.repeated
            ],
            {3, 4},
        )
        + _more(len(summary.repeated), summary.repeated_total, "repeated values")
        if summary.repeated
        else ["  none"],
    )
    if summary.events:
        section(
            "Events",
            _text_table(("event", "records"), [[k, _number(n)] for k, n in summary.events], {1}),
        )
    section(
        "Files",
        _text_table(
            _FILE_COLUMNS,
            _file_rows(summary),
            {1, 2, 3, 4},
        ),
    )
    if summary.unreadable:
        section(
            f"Unreadable lines: {_number(summary.unreadable)}",
            [f"  {_shown(u.path)}:{u.line}: {u.reason}" for u in summary.unreadable_lines]
            + _more(len(summary.unreadable_lines), summary.unreadable, "unreadable lines"),
        )
    return "\n".join(out) + "\n"


# -- HTML -----------------------------------------------------------------------------------------

_BLOCK_COLOUR = "#b3261e"
_WARN_COLOUR = "#b26a00"
_PASS_COLOUR = "#5f6b7a"

_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d232b;
  margin: 2rem auto; max-width: 64rem; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 2rem 0 .5rem; border-bottom: 1px solid #d5dae0;
  padding-bottom: .2rem; }
p.lead { margin: 0 0 1rem; color: #4a5562; }
.cards { display: flex; flex-wrap: wrap; gap: .75rem; margin: 1rem 0; }
.card { border: 1px solid #d5dae0; border-radius: 6px; padding: .5rem .9rem; min-width: 6.5rem; }
.card b { display: block; font-size: 1.4rem; }
.card.block b { color: #b3261e; } .card.warn b { color: #b26a00; } .card.bad b { color: #8a1c7c; }
table { border-collapse: collapse; min-width: 60%; margin: .25rem 0 .5rem; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #e4e8ec;
  vertical-align: top; }
th { background: #f3f5f7; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: 12.5px; overflow-wrap: anywhere; }
p.more, p.none { color: #4a5562; margin: .25rem 0; }
svg { display: block; max-width: 100%; height: auto; margin: .5rem 0; }
svg text { font: 12px system-ui, sans-serif; fill: #1d232b; }
.legend span { display: inline-block; margin-right: 1rem; }
.legend i { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem;
  vertical-align: -1px; }
footer { margin-top: 2rem; color: #4a5562; font-size: 12px; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  section, table, svg { break-inside: avoid; }
  h2 { break-after: avoid; }
}
"""


def _e(text: str) -> str:
    return html.escape(_shown(text), quote=True)


def _html_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int], code: set[int]
) -> str:
    def cls(i: int) -> str:
        names = [n for n, wanted in (("n", i in numeric), ("code", i in code)) if wanted]
        return f' class="{" ".join(names)}"' if names else ""

    head = "".join(
        f"<th{cls(i) if i in numeric else ''}>{_e(h)}</th>" for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{_e(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _legend() -> str:
    return (
        '<p class="legend">'
        f'<span><i style="background:{_BLOCK_COLOUR}"></i>blocked</span>'
        f'<span><i style="background:{_WARN_COLOUR}"></i>warned</span></p>'
    )


def _bars(rows: Sequence[Row], label: str) -> str:
    """Horizontal bars, one per row, blocked and warned requests stacked, the count beside."""
    if not rows:
        return ""
    width, label_w, gap, row_h = 720, 230, 8, 24
    plot = width - label_w - 70
    most = max(r.requests for r in rows) or 1
    height = row_h * len(rows) + 4
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{_e(label)}">'
        f"<title>{_e(label)}</title>"
    ]
    for i, row in enumerate(rows):
        y = 2 + i * row_h
        other = row.requests - row.blocked - row.warned
        x = float(label_w + gap)
        parts.append(
            f'<text x="{label_w}" y="{y + 16}" text-anchor="end">{_e(_cut(row.key, 34))}</text>'
        )
        for value, colour, name in (
            (row.blocked, _BLOCK_COLOUR, "blocked"),
            (row.warned, _WARN_COLOUR, "warned"),
            (other, _PASS_COLOUR, "passed"),
        ):
            if value <= 0:
                continue
            w = max(1.0, plot * value / most)
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" '
                f'fill="{colour}"><title>{_e(row.key)}: {value} {name}</title></rect>'
            )
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 16}">{_number(row.requests)}</text>')
    parts.append("</svg>")
    return "".join(parts)


#: Days between the first and last day are drawn as empty bars up to this span; a longer one
#: (a stray clock) draws only the days that have requests.
_CALENDAR_DAYS = 1000


def _day_chart(days: Sequence[Row]) -> str:
    """Vertical bars by UTC day, blocked and warned stacked; days without requests as gaps."""
    if not days:
        return ""
    first, last = date.fromisoformat(days[0].key), date.fromisoformat(days[-1].key)
    shown: Sequence[Row] = days
    if (last - first).days < _CALENDAR_DAYS:
        have = {r.key: r for r in days}
        shown = [
            have.get(d, Row(d, 0, 0, 0, 0))
            for d in ((first + timedelta(n)).isoformat() for n in range((last - first).days + 1))
        ]
    width, height, left, bottom, top_pad = 720, 220, 48, 36, 12
    plot_w, plot_h = width - left - 12, height - bottom - top_pad
    most = max(r.requests for r in shown) or 1
    step = plot_w / len(shown)
    bar = min(48.0, max(1.0, step * 0.8))  # one day is a bar, not the whole width
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="Requests by day (UTC)">'
        "<title>Requests by day (UTC)</title>",
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - 12}" y2="{top_pad + plot_h}" '
        'stroke="#8a949e"/>',
        f'<text x="{left - 6}" y="{top_pad + 10}" text-anchor="end">{_number(most)}</text>',
        f'<text x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end">0</text>',
    ]
    every = max(1, -(-len(shown) // 8))  # at most about eight date labels
    for i, row in enumerate(shown):
        x = left + i * step + (step - bar) / 2
        y = float(top_pad + plot_h)
        for value, colour, name in (
            (row.blocked, _BLOCK_COLOUR, "blocked"),
            (row.warned, _WARN_COLOUR, "warned"),
            (row.requests - row.blocked - row.warned, _PASS_COLOUR, "passed"),
        ):
            if value <= 0:
                continue
            h = plot_h * value / most
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{row.key}: {value} {name}</title></rect>'
            )
        if i % every == 0 or i == len(shown) - 1:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{top_pad + plot_h + 16}" '
                f'text-anchor="middle">{row.key[5:]}</text>'
            )
    parts.append(
        f'<text x="{left}" y="{height - 4}">{shown[0].key} to {shown[-1].key}</text></svg>'
    )
    return "".join(parts)


def render_html(summary: Summary) -> str:
    """The summary as one self-contained HTML page: inline CSS and SVG charts, no script and no
    external resource; every value shown is masked and HTML-escaped."""

    def more(shown: int, total: int, what: str) -> str:
        left = total - shown
        return f'<p class="more">… and {_number(left)} more {what}</p>' if left > 0 else ""

    def none() -> str:
        return '<p class="none">none</p>'

    def row_table(table: Table, name: str, what: str) -> str:
        if not table.rows:
            return none()
        return _html_table(
            (name, *_ROW_HEADERS), [_row_cells(r) for r in table.rows], {1, 2, 3, 4}, set()
        ) + more(len(table.rows), table.total, what)

    def title(name: str, table: Table) -> str:
        return f"<h2>{_e(name + _of(len(table.rows), table.total))}</h2>"

    events = sum(n for _, n in summary.events)
    cards = [
        ("", "requests", summary.requests),
        ("block", "blocked", summary.blocked),
        ("warn", "warned", summary.warned),
        ("", "findings", summary.findings),
        ("", "repeated values", summary.repeated_total),
        ("", "events", events),
        ("bad" if summary.unreadable else "", "unreadable lines", summary.unreadable),
    ]
    body = [
        "<h1>kanta-guard report</h1>",
        f'<p class="lead">{_e(headline(summary))}</p>',
        '<div class="cards">'
        + "".join(
            f'<div class="card {cls}" data-count="{_e(name)}"><b>{_number(n)}</b>{_e(name)}</div>'
            for cls, name, n in cards
        )
        + "</div>",
    ]
    if summary.findings_omitted:
        body.append(
            f'<p class="more">{_number(summary.findings_omitted)} findings past the records\' '
            "cap are counted in the verdicts only.</p>"
        )
    body += [
        '<section id="days"><h2>Requests by day (UTC)</h2>',
        _legend() + _day_chart(summary.days) if summary.days else none(),
        "</section>",
        f'<section id="rules">{title("By rule", summary.rules)}',
        _bars(summary.rules.rows, "Requests by rule") if summary.rules.rows else "",
        row_table(summary.rules, "rule", "rules"),
        "</section>",
        f'<section id="roles">{title("By role", summary.roles)}',
        row_table(summary.roles, "role", "roles"),
        "</section>",
        f'<section id="hosts">{title("By host", summary.hosts)}',
        row_table(summary.hosts, "host", "hosts"),
        "</section>",
        '<section id="day-table"><h2>By day (UTC)</h2>',
        _html_table(
            ("day", *_ROW_HEADERS), [_row_cells(r) for r in summary.days], {1, 2, 3, 4}, set()
        )
        if summary.days
        else none(),
        "</section>",
        '<section id="locations"><h2>Top locations</h2>',
        _html_table(
            ("rule", "location", "findings", "requests"),
            [
                [loc.rule, loc.location, _number(loc.findings), _number(loc.requests)]
                for loc in summary.locations
            ],
            {2, 3},
            {1},
        )
        + more(len(summary.locations), summary.locations_total, "locations")
        if summary.locations
        else none(),
        "</section>",
        '<section id="repeated"><h2>Repeated values (one keyed hash in several requests)</h2>',
        _html_table(
            ("value hash", "evidence", "rules", "requests", "findings", "first seen", "last seen"),
            [
                [
                    r.value_hash,
                    r.evidence,
                    ", ".join(r.rules),
                    _number(r.requests),
                    _number(r.findings),
                    _minute(r.first),
                    _minute(r.last),
                ]
                for r in summary.repeated
            ],
            {3, 4},
            {0, 1},
        )
        + more(len(summary.repeated), summary.repeated_total, "repeated values")
        if summary.repeated
        else none(),
        "</section>",
    ]
    if summary.events:
        body += [
            '<section id="events"><h2>Events</h2>',
            _html_table(
                ("event", "records"), [[k, _number(n)] for k, n in summary.events], {1}, set()
            ),
            "</section>",
        ]
    body += [
        '<section id="files"><h2>Files read</h2>',
        _html_table(
            _FILE_COLUMNS,
            _file_rows(summary),
            {1, 2, 3, 4},
            {0},
        ),
        "</section>",
    ]
    if summary.unreadable:
        body += [
            f'<section id="unreadable"><h2>Unreadable lines: {_number(summary.unreadable)}</h2>',
            _html_table(
                ("file", "line", "why"),
                [[u.path, _number(u.line), u.reason] for u in summary.unreadable_lines],
                {1},
                {0},
            )
            + more(len(summary.unreadable_lines), summary.unreadable, "unreadable lines"),
            "</section>",
        ]
    body.append(
        f"<footer>{_e(reading_line(summary))}. Values are masked; a value hash is keyed: "
        "the same value gives the same hash under one key.</footer>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>kanta-guard report</title><style>{_CSS}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
