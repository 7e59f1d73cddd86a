"""``kanta-guard demo``: a fake Kanta endpoint, the guard in mitmweb in front of it and a
scripted system under test sending clean and dirty messages, all on loopback."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..demo import DemoOptions, run_demo
from .common import non_negative

__all__ = ["add", "run"]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _port(text: str) -> int:
    value = non_negative(text)
    if value > 65535:
        raise argparse.ArgumentTypeError("a port is 0 to 65535")
    return value


def add(sub: Any) -> None:
    """The ``demo`` subcommand."""
    demo = sub.add_parser(
        "demo",
        help="see the guard at work: a fake Kanta endpoint, the guard and a test client",
        description="Start a fake Kanta test endpoint (SOAP and FHIR), the guard in mitmweb in "
        "front of it and a scripted system under test that sends clean messages (900-series "
        "test identities) and dirty ones (a real-range identity code, a real-looking name and "
        "phone, a personal e-mail, a production certificate), one line per message. All on "
        "127.0.0.1; everything started is stopped on exit. Exit status: 0 when every message "
        "got the verdict it expects, 1 when one did not, 2 when the demo could not start.",
    )
    demo.add_argument(
        "--listen-port",
        type=_port,
        default=0,
        metavar="PORT",
        help="the proxy's port (default: a free one)",
    )
    demo.add_argument(
        "--web-port",
        type=_port,
        default=0,
        metavar="PORT",
        help="the dashboard's port (default: a free one)",
    )
    demo.add_argument(
        "--duration",
        type=_seconds,
        metavar="SECONDS",
        help="stop after this many seconds (default: at Ctrl-C)",
    )
    demo.add_argument("--once", action="store_true", help="send the script once, then stop")
    demo.add_argument(
        "--no-web", dest="web", action="store_false", help="run mitmdump instead of mitmweb"
    )
    demo.add_argument(
        "--interval",
        type=_seconds,
        default=0.75,
        metavar="SECONDS",
        help="seconds between two messages (default: %(default)s)",
    )
    demo.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="keep the guard's files here (log, output, policy, CA); default: a temporary "
        "folder removed at the end",
    )
    demo.set_defaults(run=run, extra_ok=False)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    options = DemoOptions(
        listen_port=args.listen_port,
        web_port=args.web_port,
        duration=args.duration,
        once=args.once,
        web=args.web,
        interval=args.interval,
        workdir=args.workdir.resolve() if args.workdir else None,
    )
    return run_demo(options)
