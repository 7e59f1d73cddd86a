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

__all__ = ["guard_settings", "main"]

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
        description="Scan files (a CDA, a SOAP message, a FHIR resource, a saved body). "
        "Exit 0 when all pass, 1 when any would be blocked, 2 on usage or I/O errors.",
    )
    scan.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or directories")
    scan.add_argument("--json", action="store_true", help="machine-readable output")
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


def _files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


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
    results: list[dict[str, object]] = []
    errors = 0
    blocked = False
    for path in _files(args.paths):
        try:
            data = path.read_bytes()
        except OSError as exc:
            errors += 1
            results.append({"path": str(path), "error": exc.strerror or str(exc)})
            if not args.json:
                print(f"ERROR  {path}: {exc.strerror}", file=sys.stderr)
            continue
        content_type = args.content_type or _TYPES.get(path.suffix.lower())
        report = scanner.scan_bytes(data, content_type, args.content_encoding)
        blocked |= report.verdict is Verdict.BLOCK
        results.append({"path": str(path), **report.as_dict()})
        if not args.json:
            _print_report(path, report)
    if args.json:
        json.dump({"files": results}, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write(os.linesep)
    if errors:
        return EXIT_ERROR
    return EXIT_BLOCK if blocked else EXIT_PASS


def _print_report(path: Path, report: Report) -> None:
    print(f"{str(report.verdict).upper():<6} {path}")
    for finding in report.findings:
        evidence = f"  {finding.evidence} {finding.value_hash}" if finding.evidence else ""
        print(f"  {finding.action:<5} {finding.rule:<20} {finding.location}{evidence}")
        print(f"        {finding.explanation}")


if __name__ == "__main__":
    raise SystemExit(main())
