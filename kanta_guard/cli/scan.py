"""``kanta-guard scan``: files and folders scanned offline with the proxy's pipeline, for CI."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ..errors import PolicyError
from ..idcode import mask_text
from ..masking import KeyedHasher, load_key
from ..model import Report, Verdict
from ..pipeline import Scanner
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
        "folders with the same pipeline, for CI.",
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
    output = args.format
    counts = dict.fromkeys(_COUNTS, 0)
    results: list[dict[str, object]] = []
    artifacts: list[Artifact] = []
    roots: dict[Path, str] = {}
    cwd = Path.cwd()
    walk = _Walk(args.paths, args.include, args.exclude, args.hidden)
    for entry in walk:
        if entry.root not in roots:
            roots[entry.root] = root_uri(entry.root, cwd)
        error = entry.error
        data = b""
        if not error:
            try:
                data = entry.path.read_bytes()
            except OSError as exc:
                error = exc.strerror or str(exc)
        if error:
            counts["unreadable"] += 1
            results.append({"path": str(entry.path), "error": error})
            artifacts.append(Artifact(entry.relative, roots[entry.root], None, error))
            if output == "text":
                print(f"ERROR  {entry.path}: {error}", file=sys.stderr)
            continue
        content_type = args.content_type or _TYPES.get(entry.path.suffix.lower())
        report = scanner.scan_bytes(data, content_type, args.content_encoding)
        counts[_COUNTED[report.verdict]] += 1
        if output == "sarif":
            # A line of the file only where the bytes are the file's (not decoded first).
            known = args.content_encoding is None and report.findings
            lines = finding_lines(data, report) if known else {}
            artifacts.append(Artifact(entry.relative, roots[entry.root], report, lines=lines))
        elif output == "json":
            results.append({"path": str(entry.path), **report.as_dict()})
        else:
            _print_report(entry.path, report)
    files = sum(counts.values())
    if not files:
        named = " ".join(str(p) for p in args.paths)
        why = (
            f" ({walk.skipped} skipped: hidden, or by --include/--exclude)" if walk.skipped else ""
        )
        print(f"kanta-guard: error: no file to scan in {named}{why}", file=sys.stderr)
        return EXIT_ERROR
    summary = _summary(files, counts)
    if output == "sarif":
        json.dump(sarif_log(artifacts, tool_version=version()), sys.stdout, indent=2)
        sys.stdout.write(os.linesep)
    elif output == "json":
        out = {"files": results, "summary": {"files": files, **counts}}
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write(os.linesep)
    print(summary, file=sys.stdout if output == "text" else sys.stderr)
    # An incomplete scan is not a result: a file that could not be read wins over a block.
    if counts["unreadable"]:
        return EXIT_ERROR
    return EXIT_BLOCK if counts["blocked"] else EXIT_PASS


_COUNTS = ("passed", "warned", "blocked", "unreadable")
_COUNTED = {Verdict.PASS: "passed", Verdict.WARN: "warned", Verdict.BLOCK: "blocked"}


def _summary(files: int, counts: dict[str, int]) -> str:
    """The last line of a scan: how many files, and how each ended."""
    each = ", ".join(f"{counts[name]} {name}" for name in _COUNTS)
    return f"kanta-guard: {files} file{'s' if files != 1 else ''} scanned: {each}"


_SCAN_EPILOG = """\
exit status:
  0  every file passed (warnings included)
  1  a file would be blocked
  2  a usage error, a bad policy or registry, no file to scan (after --include, --exclude and
     the hidden-file rule), or a file or folder that could not be read. 2 wins over 1: a scan
     that could not read everything is incomplete, whatever it blocked (the output and the
     summary still list the blocks).

The last line (stdout for text, stderr for json and sarif) sums up:
  kanta-guard: 12 files scanned: 9 passed, 1 warned, 1 blocked, 1 unreadable
"""


def _print_report(path: Path, report: Report) -> None:
    print(f"{str(report.verdict).upper():<6} {path}")
    for finding in report.findings:
        evidence = f"  {finding.evidence} {finding.value_hash}" if finding.evidence else ""
        print(f"  {finding.action:<5} {finding.rule:<20} {finding.location}{evidence}")
        print(f"        {finding.explanation}")
