"""Tests for kanta_guard.proxy.guard: the HTTP guard in taddons with tflow flows."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

import pytest
from helpers import REAL, TEST, bundle, cda, identity_policy_file, soap_with_cda
from mitmproxy import contentviews, exceptions, http
from mitmproxy.addons import proxyserver
from mitmproxy.test import taddons, tflow, tutils

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
    base = {"kanta_guard_log": str(log), "kanta_guard_workers": 0}
    # The identity-code rules only (a fixture's test names are not what these tests are about).
    base["kanta_guard_policy"] = str(identity_policy_file(log.parent))
    return HttpGuard(GuardState(), {**base, **settings})


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
    # The comment says the guard looked: the identity fields and test codes it recognised.
    assert f.comment.startswith("pass · 7 identity fields · test codes ")
    assert "+6 more" in f.comment
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
    # Why first (the rule and the role), then the verdict, the location last.
    assert f.comment.startswith("hetu.real (patient) · block · at /")
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
    # The upstream's answer tells the client it was warned (a harness can fail on it).
    f.response = tutils.tresp()
    addon.response(f)
    assert f.response.headers["X-Kanta-Guard"] == "warned; rules=hetu.malformed_test"


def test_a_passed_flow_gets_no_guard_header(guard) -> None:  # type: ignore[no-untyped-def]
    addon, _, _ = guard
    f = flow(bundle(patient="010181-900C"), "application/fhir+json")
    asyncio.run(addon.request(f))
    f.response = tutils.tresp()
    addon.response(f)
    assert "X-Kanta-Guard" not in f.response.headers


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
            "TrustAnchors",
            "UpstreamGuard",
            "ServerCertGuard",
            "OwnClientCert",
            "PresentedClientCert",
            "UpstreamErrors",
            "ConnectionGuard",
            "DimseGuard",
            "Metrics",
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


# -- fail closed: the guard's own state ------------------------------------------------------------


def test_unconfigured_guard_refuses_everything() -> None:
    """A guard without a policy (its start-up failed) answers 503 and forwards nothing."""
    addon = HttpGuard(GuardState())
    with taddons.context(proxyserver.Proxyserver(), addon):
        f = flow(cda(), "application/xml")
        asyncio.run(addon.request(f))
    assert f.response is not None and f.response.status_code == 503
    assert f.response.headers["X-Kanta-Guard-Rules"] == "guard.unavailable"


def test_policy_given_by_option_is_the_one_used(tmp_path: Path) -> None:
    """kanta_guard_policy given as a setting (the launcher's --set) is the policy enforced."""
    policy = tmp_path / "warn.toml"
    policy.write_text('[rules]\n"hetu.real" = "warn"\n')
    addon = make_guard(tmp_path / "log.jsonl", kanta_guard_policy=str(policy))
    with taddons.context(proxyserver.Proxyserver(), addon):
        f = flow(cda(patient=REAL), "application/xml")
        asyncio.run(addon.request(f))
    addon.done()
    assert f.response is None and f.marked == MARK_WARNED


def test_block_stands_when_the_log_cannot_be_written(tmp_path: Path) -> None:
    """With the log on a full disk the blocked request stays blocked; then everything is refused."""
    addon = make_guard(Path("/dev/full"))
    with taddons.context(proxyserver.Proxyserver(), addon):
        dirty = flow(cda(patient=REAL), "application/xml")
        asyncio.run(addon.request(dirty))
        clean = flow(cda(), "application/xml")
        asyncio.run(addon.request(clean))
        status = addon.state.status()
    addon.done()
    assert dirty.response is not None and dirty.response.status_code == 403
    assert REAL.encode() not in (dirty.request.raw_content or b"")
    assert clean.response is not None and clean.response.status_code == 503
    assert status["ready"] is False
    assert status["log"]["writable"] is False  # type: ignore[index]


def test_warned_request_without_its_record_is_refused(tmp_path: Path) -> None:
    """A warned request goes upstream only with its record: on a full disk it gets 503."""
    addon = make_guard(Path("/dev/full"))
    with taddons.context(proxyserver.Proxyserver(), addon):
        f = flow(bundle(patient="250810A999Y"), "application/fhir+json")
        asyncio.run(addon.request(f))
    addon.done()
    assert f.response is not None and f.response.status_code == 503


def test_log_not_required_goes_on_blocking(tmp_path: Path) -> None:
    """With log.required = false, a failing log does not stop clean traffic; dirty is blocked."""
    policy = tmp_path / "p.toml"
    policy.write_text("[log]\nrequired = false\n")
    addon = make_guard(Path("/dev/full"), kanta_guard_policy=str(policy))
    with taddons.context(proxyserver.Proxyserver(), addon):
        dirty = flow(cda(patient=REAL), "application/xml")
        asyncio.run(addon.request(dirty))
        clean = flow(cda(), "application/xml")
        asyncio.run(addon.request(clean))
    addon.done()
    assert dirty.response is not None and dirty.response.status_code == 403
    assert clean.response is None


def test_guard_recovers_when_the_log_can_be_written_again(tmp_path: Path) -> None:
    """Once the log can be written again, the guard lets clean traffic through by itself."""
    log = tmp_path / "log.jsonl"
    addon = make_guard(log)
    with taddons.context(proxyserver.Proxyserver(), addon):
        addon.state.log_error = "No space left on device"  # as after a failed write
        clean = flow(cda(), "application/xml")
        asyncio.run(addon.request(clean))
    addon.done()
    assert clean.response is None
    assert addon.state.log_error is None
    assert [r["event"] for r in read_records(log) if "event" in r] == ["log-recovered"]


def test_failed_rotation_is_reported_not_fatal(tmp_path: Path) -> None:
    """A rotation that fails keeps blocking and logging (into the current file), and says so."""
    log = tmp_path / "log.jsonl"
    (tmp_path / "log.jsonl.1" / "occupied").mkdir(parents=True)
    policy = tmp_path / "p.toml"
    # One backup: the file cannot become log.jsonl.1 (a directory), so every rotation fails.
    policy.write_text("[log]\nmax_bytes = 300\nbackups = 1\n")
    addon = make_guard(log, kanta_guard_policy=str(policy))
    with taddons.context(proxyserver.Proxyserver(), addon):
        flows = [flow(cda(patient=REAL), "application/xml") for _ in range(3)]
        for f in flows:
            asyncio.run(addon.request(f))
        status = addon.state.status()
    addon.done()
    assert all(f.response is not None and f.response.status_code == 403 for f in flows)
    assert len(records(log)) == 3
    assert status["ready"] is True
    assert status["log"]["rotation_error"]  # type: ignore[index]


def test_failure_after_the_decision_keeps_the_block(guard, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """An error in redaction or marking after a block cannot turn it into a forward."""
    addon, _, _ = guard
    import kanta_guard.proxy.guard as module

    def broken(*args: object) -> None:
        raise RuntimeError("redaction broke")

    monkeypatch.setattr(module, "redact_request", broken)
    monkeypatch.setattr(module, "mark", broken)
    f = flow(cda(patient=REAL), "application/xml")
    asyncio.run(addon.request(f))
    assert f.response is not None and f.response.status_code == 403


def test_scan_error_blocks(guard, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """An exception inside the scan blocks the request as unscannable."""
    addon, _, _ = guard

    def broken(request: object) -> None:
        raise ValueError("scanner broke")

    monkeypatch.setattr(addon.state.scanner, "scan", broken)
    f = flow(cda(), "application/xml")
    asyncio.run(addon.request(f))
    assert f.response is not None and f.response.status_code == 422
    assert b"internal error in the scan" in (f.response.content or b"")


# -- the request as it leaves ----------------------------------------------------------------------


def test_upgrade_is_refused(guard) -> None:  # type: ignore[no-untyped-def]
    """A WebSocket (or any) upgrade request is refused: the guard reads only HTTP."""
    addon, _, log = guard
    f = flow(b"", "text/plain", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    asyncio.run(addon.request(f))
    assert f.response is not None and f.response.status_code == 403
    assert f.response.headers["X-Kanta-Guard-Rules"] == "protocol.refused"
    assert records(log)[0]["rules"] == ["protocol.refused"]


def test_server_switching_protocols_is_refused(guard) -> None:  # type: ignore[no-untyped-def]
    """A 101 from the server is replaced by a 502 that closes the connection."""
    addon, _, log = guard
    f = tflow.tflow(resp=True)
    f.response.status_code = 101
    f.response.headers["Upgrade"] = "tcp"
    addon.response(f)
    assert f.response.status_code == 502
    assert f.response.headers["connection"] == "close"
    assert records(log)[0]["rules"] == ["protocol.refused"]


@pytest.mark.parametrize("alpn", [None, b"http/1.1"])
def test_trailers_towards_http1_are_refused(guard, alpn: bytes | None) -> None:  # type: ignore[no-untyped-def]
    """Clean trailers are refused unless the request goes HTTP/2 to an HTTP/2 server."""
    addon, _, _ = guard
    f = flow(cda(), "application/xml")
    f.request.http_version = "HTTP/2.0"
    f.request.trailers = http.Headers(x_checksum="abc")
    f.server_conn.alpn = alpn
    asyncio.run(addon.request(f))
    assert f.response is not None
    assert f.response.headers["X-Kanta-Guard-Rules"] == "protocol.refused"


def test_trailers_h2_to_h2_pass_and_a_code_in_them_blocks(guard) -> None:  # type: ignore[no-untyped-def]
    """HTTP/2 trailers towards an HTTP/2 server pass when clean; a code in them is blocked."""
    addon, _, _ = guard
    clean = flow(cda(), "application/xml")
    clean.request.http_version = "HTTP/2.0"
    clean.request.trailers = http.Headers(x_checksum="abc")
    clean.server_conn.alpn = b"h2"
    asyncio.run(addon.request(clean))
    assert clean.response is None
    dirty = flow(cda(), "application/xml")
    dirty.request.http_version = "HTTP/2.0"
    dirty.request.trailers = http.Headers(x_patient=REAL)
    dirty.server_conn.alpn = b"h2"
    asyncio.run(addon.request(dirty))
    assert dirty.response is not None
    assert "hetu.real" in dirty.response.headers["X-Kanta-Guard-Rules"]
    assert REAL not in str(dirty.request.trailers or "")


def test_http2_body_gets_its_length(guard) -> None:  # type: ignore[no-untyped-def]
    """An HTTP/2 request without content-length is framed, so an HTTP/1.1 server reads it whole."""
    addon, _, _ = guard
    body = b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n"
    f = flow(body, "text/plain")
    f.request.http_version = "HTTP/2.0"
    f.request.headers.pop("content-length", None)
    asyncio.run(addon.request(f))
    assert f.response is None
    assert f.request.headers["content-length"] == str(len(body))


def test_authority_is_judged(guard) -> None:  # type: ignore[no-untyped-def]
    """A code in the request's authority (absolute-form target, :authority) is blocked."""
    addon, _, _ = guard
    f = flow(cda(), "application/xml")
    f.request.authority = f"{REAL}.kanta.test:443"
    asyncio.run(addon.request(f))
    assert f.response is not None and f.response.status_code == 403
    assert REAL not in f.request.authority


def test_connect_with_a_code_is_answered(guard) -> None:  # type: ignore[no-untyped-def]
    """A CONNECT whose target holds a code is answered by the guard; no tunnel is opened."""
    addon, _, _ = guard
    f = tflow.tflow()
    f.request = http.Request.make("CONNECT", f"http://{REAL}.kanta.test:443/")
    f.request.authority = f"{REAL}.kanta.test:443"
    addon.http_connect(f)
    assert f.response is not None and f.response.status_code == 403
    clean = tflow.tflow()
    clean.request = http.Request.make("CONNECT", "http://127.0.0.1:443/")
    clean.request.authority = "127.0.0.1:443"
    addon.http_connect(clean)
    assert clean.response is None


def test_code_in_basic_auth_is_withheld_from_the_flow(guard) -> None:  # type: ignore[no-untyped-def]
    """A blocked request's Base64 header (Basic credentials with a code) is withheld, not kept."""
    import base64

    addon, _, _ = guard
    token = base64.b64encode(f"user:{REAL}".encode()).decode()
    f = flow(cda(), "application/xml", headers={"Authorization": f"Basic {token}"})
    asyncio.run(addon.request(f))
    assert f.response is not None
    assert f.request.headers["Authorization"] == "withheld-by-kanta-guard"
    assert "header Authorization" in f.request.headers["x-kanta-guard-redacted"]


# -- run-time changes ------------------------------------------------------------------------------


def test_weaker_policy_at_run_time_is_refused(guard, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Once running, a policy that enforces less is refused; a stricter one is taken."""
    addon, tctx, log = guard
    asyncio.run(addon.running())
    weak = tmp_path / "weak.toml"
    weak.write_text('[rules]\n"hetu.real" = "warn"\n')
    with pytest.raises(exceptions.OptionsError, match=r"enforces less.*hetu\.real"):
        tctx.configure(addon, kanta_guard_policy=str(weak))
    assert addon.state.policy is not None
    assert addon.state.policy.source.endswith("identity-policy.toml")
    strict = tmp_path / "strict.toml"
    strict.write_text('[rules]\n"hetu.malformed_test" = "block"\n')
    tctx.configure(addon, kanta_guard_policy=str(strict))
    assert addon.state.policy.source == str(strict)
    events = [r for r in read_records(log) if "event" in r]
    assert [(e["event"], e["change"]) for e in events] == [
        ("policy", "start"),
        ("policy", "change"),
    ]
    assert events[1]["digest"] == addon.state.policy.digest


def test_weakening_allowed_by_the_active_policy(tmp_path: Path) -> None:
    """A policy with runtime.allow_weakening = true may be replaced by a weaker one."""
    lax = tmp_path / "lax.toml"
    lax.write_text("[runtime]\nallow_weakening = true\n")
    weak = tmp_path / "weak.toml"
    weak.write_text('[rules]\n"hetu.real" = "warn"\n')
    addon = make_guard(tmp_path / "log.jsonl", kanta_guard_policy=str(lax))
    with taddons.context(proxyserver.Proxyserver(), addon) as tctx:
        asyncio.run(addon.running())
        tctx.configure(addon, kanta_guard_policy=str(weak))
        assert addon.state.policy is not None and addon.state.policy.source == str(weak)
    addon.done()


def test_addon_that_changes_requests_after_the_guard_stops_it(tmp_path: Path) -> None:
    """Loaded where modify_body would run after it, the guard refuses to start."""
    from mitmproxy.addons import modifybody

    addon = make_guard(tmp_path / "log.jsonl")
    with taddons.context(proxyserver.Proxyserver(), addon, modifybody.ModifyBody()) as tctx:
        tctx.options.update(modify_body=["/~q/a/b"])
        asyncio.run(addon.running())
        assert not addon.state.ready
        assert "modifybody" in (addon.state.config_error or "")
    addon.done()


def test_script_path_starts_with_mitmproxys_default_addons(tmp_path: Path) -> None:
    """Loaded as a script among mitmproxy's default addons (none set to change requests), the
    guard starts: the addons after it only record requests or answer them themselves."""
    from mitmproxy.addons import default_addons

    addon = make_guard(tmp_path / "log.jsonl")
    defaults = default_addons()
    names = [type(a).__name__ for a in defaults]
    # Where mitmproxy runs scripts: after the addons before its ScriptLoader, before the rest.
    at = names.index("ScriptLoader")
    taken = {"Core", "Proxyserver", "CommandHistory"}
    before = [a for a in defaults[:at] if type(a).__name__ not in taken]
    later = defaults[at + 1 :]
    with taddons.context(proxyserver.Proxyserver(), *before, addon, *later):
        asyncio.run(addon.running())
        assert addon.state.ready, addon.state.config_error
    addon.done()


def test_destination_host_is_judged(guard) -> None:  # type: ignore[no-untyped-def]
    """An absolute-form URL whose host holds a code is blocked even when the Host header differs
    (mitmproxy would resolve and contact that host)."""
    addon, _, _ = guard
    f = flow(cda(), "application/xml")
    f.request.host = f"{REAL}.kanta.test"
    f.request.headers["Host"] = "kanta.test"
    f.request.authority = ""
    asyncio.run(addon.request(f))
    assert f.response is not None and f.response.status_code == 403
