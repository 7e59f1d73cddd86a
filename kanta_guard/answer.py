"""The proxy's answer to a blocked request, in the client's own protocol.

SOAP 1.1 and 1.2 clients get a SOAP Fault, FHIR clients an OperationOutcome (JSON or XML), any
other client an RFC 9457 problem details object. Each answer lists the findings that count, so the
sender can find and fix the field, but only as masked evidence and keyed hashes: every string that
comes from a finding is passed through :func:`~kanta_guard.idcode.mask_text`, and the serialised
body is masked once more before it is returned (defence in depth).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from urllib.parse import quote

from .fhirpath import from_json_pointer, from_xpath
from .idcode import mask_text
from .model import MAX_COUNTED, MAX_FINDINGS, Action, Finding, Protocol, Report
from .rules import REFUSED, UNAVAILABLE, UNSCANNABLE

__all__ = ["FINDINGS_NS", "Answer", "blocked_answer", "blocked_status"]

#: Namespace of the ``kg:findings`` element in a SOAP Fault's detail.
FINDINGS_NS = "urn:kanta-guard:findings"
_SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"  # SOAP 1.1 §4.1.2
_SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"  # SOAP 1.2 Part 1 §5.1
_FHIR_NS = "http://hl7.org/fhir"
_PROBLEM_TYPE = "urn:kanta-guard:problem:"
_REQUEST_URN = "urn:kanta-guard:request:"

#: An ``unscannable`` finding whose explanation starts so is a body over the size limit: 413.
_TOO_LARGE = "too large:"
#: Words in an ``unscannable`` explanation that make it a FHIR ``structure`` issue (the content
#: cannot be parsed or decoded) rather than ``processing`` (a limit or feature of the guard).
_STRUCTURE_MARKERS = (
    "parse",
    "syntax",
    "malformed",
    "well-formed",
    "decode",
    "charset",
    "encoding",
    "base64",
    "doctype",
)

# XML 1.0 §2.2 Char: anything else (C0 controls, lone surrogates, U+FFFE/FFFF) cannot be
# serialised, so it is replaced rather than letting the answer become malformed.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# FHIR R4 id datatype: [A-Za-z0-9\-\.]{1,64}.
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# A header value carries visible ASCII only (RFC 9110 §5.5); commas separate the list.
_NOT_HEADER_TOKEN = re.compile(r"[^\x21-\x2b\x2d-\x7e]")

#: One OperationOutcome issue: each member a string or, for location and expression, a list.
_Issue = dict[str, str | list[str]]

_FORBIDDEN = HTTPStatus.FORBIDDEN.value  # 403: a rule violation
_TOO_BIG = HTTPStatus.REQUEST_ENTITY_TOO_LARGE.value  # 413: over the size limit
_UNPROCESSABLE = HTTPStatus.UNPROCESSABLE_ENTITY.value  # 422: otherwise unreadable
_UNAVAILABLE = HTTPStatus.SERVICE_UNAVAILABLE.value  # 503: the guard cannot judge right now

_TITLES = {
    _FORBIDDEN: "Request blocked: it carries data the policy forbids",
    _TOO_BIG: "Request blocked: too large to scan",
    _UNPROCESSABLE: "Request blocked: could not be scanned",
    _UNAVAILABLE: "Request refused: kanta-guard cannot judge traffic right now",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP response ready to send: status, headers (in order) and body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def blocked_status(report: Report) -> int:
    """The HTTP status of the blocked answer for ``report``.

    503 when the guard itself could not judge (``guard.unavailable``: no valid policy, a log
    that cannot be written); else 403 when any blocking finding is a rule violation (or a refused
    protocol path); when every blocking finding is ``unscannable``, 413 if one says the body is
    over the size limit, else 422. A report with no blocking finding (the caller blocked it
    anyway) gets 403.
    """
    blocking = [f for f in report.findings if f.action is Action.BLOCK]
    if any(f.rule == UNAVAILABLE.id for f in blocking):
        return _UNAVAILABLE
    if not blocking or any(f.rule != UNSCANNABLE.id for f in blocking):
        return _FORBIDDEN
    if any(_is_too_large(f) for f in blocking):
        return _TOO_BIG
    return _UNPROCESSABLE


def blocked_answer(report: Report, *, request_id: str | None = None) -> Answer:
    """The answer to a blocked request, in the form ``report.protocol`` calls for.

    ``request_id`` (the flow id, say) is echoed so a complaint can be matched with the event log:
    as the problem's ``instance``, the OperationOutcome's ``id`` and ``kg:findings/@requestId``.
    """
    status = blocked_status(report)
    counted = [f for f in report.findings if f.action is not Action.OFF]
    # At most MAX_FINDINGS listed, however the report was built: the answer stays small.
    shown = [_masked(f) for f in counted[:MAX_FINDINGS]]
    omitted = report.omitted + max(0, len(counted) - MAX_FINDINGS)
    rules = [mask_text(r) for r in report.rules]
    rid = mask_text(request_id) if request_id else None
    summary = _summary(status, rules, omitted, at_least=report.omitted_partial)
    match report.protocol:
        case Protocol.SOAP11:
            content_type = "text/xml; charset=utf-8"
            body = _soap11(summary, shown, rid, omitted)
        case Protocol.SOAP12:
            content_type = "application/soap+xml; charset=utf-8"
            body = _soap12(summary, shown, rid, omitted)
        case Protocol.FHIR_JSON:
            content_type = "application/fhir+json; charset=utf-8"
            to_path = partial(from_json_pointer, resource=report.resource)
            body = _fhir_json(_issues(status, summary, shown, to_path), rid)
        case Protocol.FHIR_XML:
            content_type = "application/fhir+xml; charset=utf-8"
            body = _fhir_xml(_issues(status, summary, shown, from_xpath), rid)
        case _:
            content_type = "application/problem+json"
            body = _json(_problem(status, summary, shown, rules, rid, omitted))
    headers = (
        ("Content-Type", content_type),
        ("Cache-Control", "no-store"),
        ("X-Kanta-Guard", "blocked"),
        ("X-Kanta-Guard-Rules", ",".join(_NOT_HEADER_TOKEN.sub("_", r) for r in rules)),
    )
    return Answer(status, headers, body)


def _is_too_large(finding: Finding) -> bool:
    return finding.rule == UNSCANNABLE.id and finding.explanation.lstrip().lower().startswith(
        _TOO_LARGE
    )


def _masked(finding: Finding) -> dict[str, str]:
    """The finding's fields, each masked (locations and explanations may quote request text)."""
    return {key: mask_text(value) for key, value in finding.as_dict().items()}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _summary(status: int, rules: list[str], omitted: int = 0, *, at_least: bool = False) -> str:
    """One line for ``faultstring``, ``Reason/Text``, the first issue and the problem's detail;
    it says how many findings are not listed."""
    listed = ", ".join(rules) or "none"
    if status == _UNAVAILABLE:
        text = "kanta-guard cannot judge traffic right now, so nothing is forwarded"
    elif status == _TOO_BIG:
        text = "the request is larger than kanta-guard can scan, so it was not forwarded"
    elif status == _UNPROCESSABLE:
        text = "the request could not be fully scanned, so it was not forwarded"
    else:
        text = "the request carries data the policy does not allow to be sent"
    if omitted >= MAX_COUNTED or (omitted and at_least):
        more = f" At least {omitted} more findings are not listed (counting stopped there)."
    else:
        more = f" {omitted} more findings are not listed." if omitted else ""
    return _one_line(f"Blocked by kanta-guard: {text} (rules: {listed}).{more}")


def _issue_code(finding: dict[str, str]) -> str:
    """FHIR R4 IssueType: ``security`` for a rule violation, else what kept the scan out."""
    if finding["rule"] == UNAVAILABLE.id:
        return "transient"
    if finding["rule"] == REFUSED.id:
        return "not-supported"
    if finding["rule"] != UNSCANNABLE.id:
        return "security"
    explanation = finding["explanation"].lstrip().lower()
    if explanation.startswith(_TOO_LARGE):
        return "too-costly"
    if any(marker in explanation for marker in _STRUCTURE_MARKERS):
        return "structure"
    return "processing"


def _diagnostics(finding: dict[str, str]) -> str:
    extras = []
    if finding["evidence"]:
        extras.append(f"evidence {finding['evidence']}")
    if finding["value_hash"]:
        extras.append(f"value hash {finding['value_hash']}")
    tail = f" ({', '.join(extras)})" if extras else ""
    return _one_line(f"{finding['rule']}: {finding['explanation']}{tail}")


# --- JSON -----------------------------------------------------------------------------------------


def _json(document: dict[str, object]) -> bytes:
    text = json.dumps(document, ensure_ascii=False)
    # A lone surrogate (from surrogateescape-decoded input) cannot be encoded: replace it.
    return mask_text(text).encode("utf-8", "replace")


def _issues(
    status: int,
    summary: str,
    shown: list[dict[str, str]],
    to_path: Callable[[str], str | None],
) -> list[_Issue]:
    """FHIR R4 OperationOutcome.issue: a summary issue, then one issue per finding.

    Members in the order of the R4 element definitions (severity, code, diagnostics, location,
    expression), which the XML form must keep. ``to_path`` gives a location's FHIRPath.
    """
    summary_code = {_FORBIDDEN: "security", _TOO_BIG: "too-costly", _UNAVAILABLE: "transient"}.get(
        status, "processing"
    )
    issues: list[_Issue] = [{"severity": "error", "code": summary_code, "diagnostics": summary}]
    for finding in shown:
        issue: _Issue = {
            "severity": "error" if finding["action"] == Action.BLOCK.value else "warning",
            "code": _issue_code(finding),
            "diagnostics": _diagnostics(finding),
        }
        if finding["location"]:
            # R4: ``location`` (deprecated) is an XPath, where the guard's own location goes
            # (its XPath, or the JSON pointer); ``expression`` is FHIRPath from the resource
            # sent, only for a location inside it (not a URL, a header or a decoded part).
            issue["location"] = [finding["location"]]
            expression = to_path(finding["location"])
            if expression is not None:
                issue["expression"] = [mask_text(expression)]
        issues.append(issue)
    return issues


def _fhir_id(request_id: str | None) -> str | None:
    return request_id if request_id and _FHIR_ID.fullmatch(request_id) else None


def _fhir_json(issues: list[_Issue], request_id: str | None) -> bytes:
    outcome: dict[str, object] = {"resourceType": "OperationOutcome"}
    if fhir_id := _fhir_id(request_id):
        outcome["id"] = fhir_id
    outcome["issue"] = issues
    return _json(outcome)


def _problem(
    status: int,
    summary: str,
    shown: list[dict[str, str]],
    rules: list[str],
    request_id: str | None,
    omitted: int = 0,
) -> dict[str, object]:
    """RFC 9457 problem details, with ``rules``, ``findings`` and (when some are not listed)
    ``findings_omitted`` as extension members (§3.2)."""
    kind = {_FORBIDDEN: "blocked", _UNAVAILABLE: "unavailable"}.get(status, "unscannable")
    problem: dict[str, object] = {
        "type": _PROBLEM_TYPE + kind,
        "title": _TITLES[status],  # §3.1.3: the same for every occurrence of the type
        "status": status,
        "detail": summary,
    }
    if request_id:
        problem["instance"] = _REQUEST_URN + quote(request_id, safe="-._~")
    problem["rules"] = rules
    problem["findings"] = shown
    if omitted:
        problem["findings_omitted"] = omitted
    return problem


# --- XML ------------------------------------------------------------------------------------------
# Built with xml.etree.ElementTree, which escapes text and attribute values; names are written with
# their prefix and the prefixes declared by hand, because a QName in text content (``soap:Client``)
# needs a prefix known in advance. The stdlib is used rather than lxml because it is fully typed
# (mypy --strict) and nothing here needs lxml's features.


def _x(text: str) -> str:
    return _NOT_XML_CHAR.sub("\ufffd", text)


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {key: _x(value) for key, value in attrib.items()})
    if text is not None:
        element.text = _x(text)
    return element


def _xml(root: ET.Element) -> bytes:
    text = ET.tostring(root, encoding="unicode")
    body = '<?xml version="1.0" encoding="utf-8"?>\n' + mask_text(text)
    return body.encode("utf-8", "replace")


def _findings_xml(
    parent: ET.Element, shown: list[dict[str, str]], request_id: str | None, omitted: int = 0
) -> None:
    attrib = {"xmlns:kg": FINDINGS_NS}
    if request_id:
        attrib["requestId"] = request_id
    if omitted:
        attrib["omitted"] = str(omitted)  # findings not listed (the cap: MAX_FINDINGS)
    findings = _el(parent, "kg:findings", **attrib)
    for finding in shown:
        _el(
            findings,
            "kg:finding",
            finding["explanation"],
            rule=finding["rule"],
            action=finding["action"],
            role=finding["role"],
            location=finding["location"],
            evidence=finding["evidence"],
            valueHash=finding["value_hash"],
        )


def _soap11(
    summary: str, shown: list[dict[str, str]], request_id: str | None, omitted: int = 0
) -> bytes:
    """SOAP 1.1 §4.4: faultcode ``Client`` (the message must change), faultstring, detail.

    The Fault's children are unqualified (§4.4); ``detail`` entries are namespace-qualified.
    """
    envelope = ET.Element("soap:Envelope", {"xmlns:soap": _SOAP11_NS})
    fault = _el(_el(envelope, "soap:Body"), "soap:Fault")
    _el(fault, "faultcode", "soap:Client")
    _el(fault, "faultstring", summary)
    _findings_xml(_el(fault, "detail"), shown, request_id, omitted)
    return _xml(envelope)


def _soap12(
    summary: str, shown: list[dict[str, str]], request_id: str | None, omitted: int = 0
) -> bytes:
    """SOAP 1.2 Part 1 §5.4: Code/Value ``env:Sender``, Reason/Text with xml:lang, Detail."""
    envelope = ET.Element("env:Envelope", {"xmlns:env": _SOAP12_NS})
    fault = _el(_el(envelope, "env:Body"), "env:Fault")
    _el(_el(fault, "env:Code"), "env:Value", "env:Sender")
    _el(_el(fault, "env:Reason"), "env:Text", summary, **{"xml:lang": "en"})
    _findings_xml(_el(fault, "env:Detail"), shown, request_id, omitted)
    return _xml(envelope)


def _fhir_xml(issues: list[_Issue], request_id: str | None) -> bytes:
    """The OperationOutcome in FHIR XML: every primitive is an element with a ``value``."""
    root = ET.Element("OperationOutcome", {"xmlns": _FHIR_NS})
    if fhir_id := _fhir_id(request_id):
        _el(root, "id", value=fhir_id)
    for issue in issues:
        element = _el(root, "issue")
        for name, value in issue.items():
            for item in [value] if isinstance(value, str) else value:
                _el(element, name, value=item)
    return _xml(root)
