"""Tests for the status page addon (HTML or JSON) and for what feeds its statistics."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest
from helpers import REAL, cda, identity_policy_file
from mitmproxy import http
from mitmproxy.addons import proxyserver
from mitmproxy.test import taddons, tflow

from kanta_guard import default_policy
from kanta_guard.model import Request
from kanta_guard.proxy.guard import HttpGuard
from kanta_guard.proxy.state import GuardState
from kanta_guard.proxy.status import STATUS_HOST, Status, wants_html
from kanta_guard.worker import WorkerPool

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def ask(state: GuardState, path: str, accept: str = "*/*", method: str = "GET") -> http.Response:
    """What the Status addon answers for ``path`` on the status host."""
    f = tflow.tflow()
    f.request = http.Request.make(method, f"http://{STATUS_HOST}{path}", b"", {"Accept": accept})
    Status(state).request(f)
    assert f.response is not None
    return f.response


@pytest.mark.parametrize(
    ("path", "accept", "status", "kind"),
    [
        ("/", BROWSER_ACCEPT, 200, "text/html; charset=utf-8"),
        ("/", "*/*", 200, "application/json"),
        ("/", "application/json", 200, "application/json"),
        ("/status.json", BROWSER_ACCEPT, 200, "application/json"),  # always JSON
        ("/status.json?x=1", "*/*", 200, "application/json"),
        ("/elsewhere", BROWSER_ACCEPT, 404, "text/plain"),
    ],
)
def test_page_or_json_by_accept(path: str, accept: str, status: int, kind: str) -> None:
    """A browser gets the page, anything else JSON; /status.json is JSON for everyone."""
    response = ask(GuardState(), path, accept)
    assert response.status_code == status
    assert response.headers["content-type"] == kind
    assert response.headers["cache-control"] == "no-store"
    if kind == "application/json":
        assert json.loads(response.content or b"")["ready"] is False
    if kind.startswith("text/html"):
        assert b"kanta-guard" in (response.content or b"")


def test_page_is_read_only() -> None:
    """Only GET and HEAD are answered with the status."""
    assert ask(GuardState(), "/", BROWSER_ACCEPT, "POST").status_code == 405


@pytest.mark.parametrize(
    ("accept", "html"),
    [(BROWSER_ACCEPT, True), ("TEXT/HTML", True), ("*/*", False), ("", False)],
)
def test_wants_html(accept: str, html: bool) -> None:
    """Only an Accept naming text/html asks for the page."""
    assert wants_html(accept) is html


def guard_in(tmp_path: Path, log: Path | None = None) -> HttpGuard:
    """An HTTP guard scanning in the test's thread, logging to ``log``."""
    return HttpGuard(
        GuardState(),
        {
            "kanta_guard_log": str(log or tmp_path / "b.jsonl"),
            "kanta_guard_workers": 0,
            # The identity-code rules only: the fixture's test names are not what this is about.
            "kanta_guard_policy": str(identity_policy_file(tmp_path)),
        },
    )


def post(body: str) -> http.HTTPFlow:
    f = tflow.tflow()
    f.request = http.Request.make(
        "POST", "https://kanta.test/services", body.encode(), {"Content-Type": "application/xml"}
    )
    return f


def test_guard_feeds_the_statistics(tmp_path: Path) -> None:
    """Every judged request is counted by verdict, its scan timed, its findings and host kept."""
    addon = guard_in(tmp_path)
    with taddons.context(proxyserver.Proxyserver(), addon):
        for body in (cda(), cda(), cda(patient=REAL)):
            asyncio.run(addon.request(post(body)))
        status = addon.state.status()
    addon.done()
    stats = status["stats"]
    assert stats["requests"] == {"pass": 2, "warn": 0, "block": 1}  # type: ignore[index]
    assert stats["findings"] == {"hetu.real": 1}  # type: ignore[index]
    assert stats["blocks_by_host"] == {"kanta.test": 1}  # type: ignore[index]
    assert stats["scan_seconds"]["count"] == 3  # type: ignore[index]
    (block,) = stats["recent_blocks"]  # type: ignore[index]
    assert block["findings"][0]["evidence"] == "******-****"
    assert REAL not in json.dumps(status)


def test_failed_log_writes_are_counted(tmp_path: Path) -> None:
    """On a full disk the block is counted, and so is the write that failed."""
    addon = guard_in(tmp_path, Path("/dev/full"))
    with taddons.context(proxyserver.Proxyserver(), addon):
        asyncio.run(addon.request(post(cda(patient=REAL))))
        status = addon.state.status()
    addon.done()
    assert status["stats"]["log_failures"] >= 1  # type: ignore[index]
    assert status["stats"]["requests"]["block"] == 1  # type: ignore[index]


def test_status_names_registry_testing_and_worker_health(tmp_path: Path) -> None:
    """The status holds the testing mode and the workers' health (configured, running)."""
    addon = guard_in(tmp_path)
    with taddons.context(proxyserver.Proxyserver(), addon):
        status = addon.state.status()
    addon.done()
    assert status["testing"] == "independent"
    assert status["registry"] is None
    assert status["worker_health"] == {
        "configured": 0,
        "running": 0,
        "restarts": 0,
        "scanning_in_proxy": True,
    }


def test_worker_pool_reports_each_restart() -> None:
    """A worker that dies is replaced, and the pool says so once per replacement."""
    restarts: list[int] = []
    pool = WorkerPool(default_policy(), b"k" * 32, 1, 30.0, on_restart=lambda: restarts.append(1))

    async def run() -> None:
        await pool.start()
        request = Request("GET", "/")
        await pool.scan(request)
        for pid in pool.pids:  # dies while idle: replaced when next needed
            os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.2)
        await pool.scan(request)
        await pool.aclose()

    asyncio.run(run())
    assert restarts == [1]


def test_worker_pool_reports_a_scan_that_ran_too_long() -> None:
    """A worker stopped for running past the timeout is a restart too (its request is blocked
    as unscannable)."""
    restarts: list[int] = []
    pool = WorkerPool(default_policy(), b"k" * 32, 1, 30.0, on_restart=lambda: restarts.append(1))

    async def run() -> str:
        await pool.start()
        pool.timeout = 1e-6  # (started with a sane timeout; now every scan runs past it)
        report = await pool.scan(Request("POST", "/", body=b"x" * 100_000))
        await pool.aclose()
        return str(report.verdict)

    assert asyncio.run(run()) == "block"
    assert restarts == [1]
