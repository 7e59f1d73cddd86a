"""``kanta-guard run`` (mitmdump) and ``web`` (mitmweb): the guard's options checked, then
mitmproxy started with the guard installed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..certs import load_anchors
from ..errors import PolicyError
from ..eventlog import EventLog
from ..idcode import mask_text
from ..masking import load_key
from ..paths import ca_dir
from ..registry import RegistryError, load_registry
from .common import EXIT_ERROR, load, non_negative, testing_arguments, with_testing

__all__ = ["add", "check_settings", "guard_settings", "run"]


def add(sub: Any) -> None:
    """The ``run`` and ``web`` subcommands (arguments they do not know go to mitmproxy)."""
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
            help="where the proxy's CA lives, created on first start (default: the per-user "
            f"state folder, {ca_dir()})",
        )
        proxy.add_argument(
            "--workers",
            type=non_negative,
            help="scan worker processes (default: cores - 1, 1 to 4; 0: scan in the proxy thread)",
        )
        testing_arguments(proxy, "--testing")
        proxy.set_defaults(run=run, extra_ok=True)


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


def check_settings(settings: dict[str, str]) -> None:
    """Check the guard's options before mitmproxy starts: a problem stops here, named."""
    policy = load(
        Path(settings["kanta_guard_policy"]) if settings.get("kanta_guard_policy") else None
    )
    try:
        policy = with_testing(
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
            non_negative(settings["kanta_guard_workers"])
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


def run(args: argparse.Namespace, extra: list[str]) -> int:
    try:
        settings, rest = guard_settings(args, extra)
        confdir, rest = _confdir(args.confdir, rest)
        for name in ("kanta_guard_policy", "kanta_guard_log"):
            if settings.get(name):  # (taken from here: the working directory of the start)
                settings[name] = str(Path(settings[name]).expanduser().absolute())
        check_settings(settings)
    except _Usage as exc:
        print(f"kanta-guard: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    from ..proxy.launch import ensure_ca, run_tool

    try:
        ensure_ca(confdir, _key_size(rest))
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        shown = mask_text(str(confdir))
        print(f"kanta-guard: error: cannot create the CA in {shown}: {reason}", file=sys.stderr)
        return EXIT_ERROR
    tool_args = [
        "--listen-host", args.listen_host,
        "--listen-port", str(args.listen_port),
        "--mode", args.mode,
        "--set", f"confdir={confdir}",
    ]  # fmt: skip
    tool = "mitmdump"
    if args.command == "web":
        tool = "mitmweb"
        tool_args += ["--set", "web_open_browser=false"]
    return run_tool(tool, tool_args + rest, settings)


def _confdir(flag: Path | None, rest: list[str]) -> tuple[Path, list[str]]:
    """The confdir (absolute) from ``--confdir`` or mitmproxy's ``--set confdir=…``, else the
    per-user default; ``rest`` without the latter (the CA is made there before mitmproxy
    starts, so both spellings are one option, as for the guard's own)."""
    given: list[str] = []
    kept: list[str] = []
    items = iter(rest)
    for arg in items:
        if arg == "--set" or arg.startswith("--set="):
            spec = arg[len("--set=") :] if arg.startswith("--set=") else next(items, "")
            name, _, value = spec.partition("=")
            if name == "confdir":
                given.append(value)
                continue
            kept += ["--set", spec]
            continue
        kept.append(arg)
    chosen = {Path(v).expanduser().absolute() for v in given}
    if flag is not None:
        chosen.add(flag.expanduser().absolute())
    if len(chosen) > 1:
        raise _Usage("confdir is given twice with different values; give it once")
    confdir = chosen.pop() if chosen else ca_dir()
    return confdir.absolute(), kept


#: mitmproxy's default ``key_size`` (its CA's and its leaf certificates' RSA keys).
_KEY_SIZE = 2048


def _key_size(rest: list[str]) -> int:
    """The ``key_size`` mitmproxy is given (``--set key_size=N``), for the CA made before it
    starts; mitmproxy's default without one. A value that is no number is left to mitmproxy,
    which refuses it by name."""
    size = _KEY_SIZE
    items = iter(rest)
    for arg in items:
        if arg == "--set" or arg.startswith("--set="):
            spec = arg[len("--set=") :] if arg.startswith("--set=") else next(items, "")
            name, _, value = spec.partition("=")
            if name == "key_size" and value.strip().isdigit():
                size = int(value)
    return size
