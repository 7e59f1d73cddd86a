"""Prometheus metrics of the guard: ``http://kanta-guard.status/metrics``, and a port of their own.

What a scraper gets (the text exposition format, from ``prometheus-client``):

- ``kanta_guard_requests_total{verdict}``: requests judged since start, ``pass``, ``warn``,
  ``block`` (refused connections are blocks too);
- ``kanta_guard_findings_total{rule}``: findings by rule id, of the requests warned or blocked;
- ``kanta_guard_scan_seconds``: a histogram of scan durations (waiting for a worker included);
- ``kanta_guard_worker_restarts_total``: scan workers replaced after a failure;
- ``kanta_guard_log_failures_total``: writes to the blocked-request log that failed;
- ``kanta_guard_ready``: 1 while the guard lets clean traffic through, 0 while it refuses all.

Label values are verdicts and rule ids only, never anything of a request (a host, a path). The
values are read from the guard's :class:`~kanta_guard.stats.Stats` at scrape time by a custom
collector, in a registry of this guard's own (not ``prometheus_client``'s global one: one
process can hold several guards, as the tests do): there is no second set of counters.

``--set kanta_guard_metrics=HOST:PORT`` (default off) also serves ``/metrics`` on a listening
socket of its own, for a scraper that does not go through the proxy (several guards behind a
load balancer: each is scraped on its own port). A bad ``HOST:PORT``, or one that cannot be
listened on, stops start-up with one line.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mitmproxy import ctx, exceptions, http
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from ..idcode import mask_text
from ..stats import Snapshot
from .redact import redact_request
from .state import GuardState
from .status import STATUS_HOST

__all__ = [
    "CONTENT_TYPE",
    "METRICS_PATH",
    "Metrics",
    "MetricsServer",
    "StatsCollector",
    "exposition",
    "metrics_registry",
    "parse_address",
]

logger = logging.getLogger("kanta_guard")

#: The text exposition format 0.0.4, which every Prometheus 2.x and 3.x reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_PATH = "/metrics"


class StatsCollector:
    """Turns a :class:`~kanta_guard.stats.Snapshot`, taken at scrape time, into metrics."""

    def __init__(self, snapshot: Callable[[], Snapshot], ready: Callable[[], bool]) -> None:
        self._snapshot, self._ready = snapshot, ready

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        requests = CounterMetricFamily(
            "kanta_guard_requests", "Requests judged since start, by verdict.", labels=["verdict"]
        )
        for verdict, n in snap.requests.items():
            requests.add_metric([verdict], n)
        yield requests
        findings = CounterMetricFamily(
            "kanta_guard_findings",
            "Findings in warned and blocked requests since start, by rule id.",
            labels=["rule"],
        )
        for rule, n in sorted(snap.findings.items()):
            findings.add_metric([rule], n)
        yield findings
        scan = snap.scan
        buckets = [
            (repr(float(bound)), float(n))
            for bound, n in zip(scan.bounds, scan.cumulative(), strict=False)
        ]
        yield HistogramMetricFamily(
            "kanta_guard_scan_seconds",
            "Seconds a request's scan took (waiting for a worker included).",
            buckets=[*buckets, ("+Inf", float(scan.count))],
            sum_value=scan.sum,
        )
        yield CounterMetricFamily(
            "kanta_guard_worker_restarts",
            "Scan workers replaced after a failure (died, timed out, unreadable answer).",
            value=snap.worker_restarts,
        )
        yield CounterMetricFamily(
            "kanta_guard_log_failures",
            "Writes to the blocked-request log that failed.",
            value=snap.log_failures,
        )
        yield GaugeMetricFamily(
            "kanta_guard_ready",
            "1 while the guard lets clean traffic through; 0 while it refuses everything.",
            value=1 if self._ready() else 0,
        )


def metrics_registry(state: GuardState) -> CollectorRegistry:
    """A registry of this guard's own, reading its state's statistics at every scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(lambda: state.stats.snapshot(), lambda: state.ready))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry's metrics in the text format (:data:`CONTENT_TYPE`)."""
    return generate_latest(registry)


def parse_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6) as (host, port); ValueError naming the problem."""
    host, sep, port_text = value.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit():
        raise ValueError("give HOST:PORT, such as 127.0.0.1:9464")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError("the port must be 1 to 65535")
    return host, port


class MetricsServer:
    """``/metrics`` on a socket of its own, served by a thread (the proxy's loop is not used:
    a slow scraper cannot hold up traffic). Bound when made; :meth:`close` stops it."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        handler = _handler(registry)
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self._server = server_class((host, port), handler)  # raises OSError: in use, no address
        self._server.daemon_threads = True
        self.address: tuple[str, int] = (host, int(self._server.server_address[1]))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="kanta-guard-metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class Metrics:
    """Serves the guard's metrics through the proxy and, when asked, on a port of their own."""

    def __init__(self, state: GuardState) -> None:
        self.state = state
        self.registry = metrics_registry(state)
        self.server: MetricsServer | None = None

    def load(self, loader: Any) -> None:
        loader.add_option(
            "kanta_guard_metrics",
            str,
            "",
            """
            Also serve the guard's Prometheus metrics at http://HOST:PORT/metrics (such as
            127.0.0.1:9464; 0.0.0.0:9464 in a container). Empty (the default): only at
            http://kanta-guard.status/metrics through the proxy.
            """,
        )

    def configure(self, updated: set[str]) -> None:
        if "kanta_guard_metrics" not in updated:
            return
        value = ctx.options.kanta_guard_metrics.strip()
        if not value:
            self._stop()
            return
        shown = mask_text(value)
        try:
            host, port = parse_address(value)
        except ValueError as exc:
            raise exceptions.OptionsError(
                f"kanta-guard: kanta_guard_metrics={shown}: {exc}"
            ) from None
        if self.server is not None and self.server.address == (host, port):
            return
        try:
            server = MetricsServer(self.registry, host, port)  # the new one first: a bad
        except OSError as exc:  # address leaves the old one serving
            reason = mask_text(exc.strerror or type(exc).__name__)
            raise exceptions.OptionsError(
                f"kanta-guard: kanta_guard_metrics={shown}: cannot listen there ({reason})"
            ) from None
        self._stop()
        self.server = server
        logger.info("kanta-guard: metrics at http://%s%s", shown, METRICS_PATH)

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or flow.request.pretty_host != STATUS_HOST:
            return
        if flow.request.path.partition("?")[0] != METRICS_PATH:
            return  # the rest of the status host is the status addon's
        redact_request(flow, self.state.scanner)
        if flow.request.method not in ("GET", "HEAD"):
            flow.response = http.Response.make(
                405, b"405: the metrics are read-only\n", {"Content-Type": "text/plain"}
            )
            return
        flow.response = http.Response.make(
            200,
            exposition(self.registry),
            {"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"},
        )

    def done(self) -> None:
        self._stop()

    def _stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.close()


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler(registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """GET /metrics; anything else 404 (nothing else is served here)."""

        def do_GET(self) -> None:
            if self.path.partition("?")[0] != METRICS_PATH:
                body, code, kind = b"404: only /metrics is served here\n", 404, "text/plain"
            else:
                body, code, kind = exposition(registry), 200, CONTENT_TYPE
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a scrape every few seconds is no news (and a request line is not logged)

    return Handler
