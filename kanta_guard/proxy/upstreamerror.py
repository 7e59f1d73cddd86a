"""Upstream down or untrusted: the client gets a blocked-style answer in its own protocol.

mitmproxy answers a request it cannot forward (the upstream refuses the connection, cannot be
resolved, or its TLS fails: an untrusted or self-signed certificate) with an HTML page, ``502
Bad Gateway`` and a line such as ``Certificate verify failed: self-signed certificate``. A SOAP
or FHIR client under test cannot read that; a tester then looks for the fault in the wrong
place. Here the same 502 is a SOAP Fault (``soap:Server`` / ``env:Receiver``: the message was
not at fault, SOAP 1.1 §4.4.1, SOAP 1.2 Part 1 §5.4.6), a FHIR OperationOutcome (issue code
``transient``: resubmit once the cause is fixed, FHIR R4 IssueType) or RFC 9457 problem details
otherwise, saying which upstream, why (masked), and that nothing was sent. Nothing was: the
connection never carried the request.

Where mitmproxy makes the page:

- a request whose server connection fails (opened lazily, as for plain HTTP, or already failed,
  as a TLS handshake of an eager connection): the HTTP stream's ``handle_protocol_error`` with
  ``CONNECT_FAILED``. mitmproxy has no hook that can answer there (its ``error`` hook comes just
  before the page is written, and a response set in it is ignored), so :func:`install` wraps
  that method, as :mod:`~kanta_guard.proxy.quiet` wraps mitmproxy's error pages: the flow still
  gets its ``error`` hook (other addons mark it), then the answer goes out as a response set by
  an addon would. A target missing in another mitmproxy version raises :class:`RuntimeError`;
- a CONNECT whose upstream cannot be reached (eager connections, mitmproxy's default): its 502
  is replaced in the ``http_connect_error`` hook (problem details: a CONNECT has no protocol of
  its own, and most clients show only its status line);
- reverse mode to an HTTP(S) upstream that is down when a client connects (eager): mitmproxy
  closes the client's connection without a word. ``DestinationKnown.finish_start`` is wrapped
  to keep it open with the error on the server connection (as mitmproxy keeps a failed TLS
  handshake's), the client's TLS is set up without the upstream (``tls_clienthello``), and each
  request is answered as above.

Only a request the guard let pass gets here: a blocked one is answered by the guard before any
connection is made, and logged as blocked. A request whose lazy connection the certificate
guard refused (a production server certificate) gets that refusal's blocked answer instead.
"""

from __future__ import annotations

import json
import logging
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import quote

from mitmproxy import ctx, http

from ..answer import FINDINGS_NS, Answer
from ..idcode import mask_text
from ..model import Action, Finding, Protocol, Report, Role, Verdict
from ..pipeline import protocol_of
from .flows import METADATA_KEY, flow_request
from .refuse import answer_of

__all__ = ["PATCH_TARGETS", "STATUS", "UpstreamErrors", "install", "upstream_answer"]

logger = logging.getLogger("kanta_guard")

#: The status of every answer here: 502 Bad Gateway (RFC 9110 §15.6.3), as mitmproxy's own.
STATUS = 502
#: ``(module, class, method)`` of what :func:`install` wraps.
PATCH_TARGETS = (
    ("mitmproxy.proxy.layers.http", "HttpStream", "handle_protocol_error"),
    ("mitmproxy.proxy.layers.modes", "DestinationKnown", "finish_start"),
)
_NAME = "upstreamerrors"  # the addon's name in mitmproxy's chain
_MARK = "__kanta_guard_upstream_errors__"
_lock = threading.Lock()

_SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
_FHIR_NS = "http://hl7.org/fhir"
_PROBLEM_TYPE = "urn:kanta-guard:problem:"
_REQUEST_URN = "urn:kanta-guard:request:"
#: How the guard's own refusals of a server connection read (``kanta_guard.proxy.upstream``,
#: ``connections``): those are not upstream errors, and keep the behaviour they document.
_REFUSED_BY_GUARD = "kanta-guard refused"
#: OpenSSL's word for a chain it found valid but a verify callback refused: the only callback is
#: the certificate guard's (:mod:`~kanta_guard.proxy.servercert`), so the guard refused it.
_CALLBACK_REFUSED = "unspecified certificate verification error"
#: Words of mitmproxy's error message that make it a TLS failure rather than an unreachable host.
_TLS_MARKERS = ("certificate", "tls", "ssl", "handshake")


def _kind(reason: str) -> str:
    """``upstream-refused`` (the guard's own refusal of the connection), ``upstream-untrusted``
    (its TLS failed) or ``upstream-down`` (anything else: refused, unreachable, no such host)."""
    if _REFUSED_BY_GUARD in reason or _CALLBACK_REFUSED in reason:
        return "upstream-refused"
    lowered = reason.lower()
    return "upstream-untrusted" if any(m in lowered for m in _TLS_MARKERS) else "upstream-down"


_TITLES = {
    "upstream-down": "Request not forwarded: the upstream server could not be reached",
    "upstream-untrusted": "Request not forwarded: TLS with the upstream server failed",
    "upstream-refused": "Request not forwarded: kanta-guard refused the upstream connection",
}


def _summary(kind: str, target: str, reason: str) -> str:
    if kind == "upstream-untrusted":
        text = (
            f"kanta-guard could not set up TLS with the upstream server {target} ({reason}), "
            "so nothing was sent. If it is the Kanta test service, give the guard its CA "
            "certificate: --set ssl_verify_upstream_trusted_ca=FILE"
        )
    elif kind == "upstream-refused" and _REFUSED_BY_GUARD not in reason:
        text = (
            f"kanta-guard refused the certificate of the upstream server {target} under its "
            "certificate rules (the blocked-request log names the rule, e.g. "
            "upstream.production), so nothing was sent"
        )
    elif kind == "upstream-refused":  # (mitmproxy says "Connection killed: kanta-guard …")
        text = f"{reason[reason.index(_REFUSED_BY_GUARD) :]} (the upstream server {target}), "
        text += "so nothing was sent"
    else:
        text = (
            f"kanta-guard could not connect to the upstream server {target} ({reason}), so "
            "nothing was sent. The upstream may be down or the address wrong"
        )
    return mask_text(" ".join(text.split()) + ".")


def upstream_answer(
    protocol: Protocol, target: str, reason: str, *, request_id: str | None = None
) -> Answer:
    """The answer to a request that could not be forwarded: 502 in the client's protocol.

    ``target`` is the upstream (``host:port``), ``reason`` mitmproxy's error message; both are
    masked, as is the serialised body once more. ``request_id`` (the flow id) is echoed as in
    the blocked answer.
    """
    kind = _kind(reason)
    summary = _summary(kind, target, reason)
    rid = mask_text(request_id) if request_id else None
    match protocol:
        case Protocol.SOAP11:
            content_type = "text/xml; charset=utf-8"
            body = _soap(_SOAP11_NS, summary, kind, rid, soap12=False)
        case Protocol.SOAP12:
            content_type = "application/soap+xml; charset=utf-8"
            body = _soap(_SOAP12_NS, summary, kind, rid, soap12=True)
        case Protocol.FHIR_JSON:
            content_type = "application/fhir+json; charset=utf-8"
            outcome: dict[str, object] = {"resourceType": "OperationOutcome"}
            if rid and _fhir_id(rid):
                outcome["id"] = rid
            outcome["issue"] = [{"severity": "error", "code": "transient", "diagnostics": summary}]
            body = _json(outcome)
        case Protocol.FHIR_XML:
            content_type = "application/fhir+xml; charset=utf-8"
            root = ET.Element("OperationOutcome", {"xmlns": _FHIR_NS})
            if rid and _fhir_id(rid):
                ET.SubElement(root, "id", {"value": rid})
            issue = ET.SubElement(root, "issue")
            for name, value in (("severity", "error"), ("code", "transient")):
                ET.SubElement(issue, name, {"value": value})
            ET.SubElement(issue, "diagnostics", {"value": summary})
            body = _xml(root)
        case _:
            content_type = "application/problem+json"
            problem: dict[str, object] = {
                "type": _PROBLEM_TYPE + kind,
                "title": _TITLES[kind],
                "status": STATUS,
                "detail": summary,
            }
            if rid:
                problem["instance"] = _REQUEST_URN + quote(rid, safe="-._~")
            body = _json(problem)
    headers = (
        ("Content-Type", content_type),
        ("Cache-Control", "no-store"),
        ("X-Kanta-Guard", kind),
    )
    return Answer(STATUS, headers, body)


def _fhir_id(text: str) -> bool:
    # FHIR R4 id datatype: [A-Za-z0-9\-\.]{1,64}.
    return 0 < len(text) <= 64 and all(c.isascii() and (c.isalnum() or c in "-.") for c in text)


def _json(document: dict[str, object]) -> bytes:
    return mask_text(json.dumps(document, ensure_ascii=False)).encode("utf-8", "replace")


def _xml(root: ET.Element) -> bytes:
    text = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")
    return mask_text(text).encode("utf-8", "replace")


def _soap(namespace: str, summary: str, kind: str, rid: str | None, *, soap12: bool) -> bytes:
    """A SOAP Fault blaming the receiver side; ``kg:upstreamError`` in its detail says which."""
    prefix = "env" if soap12 else "soap"
    envelope = ET.Element(f"{prefix}:Envelope", {f"xmlns:{prefix}": namespace})
    fault = ET.SubElement(ET.SubElement(envelope, f"{prefix}:Body"), f"{prefix}:Fault")
    if soap12:
        code = ET.SubElement(fault, "env:Code")
        ET.SubElement(code, "env:Value").text = "env:Receiver"
        reason = ET.SubElement(fault, "env:Reason")
        ET.SubElement(reason, "env:Text", {"xml:lang": "en"}).text = summary
        detail = ET.SubElement(fault, "env:Detail")
    else:
        ET.SubElement(fault, "faultcode").text = "soap:Server"
        ET.SubElement(fault, "faultstring").text = summary
        detail = ET.SubElement(fault, "detail")
    attrib = {"xmlns:kg": FINDINGS_NS, "kind": kind}
    if rid:
        attrib["requestId"] = rid
    ET.SubElement(detail, "kg:upstreamError", attrib).text = summary
    return _xml(envelope)


def _report(judged: dict[str, Any], protocol: Protocol) -> Report:
    """The blocking report kept on a flow (``mark``), as a Report again."""
    findings = tuple(
        Finding(
            rule=str(f["rule"]),
            action=Action(f["action"]),
            location=str(f["location"]),
            role=Role(f["role"]),
            evidence=str(f["evidence"]),
            value_hash=str(f["value_hash"]),
            explanation=str(f["explanation"]),
        )
        for f in judged.get("findings", ())
    )
    return Report(Verdict.BLOCK, findings, protocol)


def _response(answer: Answer) -> http.Response:
    return http.Response.make(
        answer.status, answer.body, [(k.encode(), v.encode()) for k, v in answer.headers]
    )


class UpstreamErrors:
    """Answers requests whose upstream is down or untrusted in the client's protocol."""

    def load(self, loader: Any) -> None:
        install()

    def answer(self, flow: http.HTTPFlow, reason: str) -> http.Response:
        """The answer to ``flow``, whose server connection failed with ``reason``.

        A flow the guard blocked meanwhile (the certificate guard marks a request whose lazy
        connection it refused: a production server certificate) gets the blocked answer of
        that report; any other the upstream-error answer. Never raises: a plain 502 if even
        that cannot be built.
        """
        try:
            judged = flow.metadata.get(METADATA_KEY)
            protocol = Protocol.OTHER
            if isinstance(judged, dict) and judged.get("protocol") in set(Protocol):
                protocol = Protocol(judged["protocol"])
            if protocol is Protocol.OTHER:
                protocol = protocol_of(flow_request(flow))
            if isinstance(judged, dict) and judged.get("verdict") == str(Verdict.BLOCK):
                return answer_of(flow, _report(judged, protocol))
            target = f"{flow.request.host}:{flow.request.port}"
            answer = upstream_answer(protocol, target, reason, request_id=flow.id)
            logger.warning(
                "kanta-guard: %s %s not forwarded: %s",
                flow.request.method,
                mask_text(target),
                mask_text(reason),
            )
            return _response(answer)
        except Exception:
            logger.exception("kanta-guard: could not build the upstream-error answer")
            return http.Response.make(
                STATUS,
                b"kanta-guard: the upstream server could not be reached; nothing was sent.\n",
                {"Content-Type": "text/plain", "Cache-Control": "no-store"},
            )

    def tls_clienthello(self, data: Any) -> None:
        """A client's TLS towards a reverse-mode upstream already found down: set up with the
        client alone (mitmproxy would try the failed connection again first, and crash), so
        that its requests can be answered."""
        server = data.context.server
        if server.error and not server.connected and _kept_open_mode(data.context):
            data.establish_server_tls_first = False

    def http_connect_error(self, flow: http.HTTPFlow) -> None:
        """A CONNECT to an upstream that cannot be reached: problem details, not plain text."""
        response = flow.response
        if response is None or response.status_code != STATUS or flow.server_conn.connected:
            return
        error = flow.server_conn.error or response.get_text(strict=False) or "connection failed"
        # mitmproxy's text (``Cannot connect to …: reason If you plan…``): the reason alone.
        reason = str(error).split(" If you plan", 1)[0]
        try:
            target = f"{flow.request.host}:{flow.request.port}"
            answer = upstream_answer(Protocol.OTHER, target, reason, request_id=flow.id)
        except Exception:
            logger.exception("kanta-guard: could not build the upstream-error answer")
            return
        flow.response = _response(answer)


def install() -> None:
    """Wrap mitmproxy's HTTP stream (and the start of its reverse mode) so that a failed server
    connection is answered by the :class:`UpstreamErrors` addon in the chain (mitmproxy's own
    behaviour where there is none). Calling it again changes nothing; RuntimeError if a target
    is not where expected."""
    import importlib

    with _lock:
        found: dict[str, Any] = {}
        for module_name, class_name, method in PATCH_TARGETS:
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise RuntimeError(f"kanta-guard cannot answer upstream errors: {exc}") from None
            owner = getattr(module, class_name, None)
            if not callable(getattr(owner, method, None)):
                raise RuntimeError(
                    "kanta-guard cannot answer upstream errors: not found in this mitmproxy: "
                    f"{module_name}.{class_name}.{method}"
                )
            found[method] = owner
        from mitmproxy.proxy.layers.http import _events, _hooks

        code = getattr(getattr(_events, "ErrorCode", None), "CONNECT_FAILED", None)
        if code is None:
            raise RuntimeError("kanta-guard cannot answer upstream errors: no CONNECT_FAILED")
        stream = found["handle_protocol_error"]
        original = stream.handle_protocol_error
        if not getattr(original, _MARK, False):
            wrapper = _answering(
                original, _events.ResponseProtocolError, code, _hooks.HttpErrorHook
            )
            setattr(wrapper, _MARK, True)
            stream.handle_protocol_error = wrapper
        reverse = found["finish_start"]
        start = reverse.finish_start
        if not getattr(start, _MARK, False):
            kept = _kept_open(start)
            setattr(kept, _MARK, True)
            reverse.finish_start = kept


def _answering(
    original: Callable[..., Generator[Any, Any, None]],
    event_type: type,
    connect_failed: object,
    error_hook: Callable[[http.HTTPFlow], object],
) -> Callable[..., Generator[Any, Any, None]]:
    """``HttpStream.handle_protocol_error``: a request read whole whose server connection
    failed gets its ``error`` hook as before, then the addon's answer as its response."""
    from mitmproxy import flow as mflow

    def handle_protocol_error(stream: Any, event: Any) -> Generator[Any, Any, None]:
        addon = _addon() if isinstance(event, event_type) else None
        flow = stream.flow
        if (
            addon is None
            or event.code != connect_failed
            or flow.response is not None
            or stream.client_state != stream.state_done  # the request was read whole
        ):
            return (yield from original(stream, event))
        flow.error = mflow.Error(event.message)  # mitmweb still shows what went wrong
        yield error_hook(flow)  # (the certificate guard marks a flow it refused)
        flow.response = addon.answer(flow, event.message)
        yield from stream.send_response()
        return None

    return handle_protocol_error


def _kept_open(original: Callable[..., Generator[Any, Any, Any]]) -> Callable[..., Any]:
    """``DestinationKnown.finish_start``: in reverse mode to an HTTP(S) upstream, a server
    connection that cannot be opened at once (eager connections) no longer closes the client's
    connection unanswered. The error stays on the server connection, as mitmproxy keeps a
    failed TLS handshake's, and each request is answered when it asks for it."""
    from mitmproxy.proxy import events
    from mitmproxy.proxy.layers.modes import ReverseProxy

    def finish_start(layer: Any) -> Generator[Any, Any, str | None]:
        err: str | None = yield from original(layer)
        if (
            err is None
            or _REFUSED_BY_GUARD in err  # (a refusal closes, as it always did)
            or _addon() is None
            or not isinstance(layer, ReverseProxy)
            or not _kept_open_mode(layer.context)
        ):
            return err
        layer.context.server.error = layer.context.server.error or err
        layer._handle_event = layer.child_layer.handle_event
        yield from layer.child_layer.handle_event(events.Start())
        return None

    return finish_start


def _kept_open_mode(context: Any) -> bool:
    """Whether the connection is in reverse mode to an HTTP(S) upstream."""
    spec = getattr(context.client, "proxy_mode", None)
    return getattr(spec, "scheme", None) in ("http", "https")


def _addon() -> UpstreamErrors | None:
    """The addon in the running master's chain, if there is one."""
    try:
        found = ctx.master.addons.get(_NAME)
    except Exception:  # no master (a test without one)
        return None
    return found if isinstance(found, UpstreamErrors) else None
