"""Tests for kanta_guard.proxy.guard: the HTTP guard in taddons with tflow flows."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

import pytest
from helpers import REAL, TEST, bundle, cda, soap_with_cda
from mitmproxy import contentviews, exceptions, http
from mitmproxy.addons import proxyserver
from mitmproxy.test import taddons, tflow

from kanta_guard.eventlog import read_records
from kanta_guard.proxy.connections import ConnectionGuard
from kanta_guard.proxy.flows import MARK_BLOCKED, MARK_WARNED
from kanta_guard.proxy.guard import HttpGuard
from kanta_guard.proxy.state import GuardState
from kanta_guard.proxy.view import KantaGuardView

ADDON_SCRIPT = Path(__file__).resolve().parents[2] / "addons" / "kanta_guard.py"


def records(log: Path) -> list[dict[str, object]]:
    """The log's request records (not its event records)."""
    return [r for r in read_records(log) if "event" not in r] if log.exists() else []


def flow(
    body: str | bytes,
    content_type: str,
    path: str = "/services",
    headers: dict[str, str] | None = None,
) -> http.HTTPFlow:
    """A live flow with a POST request to a Kanta-like host."""
    data = body.encode() if isinstance(body, str) else body
    f = tflow.tflow()
    f.request = http.Request.make(
        "POST",
        f"https://kanta.test{path}",
        data,
        {"Content-Type": content_type, **(headers or {})},
    )
    return f


def make_guard(log: Path, **settings: object) -> HttpGuard:
    """An HTTP guard configured as the launcher configures it (settings as option defaults)."""
    # Scans in the test's own thread; tests/test_worker.py runs the worker processes.
    return HttpGuard(
        GuardState(), {"kanta_guard_log": str(log), "kanta_guard_workers": 0, **settings}
    )


@pytest.fixture
def guard(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The addon inside a taddons context, logging to a temporary file."""
    addon = make_guard(tmp_path / "blocked.jsonl")
    with taddons.context(proxyserver.Proxyserver(), ConnectionGuard(addon.state), addon) as tctx:
        yield addon, tctx, tmp_path / "blocked.jsonl"
    addon.done()


def test_clean_flow_passes_untouched(guard) -> None:  # type: ignore[no-untyped-def]
    """A clean request gets no response, no mark, and its body is left byte-for-byte."""
    addon, _, log = guard
    f = flow(soap_with_cda(), "text/xml")
    before = f.request.raw_content
    asyncio.run(addon.request(f))
    assert f.response is None
    assert not f.marked
    assert f.request.raw_content == before
    assert f.metadata["kanta_guard"]["verdict"] == "pass"
    assert records(log) == []


def test_blocked_flow_is_answered_marked_logged_and_redacted(guard) -> None:  # type: ignore[no-untyped-def]
    """A real code: SOAP Fault from the proxy, :no_entry: mark, one log line, no raw code kept."""
    addon, _, log = guard
    f = flow(soap_with_cda(cda(patient=REAL)), "text/xml", headers={"SOAPAction": "x"})
    asyncio.run(addon.request(f))
    assert f.response is not None
    assert f.response.status_code == 403
    assert f.response.headers["X-Kanta-Guard"] == "blocked"
    assert f.response.headers["X-Kanta-Guard-Rules"] == "hetu.real"
    assert b"Envelope" in f.response.content and b"hetu.real" in f.response.content
    assert f.marked == MARK_BLOCKED
    assert f.comment.startswith("kanta-guard block: hetu.real at ")
    found = records(log)
    assert len(found) == 1 and found[0]["verdict"] == "block"
    # The request kept in mitmweb no longer holds the code, even inside Base64: body withheld.
    assert REAL.encode() not in (f.request.raw_content or b"")
    assert "x-kanta-guard-redacted" in f.request.headers
    assert REAL not in json.dumps(f.metadata["kanta_guard"])
    assert REAL not in log.read_text()


def test_redaction_masks_plain_body_and_url(guard) -> None:  # type: ignore[no-untyped-def]
    """A plain body with a code keeps its shape, the code masked; the URL is masked too."""
    addon, _, _ = guard
    f = flow(b"", "application/xml", path=f"/p/{REAL}", headers={"X-Id": REAL})
    f.request.headers["Content-Encoding"] = "gzip"
    f.request.raw_content = gzip.compress(cda(narrative=REAL).encode())
    asyncio.run(addon.request(f))
    assert f.marked == MARK_BLOCKED
    assert b"******-****" in (f.request.content or b"")
    assert b"<ClinicalDocument" in (f.request.content or b"")
    assert REAL not in f.request.path and REAL not in f.request.headers["X-Id"]
    assert f.request.headers["x-kanta-guard-redacted"] == "identity codes masked"
    assert "content-encoding" not in f.request.headers


def test_warned_flow_is_forwarded_and_logged(guard) -> None:  # type: ignore[no-untyped-def]
    """A malformed 900-series identifier is forwarded with a :warning: mark and a log line."""
    addon, _, log = guard
    f = flow(bundle(patient="250810A999Y"), "application/fhir+json")
    asyncio.run(addon.request(f))
    assert f.response is None
    assert f.marked == MARK_WARNED
    assert "hetu.malformed_test" in f.comment
    assert records(log)[0]["verdict"] == "warn"


def test_fhir_client_gets_operation_outcome(guard) -> None:  # type: ignore[no-untyped-def]
    """A FHIR request is answered with an OperationOutcome."""
    addon, _, _ = guard
    f = flow(bundle(patient=REAL), "application/fhir+json")
    asyncio.run(addon.request(f))
    assert f.response is not None
    assert json.loads(f.response.content or b"")["resourceType"] == "OperationOutcome"


def test_flows_already_answered_are_skipped(guard) -> None:  # type: ignore[no-untyped-def]
    """A flow another addon already answered (or a dead one) is not scanned again."""
    addon, _, _ = guard
    f = tflow.tflow(resp=True)
    asyncio.run(addon.request(f))
    assert "kanta_guard" not in f.metadata


def test_streaming_is_refused(guard) -> None:  # type: ignore[no-untyped-def]
    """stream_large_bodies would forward bodies before the scan: configuring it fails."""
    addon, tctx, _ = guard
    with pytest.raises(exceptions.OptionsError, match="refuses stream_large_bodies"):
        tctx.configure(addon, stream_large_bodies="1m")


def test_body_size_limit_backstop(guard) -> None:  # type: ignore[no-untyped-def]
    """Unset, mitmproxy's body_size_limit becomes twice the scan limit, so huge bodies stay out."""
    _, tctx, _ = guard
    assert tctx.options.body_size_limit == str(2 * 33554432)


def test_bad_policy_fails_configure(guard, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A bad policy file is an OptionsError naming file and line."""
    addon, tctx, _ = guard
    bad = tmp_path / "bad.toml"
    bad.write_text('[rules]\n"hetu.real" = "maybe"\n')
    with pytest.raises(exceptions.OptionsError, match=r"bad\.toml, line 2"):
        tctx.configure(addon, kanta_guard_policy=str(bad))


def test_requestheaders_disables_streaming(guard) -> None:  # type: ignore[no-untyped-def]
    """Whatever another addon decided, the request body is never streamed past the scan."""
    addon, _, _ = guard
    f = flow(cda(), "application/xml")
    f.request.stream = True
    addon.requestheaders(f)
    assert f.request.stream is False


def test_body_size_limit_error_is_logged(guard) -> None:  # type: ignore[no-untyped-def]
    """A body refused by mitmproxy's body_size_limit is logged and marked as unscannable."""
    addon, _, log = guard
    f = flow(b"", "application/xml")
    f.error = tflow.flow.Error("Request body exceeds mitmproxy's body_size_limit.")
    addon.error(f)
    assert f.marked == MARK_BLOCKED
    assert records(log)[0]["rules"] == ["unscannable"]


def test_content_view_lists_findings(guard) -> None:  # type: ignore[no-untyped-def]
    """The kanta-guard view shows verdict, rule, location and masked evidence."""
    addon, _, _ = guard
    f = flow(cda(patient=REAL, guardian=TEST), "application/xml")
    asyncio.run(addon.request(f))
    view = KantaGuardView()
    meta = contentviews.Metadata(flow=f, http_message=f.request)
    text = view.prettify(f.request.content or b"", meta)
    assert "verdict: block" in text
    assert "/ClinicalDocument/recordTarget/patientRole/id/@extension" in text
    assert "******-****" in text and REAL not in text
    assert view.render_priority(b"", meta) > 0
    assert view.render_priority(b"", contentviews.Metadata(flow=tflow.tflow())) < 0
    assert "kanta-guard" in contentviews.registry


def test_addon_script_loads_on_its_own() -> None:
    """addons/kanta_guard.py is a self-contained mitmproxy script with the guard's addons."""
    with taddons.context(proxyserver.Proxyserver()) as tctx:
        module = tctx.script(str(ADDON_SCRIPT))
        assert [type(a).__name__ for a in module.addons] == [
            "Redactor",
            "ConnectionGuard",
            "Status",
            "HttpGuard",
        ]


def test_bad_worker_options_fail_configure(guard) -> None:  # type: ignore[no-untyped-def]
    """Negative workers or a non-positive scan timeout are OptionsErrors naming the option."""
    addon, tctx, _ = guard
    with pytest.raises(exceptions.OptionsError, match="kanta_guard_workers"):
        tctx.configure(addon, kanta_guard_workers=-1)
    with pytest.raises(exceptions.OptionsError, match="kanta_guard_scan_timeout"):
        tctx.configure(addon, kanta_guard_scan_timeout=0.0)
