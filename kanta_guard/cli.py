"""The ``kanta-guard`` command line: ``run`` (mitmdump), ``web`` (mitmweb) and ``scan`` (offline).

A thin shell: it parses argv, checks the policy before anything starts (a bad policy stops here
with a message naming the problem), and hands over to mitmproxy or to the pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib import metadata
from pathlib import Path

from .certs import load_anchors
from .errors import PolicyError
from .eventlog import EventLog
from .idcode import mask_text
from .masking import KeyedHasher, load_key
from .model import Report, Verdict
from .pipeline import Scanner
from .policy import Policy, TestingMode, load_policy
from .registry import RegistryError, load_registry
from .sarif import Artifact, finding_lines, root_uri, sarif_log

__all__ = ["guard_settings", "main", "version"]

ROOT = Path(__file__).resolve().parent.parent
CERTS = ROOT / "certs"

EXIT_PASS, EXIT_BLOCK, EXIT_ERROR = 0, 1, 2

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kanta-guard",
        description="Stops real personal identity codes before they reach the Kanta test services.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in (
        ("run", "run the guard headless (mitmdump)"),
        ("web", "run the guard with the mitmweb dashboard"),
    ):
        proxy = sub.add_parser(
            name,
            help=help_text,
            description=f"{help_text}; arguments it does not know are passed to mitmproxy",
        )
        proxy.add_argument("--listen-host", default="127.0.0.1", help="default: %(default)s")
        proxy.add_argument("--listen-port", type=int, default=8080, help="default: %(default)s")
        proxy.add_argument(
            "--mode",
            default="regular",
            help="regular (explicit proxy, default) or reverse:URL in front of one Kanta endpoint",
        )
        proxy.add_argument("--policy", type=Path, help="policy file (default: embedded policy)")
        proxy.add_argument("--log", type=Path, help="blocked-request log (default: from policy)")
        proxy.add_argument(
            "--confdir",
            type=Path,
            default=CERTS,
            help="where the proxy's CA lives (default: %(default)s)",
        )
        proxy.add_argument(
            "--workers",
            type=_non_negative,
            help="scan worker processes (default: cores - 1, 1 to 4; 0: scan in the proxy thread)",
        )
        _testing_arguments(proxy, "--testing")
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
    _testing_arguments(scan, "--mode", "--testing")
    registry = sub.add_parser(
        "registry",
        help="work with a registry of test identities",
        description="Validate a registry of Kela-issued test identities (TOML or CSV).",
    )
    registry_sub = registry.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    check = registry_sub.add_parser(
        "check",
        help="validate a registry file",
        description="Exit 0 when the file is a valid registry, 2 (with the file and line of the "
        "first problem) when it is not.",
    )
    check.add_argument("file", type=Path, metavar="FILE")
    return parser


def _testing_arguments(parser: argparse.ArgumentParser, *mode_flags: str) -> None:
    """The registry and testing-mode flags (``--mode`` on ``scan``; ``--testing`` where
    ``--mode`` is mitmproxy's proxy mode)."""
    parser.add_argument(
        "--registry", type=Path, help="registry of test identities (default: from the policy)"
    )
    parser.add_argument(
        *mode_flags,
        dest="testing",
        choices=("independent", "joint"),
        help="testing mode (default: from the policy); joint needs --case",
    )
    parser.add_argument("--case", help="test case id of joint testing")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command in ("scan", "registry"):
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return _scan(args) if args.command == "scan" else _registry_check(args.file)
    return _proxy(args, extra)


def _load(policy_path: Path | None) -> Policy:
    try:
        return load_policy(policy_path)
    except PolicyError as exc:
        print(f"kanta-guard: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_ERROR) from None


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


#: The guard's options that have a flag of their own: ``--set NAME=…`` and the flag are one value.
_FLAGS = {
    "kanta_guard_policy": "--policy",
    "kanta_guard_log": "--log",
    "kanta_guard_workers": "--workers",
    "kanta_guard_registry": "--registry",
    "kanta_guard_mode": "--testing",
    "kanta_guard_case": "--case",
}
_GUARD_OPTIONS = (*_FLAGS, "kanta_guard_scan_timeout")


def guard_settings(args: argparse.Namespace, extra: list[str]) -> tuple[dict[str, str], list[str]]:
    """The guard's options from the flags and from ``--set kanta_guard_…`` in ``extra``.

    Returns the settings and ``extra`` without them. The same option given twice (by a flag and
    by ``--set``, or by ``--set`` twice) is one value when both say the same, else a usage error
    naming both.
    """
    given: dict[str, tuple[str, str]] = {}  # option -> (value, how it was given)
    flags = {"kanta_guard_policy": args.policy, "kanta_guard_log": args.log}
    flags["kanta_guard_workers"] = args.workers
    flags["kanta_guard_registry"] = getattr(args, "registry", None)
    flags["kanta_guard_mode"] = getattr(args, "testing", None)
    flags["kanta_guard_case"] = getattr(args, "case", None)
    for name, value in flags.items():
        if value is not None:
            given[name] = (str(value), _FLAGS[name])
    rest: list[str] = []
    items = iter(extra)
    for arg in items:
        if arg == "--set" or arg.startswith("--set="):
            spec = arg[len("--set=") :] if arg.startswith("--set=") else next(items, "")
            name, has_value, value = spec.partition("=")
            if name in _GUARD_OPTIONS:
                if not has_value:
                    raise _Usage(f"--set {name} needs a value: --set {name}=VALUE")
                how = f"--set {name}={value}"
                if name in given and not _same(name, given[name][0], value):
                    raise _Usage(
                        f"{name} is given twice with different values: {given[name][1]} "
                        f"({given[name][0]}) and {how}; give it once"
                    )
                given.setdefault(name, (value, how))
                continue
            rest += ["--set", spec]
            continue
        rest.append(arg)
    return {name: value for name, (value, _) in given.items()}, rest


class _Usage(Exception):
    """A usage error in the proxy's arguments (exit 2)."""


def _same(name: str, first: str, second: str) -> bool:
    if name in ("kanta_guard_policy", "kanta_guard_log", "kanta_guard_registry"):
        return Path(first).expanduser().resolve() == Path(second).expanduser().resolve()
    if name == "kanta_guard_workers":
        return first.strip() == second.strip() or _int_or_none(first) == _int_or_none(second)
    return first == second


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _check_settings(settings: dict[str, str]) -> None:
    """Check the guard's options before mitmproxy starts: a problem stops here, named."""
    policy = _load(
        Path(settings["kanta_guard_policy"]) if settings.get("kanta_guard_policy") else None
    )
    try:
        policy = _with_testing(
            policy,
            settings.get("kanta_guard_registry"),
            settings.get("kanta_guard_mode"),
            settings.get("kanta_guard_case"),
        )
        if policy.registry is not None:
            load_registry(policy.registry)
        if policy.certificates.anchors is not None:
            load_anchors(policy.certificates.anchors)
        load_key(policy.log.hash_key_file)
        if "kanta_guard_workers" in settings:
            _non_negative(settings["kanta_guard_workers"])
        if "kanta_guard_scan_timeout" in settings:
            timeout = float(settings["kanta_guard_scan_timeout"])
            if not timeout > 0:
                raise ValueError
        log = Path(settings.get("kanta_guard_log") or policy.log.path)
        EventLog(log, max_bytes=policy.log.max_bytes, backups=policy.log.backups).close()
    except (PolicyError, RegistryError) as exc:
        raise _Usage(mask_text(str(exc))) from None
    except (ValueError, argparse.ArgumentTypeError):
        raise _Usage(
            "kanta_guard_workers must be a whole number of 0 or more, "
            "kanta_guard_scan_timeout a number of seconds above 0"
        ) from None


def _proxy(args: argparse.Namespace, extra: list[str]) -> int:
    try:
        settings, rest = guard_settings(args, extra)
        _check_settings(settings)
    except _Usage as exc:
        print(f"kanta-guard: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    args.confdir.mkdir(parents=True, exist_ok=True)
    tool_args = [
        "--listen-host", args.listen_host,
        "--listen-port", str(args.listen_port),
        "--mode", args.mode,
        "--set", f"confdir={args.confdir}",
    ]  # fmt: skip
    tool = "mitmdump"
    if args.command == "web":
        tool = "mitmweb"
        tool_args += ["--set", "web_open_browser=false"]
    from .proxy.launch import run_tool

    return run_tool(tool, tool_args + rest, settings)


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


def _with_testing(
    policy: Policy, registry: str | Path | None, mode: str | None, case: str | None
) -> Policy:
    """The policy with the registry and testing mode given on the command line."""
    if registry:
        policy = policy.with_registry(Path(registry).expanduser())
    if mode == "policy":  # (mitmweb's option value for "as the policy says")
        mode = None
    if mode or case:
        mode = mode or ("joint" if policy.testing.joint else "independent")
        chosen = (case or policy.testing.case) if mode == "joint" else (case or "")
        policy = policy.with_testing(TestingMode.parse(mode, chosen, "testing mode"))
    return policy


def _registry_check(path: Path) -> int:
    try:
        registry = load_registry(path)
    except RegistryError as exc:
        print(f"kanta-guard: error: {mask_text(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    print(f"{path}: a valid registry of {len(registry)} test identities ({registry.digest})")
    return EXIT_PASS


def _scan(args: argparse.Namespace) -> int:
    policy = _load(args.policy)
    try:
        policy = _with_testing(policy, args.registry, args.testing, args.case)
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


def version() -> str:
    """The installed package's version (its metadata), else the package's ``__version__``."""
    try:
        return metadata.version("kanta-guard")
    except metadata.PackageNotFoundError:
        package = sys.modules.get(__package__ or "kanta_guard")
        return str(getattr(package, "__version__", "unknown"))


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


if __name__ == "__main__":
    raise SystemExit(main())
