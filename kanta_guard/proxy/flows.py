"""Between mitmproxy's flows and the library's values: the request as sent, marks, log records.

Every addon of the guard reads a flow through :func:`flow_request` and shows its verdict through
:func:`mark` and :func:`record`, so what mitmweb, the log and the answer say comes from one place.
"""

from __future__ import annotations

import logging
from typing import Any

from mitmproxy import http

from ..eventlog import make_record
from ..idcode import mask_text
from ..model import Action, Report, Request, Verdict
from .state import GuardState

__all__ = [
    "MARK_BLOCKED",
    "MARK_WARNED",
    "METADATA_KEY",
    "client_address",
    "comment",
    "flow_request",
    "mark",
    "record",
]

logger = logging.getLogger("kanta_guard")

#: ``flow.metadata`` key holding the report (a plain dict: flows are serialised with it).
METADATA_KEY = "kanta_guard"
MARK_BLOCKED = ":no_entry:"
MARK_WARNED = ":warning:"


def flow_request(flow: http.HTTPFlow) -> Request:
    """The pure request of a flow as it will leave the proxy: the body still content-encoded.

    The authority is the one sent (absolute-form target, HTTP/2 ``:authority``, a CONNECT
    target), or else the host the request goes to: mitmproxy resolves and connects to it, so it
    is judged like what is sent. Trailers are HTTP/2's or chunked HTTP/1.1's.
    """
    req = flow.request
    trailers = req.trailers
    return Request(
        method=req.method,
        target=req.path,
        headers=tuple((k, v) for k, v in req.headers.items(multi=True)),
        body=req.raw_content or b"",
        host=req.pretty_host,
        authority=req.authority or req.host,
        trailers=tuple((k, v) for k, v in trailers.items(multi=True)) if trailers else (),
    )


def client_address(conn: Any) -> str | None:
    """``ip:port`` of a client connection, or None when unknown."""
    peer = getattr(conn, "peername", None)
    return f"{peer[0]}:{peer[1]}" if peer else None


def comment(report: Report) -> str:
    """One line for mitmweb's Comment column."""
    counted = [f for f in report.findings if f.action is not Action.OFF]
    if not counted:
        return ""
    first = counted[0]
    rest = len(counted) - 1 + report.omitted  # findings past the cap are only counted
    more = f" (+{rest} more)" if rest else ""
    return mask_text(f"kanta-guard {report.verdict}: {first.rule} at {first.location}{more}")


def mark(flow: Any, report: Report) -> None:
    """Keep the report on the flow and show its verdict in mitmweb (mark and comment)."""
    flow.metadata[METADATA_KEY] = report.as_dict()
    if report.verdict is Verdict.PASS:
        return
    flow.marked = MARK_BLOCKED if report.verdict is Verdict.BLOCK else MARK_WARNED
    flow.comment = comment(report)


def record(
    state: GuardState,
    report: Report,
    *,
    flow_id: str,
    client: str | None,
    method: str,
    host: str,
    path: str,
) -> bool:
    """Write the log record of a blocked or warned request (or refused connection).

    False when it could not be written (the state then reports the failure); never raises.
    """
    try:
        entry = make_record(
            report, flow_id=flow_id, client=client, method=method, host=host, path=path
        )
    except Exception:  # a record that cannot even be built is a record not written
        logger.exception("kanta-guard: could not build the log record")
        return False
    written = state.write(entry)
    logger.warning(
        "kanta-guard %s %s %s: %s",
        report.verdict,
        mask_text(method),
        entry["path"],
        ", ".join(report.rules),
    )
    return written
