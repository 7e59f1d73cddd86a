"""``kanta-guard scan``: files, folders and recorded traffic scanned offline, for CI."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from ..errors import PolicyError
from ..idcode import clip, mask_text
from ..masking import KeyedHasher, load_key
from ..model import Report, Verdict
from ..pipeline import Scanner
from ..recorded import (
    FLOW_SUFFIXES,
    HAR_SUFFIXES,
    Recorded,
    RecordingError,
    flow_sniff_offset,
    read_har,
    shown_url,
)
from ..registry import RegistryError, load_registry
from ..sarif import Artifact, finding_lines, root_uri, sarif_log
from .common import (
    EXIT_BLOCK,
    EXIT_ERROR,
    EXIT_PASS,
    load,
    testing_arguments,
    version,
    with_testing,
)

__all__ = ["add", "run"]

#: Content types assumed from a file's extension; other files are sniffed (by their first bytes
#: for containers, ``decode.sniff``; ``<`` and ``{`` for XML and JSON). A container's bytes
#: win over its extension; brotli (``.br``) has no magic number and is known by its name only.
_TYPES = {
    ".xml": "application/xml",
    ".cda": "application/xml",
    ".json": "application/json",
    ".txt": "text/plain",
    ".zip": "application/zip",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".tar": "application/x-tar",
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".bz2": "application/x-bzip2",
    ".xz": "application/x-xz",
    ".zst": "application/zstd",
    ".br": "application/x-brotli",
    ".pdf": "application/pdf",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".webp": "image/webp",
}


def add(sub: Any) -> None:
    """The ``scan`` subcommand."""
    scan = sub.add_parser(
        "scan",
        help="scan files offline with the same pipeline",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Scan files (a CDA, a SOAP message, a FHIR resource, a saved body) and "
        "folders with the same pipeline, for CI; in recorded traffic (HAR files, mitmproxy flow "
        "files) every request, as the proxy judges it.",
        epilog=_SCAN_EPILOG,
    )
    scan.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or directories")
    scan.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        default="text",
        help="output: text (default), json (one object per file), sarif (SARIF 2.1.0)",
    )
    scan.add_argument(
        "--json",
        dest="format",
        action="store_const",
        const="json",
        help="the same as --format json",
    )
    scan.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="in folders, scan only files whose path under the folder or name matches (repeatable)",
    )
    scan.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="in folders, skip files and folders whose path under the folder or name matches "
        "(repeatable; wins over --include)",
    )
    scan.add_argument(
        "--hidden",
        action="store_true",
        help="in folders, also scan hidden files and folders (names starting with '.', .git too)",
    )
    scan.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress line on a terminal's stderr (it is never drawn when stderr is not one)",
    )
    scan.add_argument("--policy", type=Path, help="policy file (default: embedded policy)")
    scan.add_argument("--content-type", help="content type of every file (default: by extension)")
    scan.add_argument("--content-encoding", help="Content-Encoding of every file (e.g. gzip)")
    testing_arguments(scan, "--mode", "--testing")
    scan.set_defaults(run=run, extra_ok=False)


@dataclass(frozen=True, slots=True)
class _Entry:
    """A file to scan (or a folder that could not be listed: ``error``), with the folder it was
    found in and its path under it (a file named on the command line: its own folder)."""

    path: Path
    root: Path
    relative: str
    error: str = ""


class _Walk:
    """The files to scan under the command line's paths, in a stable order, lazily.

    A file named on the command line is always scanned. In a folder, hidden files and folders
    (a name starting with ``.``: ``.git``, ``.venv``, editor backups) are skipped unless
    ``hidden``; a file is scanned when it matches an ``include`` glob (or there is none) and no
    ``exclude`` glob; an excluded folder is not entered. A glob matches the path under the folder
    given (``/`` separated; ``*`` crosses ``/``, as in :func:`fnmatch.fnmatchcase`) or the
    name alone; a leading ``**/`` also matches at the top. Only regular files are read (a FIFO
    or a device under a folder would block or never end); symbolic links to folders are not
    followed. ``skipped`` counts what the rules left out, for the message when nothing is left.
    """

    def __init__(
        self, paths: Sequence[Path], include: Sequence[str], exclude: Sequence[str], hidden: bool
    ) -> None:
        self.paths = paths
        self.include = [_glob(g) for g in include]
        self.exclude = [_glob(g) for g in exclude]
        self.hidden = hidden
        self.skipped = 0

    def __iter__(self) -> Iterator[_Entry]:
        for path in self.paths:
            if path.is_dir():
                yield from self._folder(path)
            else:
                yield _Entry(path, path.parent, path.name)

    def _folder(self, root: Path) -> Iterator[_Entry]:
        failed: list[OSError] = []
        for folder, dirs, files in os.walk(root, onerror=failed.append):
            yield from self._failures(root, failed)
            under = Path(folder).relative_to(root)
            kept = []
            for name in sorted(dirs):
                if self._keeps(name, (under / name).as_posix(), self.exclude):
                    kept.append(name)
                else:
                    self.skipped += 1
            dirs[:] = kept
            for name in sorted(files):
                relative = (under / name).as_posix()
                if not os.path.isfile(os.path.join(folder, name)):
                    continue
                if self._keeps(name, relative, self.exclude) and (
                    not self.include or _matches(name, relative, self.include)
                ):
                    yield _Entry(Path(folder, name), root, relative)
                else:
                    self.skipped += 1
        yield from self._failures(root, failed)

    def _keeps(self, name: str, relative: str, exclude: Sequence[str]) -> bool:
        if name.startswith(".") and not self.hidden:
            return False
        return not _matches(name, relative, exclude)

    @staticmethod
    def _failures(root: Path, failed: list[OSError]) -> Iterator[_Entry]:
        for exc in failed:
            path = Path(exc.filename) if exc.filename else root
            try:
                relative = path.relative_to(root).as_posix()
            except ValueError:
                relative = path.name
            yield _Entry(path, root, relative, exc.strerror or str(exc))
        failed.clear()


def _glob(pattern: str) -> str:
    """A glob as matched: ``/`` separators, no leading ``./`` nor trailing ``/``."""
    pattern = pattern.replace("\\", "/")
    while pattern.startswith("./"):
        pattern = pattern[2:]
    return pattern.rstrip("/") or pattern


def _matches(name: str, relative: str, globs: Sequence[str]) -> bool:
    for glob in globs:
        if fnmatchcase(relative, glob) or fnmatchcase(name, glob):
            return True
        if glob.startswith("**/") and fnmatchcase(relative, glob[3:]):
            return True
    return False


def run(args: argparse.Namespace, extra: list[str]) -> int:
    policy = load(args.policy)
    try:
        policy = with_testing(policy, args.registry, args.testing, args.case)
        registry = load_registry(policy.registry) if policy.registry is not None else None
        scanner = Scanner(
            policy, KeyedHasher(load_key(policy.log.hash_key_file)), registry=registry
        )
    except (PolicyError, RegistryError) as exc:
        print(f"kanta-guard: error: {mask_text(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    walk = _Walk(args.paths, args.include, args.exclude, args.hidden)
    show = _Progress.on(sys.stderr) if args.progress else None
    scan = _Scan(scanner, args, show)
    try:
        for entry in walk:
            scan.entry(entry)
    finally:
        if show is not None:
            show.close()
    if not scan.total:
        named = " ".join(str(p) for p in args.paths)
        if scan.recordings:
            what = f"no request to scan in the recordings of {named}"
        else:
            skipped = walk.skipped
            why = f" ({skipped} skipped: hidden, or by --include/--exclude)" if skipped else ""
            what = f"no file to scan in {named}{why}"
        print(f"kanta-guard: error: {what}", file=sys.stderr)
        return EXIT_ERROR
    return scan.finish()


_COUNTS = ("passed", "warned", "blocked", "unreadable")
_COUNTED = {Verdict.PASS: "passed", Verdict.WARN: "warned", Verdict.BLOCK: "blocked"}


class _Scan:
    """One ``scan`` run: each file read (a recording: each request of it) and scanned, its
    result printed (text) or kept (json, sarif), and counted."""

    def __init__(self, scanner: Scanner, args: argparse.Namespace, show: _Progress | None):
        self.scanner = scanner
        self.output: str = args.format
        self.content_type: str | None = args.content_type
        self.content_encoding: str | None = args.content_encoding
        self.show = show
        self.counts = dict.fromkeys(_COUNTS, 0)
        self.files = 0  # files and folders looked at (a recording is one)
        self.recordings = 0
        self.requests = 0  # results that are requests of a recording
        self.results: list[dict[str, object]] = []
        self.artifacts: list[Artifact] = []
        self.roots: dict[Path, str] = {}
        self.cwd = Path.cwd()

    def entry(self, entry: _Entry) -> None:
        """Scan one file of the walk (or count a folder that could not be listed)."""
        self.files += 1
        if entry.root not in self.roots:
            self.roots[entry.root] = root_uri(entry.root, self.cwd)
        if entry.error:
            self._failed(entry, entry.error)
            return
        try:
            with entry.path.open("rb") as stream:
                kind = self._kind(entry.path, stream)
                if kind == "file" or not self._recording(entry, kind, stream):
                    stream.seek(0)
                    self._file(entry, stream.read())
        except OSError as exc:
            self._failed(entry, exc.strerror or str(exc))

    def _kind(self, path: Path, stream: BinaryIO) -> str:
        """``har``, ``flows`` or ``file`` by the name, else ``sniffed`` (a flow file by its
        first bytes; not when --content-type says what every file is) or ``file``."""
        suffix = path.suffix.lower()
        if suffix in HAR_SUFFIXES:
            return "har"
        if suffix in FLOW_SUFFIXES:
            return "flows"
        if self.content_type is None:
            offset = flow_sniff_offset(stream.read(16))
            if offset is not None:
                stream.seek(offset)
                if stream.read(1) == b"}":
                    stream.seek(0)
                    return "sniffed"
            stream.seek(0)
        return "file"

    def _file(self, entry: _Entry, data: bytes) -> None:
        content_type = self.content_type or _TYPES.get(entry.path.suffix.lower())
        report = self.scanner.scan_bytes(data, content_type, self.content_encoding)
        lines: dict[str, int] = {}
        if self.output == "sarif" and self.content_encoding is None and report.findings:
            # A line of the file only where the bytes are the file's (not decoded first).
            lines = finding_lines(data, report)
        self._report(entry, report, lines=lines)

    def _recording(self, entry: _Entry, kind: str, stream: BinaryIO) -> bool:
        """Each request of a HAR or flow file, scanned as the live guard scans it; a file that
        turns out not to be one (or is cut short) is one more unreadable result.

        False, with nothing counted, for a file only sniffed as a flow file whose first flow
        does not read: it is scanned as a file instead (a text that happened to start so).
        """
        read = 0
        try:
            if kind == "har":
                requests = read_har(stream.read())
            else:
                # Imported here: mitmproxy takes a second to import, and most scans need none.
                from ..proxy.flowfile import read_flows

                requests = read_flows(stream)
            for recorded in requests:
                read += 1
                self.requests += 1
                if recorded.request is not None:
                    report = self.scanner.scan(recorded.request)
                elif recorded.data is not None:
                    report = self.scanner.scan_bytes(recorded.data)
                else:
                    self._failed(entry, recorded.error, recorded)
                    continue
                self._report(entry, report, recorded=recorded)
        except RecordingError as exc:
            if kind == "sniffed" and not read:
                return False
            self._failed(entry, mask_text(str(exc)))
        self.recordings += 1
        return True

    def _report(
        self,
        entry: _Entry,
        report: Report,
        *,
        recorded: Recorded | None = None,
        lines: dict[str, int] | None = None,
    ) -> None:
        self.counts[_COUNTED[report.verdict]] += 1
        name = _name(entry, recorded)
        if self.output == "sarif":
            request = recorded.name() if recorded else ""
            root = self.roots[entry.root]
            self.artifacts.append(
                Artifact(entry.relative, root, report, lines=lines or {}, request=request)
            )
        elif self.output == "json":
            self.results.append({**_described(entry, recorded), **report.as_dict()})
        else:
            self._print(lambda: _print_report(name, report))
        self._tick()

    def _failed(self, entry: _Entry, error: str, recorded: Recorded | None = None) -> None:
        self.counts["unreadable"] += 1
        self.results.append({**_described(entry, recorded), "error": error})
        request = recorded.name() if recorded else ""
        root = self.roots[entry.root]
        self.artifacts.append(Artifact(entry.relative, root, None, error, request=request))
        if self.output == "text":
            name = _name(entry, recorded)
            self._print(lambda: print(f"ERROR  {name}: {error}", file=sys.stderr))
        self._tick()

    def _print(self, write: Callable[[], None]) -> None:
        """Output, with the progress line (if shown) out of its way."""
        if self.show is not None:
            self.show.clear()
        write()

    def _tick(self) -> None:
        if self.show is not None:
            self.show.update(self.files, self.requests, self.counts["blocked"])

    def finish(self) -> int:
        """The output of json and sarif, the summary line, and the exit status."""
        summary = _summary(self.files, self.counts, self.recordings, self.requests)
        if self.output == "sarif":
            json.dump(sarif_log(self.artifacts, tool_version=version()), sys.stdout, indent=2)
            sys.stdout.write(os.linesep)
        elif self.output == "json":
            totals: dict[str, int] = {"files": self.files}
            if self.recordings:
                totals |= {"recordings": self.recordings, "requests": self.requests}
            out = {"files": self.results, "summary": {**totals, **self.counts}}
            json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
            sys.stdout.write(os.linesep)
        print(summary, file=sys.stdout if self.output == "text" else sys.stderr)
        # An incomplete scan is not a result: a file that could not be read wins over a block.
        if self.counts["unreadable"]:
            return EXIT_ERROR
        return EXIT_BLOCK if self.counts["blocked"] else EXIT_PASS

    @property
    def total(self) -> int:
        """Results so far: files, requests of recordings, and what could not be read."""
        return sum(self.counts.values())


def _name(entry: _Entry, recorded: Recorded | None) -> str:
    """A result's path: the file, or ``FILE#N METHOD URL`` for a request of a recording."""
    return f"{entry.path}{recorded.name()}" if recorded else str(entry.path)


def _described(entry: _Entry, recorded: Recorded | None) -> dict[str, object]:
    """The members naming a result in the json output."""
    if recorded is None:
        return {"path": str(entry.path)}
    return {
        "path": _name(entry, recorded),
        "file": str(entry.path),
        "request": recorded.number,
        "method": clip(recorded.method, 20),
        "url": shown_url(recorded.url),
    }


def _summary(files: int, counts: dict[str, int], recordings: int = 0, requests: int = 0) -> str:
    """The last line of a scan: how many files (recordings, and the requests in them), and how
    each result ended."""
    each = ", ".join(f"{counts[name]} {name}" for name in _COUNTS)
    plural = "s" if files != 1 else ""
    if recordings:
        held = (
            f" ({recordings} recording{'s' if recordings != 1 else ''}, "
            f"{requests} request{'s' if requests != 1 else ''})"
        )
        return f"kanta-guard: {files} file{plural}{held} scanned: {each}"
    return f"kanta-guard: {files} file{plural} scanned: {each}"


class _Progress:
    """A one-line progress indicator on a terminal's stderr, for long runs.

    Drawn only on a terminal (``isatty``; never in a CI log or a pipe) and only once the run
    is long: more than ``FILES`` results, or ``DELAY`` seconds in; redrawn at most every
    ``EVERY`` seconds, after a carriage return, with the rest of the line erased (``ESC [K``);
    erased again before any output and at the end. It counts what it says: files and requests
    looked at, blocked results so far.
    """

    FILES = 25
    DELAY = 1.0
    EVERY = 0.1

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.drawn = 0.0  # when last drawn; 0: not on the screen
        self.updates = 0

    @classmethod
    def on(cls, stream: TextIO) -> _Progress | None:
        """A progress line on ``stream`` if it is a terminal (not a dumb one), else None."""
        try:
            terminal = stream.isatty()
        except (AttributeError, ValueError):
            return None
        if not terminal or os.environ.get("TERM") == "dumb":
            return None
        return cls(stream)

    def update(self, files: int, requests: int, blocked: int) -> None:
        self.updates += 1
        now = time.monotonic()
        if self.updates <= self.FILES and now - self.started < self.DELAY:
            return
        if self.drawn and now - self.drawn < self.EVERY:
            return
        held = f", {requests} request{'s' if requests != 1 else ''}" if requests else ""
        line = f"kanta-guard: {files} file{'s' if files != 1 else ''}{held} scanned, "
        line += f"{blocked} blocked…"
        self.stream.write(f"\r{line}\x1b[K")
        self.stream.flush()
        self.drawn = now

    def clear(self) -> None:
        """Erase the line, if drawn (it comes back at the next update)."""
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = 0.0

    def close(self) -> None:
        self.clear()


_SCAN_EPILOG = """\
recorded traffic:
  A .har file, or a mitmproxy flow file (.flow, .flows, .mitm, or any file starting like one),
  is a recording: each request in it is one result, shown as FILE#N METHOD URL (the URL
  masked). A request the recording did not keep whole (a body omitted or cut short) and a
  recording that is corrupt or cut short are unreadable.

exit status:
  0  every file passed (warnings included)
  1  a file would be blocked
  2  a usage error, a bad policy or registry, no file to scan (after --include, --exclude and
     the hidden-file rule), or a file or folder that could not be read (or a request a
     recording did not keep whole). 2 wins over 1: a scan that could not read everything is
     incomplete, whatever it blocked (the output and the summary still list the blocks).

The last line (stdout for text, stderr for json and sarif) sums up:
  kanta-guard: 12 files scanned: 9 passed, 1 warned, 1 blocked, 1 unreadable
  kanta-guard: 3 files (2 recordings, 57 requests) scanned: 50 passed, 0 warned, 7 blocked, ...
On a terminal, a long run shows a progress line on stderr (--no-progress: none).
"""


def _print_report(name: str, report: Report) -> None:
    print(f"{str(report.verdict).upper():<6} {name}")
    for finding in report.findings:
        evidence = f"  {finding.evidence} {finding.value_hash}" if finding.evidence else ""
        print(f"  {finding.action:<5} {finding.rule:<20} {finding.location}{evidence}")
        print(f"        {finding.explanation}")
