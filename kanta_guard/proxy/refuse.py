"""Refusing a flow or a connection for a reason found outside the request's content.

The destination, certificate and client-certificate addons refuse for reasons no detector
finds: where a request goes, what certificate a peer presented. Their findings still travel the
HTTP guard's road: a :class:`~kanta_guard.model.Report` answered in the client's protocol
(:func:`kanta_guard.answer.blocked_answer`), marked in mitmweb, written to the blocked-request
log, the request redacted. A refusal of a connection (no flow to answer) is a log record with
empty method and path, as :mod:`~kanta_guard.proxy.connections` writes them.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any
from typing import Protocol as TypingProtocol

from mitmproxy import http

from ..answer import blocked_answer
from ..idcode import mask_text
from ..model import Action, Finding, Protocol, Report, Role, Verdict
from ..pipeline import protocol_of
from ..refusals import refusal
from ..rules import UNSCANNABLE
from .flows import client_address, flow_request, mark, record, record_flow
from .redact import redact_request
from .state import GuardState

__all__ = [
    "REFUSED_KEY",
    "answer_of",
    "closed_on_error",
    "finding",
    "head_findings",
    "record_connection",
    "redact_refused",
    "refuse_flow",
    "refused_on_error",
    "report_of",
]

logger = logging.getLogger("kanta_guard")

#: ``flow.metadata`` key: set when one of these addons answered the flow (its request is
#: redacted once its body has arrived: see :func:`redact_refused`).
REFUSED_KEY = "kanta_guard_refused"

_RANK = {Action.OFF: 0, Action.WARN: 1, Action.BLOCK: 2}


def finding(
    rule: str, action: Action, explanation: str, location: str, evidence: str = ""
) -> Finding:
    """A finding of ``rule`` under ``action``; every string masked (a host, a subject)."""
    return Finding(
        rule=rule,
        action=action,
        location=mask_text(location),
        role=Role.UNKNOWN,
        evidence=mask_text(evidence),
        value_hash="",
        explanation=mask_text(explanation),
    )


def report_of(findings: list[Finding] | tuple[Finding, ...], protocol: Protocol) -> Report:
    """A report whose verdict is the strongest action among ``findings``."""
    strongest = max((_RANK[f.action] for f in findings), default=0)
    verdict = (Verdict.PASS, Verdict.WARN, Verdict.BLOCK)[strongest]
    return Report(verdict, tuple(findings), protocol)


def head_findings(state: GuardState, flow: http.HTTPFlow) -> tuple[tuple[Finding, ...], Protocol]:
    """What the guard's scanner finds in the request head (its body is not read yet, or not
    needed): a refused request still names, say, the identity code its host carries."""
    request = flow_request(flow)
    protocol = protocol_of(request)
    scanner = state.scanner
    if scanner is None:
        return (), protocol
    try:
        report = scanner.scan(request)
    except Exception:
        logger.exception("kanta-guard: the scan of a refused request's head failed")
        return (), protocol
    return report.findings, report.protocol


def answer_of(flow: http.HTTPFlow, report: Report) -> http.Response:
    """The blocked answer in the client's protocol; a plain one if even that cannot be built."""
    try:
        answer = blocked_answer(report, request_id=flow.id)
        return http.Response.make(
            answer.status, answer.body, [(k.encode(), v.encode()) for k, v in answer.headers]
        )
    except Exception:
        logger.exception("kanta-guard: could not build the blocked answer; sending a plain one")
        return http.Response.make(
            403,
            b"Blocked by kanta-guard.\n",
            {"Content-Type": "text/plain", "X-Kanta-Guard": "blocked", "Cache-Control": "no-store"},
        )


def refuse_flow(state: GuardState, flow: http.HTTPFlow, report: Report) -> None:
    """Act on a report: answer (block), mark, record (block or warn). The answer is set first:
    no later failure undoes it. The request itself is redacted by :func:`redact_refused` once
    its body is in (a CONNECT at once: it has none)."""
    if report.verdict is Verdict.BLOCK:
        flow.response = answer_of(flow, report)
        flow.metadata[REFUSED_KEY] = True
    try:
        mark(flow, report)
    except Exception:
        logger.exception("kanta-guard: could not mark the flow")
    if report.verdict is Verdict.PASS:
        return
    record_flow(state, report, flow)
    if report.verdict is Verdict.BLOCK and flow.request.method == "CONNECT":
        redact_refused(state, flow)


def redact_refused(state: GuardState, flow: http.HTTPFlow) -> None:
    """Redact a request these addons answered: what mitmweb keeps of it is masked, and its
    body, which no scan judged, is withheld (:func:`~kanta_guard.proxy.redact.redact_request`)."""
    if not flow.metadata.get(REFUSED_KEY):
        return
    try:
        redact_request(flow, state.scanner)
    except Exception:  # redact_request withholds on its own errors; this is the last net
        logger.exception("kanta-guard: redaction failed; the request's body is dropped")
        flow.request.content = b""


def record_connection(
    state: GuardState, report: Report, *, conn_id: str, client: Any, host: str
) -> bool:
    """The log record of a refused (or warned) connection: no method, no path."""
    return record(
        state,
        report,
        flow_id=conn_id,
        client=client_address(client),
        method="",
        host=mask_text(host),
        path="",
    )


class _Addon(TypingProtocol):
    state: GuardState


def refused_on_error[A: _Addon](
    hook: Callable[[A, http.HTTPFlow], None],
) -> Callable[[A, http.HTTPFlow], None]:
    """A flow hook that fails closed: an error inside it refuses the flow as ``unscannable``
    (mitmproxy would only log it, and the request would go on unjudged by this addon)."""

    @functools.wraps(hook)
    def guarded(addon: A, flow: http.HTTPFlow) -> None:
        try:
            hook(addon, flow)
        except Exception as exc:
            logger.exception("kanta-guard: %s.%s failed", type(addon).__name__, hook.__name__)
            if flow.response is None:
                why = (
                    f"internal error in kanta-guard ({type(addon).__name__}): {type(exc).__name__}"
                )
                found = refusal(UNSCANNABLE, why, "request")
                refuse_flow(addon.state, flow, report_of([found], Protocol.OTHER))

    return guarded


def closed_on_error[A](hook: Callable[[A, Any], None]) -> Callable[[A, Any], None]:
    """A connection hook (``server_connect``, ``tls_start_server``) that fails closed: an error
    inside it refuses the connection (no TLS context, or the server's error set)."""

    @functools.wraps(hook)
    def guarded(addon: A, data: Any) -> None:
        try:
            hook(addon, data)
        except Exception as exc:
            logger.exception("kanta-guard: %s.%s failed", type(addon).__name__, hook.__name__)
            why = f"kanta-guard refused the connection: internal error: {type(exc).__name__}"
            if hasattr(data, "ssl_conn"):
                data.ssl_conn = None
                data.conn.error = why
            else:
                data.server.error = why

    return guarded
