"""Tests for kanta_guard.worker: real worker processes, and the addon scanning through them."""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
from pathlib import Path

import pytest
from conftest import TEST_KEY
from helpers import (
    REAL,
    TEST,
    bundle,
    cda,
    code,
    identity_policy,
    identity_policy_file,
    soap_with_cda,
)
from mitmproxy import http
from mitmproxy.addons import proxyserver
from mitmproxy.test import taddons, tflow

from kanta_guard import KeyedHasher, Request, Scanner, Verdict
from kanta_guard.proxy.flows import MARK_BLOCKED
from kanta_guard.proxy.guard import INLINE_BYTES, HttpGuard
from kanta_guard.proxy.state import GuardState
from kanta_guard.worker import WorkerPool

POLICY = identity_policy()
LOCAL = Scanner(POLICY, KeyedHasher(TEST_KEY))


def post(body: str | bytes, content_type: str) -> Request:
    data = body.encode() if isinstance(body, str) else body
    return Request("POST", "/services", (("Content-Type", content_type),), data, "kanta.test")


REQUESTS = [
    post(soap_with_cda(), "text/xml"),
    post(cda(patient=REAL), "application/xml"),
    post(bundle(patient="250810A999Y"), "application/fhir+json"),
    post("<a><b></a>", "application/xml"),
    Request("GET", f"/Patient?identifier=urn:oid:1.2.246.21|{REAL}", (), b"", "kanta.test"),
    # The authority and the trailers cross the wire too (a real code only there: a worker that
    # did not get them would pass the request).
    Request("GET", "/", (("Host", "kanta.test"),), b"", "kanta.test", f"{REAL}.kanta.test:443"),
    Request("POST", "/", (), b"x", "kanta.test", "kanta.test", (("X-Checksum", f"p={REAL}"),)),
    Request("GET", "/", (), b"", "kanta.test", "kanta.test:443", (("X-Checksum", TEST),)),
    # Past the findings cap the rest are only counted; the count crosses the wire too.
    post(" ".join(code("010203", "A", n) for n in range(100, 400)), "text/plain"),
]


def _slow_body() -> bytes:
    """A clean text body that takes a worker well over 10 ms to scan."""
    return (f"rivi {TEST} 2024-01-15T09:30:00 1234567890 ".encode()) * 200_000


def test_pool_reports_equal_local_scans() -> None:
    """Through worker processes, every request gets exactly the report of an in-process scan,
    also when more requests than workers are in flight."""

    async def scenario() -> list[object]:
        pool = WorkerPool(POLICY, TEST_KEY, size=2, timeout=30)
        try:
            await pool.start()
            assert len(pool.pids) == 2 and os.getpid() not in pool.pids
            return list(await asyncio.gather(*(pool.scan(r) for r in REQUESTS * 3)))
        finally:
            await pool.aclose()

    reports = asyncio.run(scenario())
    assert reports == [LOCAL.scan(r) for r in REQUESTS * 3]
    assert any(r.omitted for r in reports)  # type: ignore[attr-defined]
    assert any(r.recognised.test_codes for r in reports)  # type: ignore[attr-defined]
    assert {r.verdict for r in reports} == {Verdict.PASS, Verdict.BLOCK, Verdict.WARN}  # type: ignore[attr-defined]


def test_dead_worker_is_replaced() -> None:
    """A worker that died between requests is replaced; the next request is scanned."""

    async def scenario() -> tuple[list[int], list[int], Verdict]:
        pool = WorkerPool(POLICY, TEST_KEY, size=1, timeout=30)
        try:
            await pool.start()
            before = pool.pids
            os.kill(before[0], signal.SIGKILL)
            await asyncio.sleep(0.2)
            report = await pool.scan(REQUESTS[1])
            return before, pool.pids, report.verdict
        finally:
            await pool.aclose()

    before, after, verdict = asyncio.run(scenario())
    assert verdict is Verdict.BLOCK
    assert after and after != before


def test_worker_dying_mid_scan_blocks_the_request() -> None:
    """A worker killed while it scans: that request is blocked as unscannable, never passed, and
    the pool goes on with a new worker."""

    async def scenario() -> tuple[object, object]:
        pool = WorkerPool(POLICY, TEST_KEY, size=1, timeout=30)
        try:
            await pool.start()
            pid = pool.pids[0]
            asyncio.get_running_loop().call_later(0.01, os.kill, pid, signal.SIGKILL)
            killed = await pool.scan(post(_slow_body(), "text/plain"))
            after = await pool.scan(REQUESTS[0])
            return killed, after
        finally:
            await pool.aclose()

    killed, after = asyncio.run(scenario())
    assert killed.verdict is Verdict.BLOCK  # type: ignore[attr-defined]
    assert killed.rules == ("unscannable",)  # type: ignore[attr-defined]
    assert "scan failed" in killed.findings[0].explanation  # type: ignore[attr-defined]
    assert after.verdict is Verdict.PASS  # type: ignore[attr-defined]


def test_scan_past_the_timeout_blocks_and_replaces_the_worker() -> None:
    """A scan that runs past the timeout is blocked as unscannable and its worker stopped."""

    async def scenario() -> tuple[object, list[int], list[int], object]:
        pool = WorkerPool(POLICY, TEST_KEY, size=1, timeout=0.005)
        try:
            await pool.start()
            before = pool.pids
            slow = await pool.scan(post(_slow_body(), "text/plain"))
            pool.timeout = 30
            clean = await pool.scan(REQUESTS[0])
            return slow, before, pool.pids, clean
        finally:
            await pool.aclose()

    slow, before, after, clean = asyncio.run(scenario())
    assert slow.rules == ("unscannable",)  # type: ignore[attr-defined]
    assert "did not finish within 0.005 s" in slow.findings[0].explanation  # type: ignore[attr-defined]
    assert after != before
    assert clean.verdict is Verdict.PASS  # type: ignore[attr-defined]


def test_hash_key_is_not_on_the_command_line() -> None:
    """The key reaches a worker through its pipe, not its arguments (which ps shows)."""

    async def scenario() -> bytes:
        pool = WorkerPool(POLICY, TEST_KEY, size=1, timeout=30)
        try:
            await pool.start()
            return Path(f"/proc/{pool.pids[0]}/cmdline").read_bytes()
        finally:
            await pool.aclose()

    cmdline = asyncio.run(scenario())
    assert b"kanta_guard.worker" in cmdline
    assert TEST_KEY not in cmdline


def test_closed_pool_stops_its_workers() -> None:
    async def scenario() -> list[int]:
        pool = WorkerPool(POLICY, TEST_KEY, size=2, timeout=30)
        await pool.start()
        pids = pool.pids
        await pool.aclose()
        return pids

    for pid in asyncio.run(scenario()):
        assert not Path(f"/proc/{pid}").exists()


def _large(document: str) -> str:
    """The document padded past INLINE_BYTES, so that the addon hands it to a worker."""
    return document.replace("<title>", "<!--" + "pad " * INLINE_BYTES + "--><title>", 1)


def _guard(log: Path, workers: int) -> HttpGuard:
    """The HTTP guard as the launcher configures it, with ``workers`` scan workers."""
    policy = identity_policy_file(log.parent)
    return HttpGuard(
        GuardState(),
        {"kanta_guard_log": str(log), "kanta_guard_workers": workers, "kanta_guard_policy": policy},
    )


def _flow(body: str, content_type: str) -> http.HTTPFlow:
    f = tflow.tflow()
    f.request = http.Request.make(
        "POST", "https://kanta.test/services", body.encode(), {"Content-Type": content_type}
    )
    return f


def test_addon_scans_in_workers(tmp_path: Path) -> None:
    """The addon with workers: started when the proxy runs, blocking and passing as in-process."""
    addon = _guard(tmp_path / "log.jsonl", 1)

    async def scenario() -> tuple[http.HTTPFlow, http.HTTPFlow, list[int]]:
        with taddons.context(proxyserver.Proxyserver(), addon):
            await addon.running()
            workers = addon.state.workers
            assert workers is not None
            pids = workers.pids
            blocked = _flow(_large(cda(patient=REAL)), "application/xml")
            clean = _flow(_large(cda()), "text/xml")
            await asyncio.gather(addon.request(blocked), addon.request(clean))
            await workers.aclose()
            addon.done()
            return blocked, clean, pids

    blocked, clean, pids = asyncio.run(scenario())
    assert len(pids) == 1 and os.getpid() not in pids
    assert blocked.response is not None and blocked.response.status_code == 403
    assert blocked.marked == MARK_BLOCKED
    assert clean.response is None and clean.metadata["kanta_guard"]["verdict"] == "pass"


@pytest.mark.parametrize("workers", [0, 1])
def test_addon_blocks_when_the_scan_itself_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """An error in the scan machinery blocks the request (unscannable), never lets it through."""
    addon = _guard(tmp_path / "log.jsonl", workers)

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    async def scenario() -> http.HTTPFlow:
        with taddons.context(proxyserver.Proxyserver(), addon):
            target = addon.state.workers if workers else addon.state.scanner
            monkeypatch.setattr(target, "scan", broken)
            f = _flow(_large(cda()), "application/xml")
            await addon.request(f)
            if addon.state.workers is not None:
                await addon.state.workers.aclose()
            addon.done()
            return f

    f = asyncio.run(scenario())
    assert f.response is not None and f.response.status_code == 422
    assert f.response.headers["X-Kanta-Guard-Rules"] == "unscannable"
    assert "internal error in the scan: RuntimeError" in f.response.text


def test_small_requests_are_scanned_without_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small, uncompressed request is scanned on the proxy's thread (cheaper than the hand-over);
    a large or compressed one goes to a worker."""
    addon = _guard(tmp_path / "l.jsonl", 1)
    handed: list[int] = []

    async def scenario() -> list[http.HTTPFlow]:
        with taddons.context(proxyserver.Proxyserver(), addon):
            workers = addon.state.workers
            assert workers is not None
            scan = workers.scan

            async def counting(request: Request) -> object:
                handed.append(len(request.body))
                return await scan(request)

            monkeypatch.setattr(workers, "scan", counting)
            small = _flow(cda(patient=REAL), "application/xml")
            large = _flow(_large(cda()), "application/xml")
            gzipped = _flow("", "application/xml")
            gzipped.request.headers["Content-Encoding"] = "gzip"
            gzipped.request.raw_content = gzip.compress(cda(patient=REAL).encode())
            # A small body under a large head is no small request: the head is read too.
            big_head = _flow(cda(), "application/xml")
            big_head.request.headers["X-Note"] = "x" * (2 * INLINE_BYTES)
            for f in (small, large, gzipped, big_head):
                await addon.request(f)
            await workers.aclose()
            addon.done()
            return [small, large, gzipped, big_head]

    small, large, gzipped, big_head = asyncio.run(scenario())
    assert len(handed) == 3 and handed[0] > INLINE_BYTES
    assert big_head.response is None
    assert small.response is not None and small.response.status_code == 403
    assert large.response is None
    assert gzipped.response is not None and gzipped.response.status_code == 403


def test_worker_that_cannot_start_blocks_until_one_can(monkeypatch: pytest.MonkeyPatch) -> None:
    """No worker can start (here: the interpreter exits at once): start-up says so, requests are
    blocked as unscannable, and once a worker can start again, requests are scanned."""
    import sys

    from kanta_guard.worker import WorkerError

    async def scenario() -> tuple[object, object]:
        pool = WorkerPool(POLICY, TEST_KEY, size=1, timeout=30)
        try:
            with monkeypatch.context() as patch:
                patch.setattr(sys, "executable", "/bin/false")
                with pytest.raises(WorkerError):
                    await pool.start()
                refused = await pool.scan(REQUESTS[0])
            scanned = await pool.scan(REQUESTS[0])
            return refused, scanned
        finally:
            await pool.aclose()

    refused, scanned = asyncio.run(scenario())
    assert refused.rules == ("unscannable",)  # type: ignore[attr-defined]
    assert "scan failed: the scan worker" in refused.findings[0].explanation  # type: ignore[attr-defined]
    assert scanned.verdict is Verdict.PASS  # type: ignore[attr-defined]
