"""End to end: a real client, the real proxy (a ``kanta-guard run`` subprocess), a real upstream.

Every test proves what the upstream received: a clean request arrives byte for byte, a blocked one
not at all. Clients vary on purpose (requests, httpx, http.client, urllib, curl). All traffic stays
on 127.0.0.1 / localhost. Only 900-series test codes are used, except ``REAL`` and ``REAL_KELA``
where a test proves a real-range code is blocked; those two must never appear in an answer, the
blocked-request log or the proxy's output (checked by the last test).
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from lxml import etree

from . import bodies
from .conftest import (
    LOOPBACK,
    UPSTREAM_BODY,
    Proxy,
    Received,
    Upstream,
    children,
    clean_env,
    listening,
    marker,
    requests_session,
)

pytestmark = pytest.mark.e2e

#: Real-range codes (valid check characters): only ever sent to prove they are blocked.
REAL = "010101-123N"
REAL_KELA = "050775-0251"  # the patient of Kela's public LM_varaus.xml test document
REAL_CODES = (REAL, REAL_KELA)

SOAP11 = bodies.SOAP11_NS
SOAP12 = bodies.SOAP12_NS
KG = "urn:kanta-guard:findings"
MASKED = "******-****"
HASH = re.compile(r"hmac:[0-9a-f]{16}")
#: Headers a client sets that must reach the upstream unchanged.
COMPARED = ("Content-Type", "Content-Length", "SOAPAction", "Content-Encoding", "X-E2e-Case")


# --- helpers --------------------------------------------------------------------------------------


def httpx_client(proxy: Proxy, verify: ssl.SSLContext | bool = True) -> httpx.Client:
    """An httpx client going through ``proxy`` only (no environment proxies)."""
    return httpx.Client(proxy=proxy.url, trust_env=False, verify=verify, timeout=30)


def soap11_headers(case: str) -> dict[str, str]:
    return {
        "Content-Type": bodies.SOAP11_TYPE,
        "SOAPAction": bodies.SOAP_ACTION,
        "X-E2e-Case": case,
    }


def assert_forwarded(got: list[Received], body: bytes, sent: dict[str, str]) -> None:
    """The upstream received exactly one request with exactly ``body`` and the sent headers."""
    assert len(got) == 1, f"upstream received {len(got)} requests"
    assert got[0].body == body
    for name in COMPARED:
        expected = str(len(body)) if name == "Content-Length" else sent.get(name)
        assert got[0].header(name) == expected, name


def assert_blocked(status: int, headers: Mapping[str, str], content: bytes) -> None:
    """The proxy's own answer: a 4xx marked blocked, with no real code anywhere in it."""
    headers = {k.lower(): v for k, v in headers.items()}
    assert 400 <= status < 500
    assert headers["x-kanta-guard"] == "blocked"
    answer = content.decode("utf-8") + "\n".join(f"{k}: {v}" for k, v in headers.items())
    for code in REAL_CODES:
        assert code not in answer
        assert code.replace("-", "") not in answer


def by_local_name(location: str) -> str:
    """A guard location (``/Envelope/Body/.../id/@extension``) as a namespace-blind XPath."""
    steps = []
    for step in location.strip("/").split("/"):
        if step == "text()":
            steps.append(step)
        elif step.startswith("@"):
            steps.append(f"@*[local-name()='{step[1:]}']")
        else:
            match = re.fullmatch(r"([\w.-]+)(\[\d+\])?", step)
            assert match, f"not an XPath step: {step!r}"
            steps.append(f"*[local-name()='{match[1]}']{match[2] or ''}")
    return "/" + "/".join(steps)


def findings(fault: etree._Element) -> list[etree._Element]:
    return fault.findall(f".//{{{KG}}}findings/{{{KG}}}finding")


# --- 1-2: SOAP 1.1 in regular mode ----------------------------------------------------------------


def test_clean_soap11_passes_unchanged(proxy: Proxy, upstream: Upstream) -> None:
    """A clean SOAP 1.1 message carrying a 900-series CDA reaches the upstream byte for byte."""
    path = marker("soap11-clean")
    body = bodies.soap11()
    headers = soap11_headers("soap11-clean")
    with requests_session(proxy) as session:
        response = session.post(upstream.url(path), data=body, headers=headers, timeout=30)
    assert response.status_code == 200
    assert response.content == UPSTREAM_BODY
    assert response.headers["X-Upstream"] == "e2e"
    assert "X-Kanta-Guard" not in response.headers
    got = upstream.got(path)
    assert_forwarded(got, body, headers)
    assert got[0].method == "POST"
    assert got[0].path == path
    assert got[0].header("Host") == f"{LOOPBACK}:{upstream.port}"


def test_real_code_in_soap11_gets_soap11_fault(proxy: Proxy, upstream: Upstream) -> None:
    """A real-range code in the CDA's recordTarget is answered with a SOAP 1.1 Fault, unsent."""
    path = marker("soap11-real")
    body = bodies.soap11(patient=REAL)
    with requests_session(proxy) as session:
        response = session.post(
            upstream.url(path), data=body, headers=soap11_headers("soap11-real"), timeout=30
        )
    assert response.status_code == 403
    assert_blocked(response.status_code, response.headers, response.content)
    assert response.headers["Content-Type"].startswith("text/xml")
    assert response.headers["X-Kanta-Guard-Rules"] == "hetu.real"
    assert upstream.got(path) == []

    envelope = etree.fromstring(response.content)
    assert envelope.tag == f"{{{SOAP11}}}Envelope"
    fault = envelope.find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault")
    assert fault is not None
    faultcode = fault.find("faultcode")
    prefix, _, local = faultcode.text.partition(":")
    assert (faultcode.nsmap[prefix], local) == (SOAP11, "Client")
    assert "hetu.real" in fault.findtext("faultstring")
    found = findings(fault)
    assert found and all(f.get("rule") == "hetu.real" for f in found)
    assert all(f.get("evidence") == MASKED and HASH.fullmatch(f.get("valueHash")) for f in found)
    locations = [f.get("location") for f in found]
    record_target = [loc for loc in locations if "recordTarget" in loc]
    assert record_target == [
        "/Envelope/Body/RCMR_IN100016FI01/controlActProcess/subject/ClinicalDocument"
        "/recordTarget/patientRole/id/@extension"
    ]
    # Each location is an XPath that leads to the code in the message that was sent.
    sent = etree.fromstring(body)
    for location in locations:
        etree.XPath(location)
        values = sent.xpath(by_local_name(location))
        assert values and all(REAL in str(v) for v in values), location
    # The Fault names the flow; its log record is there, masked.
    flow_id = fault.find(f".//{{{KG}}}findings").get("requestId")
    record = proxy.record(flow_id)
    assert record["verdict"] == "block"
    assert record["rules"] == ["hetu.real"]


# --- 3: the answer speaks the client's protocol ---------------------------------------------------


def test_soap12_blocked_gets_soap12_fault(proxy: Proxy, upstream: Upstream) -> None:
    """A blocked SOAP 1.2 message (application/soap+xml) is answered with a SOAP 1.2 Fault."""
    path = marker("soap12-real")
    with httpx_client(proxy) as client:
        response = client.post(
            upstream.url(path),
            content=bodies.soap12(patient=REAL),
            headers={"Content-Type": bodies.SOAP12_TYPE},
        )
    assert response.status_code == 403
    assert_blocked(response.status_code, response.headers, response.content)
    assert response.headers["content-type"].startswith("application/soap+xml")
    assert upstream.got(path) == []
    fault = etree.fromstring(response.content).find(f"{{{SOAP12}}}Body/{{{SOAP12}}}Fault")
    assert fault is not None
    value = fault.find(f"{{{SOAP12}}}Code/{{{SOAP12}}}Value")
    prefix, _, local = value.text.partition(":")
    assert (value.nsmap[prefix], local) == (SOAP12, "Sender")
    assert "hetu.real" in fault.findtext(f"{{{SOAP12}}}Reason/{{{SOAP12}}}Text")
    assert {f.get("rule") for f in findings(fault)} == {"hetu.real"}


def test_fhir_patient_blocked_gets_operation_outcome(proxy: Proxy, upstream: Upstream) -> None:
    """A FHIR Patient with a real-range HETU identifier is answered with an OperationOutcome."""
    path = marker("fhir-real") + "/fhir/Patient"
    with httpx_client(proxy) as client:
        response = client.post(
            upstream.url(path),
            content=bodies.fhir_patient(REAL),
            headers={"Content-Type": bodies.FHIR_JSON_TYPE, "Accept": "application/fhir+json"},
        )
    assert response.status_code == 403
    assert_blocked(response.status_code, response.headers, response.content)
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert upstream.got(path) == []
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issues = outcome["issue"]
    assert all(i["severity"] == "error" for i in issues)
    flagged = [i for i in issues if "location" in i]
    assert flagged and all(i["code"] == "security" for i in flagged)
    # FHIRPath from the resource sent; the JSON pointer stays in location.
    assert flagged[0]["expression"] == ["Patient.identifier[0].value"]
    assert flagged[0]["location"] == ["/identifier/0/value"]
    assert "hetu.real" in flagged[0]["diagnostics"] and MASKED in flagged[0]["diagnostics"]


def test_plain_json_blocked_gets_problem_details(proxy: Proxy, upstream: Upstream) -> None:
    """A plain JSON body with a real-range code is answered with RFC 9457 problem details."""
    path = marker("json-real")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))
    request = urllib.request.Request(
        upstream.url(path),
        data=bodies.plain_json(REAL),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(request, timeout=30)
    error = caught.value
    content = error.read()
    assert error.code == 403
    assert_blocked(error.code, dict(error.headers.items()), content)
    assert error.headers["Content-Type"] == "application/problem+json"
    assert upstream.got(path) == []
    problem = json.loads(content)
    assert problem["status"] == 403
    assert problem["rules"] == ["hetu.real"]
    assert problem["type"].startswith("urn:kanta-guard:problem:")
    assert problem["findings"][0]["location"] == "/patient/hetu"
    assert problem["findings"][0]["evidence"] == MASKED
    assert HASH.fullmatch(problem["findings"][0]["value_hash"])


# --- 4: codes outside the body --------------------------------------------------------------------


def test_code_in_url_query_blocked(proxy: Proxy, upstream: Upstream) -> None:
    """A FHIR search with a real-range code in the URL query is blocked before the upstream."""
    path = marker("query-real") + "/fhir/Patient"
    with httpx_client(proxy) as client:
        response = client.get(
            upstream.url(path),
            params={"identifier": f"urn:oid:{bodies.HETU_OID}|{REAL}"},
            headers={"Accept": "application/fhir+json"},
        )
    assert response.status_code == 403
    assert_blocked(response.status_code, response.headers, response.content)
    assert response.headers["X-Kanta-Guard-Rules"] == "hetu.real"
    assert response.json()["resourceType"] == "OperationOutcome"
    assert upstream.got(path) == []


def test_code_in_header_blocked(proxy: Proxy, upstream: Upstream) -> None:
    """A GET carrying a real-range code in a request header is blocked before the upstream."""
    path = marker("header-real") + "/fhir/Patient"
    connection = http.client.HTTPConnection(LOOPBACK, proxy.port, timeout=30)
    try:
        connection.request("GET", upstream.url(path), headers={"X-Patient-Hetu": REAL})
        response = connection.getresponse()
        content = response.read()
    finally:
        connection.close()
    assert response.status == 403
    assert_blocked(response.status, dict(response.getheaders()), content)
    assert response.getheader("X-Kanta-Guard-Rules") == "hetu.real"
    assert json.loads(content)["findings"][0]["location"] == "header:X-Patient-Hetu"
    assert upstream.got(path) == []


# --- 5: content codings ---------------------------------------------------------------------------


def test_gzip_clean_body_passes_compressed(proxy: Proxy, upstream: Upstream) -> None:
    """A gzip-compressed clean SOAP body reaches the upstream as exactly the compressed bytes."""
    path = marker("gzip-clean")
    body = gzip.compress(bodies.soap11(), mtime=0)
    headers = soap11_headers("gzip-clean") | {"Content-Encoding": "gzip"}
    with requests_session(proxy) as session:
        response = session.post(upstream.url(path), data=body, headers=headers, timeout=30)
    assert response.status_code == 200
    assert response.content == UPSTREAM_BODY
    assert_forwarded(upstream.got(path), body, headers)


def gzip_bomb(size: int = 200 * 2**20) -> bytes:
    """``size`` zero bytes, gzip-compressed (about a thousandth of that)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(2**20)
    parts = [compressor.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join([*parts, compressor.flush()])


def test_gzip_bomb_blocked_as_unscannable(proxy: Proxy, upstream: Upstream) -> None:
    """A gzip bomb (200 MB of zeros) is blocked as unscannable and nothing reaches the upstream."""
    path = marker("gzip-bomb")
    bomb = gzip_bomb()
    assert len(bomb) < 1_000_000
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with requests_session(proxy) as session:
        response = session.post(upstream.url(path), data=bomb, headers=headers, timeout=60)
    assert response.status_code in (413, 422)
    assert_blocked(response.status_code, response.headers, response.content)
    assert response.headers["X-Kanta-Guard-Rules"] == "unscannable"
    assert response.json()["rules"] == ["unscannable"]
    assert upstream.got(path) == []


def test_unknown_content_encoding_blocked_as_unscannable(proxy: Proxy, upstream: Upstream) -> None:
    """A body in a content coding the guard cannot undo is blocked as unscannable."""
    path = marker("unknown-coding")
    headers = soap11_headers("unknown-coding") | {"Content-Encoding": "x-kela-squeeze"}
    with requests_session(proxy) as session:
        response = session.post(
            upstream.url(path), data=bodies.soap11(), headers=headers, timeout=30
        )
    assert response.status_code == 422
    assert_blocked(response.status_code, response.headers, response.content)
    assert response.headers["X-Kanta-Guard-Rules"] == "unscannable"
    assert upstream.got(path) == []


# --- 6: warnings ----------------------------------------------------------------------------------


def test_warned_request_forwarded_and_logged(proxy: Proxy, upstream: Upstream) -> None:
    """A 900-series code with a wrong check character is forwarded unchanged and logged as warn."""
    path = marker("warn") + "/fhir/Patient"
    body = bodies.fhir_patient(bodies.MALFORMED_TEST)
    headers = {"Content-Type": bodies.FHIR_JSON_TYPE, "X-E2e-Case": "warn"}
    with httpx_client(proxy) as client:
        response = client.post(upstream.url(path), content=body, headers=headers)
    assert response.status_code == 200
    assert response.content == UPSTREAM_BODY
    assert response.headers["X-Kanta-Guard"] == "warned; rules=hetu.malformed_test"
    assert_forwarded(upstream.got(path), body, headers)
    deadline = time.monotonic() + 5
    while not (records := [r for r in proxy.records() if r.get("path") == path]):
        assert time.monotonic() < deadline, "no log record of the warned request"
        time.sleep(0.05)
    assert len(records) == 1
    record = records[0]
    assert record["verdict"] == "warn"
    assert record["rules"] == ["hetu.malformed_test"]
    assert record["findings"][0]["action"] == "warn"
    assert record["findings"][0]["location"] == "/identifier/0/value"
    # A 900-series value is no personal data: shown, so the tester sees which code to fix.
    assert record["findings"][0]["evidence"] == bodies.MALFORMED_TEST


# --- 7: reverse mode ------------------------------------------------------------------------------


def test_reverse_mode_clean_passes_dirty_blocked(reverse_proxy: Proxy, upstream: Upstream) -> None:
    """In reverse mode a clean SOAP message is forwarded unchanged and a dirty one is blocked."""
    clean_path, dirty_path = marker("reverse-clean"), marker("reverse-real")
    clean, dirty = bodies.soap11(), bodies.soap11(patient=REAL_KELA)
    headers = soap11_headers("reverse")
    connection = http.client.HTTPConnection(LOOPBACK, reverse_proxy.port, timeout=30)
    try:
        connection.request("POST", clean_path, body=clean, headers=headers)
        passed = connection.getresponse()
        passed_content = passed.read()
        connection.request("POST", dirty_path, body=dirty, headers=headers)
        blocked = connection.getresponse()
        blocked_content = blocked.read()
    finally:
        connection.close()
    assert passed.status == 200
    assert passed_content == UPSTREAM_BODY
    assert_forwarded(upstream.got(clean_path), clean, headers)
    assert blocked.status == 403
    assert_blocked(blocked.status, dict(blocked.getheaders()), blocked_content)
    assert etree.fromstring(blocked_content).find(f".//{{{SOAP11}}}Fault") is not None
    assert upstream.got(dirty_path) == []
    assert [r["verdict"] for r in reverse_proxy.records() if r.get("path") == dirty_path] == [
        "block"
    ]


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def test_concurrent_requests_through_scan_workers(proxy: Proxy, upstream: Upstream) -> None:
    """Requests in flight together are scanned by the proxy's worker processes: each clean one
    arrives unchanged, each dirty one is answered by the proxy and never arrives."""
    assert proxy.process is not None
    workers = children(proxy.process.pid)
    assert len(workers) == 2, "kanta-guard run --workers 2 has two worker processes"
    cases = [(marker(f"burst-{i}"), i % 2 == 0) for i in range(24)]

    def send(case: tuple[str, bool]) -> int:
        path, dirty = case
        body = bodies.soap11(patient=REAL_KELA) if dirty else bodies.soap11()
        # About 1 MB (an MTOM upload's size): small bodies are scanned without a worker, and the
        # workers must spend measurable CPU (the kernel counts it in 10 ms ticks).
        pad = b"<!--" + b" pad" * 250_000 + b" -->"
        body = body.replace(b"<soap:Header/>", b"<soap:Header>" + pad + b"</soap:Header>")
        connection = http.client.HTTPConnection(LOOPBACK, proxy.port, timeout=30)
        try:
            connection.request("POST", upstream.url(path), body=body, headers=soap11_headers("b"))
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    cpu_before = [_cpu_ticks(pid) for pid in workers]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(send, cases))
    assert all(
        after > before for before, after in zip(cpu_before, map(_cpu_ticks, workers), strict=True)
    ), "both workers scanned"
    assert statuses == [403 if dirty else 200 for _, dirty in cases]
    for (path, dirty), _ in zip(cases, statuses, strict=True):
        got = upstream.got(path)
        assert len(got) == (0 if dirty else 1)
    assert sorted(children(proxy.process.pid)) == sorted(workers)  # none died or was replaced


# --- 8: HTTPS through the proxy -------------------------------------------------------------------


def test_https_clean_passes_with_proxy_ca(proxy: Proxy, tls_upstream: Upstream) -> None:
    """Over HTTPS, a client trusting the proxy's CA gets a clean FHIR Patient to the upstream."""
    assert proxy.ca_cert.is_file()
    path = marker("https-clean") + "/fhir/Patient"
    body = bodies.fhir_patient()
    headers = {"Content-Type": bodies.FHIR_JSON_TYPE, "X-E2e-Case": "https-clean"}
    context = ssl.create_default_context(cafile=str(proxy.ca_cert))
    with httpx_client(proxy, verify=context) as client:
        response = client.post(tls_upstream.url(path), content=body, headers=headers)
    assert response.status_code == 200
    assert response.content == UPSTREAM_BODY
    assert_forwarded(tls_upstream.got(path), body, headers)


def test_https_dirty_blocked_with_curl(proxy: Proxy, tls_upstream: Upstream) -> None:
    """Over HTTPS, curl sending a real-range code in a SOAP message gets the proxy's Fault."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed on this machine")
    path = marker("https-real")
    result = subprocess.run(
        [
            curl, "--silent", "--show-error", "--max-time", "30",
            "--proxy", proxy.url, "--cacert", str(proxy.ca_cert),
            "--header", f"Content-Type: {bodies.SOAP11_TYPE}",
            "--header", f"SOAPAction: {bodies.SOAP_ACTION}",
            "--data-binary", "@-",
            "--include",
            tls_upstream.url(path, host="localhost"),
        ],
        input=bodies.soap11(patient=REAL),
        capture_output=True,
        env=clean_env(),
        check=False,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    # Skip the proxy's own "200 Connection established" block if curl shows it.
    answer = result.stdout
    while answer.startswith(b"HTTP/") and b" 200 " in answer.split(b"\r\n", 1)[0]:
        answer = answer.split(b"\r\n\r\n", 1)[1]
    head, _, content = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    assert status_line.split()[1] == "403"
    assert_blocked(403, headers, content)
    assert etree.fromstring(content).find(f".//{{{SOAP11}}}Fault") is not None
    assert tls_upstream.got(path) == []


# --- 9: the blocked-request log -------------------------------------------------------------------


def test_log_records_are_masked_and_correlate(proxy: Proxy, upstream: Upstream) -> None:
    """Each blocked request has one masked log record, and one code gives one value_hash."""
    body_path = marker("log-body")
    query_path = marker("log-query") + "/fhir/Patient"
    with requests_session(proxy) as session:
        first = session.post(
            upstream.url(body_path),
            data=bodies.soap11(patient=REAL_KELA),
            headers=soap11_headers("log-body"),
            timeout=30,
        )
        second = session.get(
            upstream.url(query_path),
            params={"identifier": f"urn:oid:{bodies.HETU_OID}|{REAL_KELA}"},
            headers={"Accept": "application/fhir+json"},
            timeout=30,
        )
    assert first.status_code == second.status_code == 403
    first_id = etree.fromstring(first.content).find(f".//{{{KG}}}findings").get("requestId")
    second_id = second.json()["id"]
    records = [proxy.record(first_id), proxy.record(second_id)]
    for record, expected_path in zip(records, (body_path, query_path), strict=True):
        assert set(record) >= {
            "time", "flow_id", "client", "method", "host", "path", "verdict", "rules", "findings"
        }  # fmt: skip
        assert datetime.fromisoformat(record["time"].replace("Z", "+00:00")).tzinfo is not None
        assert re.fullmatch(rf"{re.escape(LOOPBACK)}:\d+", record["client"])
        assert record["host"] == LOOPBACK
        assert record["path"].startswith(expected_path)
        assert record["verdict"] == "block"
        assert record["rules"] == ["hetu.real"]
        for finding in record["findings"]:
            assert finding["location"]
            assert finding["evidence"] == MASKED
            assert HASH.fullmatch(finding["value_hash"])
    assert records[0]["method"] == "POST" and records[1]["method"] == "GET"
    assert records[1]["path"].endswith(f"{MASKED}")
    assert records[1]["findings"][0]["location"].startswith("url:query:")
    hashes = {f["value_hash"] for r in records for f in r["findings"]}
    assert len(hashes) == 1, "the same code must give the same value_hash in every record"


def test_log_survives_restart(tmp_path: Path, upstream: Upstream) -> None:
    """A proxy restarted on the same log path appends to it: both blocked records remain."""
    log = tmp_path / "shared-log" / "blocked.jsonl"
    paths = []
    for run in ("first", "second"):
        guard = Proxy(tmp_path / run, log).start()
        try:
            path = marker(f"restart-{run}")
            paths.append(path)
            with requests_session(guard) as session:
                response = session.post(
                    upstream.url(path),
                    data=bodies.plain_json(REAL),
                    headers={"Content-Type": "application/json"},
                    timeout=30,
                )
            assert response.status_code == 403
            guard.record(response.json()["instance"].rsplit(":", 1)[1])
        finally:
            guard.stop()
        assert guard.process is not None and guard.process.returncode is not None
        assert not listening(guard.port)
    records = [r for r in Proxy(tmp_path, log).records() if "event" not in r]
    assert [r["path"] for r in records] == paths
    assert all(r["verdict"] == "block" for r in records)
    assert records[0]["findings"][0]["value_hash"] == records[1]["findings"][0]["value_hash"]
    for path in paths:
        assert upstream.got(path) == []


# --- 10: start-up ---------------------------------------------------------------------------------


def test_bad_policy_exits_with_file_and_line(tmp_path: Path) -> None:
    """A policy with an invalid action stops start-up at once, naming the file and line."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[rules]\n"hetu.real" = "maybe"\n', encoding="utf-8")
    guard = Proxy(tmp_path, tmp_path / "blocked.jsonl", ["--policy", str(policy)])
    started = time.monotonic()
    process = guard.spawn()
    try:
        returncode = process.wait(20)
    finally:
        guard.stop()
    assert time.monotonic() - started < 20
    assert returncode != 0
    stderr = guard.stderr_path.read_text("utf-8")
    assert str(policy) in stderr
    assert re.search(r"\bline 2\b", stderr), stderr
    assert "maybe" in stderr
    assert not listening(guard.port)
    assert not guard.log.exists()


# --- last: nothing leaked -------------------------------------------------------------------------


def test_no_real_code_in_log_or_proxy_output(
    proxy: Proxy, reverse_proxy: Proxy, upstream: Upstream
) -> None:
    """After the proxies stop, no real-range code is in their blocked logs, stdout or stderr."""
    # Make sure each proxy has seen at least one real code in a body, the URL and a header.
    path = marker("leak") + "/fhir/Patient"
    for guard in (proxy, reverse_proxy):
        target = path if guard is reverse_proxy else upstream.url(path)
        connection = http.client.HTTPConnection(LOOPBACK, guard.port, timeout=30)
        try:
            connection.request(
                "POST",
                f"{target}?identifier={REAL}",
                body=bodies.fhir_patient(REAL_KELA),
                headers={"Content-Type": bodies.FHIR_JSON_TYPE, "X-Patient-Hetu": REAL},
            )
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        assert response.status == 403
    assert upstream.got(path) == []
    for guard in (proxy, reverse_proxy):
        guard.stop()
        texts = {
            "log": guard.log.read_text("utf-8"),
            "stdout": guard.stdout_path.read_text("utf-8", "replace"),
            "stderr": guard.stderr_path.read_text("utf-8", "replace"),
        }
        records = [r for r in guard.records() if "event" not in r]
        assert records, "the blocked log is empty"
        flow_ids = [r["flow_id"] for r in records]
        assert len(flow_ids) == len(set(flow_ids)), "more than one record of a request"
        for name, text in texts.items():
            for code in REAL_CODES:
                assert code not in text, f"{code} in {guard.workdir.name} {name}"
                assert code.replace("-", "") not in text, f"{code} in {guard.workdir.name} {name}"
