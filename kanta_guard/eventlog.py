"""The blocked-request log: JSON Lines, one record per blocked or warned request.

A record holds what an operator needs to find the sender and the field (time, flow id, client,
method, host, path, verdict, rules, findings) and nothing readable of the data: findings carry
masked evidence and keyed hashes, and every string is passed through
:func:`~kanta_guard.idcode.mask_text` when the record is made and again when the line is written.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import unquote

from .errors import PolicyError
from .idcode import mask_text
from .model import MAX_FINDINGS, Action, Finding, Report

__all__ = [
    "WITHHELD",
    "EventLog",
    "LogRotationError",
    "host_unmaskable",
    "make_event",
    "make_record",
    "read_records",
]

#: The log and its backups hold client addresses and keyed hashes: owner only.
_FILE_MODE = 0o600


class LogRotationError(OSError):
    """Rotating the log failed; the record was still written, into the current file."""


def make_record(
    report: Report,
    *,
    flow_id: str,
    client: str | None,
    method: str,
    host: str,
    path: str,
    time: datetime | None = None,
) -> dict[str, object]:
    """The log record of one request; ``time`` defaults to now, a naive one is taken as UTC.

    ``client`` is ``ip:port`` (``[ip6]:port``) as the caller formats it. Findings whose action is
    ``off`` are left out, as they are from :attr:`Report.rules`; past ``MAX_FINDINGS`` they are
    counted in ``findings_omitted`` (with ``Report.omitted``), not listed.
    """
    counted = [f for f in report.findings if f.action is not Action.OFF]
    record: dict[str, object] = {
        "time": _utc(time).isoformat(timespec="milliseconds") + "Z",
        "flow_id": mask_text(flow_id),
        "client": None if client is None else mask_text(client),
        "method": mask_text(method),
        "host": _withheld_host(mask_text(host), counted),
        "path": _withheld(_mask_path(path), path, counted),
        "verdict": str(report.verdict),
        "rules": [mask_text(rule) for rule in report.rules],
        "findings": [
            {
                "rule": mask_text(f.rule),
                "action": str(f.action),
                "role": str(f.role),
                "location": mask_text(f.location),
                "evidence": mask_text(f.evidence),
                "value_hash": mask_text(f.value_hash),
                "explanation": mask_text(f.explanation),
            }
            # At most MAX_FINDINGS, however the report was built: a record stays small (the
            # log's rotation size bounds files, not one record).
            for f in counted[:MAX_FINDINGS]
        ],
    }
    omitted = report.omitted + max(0, len(counted) - MAX_FINDINGS)
    if omitted:
        record["findings_omitted"] = omitted
        if report.omitted_partial:
            record["findings_omitted_at_least"] = True  # (a lower bound: counting stopped)
    return record


def make_event(event: str, *, time: datetime | None = None, **fields: object) -> dict[str, object]:
    """A record of something the guard did rather than a request: ``{"event": …, …}``.

    ``policy`` (the active policy at start and at every change: its source and digest),
    ``log-recovered`` (the log could be written again after a failure). String values are masked
    like a request record's (a policy path could hold anything).
    """
    record: dict[str, object] = {
        "time": _utc(time).isoformat(timespec="milliseconds") + "Z",
        "event": event,
    }
    for key, value in fields.items():
        record[key] = mask_text(value) if isinstance(value, str) else value
    return record


def _utc(time: datetime | None) -> datetime:
    """``time`` in UTC, without tzinfo (the caller appends ``Z``)."""
    if time is None:
        time = datetime.now(UTC)
    elif time.tzinfo is None:
        time = time.replace(tzinfo=UTC)
    return time.astimezone(UTC).replace(tzinfo=None)


def _mask_path(path: str) -> str:
    """The request path with identity codes masked, also those hidden by percent-encoding.

    ``mask_text`` alone misses ``identifier=urn%3Aoid%3A1.2.246.21%7C<code>`` (the code follows a
    letter) and ``<code with %2D>``. The raw path is masked first (decoding could glue a code to a
    following letter), then decoded and masked again; when decoding reveals a code, the decoded,
    masked path is logged, otherwise the raw one.
    """
    raw = mask_text(path)
    decoded = unquote(raw, errors="replace")
    masked = mask_text(decoded)
    return raw if masked == decoded else masked


def _withheld_host(host: str, findings: Iterable[Finding]) -> str:
    """The logged host, or ``WITHHELD`` where it holds what masking does not hide."""
    return WITHHELD if host_unmaskable(findings) else host


def host_unmaskable(findings: Iterable[Finding]) -> bool:
    """Whether a finding stood in the request's host (its authority, a Host line) that masking
    does not hide: a name, or a code written encoded (a Base64 or hex label; "!" marks a
    decoding in a location). Then the host is shown nowhere as sent: not in the record, nor
    in a sentence that quotes it."""
    for finding in findings:
        where = finding.location
        in_host = where.startswith("request:authority") or where.lower().startswith("header:host")
        if in_host and (not finding.rule.startswith("hetu.") or "!" in where):
            return True
    return False


#: What stands in a logged path for a part that held a finding masking cannot hide.
WITHHELD = "withheld-by-kanta-guard"
_PATH_SEGMENT = re.compile(r"url:path\[(\d+)\]")


def _withheld(path: str, sent: str, findings: list[Finding]) -> str:
    """The logged path without the parts that held a finding masking does not hide: masking
    hides identity codes only, so the query of a search by name (``?family=…&given=…``), an
    e-mail address in a parameter, a name in a path segment are left out (withheld), as
    mitmweb's redaction withholds them, while the rest of the path still tells the operator
    which request it was. ``sent``: the path as sent, whose segments the locations count
    (``path`` may be its decoded form, where decoding showed a code)."""
    places = [
        f.location
        for f in findings
        if f.location.startswith(("url", "request:"))
        # (A code is masked in the path as written, not where it stood encoded: Base64, hex,
        # a JWT, a compressed layer; "!" marks a decoding in a location.)
        and (not f.rule.startswith("hetu.") or "!" in f.location)
    ]
    if not places:
        return path
    base, mark, query = path.partition("?")
    segments = base.split("/")
    for where in places:
        if where.startswith("url:query"):
            query = WITHHELD
        elif (
            (found := _PATH_SEGMENT.match(where)) is not None
            and int(found[1]) < len(segments)
            and len(segments) == sent.partition("?")[0].count("/") + 1
        ):
            segments[int(found[1])] = WITHHELD
        else:  # the whole target (a JOSE token across it, the request line): nothing of it
            return "/" + WITHHELD
    return "/".join(segments) + (mark + query if mark else "")


class EventLog:
    """Appends records to a JSON Lines file, rotating it by size; safe to share between threads.

    Rotation is like :class:`logging.handlers.RotatingFileHandler` (``path`` → ``path.1`` → … →
    ``path.N``, the oldest dropped) but done here: the logging machinery would route records
    through a global logger registry and report write errors on stderr via ``handleError``, not to
    the caller, and an audit log that silently stops writing is worse than one that fails loudly.
    A rotation happens before a write that would take the file past ``max_bytes``, so no file
    exceeds it unless one record alone does. ``max_bytes=0`` never rotates; ``backups=0`` starts
    the file afresh at rotation.

    The file is opened in append mode (a restart continues it) and every line is flushed, not
    fsynced. Write errors (:class:`OSError`) propagate to the caller; when a rotation fails, the
    record is still written to the current file before :class:`LogRotationError` is raised.
    """

    def __init__(self, path: Path, *, max_bytes: int = 10 * 2**20, backups: int = 5) -> None:
        self.path = Path(path)
        shown = mask_text(str(self.path))
        if max_bytes < 0:
            raise PolicyError(f"event log {shown}: max_bytes must not be negative")
        if backups < 0:
            raise PolicyError(f"event log {shown}: backups must not be negative")
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._closed = False
        # One line naming the path and what is wrong with it: start-up stops on it.
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = (
                "a file of that name is in the way"
                if isinstance(exc, FileExistsError)
                else exc.strerror or type(exc).__name__
            )
            raise PolicyError(
                f"cannot open event log {shown}: cannot make its folder "
                f"{mask_text(str(parent))}: {reason}"
            ) from None
        if self.path.is_dir():
            raise PolicyError(f"cannot open event log {shown}: it is a folder, not a file")
        try:
            self._file: io.BufferedWriter | None = self._open()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise PolicyError(f"cannot open event log {shown}: {reason}") from None

    def write(self, record: Mapping[str, object]) -> None:
        """Append ``record`` as one line of compact JSON (masked once more) and flush it."""
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        # json.dumps escapes every newline, so the line stays one line; a lone surrogate (from
        # surrogateescape-decoded input) cannot be encoded and is replaced.
        line = (mask_text(text) + "\n").encode("utf-8", "replace")
        with self._lock:
            if self._closed:
                raise ValueError(f"event log {mask_text(str(self.path))} is closed")
            if self._file is None:  # a reopen after a rotation failed
                self._file = self._open()
            file = self._file
            error: OSError | None = None
            size = os.fstat(file.fileno()).st_size
            if self.max_bytes and size and size + len(line) > self.max_bytes:
                file.close()
                self._file = None
                try:
                    self._shift()
                except OSError as exc:  # the record still goes in, into the current file
                    error = LogRotationError(exc.errno, exc.strerror)
                file = self._file = self._open()
            file.write(line)
            file.flush()
            if error is not None:
                raise error

    def close(self) -> None:
        """Flush and close the file; later writes raise ValueError. Closing twice is harmless."""
        with self._lock:
            self._closed = True
            if self._file is not None:
                file, self._file = self._file, None
                # The buffer may still hold the line whose write failed (and was reported then):
                # closing retries it. Closing is no write; the failure is already known.
                with contextlib.suppress(OSError):
                    file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _open(self) -> io.BufferedWriter:
        def opener(name: str, flags: int) -> int:
            return os.open(name, flags, _FILE_MODE)

        # Kept open across writes; closed in close() or at rotation.
        return open(self.path, "ab", opener=opener)

    def _backup(self, number: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{number}")

    def _shift(self) -> None:
        """Shift the backups up by one, dropping the oldest (called with the file closed)."""
        if not self.backups:
            self.path.unlink(missing_ok=True)
            return
        for number in range(self.backups - 1, 0, -1):
            if self._backup(number).exists():
                self._backup(number).replace(self._backup(number + 1))
        self.path.replace(self._backup(1))


def read_records(path: Path) -> list[dict[str, object]]:
    """Every record of a log file, in order (the file only, not its backups).

    A line that is not JSON raises ValueError, one that is JSON but not an object TypeError.

    Lines are split on ``\\n`` alone: ``ensure_ascii=False`` leaves U+2028, U+0085 and the like
    unescaped inside strings, and :meth:`str.splitlines` would cut a record there.
    """
    records: list[dict[str, object]] = []
    with Path(path).open("rb") as file:
        for number, raw in enumerate(file, 1):
            if not raw.strip():
                continue
            try:
                value: object = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(value, dict):
                raise TypeError(f"{path}:{number}: not a JSON object")
            records.append(value)
    return records
