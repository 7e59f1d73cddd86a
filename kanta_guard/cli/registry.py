"""``kanta-guard registry check``: a registry of test identities validated before it is used."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..idcode import mask_text
from ..registry import RegistryError, load_registry
from .common import EXIT_ERROR, EXIT_PASS

__all__ = ["add", "run"]


def add(sub: Any) -> None:
    """The ``registry`` subcommand and its actions."""
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
    check.set_defaults(run=run, extra_ok=False)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    return _check(args.file)


def _check(path: Path) -> int:
    try:
        registry = load_registry(path)
    except RegistryError as exc:
        print(f"kanta-guard: error: {mask_text(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    print(f"{path}: a valid registry of {len(registry)} test identities ({registry.digest})")
    return EXIT_PASS
