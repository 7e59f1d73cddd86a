"""End to end: the guard's Prometheus metrics, through the proxy and on a port of their own."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from helpers import REAL, cda
from prometheus_client.parser import text_string_to_metric_families

from .conftest import (
    LOOPBACK,
    GuardProxy,
    Upstream,
    free_port,
    marker,
    requests_session,
    start_refused,
)

pytestmark = pytest.mark.e2e


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture(scope="module")
def metered(
    tmp_path_factory: pytest.TempPathFactory, upstream_cert: tuple[Path, Path]
) -> Iterator[GuardProxy]:
    """A guard with one scan worker and its metrics on a loopback port."""
    workdir = tmp_path_factory.mktemp("guard-metrics")
    port = free_port()
    guard = GuardProxy(
        workdir,
        workdir / "blocked.jsonl",
        [
            "--workers", "1", "--set", f"kanta_guard_metrics={LOOPBACK}:{port}",
            "--set", f"ssl_verify_upstream_trusted_ca={upstream_cert[0]}",
        ],
    )  # fmt: skip
    guard.metrics_port = port  # type: ignore[attr-defined]
    guard.start()
    yield guard
    guard.stop()


def scrape(guard: GuardProxy) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    port = guard.metrics_port  # type: ignore[attr-defined]
    answer = requests.get(f"http://{LOOPBACK}:{port}/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return values(answer.text)


def test_metrics_count_what_the_guard_judged(metered: GuardProxy, upstream: Upstream) -> None:
    """A clean and a blocked request show in both endpoints, by verdict and rule; the scan
    histogram counts them; the guard is ready; no label holds the request's data."""
    before = scrape(metered)
    path = marker("metrics")
    with requests_session(metered) as client:
        clean = client.post(upstream.url(path), data=cda(), timeout=10,
                            headers={"Content-Type": "application/xml"})  # fmt: skip
        dirty = client.post(upstream.url(path + "/dirty"), data=cda(patient=REAL), timeout=10,
                            headers={"Content-Type": "application/xml"})  # fmt: skip
        through_proxy = client.get("http://kanta-guard.status/metrics", timeout=10)
    assert clean.status_code == 200 and dirty.status_code == 403
    after = scrape(metered)

    def grew(name: str, labels: tuple[tuple[str, str], ...] = ()) -> float:
        return after[(name, labels)] - before.get((name, labels), 0.0)

    assert grew("kanta_guard_requests_total", (("verdict", "pass"),)) == 1
    assert grew("kanta_guard_requests_total", (("verdict", "block"),)) == 1
    assert grew("kanta_guard_findings_total", (("rule", "hetu.real"),)) >= 1
    assert grew("kanta_guard_scan_seconds_count") == 2
    assert after[("kanta_guard_ready", ())] == 1
    assert after[("kanta_guard_worker_restarts_total", ())] == 0
    assert after[("kanta_guard_log_failures_total", ())] == 0
    assert through_proxy.status_code == 200
    proxied = values(through_proxy.text)
    assert proxied[("kanta_guard_requests_total", (("verdict", "block"),))] >= 1
    assert len(upstream.got(path)) == 1  # the metrics request never went upstream
    for text in (through_proxy.text, requests.get(
        f"http://{LOOPBACK}:{metered.metrics_port}/metrics", timeout=10  # type: ignore[attr-defined]
    ).text):  # fmt: skip
        assert REAL not in text and path not in text


def test_an_https_request_counts_once(metered: GuardProxy, tls_upstream: Upstream) -> None:
    """An HTTPS request through a tunnel is one request: its CONNECT is not counted."""
    before = scrape(metered)
    path = marker("metrics-https")
    with requests_session(metered) as client:
        answer = client.get(tls_upstream.url(path), verify=str(metered.ca_cert), timeout=10)
    assert answer.status_code == 200
    after = scrape(metered)
    key = ("kanta_guard_requests_total", (("verdict", "pass"),))
    assert after[key] - before[key] == 1


def test_bad_metrics_address_stops_start_up(tmp_path: Path) -> None:
    """A bad HOST:PORT stops start-up with one line naming the option."""
    guard = GuardProxy(tmp_path, tmp_path / "b.jsonl", ["--set", "kanta_guard_metrics=nowhere"])
    result = start_refused(guard)
    assert not result.listened and result.returncode not in (None, 0)
    lines = [line for line in result.stderr.splitlines() if "kanta_guard_metrics" in line]
    assert len(lines) == 1 and "HOST:PORT" in lines[0]
    assert "Traceback" not in result.stderr


def test_metrics_port_in_use_stops_start_up(tmp_path: Path) -> None:
    """A metrics port something else holds stops start-up with one line saying so."""
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        guard = GuardProxy(
            tmp_path, tmp_path / "b.jsonl", ["--set", f"kanta_guard_metrics={LOOPBACK}:{port}"]
        )
        started = time.monotonic()
        result = start_refused(guard)
    assert not result.listened and result.returncode not in (None, 0)
    lines = [line for line in result.stderr.splitlines() if "kanta_guard_metrics" in line]
    assert len(lines) == 1 and "cannot listen there" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 20
