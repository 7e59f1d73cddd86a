"""What the subcommands share: exit statuses, loading the policy, the testing-mode flags."""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

from ..errors import PolicyError
from ..policy import Policy, TestingMode, load_policy

__all__ = [
    "EXIT_BLOCK",
    "EXIT_ERROR",
    "EXIT_PASS",
    "load",
    "non_negative",
    "testing_arguments",
    "version",
    "with_testing",
]

EXIT_PASS, EXIT_BLOCK, EXIT_ERROR = 0, 1, 2


def testing_arguments(parser: argparse.ArgumentParser, *mode_flags: str) -> None:
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


def load(policy_path: Path | None) -> Policy:
    try:
        return load_policy(policy_path)
    except PolicyError as exc:
        print(f"kanta-guard: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_ERROR) from None


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def with_testing(
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


def version() -> str:
    """The installed package's version (its metadata), else the package's ``__version__``."""
    try:
        return metadata.version("kanta-guard")
    except metadata.PackageNotFoundError:
        package = sys.modules.get("kanta_guard")
        return str(getattr(package, "__version__", "unknown"))
