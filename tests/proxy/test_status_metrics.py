"""Tests for kanta_guard.proxy.metrics: the collector, the address option and its listener."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from helpers import REAL
from mitmproxy import exceptions, http
from mitmproxy.test import taddons, tflow
from prometheus_client.parser import text_string_to_metric_families

from kanta_guard.eventlog import make_record
from kanta_guard.model import Action, Finding, Protocol, Report, Role, Verdict
from kanta_guard.proxy.metrics import (
    CONTENT_TYPE,
    Metrics,
    exposition,
    metrics_registry,
    parse_address,
)
from kanta_guard.proxy.state import GuardState
from kanta_guard.proxy.status import STATUS_HOST


def fed_state() -> GuardState:
    """A state that has passed one request, blocked one and scanned twice."""
    state = GuardState()
    state.stats.passed()
    state.stats.scanned(0.0004)
    state.stats.scanned(3.0)
    state.stats.worker_restarted()
    state.stats.log_failed()
    finding = Finding("hetu.real", Action.BLOCK, "/x", Role.PATIENT, "******-****", "", "")
    report = Report(Verdict.BLOCK, (finding,), Protocol.SOAP11)
    record = make_record(
        report, flow_id="f", client=None, method="GET", host=f"{REAL}.test", path=f"/?id={REAL}"
    )
    state.stats.recorded(record)
    return state


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_exposition_holds_every_metric() -> None:
    """Requests by verdict, findings by rule, the scan histogram, restarts, log failures and
    readiness, read from the statistics at scrape time."""
    state = fed_state()
    got = samples(exposition(metrics_registry(state)).decode())
    assert got[("kanta_guard_requests_total", (("verdict", "pass"),))] == 1
    assert got[("kanta_guard_requests_total", (("verdict", "block"),))] == 1
    assert got[("kanta_guard_requests_total", (("verdict", "warn"),))] == 0
    assert got[("kanta_guard_findings_total", (("rule", "hetu.real"),))] == 1
    assert got[("kanta_guard_scan_seconds_count", ())] == 2
    assert got[("kanta_guard_scan_seconds_sum", ())] == pytest.approx(3.0004)
    assert got[("kanta_guard_scan_seconds_bucket", (("le", "0.0005"),))] == 1
    assert got[("kanta_guard_scan_seconds_bucket", (("le", "2.5"),))] == 1
    assert got[("kanta_guard_scan_seconds_bucket", (("le", "5.0"),))] == 2
    assert got[("kanta_guard_scan_seconds_bucket", (("le", "+Inf"),))] == 2
    assert got[("kanta_guard_worker_restarts_total", ())] == 1
    assert got[("kanta_guard_log_failures_total", ())] == 1
    assert got[("kanta_guard_ready", ())] == 0
    state.stats.passed()  # read at scrape time: no second set of counters
    again = samples(exposition(metrics_registry(state)).decode())
    assert again[("kanta_guard_requests_total", (("verdict", "pass"),))] == 2


def test_labels_are_verdicts_and_rules_only() -> None:
    """No label carries request data: the blocked host and path appear nowhere."""
    text = exposition(metrics_registry(fed_state())).decode()
    labels = {k for (_, pairs) in samples(text) for k, _ in pairs}
    assert labels == {"verdict", "rule", "le"}
    assert REAL not in text and ".test" not in text and "******" not in text


def test_registries_are_per_guard() -> None:
    """Two guards in one process have two registries (the global one is not used)."""
    one, two = GuardState(), GuardState()
    one.stats.passed()
    got = samples(exposition(metrics_registry(two)).decode())
    assert got[("kanta_guard_requests_total", (("verdict", "pass"),))] == 0


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        (" localhost:1 ", ("localhost", 1)),
        ("[::1]:9464", ("::1", 9464)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
    ],
)
def test_parse_address(value: str, parsed: tuple[str, int]) -> None:
    """HOST:PORT, IPv6 in brackets."""
    assert parse_address(value) == parsed


@pytest.mark.parametrize("value", ["9464", ":9464", "127.0.0.1:", "h:0", "h:65536", "h:x1"])
def test_parse_address_refuses(value: str) -> None:
    """A host and a port of 1 to 65535 are required."""
    with pytest.raises(ValueError):
        parse_address(value)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_listener_serves_metrics_and_stops() -> None:
    """--set kanta_guard_metrics=HOST:PORT serves /metrics there (404 elsewhere), until done."""
    addon = Metrics(fed_state())
    port = free_port()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, kanta_guard_metrics=f"127.0.0.1:{port}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert answer.headers["Content-Type"] == CONTENT_TYPE
            assert b"kanta_guard_requests_total" in answer.read()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        assert missing.value.code == 404
        addon.done()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


@pytest.mark.parametrize("value", ["nonsense", "127.0.0.1:99999", f"{REAL}:x"])
def test_bad_address_is_an_options_error(value: str) -> None:
    """A bad HOST:PORT stops configuration with one line naming the option (masked)."""
    addon = Metrics(GuardState())
    with taddons.context(addon) as tctx, pytest.raises(exceptions.OptionsError) as error:
        tctx.configure(addon, kanta_guard_metrics=value)
    message = str(error.value)
    assert "kanta_guard_metrics" in message and "\n" not in message and REAL not in message


def test_port_in_use_is_an_options_error() -> None:
    """A port something else listens on stops configuration, saying it cannot listen."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        addon = Metrics(GuardState())
        with taddons.context(addon) as tctx, pytest.raises(exceptions.OptionsError) as error:
            tctx.configure(addon, kanta_guard_metrics=f"127.0.0.1:{port}")
    assert "cannot listen there" in str(error.value)


def test_metrics_through_the_proxy() -> None:
    """http://kanta-guard.status/metrics is answered by the proxy; other paths are left to the
    status addon, other hosts to the guard."""
    addon = Metrics(fed_state())
    f = tflow.tflow()
    f.request = http.Request.make("GET", f"http://{STATUS_HOST}/metrics")
    addon.request(f)
    assert f.response is not None and f.response.status_code == 200
    assert f.response.headers["content-type"] == CONTENT_TYPE
    assert b"kanta_guard_ready 0.0" in (f.response.content or b"")
    for url in (f"http://{STATUS_HOST}/", "http://kanta.test/metrics"):
        other = tflow.tflow()
        other.request = http.Request.make("GET", url)
        addon.request(other)
        assert other.response is None
