"""``kanta-guard report``: a test campaign's blocked-request log summed up (text, HTML or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..idcode import mask_any_form
from ..report import LogReadError, reading_line, render_html, render_text, summarise
from .common import EXIT_ERROR, EXIT_PASS, non_negative

__all__ = ["add", "run"]

_EPILOG = """\
LOG is the guard's blocked-request log ([log] path, --log). Its rotated backups (LOG.1 … LOG.N,
gzip-compressed ones too) are read with it unless --no-rotated; a file named twice is read once.
Lines that are not records are counted and named (file and line), never shown.

output:
  --format text   aligned tables within 100 columns (default)
  --format html   one self-contained HTML page (inline CSS and SVG charts) on stdout
  --format json   the summary as JSON, for CI
  --html FILE     also write the HTML page to FILE

exit status: 0 the report was made (unreadable lines are counted in it), 2 a log file is
missing or cannot be read, or the HTML file cannot be written.
"""


def add(sub: Any) -> None:
    """The ``report`` subcommand."""
    report = sub.add_parser(
        "report",
        help="sum up a blocked-request log: by rule, role, host, day, location, repeated value",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Sum up the blocked-request log of a test campaign: requests by verdict, "
        "rule, role, host and day, the top locations, and values (by keyed hash) sent again.",
        epilog=_EPILOG,
    )
    report.add_argument("logs", nargs="+", type=Path, metavar="LOG", help="log files")
    report.add_argument(
        "--format",
        choices=("text", "html", "json"),
        default="text",
        help="output on stdout: text (default), html, json",
    )
    report.add_argument("--html", type=Path, metavar="FILE", help="also write the HTML page here")
    report.add_argument(
        "--top",
        type=non_negative,
        default=10,
        metavar="N",
        help="rows per table (default 10; 0: all)",
    )
    report.add_argument(
        "--no-rotated",
        dest="rotated",
        action="store_false",
        help="read only the files named, not their rotated backups",
    )
    report.set_defaults(run=run, extra_ok=False)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    try:
        summary = summarise(args.logs, rotated=args.rotated, top=args.top)
    except LogReadError as exc:
        print(f"kanta-guard: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    page = render_html(summary) if args.html or args.format == "html" else ""
    if args.html:
        try:
            args.html.write_text(page, "utf-8")
        except OSError as exc:
            shown = mask_any_form(str(args.html))
            reason = exc.strerror or type(exc).__name__
            print(f"kanta-guard: error: cannot write {shown}: {reason}", file=sys.stderr)
            return EXIT_ERROR
    if args.format == "text":
        sys.stdout.write(render_text(summary))
    elif args.format == "html":
        sys.stdout.write(page)
    else:
        json.dump(summary.as_dict(), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    # The last line says what was read; stdout's own for text, stderr beside a page or JSON.
    last = sys.stdout if args.format == "text" else sys.stderr
    print(f"kanta-guard: {reading_line(summary)}", file=last)
    if args.html:
        print(f"kanta-guard: HTML report written to {mask_any_form(str(args.html))}", file=last)
    return EXIT_PASS
