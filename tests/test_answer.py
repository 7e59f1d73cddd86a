"""Tests of kanta_guard.answer: the blocked answer in each protocol's own form."""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest
from lxml import etree

from kanta_guard.answer import FINDINGS_NS, Answer, blocked_answer, blocked_status
from kanta_guard.model import Action, Finding, Protocol, Report, Role, Verdict

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
FHIR = "http://hl7.org/fhir"
KG = FINDINGS_NS
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

REAL = Finding(
    rule="hetu.real",
    action=Action.BLOCK,
    location="/soap:Envelope/soap:Body/hl7:PRPA_IN201305UV02/patient/id[1]/@extension",
    role=Role.PATIENT,
    evidence="******-****",
    value_hash="hmac:0123456789abcdef",
    explanation='a real personal identity code (individual number 002-899) <in> "quotes" & co',
)
MALFORMED_TEST = Finding(
    rule="hetu.malformed_test",
    action=Action.WARN,
    location="/Patient/identifier[2]/value/@value",
    role=Role.PATIENT,
    evidence="******-****",
    value_hash="hmac:fedcba9876543210",
    explanation="a 900-series value with a wrong check character",
)
TOO_LARGE = Finding(
    rule="unscannable",
    action=Action.BLOCK,
    location="body",
    role=Role.MESSAGE,
    evidence="",
    value_hash="",
    explanation="too large: decoded content exceeds the 10485760-byte limit",
)
PARSE_ERROR = Finding(
    rule="unscannable",
    action=Action.BLOCK,
    location="body/part[2]",
    role=Role.MESSAGE,
    evidence="",
    value_hash="",
    explanation="XML parse error at line 3: Opening and ending tag mismatch",
)
DEPTH = Finding(
    rule="unscannable",
    action=Action.BLOCK,
    location="body",
    role=Role.MESSAGE,
    evidence="",
    value_hash="",
    explanation="nesting deeper than 64 levels",
)
OFF = Finding(
    rule="hetu.off_rule",
    action=Action.OFF,
    location="/off",
    role=Role.UNKNOWN,
    evidence="******-****",
    value_hash="hmac:0000000000000000",
    explanation="a rule the policy turned off",
)

# Real-range code (valid checksum, individual number 025): appears here only to prove it is masked.
LEAK = "050775-0251"


def report(*findings: Finding, protocol: Protocol = Protocol.OTHER, resource: str = "") -> Report:
    verdict = Verdict.BLOCK if any(f.action is Action.BLOCK for f in findings) else Verdict.WARN
    return Report(verdict=verdict, findings=findings, protocol=protocol, resource=resource)


def header(answer: Answer, name: str) -> str:
    values = [v for k, v in answer.headers if k.lower() == name.lower()]
    assert len(values) == 1, name
    return values[0]


def parse_xml(answer: Answer) -> etree._Element:
    return etree.fromstring(answer.body, etree.XMLParser(resolve_entities=False, no_network=True))


def find(element: etree._Element, path: str) -> etree._Element:
    found = element.find(path)
    assert found is not None, path
    return found


def text(element: etree._Element) -> str:
    assert isinstance(element.text, str)
    return element.text


def qname_value(element: etree._Element) -> tuple[str | None, str]:
    """The namespace and local name of a QName written as an element's text."""
    prefix, _, local = text(element).partition(":")
    return element.nsmap.get(prefix), local


@pytest.mark.parametrize(
    ("findings", "status"),
    [
        ((REAL,), 403),
        ((REAL, MALFORMED_TEST), 403),
        ((REAL, TOO_LARGE), 403),  # a rule violation wins over unscannable
        ((TOO_LARGE,), 413),
        ((PARSE_ERROR, TOO_LARGE), 413),
        ((PARSE_ERROR,), 422),
        ((DEPTH,), 422),
        ((MALFORMED_TEST, PARSE_ERROR), 422),  # a warning does not count
        ((MALFORMED_TEST,), 403),  # blocked by the caller with no blocking finding
        ((), 403),
    ],
)
def test_status(findings: tuple[Finding, ...], status: int) -> None:
    """The status is 403 for a violation, 413 over the size limit, 422 otherwise unscannable."""
    assert blocked_status(report(*findings)) == status
    for protocol in Protocol:
        assert blocked_answer(report(*findings, protocol=protocol)).status == status


@pytest.mark.parametrize(
    ("protocol", "content_type"),
    [
        (Protocol.SOAP11, "text/xml; charset=utf-8"),
        (Protocol.SOAP12, "application/soap+xml; charset=utf-8"),
        (Protocol.FHIR_JSON, "application/fhir+json; charset=utf-8"),
        (Protocol.FHIR_XML, "application/fhir+xml; charset=utf-8"),
        (Protocol.OTHER, "application/problem+json"),
    ],
)
def test_headers(protocol: Protocol, content_type: str) -> None:
    """Every answer has its content type, no-store and the kanta-guard headers listing the rules."""
    answer = blocked_answer(report(REAL, MALFORMED_TEST, OFF, REAL, protocol=protocol))
    assert header(answer, "Content-Type") == content_type
    assert header(answer, "Cache-Control") == "no-store"
    assert header(answer, "X-Kanta-Guard") == "blocked"
    assert header(answer, "X-Kanta-Guard-Rules") == "hetu.real,hetu.malformed_test"


def test_rules_header_is_one_visible_token_list() -> None:
    """A rule id with a comma, space or line break cannot split or break the rules header."""
    odd = Finding("bad,rule\r\nX-Injected: 1", Action.BLOCK, "body", Role.UNKNOWN, "", "", "odd")
    value = header(blocked_answer(report(odd)), "X-Kanta-Guard-Rules")
    assert value == "bad_rule__X-Injected:_1"


def test_soap11_fault() -> None:
    """SOAP 1.1 gets a Fault with faultcode soap:Client in the 1.1 namespace and kg:findings."""
    answer = blocked_answer(
        report(REAL, MALFORMED_TEST, OFF, protocol=Protocol.SOAP11), request_id="f-1"
    )
    root = parse_xml(answer)
    assert root.tag == f"{{{SOAP11}}}Envelope"
    fault = find(root, f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault")
    assert [child.tag for child in fault] == ["faultcode", "faultstring", "detail"]
    assert qname_value(find(fault, "faultcode")) == (SOAP11, "Client")
    reason = text(find(fault, "faultstring"))
    assert "\n" not in reason and "hetu.real" in reason
    findings = find(fault, f"detail/{{{KG}}}findings")
    assert findings.get("requestId") == "f-1"
    items = findings.findall(f"{{{KG}}}finding")
    assert len(items) == 2  # the off finding is left out
    assert {str(k): str(v) for k, v in items[0].attrib.items()} == {
        "rule": "hetu.real",
        "action": "block",
        "role": "patient",
        "location": REAL.location,
        "evidence": "******-****",
        "valueHash": "hmac:0123456789abcdef",
    }
    assert items[0].text == REAL.explanation
    assert items[1].get("action") == "warn"


def test_soap12_fault() -> None:
    """SOAP 1.2 gets a Fault with Code/Value env:Sender, an English Reason and kg:findings."""
    answer = blocked_answer(report(PARSE_ERROR, protocol=Protocol.SOAP12))
    root = parse_xml(answer)
    assert root.tag == f"{{{SOAP12}}}Envelope"
    fault = find(root, f"{{{SOAP12}}}Body/{{{SOAP12}}}Fault")
    assert [child.tag for child in fault] == [
        f"{{{SOAP12}}}{n}" for n in ("Code", "Reason", "Detail")
    ]
    assert qname_value(find(fault, f"{{{SOAP12}}}Code/{{{SOAP12}}}Value")) == (SOAP12, "Sender")
    reason = find(fault, f"{{{SOAP12}}}Reason/{{{SOAP12}}}Text")
    assert reason.get(XML_LANG) == "en"
    assert "could not be fully scanned" in text(reason)
    (item,) = fault.findall(f"{{{SOAP12}}}Detail/{{{KG}}}findings/{{{KG}}}finding")
    assert (item.get("rule"), item.get("location"), item.text) == (
        "unscannable",
        "body/part[2]",
        PARSE_ERROR.explanation,
    )
    assert find(fault, f"{{{SOAP12}}}Detail/{{{KG}}}findings").get("requestId") is None


def test_fhir_json_operation_outcome() -> None:
    """FHIR JSON gets an OperationOutcome: a summary issue, then one issue per finding."""
    answer = blocked_answer(
        report(REAL, MALFORMED_TEST, OFF, protocol=Protocol.FHIR_JSON), request_id="abc-123"
    )
    outcome = json.loads(answer.body)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["id"] == "abc-123"
    summary, real, warn = outcome["issue"]
    assert summary["severity"] == "error" and summary["code"] == "security"
    assert "hetu.real" in summary["diagnostics"]
    assert real == {
        "severity": "error",
        "code": "security",
        "diagnostics": f"hetu.real: {REAL.explanation} "
        "(evidence ******-****, value hash hmac:0123456789abcdef)",
        # A location that is not in a FHIR JSON resource (here a SOAP XPath): no expression.
        "location": [REAL.location],
    }
    assert (warn["severity"], warn["code"]) == ("warning", "security")


def with_location(finding: Finding, location: str) -> Finding:
    return Finding(
        finding.rule,
        finding.action,
        location,
        finding.role,
        finding.evidence,
        finding.value_hash,
        finding.explanation,
    )


@pytest.mark.parametrize(
    ("protocol", "resource", "location", "expression"),
    [
        (Protocol.FHIR_JSON, "Patient", "/identifier/0/value", ["Patient.identifier[0].value"]),
        (
            Protocol.FHIR_JSON,
            "Bundle",
            "/entry/0/resource/identifier/0/value",
            ["Bundle.entry[0].resource.identifier[0].value"],
        ),
        (
            Protocol.FHIR_XML,
            "",
            "/Bundle/entry[2]/resource/Patient/identifier/value/@value",
            ["Bundle.entry[1].resource.identifier.value"],
        ),
        # Inside a Base64 value: the element holding it.
        (
            Protocol.FHIR_JSON,
            "Bundle",
            "/entry/1/resource/data!base64:line 1",
            ["Bundle.entry[1].resource.data"],
        ),
        (Protocol.FHIR_JSON, "Patient", "url:query:identifier", None),
        (Protocol.FHIR_XML, "", "header:X-Patient", None),
        # A FHIR JSON body whose resource type the scan did not see (none at the root).
        (Protocol.FHIR_JSON, "", "/identifier/0/value", None),
    ],
)
def test_fhir_expression_is_fhirpath(
    protocol: Protocol, resource: str, location: str, expression: list[str] | None
) -> None:
    """issue.expression is FHIRPath from the resource sent; issue.location keeps the guard's
    JSON pointer or XPath; a location not in the resource has no expression."""
    finding = with_location(REAL, location)
    answer = blocked_answer(report(finding, protocol=protocol, resource=resource))
    if protocol is Protocol.FHIR_JSON:
        issue = json.loads(answer.body)["issue"][1]
        assert issue["location"] == [location]
        assert issue.get("expression") == expression
    else:
        element = find(parse_xml(answer), f"{{{FHIR}}}issue[2]")
        got = [e.get("value") for e in element.findall(f"{{{FHIR}}}expression")]
        assert got == (expression or [])
        assert [e.get("value") for e in element.findall(f"{{{FHIR}}}location")] == [location]


@pytest.mark.parametrize(
    ("finding", "summary_code", "code"),
    [
        (TOO_LARGE, "too-costly", "too-costly"),
        (PARSE_ERROR, "processing", "structure"),
        (DEPTH, "processing", "processing"),
    ],
)
def test_fhir_issue_codes_of_unscannable(finding: Finding, summary_code: str, code: str) -> None:
    """An unscannable finding is too-costly, structure or processing, as its explanation says."""
    outcome = json.loads(blocked_answer(report(finding, protocol=Protocol.FHIR_JSON)).body)
    assert [issue["code"] for issue in outcome["issue"]] == [summary_code, code]
    assert outcome["issue"][1]["diagnostics"] == f"unscannable: {finding.explanation}"


@pytest.mark.parametrize(
    ("request_id", "fhir_id"),
    [
        (None, None),
        ("3f2a9c1e-0d4b-4c3e-9a55-0b7e6d1f2a33", "3f2a9c1e-0d4b-4c3e-9a55-0b7e6d1f2a33"),
        ("not a FHIR id!", None),
    ],
)
def test_fhir_id_only_when_valid(request_id: str | None, fhir_id: str | None) -> None:
    """The request id becomes the OperationOutcome id only when it is a valid FHIR id."""
    outcome = json.loads(
        blocked_answer(report(REAL, protocol=Protocol.FHIR_JSON), request_id=request_id).body
    )
    assert outcome.get("id") == fhir_id


def test_fhir_xml_matches_fhir_json() -> None:
    """FHIR XML carries the same OperationOutcome, in the FHIR namespace, members in R4 order
    (the expressions aside: an XPath converts only in XML, a JSON pointer only in JSON)."""
    findings = (REAL, MALFORMED_TEST, PARSE_ERROR)
    as_json = json.loads(blocked_answer(report(*findings, protocol=Protocol.FHIR_JSON)).body)
    root = parse_xml(blocked_answer(report(*findings, protocol=Protocol.FHIR_XML)))
    assert root.tag == f"{{{FHIR}}}OperationOutcome"
    issues = []
    for element in root.findall(f"{{{FHIR}}}issue"):
        issue: dict[str, str | list[str]] = {}
        for child in element:
            name = etree.QName(child).localname
            assert etree.QName(child).namespace == FHIR
            value = child.get("value")
            assert value is not None
            if name in ("location", "expression"):
                values = issue.setdefault(name, [])
                assert isinstance(values, list)
                values.append(value)
            else:
                issue[name] = value
        issues.append(issue)
    assert issues[2].pop("expression") == ["Patient.identifier[1].value"]
    assert issues == as_json["issue"]
    order = ["severity", "code", "diagnostics", "location", "expression"]
    assert [etree.QName(c).localname for c in find(root, f"{{{FHIR}}}issue[3]")] == order


def test_problem_details() -> None:
    """Other clients get RFC 9457 problem details with rules and findings as extension members."""
    answer = blocked_answer(report(REAL, MALFORMED_TEST, OFF), request_id="f/1 x")
    problem = json.loads(answer.body)
    assert problem["type"] == "urn:kanta-guard:problem:blocked"
    assert problem["status"] == answer.status == 403
    assert problem["title"] and "\n" not in problem["detail"]
    assert problem["instance"] == "urn:kanta-guard:request:f%2F1%20x"
    assert problem["rules"] == ["hetu.real", "hetu.malformed_test"]
    assert problem["findings"] == [REAL.as_dict(), MALFORMED_TEST.as_dict()]


@pytest.mark.parametrize(("finding", "status"), [(TOO_LARGE, 413), (PARSE_ERROR, 422)])
def test_problem_details_unscannable(finding: Finding, status: int) -> None:
    """An unscannable request gets the unscannable problem type and its status, no instance."""
    problem = json.loads(blocked_answer(report(finding)).body)
    assert problem["type"] == "urn:kanta-guard:problem:unscannable"
    assert problem["status"] == status
    assert "instance" not in problem


LEAKY = Finding(
    rule="hetu.real",
    action=Action.BLOCK,
    location=f"url:/Patient?identifier=urn:oid:1.2.246.21|{LEAK}",
    role=Role.URL,
    evidence=LEAK,
    value_hash="hmac:0123456789abcdef",
    explanation=f"the code {LEAK} is a real person's; so is {LEAK.replace('-', chr(0x2013))}",
)


@pytest.mark.parametrize("protocol", list(Protocol))
def test_codes_in_findings_come_out_masked(protocol: Protocol) -> None:
    """A code that slipped into a finding's location, evidence or explanation is masked."""
    answer = blocked_answer(report(LEAKY, protocol=protocol), request_id=f"id-{LEAK}")
    text = answer.body.decode("utf-8")
    assert "050775" not in text and "0251" not in text
    assert "******-****" in text
    assert all("050775" not in value for _, value in answer.headers)


def test_text_that_xml_cannot_hold_is_replaced() -> None:
    """Control characters and lone surrogates in a finding do not make the XML answer malformed."""
    odd = Finding(
        "hetu.real", Action.BLOCK, "body\x00", Role.UNKNOWN, "", "", "bad \x1b\udc80 text"
    )
    for protocol in (Protocol.SOAP11, Protocol.SOAP12, Protocol.FHIR_XML):
        root = parse_xml(blocked_answer(report(odd, protocol=protocol)))
        texts = [*root.itertext(), *(v for e in root.iter() for v in e.attrib.values())]
        assert any("bad \ufffd\ufffd text" in t for t in texts), protocol
    for protocol in (Protocol.FHIR_JSON, Protocol.OTHER):
        json.loads(blocked_answer(report(odd, protocol=protocol)).body)


@pytest.mark.parametrize("protocol", list(Protocol))
def test_findings_past_the_cap_are_counted_not_listed(protocol: Protocol) -> None:
    """A report with more findings than MAX_FINDINGS (or omitted ones) lists the first
    MAX_FINDINGS and says how many more there are; the answer stays a few tens of KB."""
    from kanta_guard.model import MAX_FINDINGS

    report = Report(
        Verdict.BLOCK, (REAL,) * (MAX_FINDINGS + 5), protocol, omitted=262_000 - MAX_FINDINGS
    )
    answer = blocked_answer(report)
    text = answer.body.decode("utf-8")
    assert text.count("hmac:0123456789abcdef") == MAX_FINDINGS
    assert "261905 more findings are not listed" in text
    assert len(answer.body) < 64 * 1024
    if protocol is Protocol.OTHER:
        assert json.loads(text)["findings_omitted"] == 261_905
    if protocol in (Protocol.SOAP11, Protocol.SOAP12):
        findings = etree.fromstring(answer.body).find(f".//{{{KG}}}findings")
        assert findings is not None and findings.get("omitted") == "261905"


def test_the_echoed_id_is_the_logs() -> None:
    """The answer names its request as the blocked-request log does, also where a flow's random
    UUID reads as a code (``bc391622-0645-…``: masked in both), so a tester finds the record."""
    from kanta_guard.eventlog import make_record

    flow_id = "bc391622-0645-45f3-a2b9-165b8e93f95e"
    blocked = report(REAL)
    logged = make_record(blocked, flow_id=flow_id, client=None, method="POST", host="h", path="/")
    problem = json.loads(blocked_answer(blocked, request_id=flow_id).body)
    instance = unquote(problem["instance"].removeprefix("urn:kanta-guard:request:"))
    assert instance == logged["flow_id"] != flow_id
