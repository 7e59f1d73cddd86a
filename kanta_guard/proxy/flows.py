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
from ..model import Action, Recognised, Report, Request, Role, Verdict
from .state import GuardState

__all__ = [
    "COUNTED_PASS",
    "MARK_BLOCKED",
    "MARK_WARNED",
    "METADATA_KEY",
    "SHOWN_TEST_CODES",
    "client_address",
    "comment",
    "flow_request",
    "mark",
    "recognised",
    "record",
    "record_flow",
]

logger = logging.getLogger("kanta_guard")

#: ``flow.metadata`` key holding the report (a plain dict: flows are serialised with it).
METADATA_KEY = "kanta_guard"
MARK_BLOCKED = ":no_entry:"
MARK_WARNED = ":warning:"
#: Test codes a passed flow's comment names; the rest are counted ("+N more").
SHOWN_TEST_CODES = 3


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
    """One masked line for mitmweb's Comment column: why first, where last.

    A flagged request: ``hetu.real (patient) · block · +3 more · at /ClinicalDocument/…``.
    mitmweb's column is 150 px wide (about 18 characters; a width a user sets is kept in the
    browser) and cuts the rest off, so the rule and the role come first (they say what to
    fix), then the verdict and how many other findings there are, and the location, the
    longest part, last. (The mark beside it already says it is the guard's.) A passed request
    says what the guard recognised (:func:`recognised`), so a tester can see it looked.
    """
    counted = [f for f in report.findings if f.action is not Action.OFF]
    if not counted:
        return recognised(report.recognised) if report.verdict is Verdict.PASS else ""
    first = counted[0]
    role = f" ({first.role})" if first.role is not Role.UNKNOWN else ""
    rest = len(counted) - 1 + report.omitted  # findings past the cap are only counted
    more = f" · +{rest} more" if rest else ""
    at = f" · at {first.location}" if first.location else ""
    return mask_text(f"{first.rule}{role} · {report.verdict}{more}{at}")


def recognised(seen: Recognised) -> str:
    """A passed request's comment: ``pass · 3 identity fields · test codes 010181-900C,
    231069-9711, 020516C903K +2 more`` (``pass · no identity codes`` when it saw none). Short
    words first, as for a flagged one: a narrow column still shows the guard read the request.
    Test codes are not personal data: shown."""
    parts = ["pass"]
    if seen.identity_fields:
        plural = "s" if seen.identity_fields != 1 else ""
        parts.append(f"{seen.identity_fields} identity field{plural}")
    if seen.test_codes:
        shown = seen.test_codes[:SHOWN_TEST_CODES]
        rest = len(seen.test_codes) - len(shown) + seen.more_test_codes
        plural = "s" if len(shown) + rest != 1 else ""
        more = f" +{rest} more" if rest else ""
        parts.append(f"test code{plural} {', '.join(shown)}{more}")
    if len(parts) == 1:
        parts.append("no identity codes")
    return mask_text(" · ".join(parts))


def mark(flow: Any, report: Report) -> None:
    """Keep the report on the flow and show its verdict in mitmweb (mark and comment; a
    passed request only the comment)."""
    flow.metadata[METADATA_KEY] = report.as_dict()
    flow.comment = comment(report)
    if report.verdict is Verdict.PASS:
        return
    flow.marked = MARK_BLOCKED if report.verdict is Verdict.BLOCK else MARK_WARNED


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


#: ``flow.metadata`` key set on a flow counted as passed (``Stats.passed``).
COUNTED_PASS = "kanta_guard_counted_pass"


def record_flow(state: GuardState, report: Report, flow: http.HTTPFlow) -> bool:
    """:func:`record` for an HTTP flow's report: its client, method, host and path. A flow
    counted as passed before (then blocked: a switch of protocols, a production server met on
    a lazy connection) is no longer counted so: its record counts it now."""
    if report.verdict is not Verdict.PASS and flow.metadata.pop(COUNTED_PASS, False):
        state.stats.pass_retracted()
    req = flow.request
    return record(
        state,
        report,
        flow_id=flow.id,
        client=client_address(flow.client_conn),
        method=req.method,
        host=req.pretty_host,
        path=req.path,
    )
