"""Tests for kanta_guard.proxy.redact: flagged requests keep no readable value in the flow."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from pathlib import Path

from helpers import REAL, bundle, cda, identity_policy
from mitmproxy import http
from mitmproxy.addons import proxyserver
from mitmproxy.test import taddons, tflow

from kanta_guard import KeyedHasher, Scanner
from kanta_guard.proxy.guard import HttpGuard
from kanta_guard.proxy.redact import REDACTED_HEADER, WITHHELD, Redactor, redact_request
from kanta_guard.proxy.state import GuardState

SCANNER = Scanner(identity_policy(), KeyedHasher(b"kanta-guard-test-key-0123456789"))


def post(body: str, content_type: str, **headers: str) -> http.HTTPFlow:
    """A live POST flow to a Kanta-like host."""
    f = tflow.tflow()
    f.request = http.Request.make(
        "POST",
        "https://kanta.test/services",
        body.encode(),
        {"Content-Type": content_type, **headers},
    )
    return f


def readable(f: http.HTTPFlow) -> str:
    """Everything the flow keeps of its request, as text, with header Base64 decoded too."""
    state = json.dumps(f.get_state(), default=str)
    decoded = []
    for value in f.request.headers.values():
        for token in value.split():
            with contextlib.suppress(ValueError):
                decoded.append(base64.b64decode(token + "==").decode("utf-8", "replace"))
    return state + " ".join(decoded)


def test_jwt_claims_with_a_code_withhold_the_header() -> None:
    """A Bearer JWT whose claims hold a code is withheld; the body is masked."""
    claims = base64.urlsafe_b64encode(json.dumps({"hetu": REAL}).encode()).decode().rstrip("=")
    f = post(
        cda(patient=REAL), "application/xml", Authorization=f"Bearer eyJhbGciOiJub25lIn0.{claims}."
    )
    redact_request(f, SCANNER)
    assert f.request.headers["Authorization"] == WITHHELD
    assert REAL not in readable(f)


def test_redaction_failure_withholds_everything(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """If redacting fails, the request is withheld entirely, not kept as it was."""
    import kanta_guard.proxy.redact as module

    def broken(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("boom")

    monkeypatch.setattr(module, "decode_content", broken)
    f = post(cda(patient=REAL), "application/xml", X_Id=REAL)
    redact_request(f, SCANNER)
    assert REAL not in readable(f)
    assert "failed" in f.request.headers[REDACTED_HEADER]


def test_warned_request_is_redacted_once_sent(tmp_path: Path) -> None:
    """A warned request is forwarded as sent, then redacted when its response starts."""
    state = GuardState()
    guard = HttpGuard(
        state, {"kanta_guard_log": str(tmp_path / "l.jsonl"), "kanta_guard_workers": 0}
    )
    redactor = Redactor(state)
    warned_value = "250810A999Y"
    with taddons.context(proxyserver.Proxyserver(), redactor, guard):
        f = post(bundle(patient=warned_value), "application/fhir+json")
        asyncio.run(guard.request(f))
        assert f.response is None and warned_value in (f.request.text or "")  # sent as it was
        f.response = http.Response.make(200, b"ok")
        redactor.responseheaders(f)
    guard.done()
    assert warned_value not in (f.request.text or "")
    assert REDACTED_HEADER in f.request.headers


def test_failed_unjudged_request_is_redacted(tmp_path: Path) -> None:
    """A request that failed before it was judged (bad framing) is masked for mitmweb too."""
    state = GuardState()
    redactor = Redactor(state)
    f = post("", "text/plain", X_Patient=REAL)
    f.request.path = f"/p/{REAL}"
    f.error = tflow.flow.Error("HTTP/1 protocol error: bad content-length")
    redactor.error(f)
    assert REAL not in readable(f)


def test_clean_passing_flow_is_left_alone() -> None:
    """A passing request is not touched at its response (it was never flagged)."""
    state = GuardState()
    redactor = Redactor(state)
    f = post(cda(), "application/xml")
    f.metadata["kanta_guard"] = {"verdict": "pass", "findings": []}
    before = f.request.raw_content
    f.response = http.Response.make(200, b"ok")
    redactor.responseheaders(f)
    assert f.request.raw_content == before and REDACTED_HEADER not in f.request.headers


def test_code_in_header_name_method_cookie_and_trailer_is_masked() -> None:
    """Codes in a header's name, the method, a percent-encoded cookie and a trailer are masked."""
    f = post(cda(), "application/xml")
    f.request.headers[f"X-{REAL}"] = "1"
    f.request.headers["Cookie"] = "id=" + REAL.replace("-", "%2D")
    f.request.method = f"GET{REAL}"
    f.request.trailers = http.Headers(x_patient=REAL)
    redact_request(f, SCANNER)
    assert REAL not in readable(f)
    assert REAL not in json.dumps(f.get_state(), default=repr)


def test_personal_data_is_withheld_where_it_was_found_without_a_second_scan(
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """A name (which masking does not hide) withholds the part it stands in, straight from the
    report: no second scan of the request (the proxy's thread pays for that one)."""
    from kanta_guard import KeyedHasher, Scanner, default_policy
    from kanta_guard.proxy.flows import flow_request, mark

    scanner = Scanner(default_policy(), KeyedHasher(b"kanta-guard-test-key-0123456789"))
    f = post(cda(), "application/xml")
    report = scanner.scan(flow_request(f))
    assert "name.unregistered" in report.rules and not any(
        r.startswith("hetu.") for r in report.rules
    )
    mark(f, report)
    scans: list[int] = []
    original = Scanner.scan
    monkeypatch.setattr(Scanner, "scan", lambda self, r: scans.append(1) or original(self, r))
    redact_request(f, scanner)
    assert scans == []
    assert f.request.content == b""
    assert "Lapsi-Potilas" not in readable(f)
    assert "withheld as still readable: body" in f.request.headers[REDACTED_HEADER]


def test_personal_data_in_the_head_is_withheld_where_it_stands() -> None:
    """A phone in a header and a name in the URL of a warned request: the header and the URL
    are withheld (masking hides neither), with no second scan deciding it."""
    from kanta_guard import default_policy
    from kanta_guard.proxy.flows import flow_request, mark

    scanner = Scanner(default_policy(), KeyedHasher(b"kanta-guard-test-key-0123456789"))
    f = post("ei tunnuksia", "text/plain", **{"X-Callback": "040 123 4567"})
    f.request.path = "/Patient?note=Potilas+Maija+Virtanen+soitti"
    report = scanner.scan(flow_request(f))
    assert {"phone.personal", "name.narrative"} <= set(report.rules)
    mark(f, report)
    redact_request(f, scanner)
    assert f.request.headers["X-Callback"] == WITHHELD
    assert "Virtanen" not in readable(f) and "4567" not in readable(f)
