"""The ``kanta-guard`` command line: ``run`` (mitmdump), ``web`` (mitmweb), ``scan`` (offline)
and ``registry``.

A thin shell: it parses argv, checks the policy before anything starts (a bad policy stops here
with a message naming the problem), and hands over to mitmproxy or to the pipeline. One module
per subcommand; each adds its parser (``add``) and names the function that runs it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import demo, proxy, registry, report, scan
from .common import version
from .proxy import guard_settings

__all__ = ["guard_settings", "main", "version"]

#: The subcommand modules, in the order ``--help`` lists them.
_COMMANDS = (proxy, scan, report, registry, demo)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kanta-guard",
        description="Stops real personal identity codes before they reach the Kanta test services.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMANDS:
        module.add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not args.extra_ok:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    status: int = args.run(args, extra)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
