"""End to end: SIGTERM or SIGINT with requests in flight ends the proxy and its scan workers.

The proxy runs two scan workers; a burst of 20 concurrent requests (large enough to go to the
workers) and a few slow clients that sent their headers and half a body are in flight when the
signal arrives. Everything must be gone within 5 seconds.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from . import bodies
from .conftest import LOOPBACK, GuardProxy, Upstream, alive, children, unique

pytestmark = pytest.mark.e2e

DEADLINE = 5.0


def _post(port: int, url: str, body: bytes) -> None:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    with contextlib.suppress(OSError, http.client.HTTPException):
        connection.request("POST", url, body=body, headers={"Content-Type": bodies.SOAP11_TYPE})
        connection.getresponse().read()
    connection.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_with_requests_in_flight_ends_proxy_and_workers(
    tmp_path: Path, upstream: Upstream, signum: signal.Signals
) -> None:
    """A signal right after a burst, with slow clients mid-body, ends the proxy and both scan
    workers within 5 seconds."""
    guard = GuardProxy(tmp_path, tmp_path / "blocked.jsonl", ["--workers", "2"])
    guard.start()
    assert guard.process is not None
    process = guard.process
    workers: list[int] = []
    slow: list[socket.socket] = []
    threads: list[threading.Thread] = []
    try:
        deadline = time.monotonic() + 10
        while len(workers := children(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) == 2, "the proxy did not start two scan workers"
        pad = b"<soap:Header><!--" + b" pad" * 50_000 + b" --></soap:Header>"  # 200 KB: a worker
        body = bodies.soap11().replace(b"<soap:Header/>", pad)
        for _ in range(4):
            sock = socket.create_connection((LOOPBACK, guard.port), timeout=10)
            head = (
                f"POST {upstream.url('/e2e/slow/' + unique(8))} HTTP/1.1\r\n"
                f"Host: {LOOPBACK}:{upstream.port}\r\nContent-Type: {bodies.SOAP11_TYPE}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body[: len(body) // 2])
            slow.append(sock)
        for i in range(20):
            url = upstream.url(f"/e2e/stop-burst-{i}/{unique(8)}")
            thread = threading.Thread(target=_post, args=(guard.port, url, body), daemon=True)
            thread.start()
            threads.append(thread)
        time.sleep(0.2)  # the burst is in flight
        started = time.monotonic()
        process.send_signal(signum)
        try:
            process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the proxy still runs {DEADLINE} s after {signum.name}")
        while any(alive(pid) for pid in workers) and time.monotonic() - started < DEADLINE:
            time.sleep(0.05)
        left = [pid for pid in workers if alive(pid)]
        assert left == [], f"scan workers still alive {DEADLINE} s after {signum.name}"
    finally:
        for sock in slow:
            sock.close()
        guard.stop()
        for pid in workers:  # our own proxy's workers, if the test failed with them alive
            if alive(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        for thread in threads:
            thread.join(5)
