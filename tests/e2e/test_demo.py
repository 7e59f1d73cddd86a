"""End to end: ``kanta-guard demo`` as a newcomer runs it, in a subprocess, with the real guard.

The demo starts its fake endpoint, the real guard (``python -m kanta_guard web``/``run``) and
its script; the tests read what it prints, the guard's blocked-request log in ``--workdir``, and
which processes are left once it has stopped (every descendant seen while it ran must be gone).
A browser test opens the demo's mitmweb dashboard in Chromium and keeps a screenshot.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kanta_guard.idcode import Kind, classify, find_tokens

from .browser import artifacts, browser_page
from .conftest import alive, children, clean_env

pytestmark = pytest.mark.e2e

#: How long one ``--once`` run may take, start to stop (the issue: "within a minute"; ~30 s).
DEADLINE = 30.0
SCRIPT_RULES = {"hetu.real", "name.unregistered", "phone.personal", "email.personal"}
SCRIPT_RULES |= {"cert.production"}


class Demo:
    """One ``python -m kanta_guard demo`` subprocess; records every descendant it starts."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.workdir = workdir
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kanta_guard", "demo", "--workdir", str(workdir), *args],
            env=clean_env(PYTHONUNBUFFERED="1", XDG_STATE_HOME=str(workdir / "state")),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self.descendants: set[int] = set()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def _watch(self) -> None:
        """Collect the demo's descendants (the guard, its scan worker) while it runs."""
        while self.process.poll() is None:
            stack = [self.process.pid]
            while stack:
                for child in children(stack.pop()):
                    self.descendants.add(child)
                    stack.append(child)
            time.sleep(0.05)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._reader.join(5)
            self._watcher.join(5)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first printed line matching ``pattern`` (fails the test after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        pytest.fail(f"no line matching {pattern!r}:\n{self.output}")

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> None:
        """Ctrl-C (the demo then stops what it started), SIGKILL if it does not end."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def records(self) -> list[dict[str, Any]]:
        log = self.workdir / "blocked.jsonl"
        lines = log.read_text("utf-8").splitlines() if log.exists() else []
        return [json.loads(line) for line in lines if line.strip()]


def _left(demo: Demo) -> list[int]:
    """Descendants of the demo still alive a moment after it ended (a zombie has ended)."""
    deadline = time.monotonic() + 2
    while (left := [p for p in demo.descendants if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _no_real_code(text: str) -> None:
    real = [t for t in find_tokens(text.encode()) if classify(t) is Kind.REAL]
    assert not real, "a real-range code is shown unmasked"


@pytest.mark.parametrize("web", [True, False], ids=["mitmweb", "mitmdump"])
def test_demo_once_blocks_the_dirty_and_stops(tmp_path: Path, web: bool) -> None:
    """``demo --once``: the dirty messages are blocked (its output and the guard's log say so),
    the clean ones reach the fake endpoint, and it stops by itself within 30 s leaving no
    process behind (the guard and its scan worker included)."""
    started = time.monotonic()
    demo = Demo(tmp_path, "--once", "--interval", "0.2", *([] if web else ["--no-web"]))
    try:
        status = demo.wait(DEADLINE + 30)
    finally:
        demo.stop()
    elapsed = time.monotonic() - started
    output = demo.output
    assert status == 0, output
    assert elapsed < DEADLINE, f"took {elapsed:.1f} s"
    sent = [line for line in demo.lines if re.match(r"\s*\d+/11 ", line)]
    blocked = [line for line in sent if "BLOCKED by the guard" in line]
    reached = [line for line in sent if "reached the fake Kanta endpoint" in line]
    assert len(sent) == 11, output
    assert len(blocked) == 6 and all(" dirty " in line for line in blocked), output
    assert len(reached) == 5 and all(" clean " in line for line in reached), output
    assert "every verdict as expected" in output
    assert "the fake endpoint received 5 requests" in output
    assert ("dashboard (mitmweb): http://127.0.0.1:" in output) is web
    assert re.search(r"/\?token=[0-9a-f]{32}", output) or not web
    _no_real_code(output)
    # The guard's own log: one blocked record per dirty message, by the rules the script shows.
    records = [r for r in demo.records() if r.get("verdict") == "block"]
    assert len(records) == 6, demo.records()
    assert {rule for r in records for rule in r["rules"]} >= SCRIPT_RULES
    _no_real_code((tmp_path / "blocked.jsonl").read_text("utf-8"))
    guard_out = (tmp_path / "guard.out").read_text("utf-8")
    assert guard_out.count("kanta-guard block") == 6, guard_out
    # Nothing it started is left: it started the guard (and the guard its worker).
    assert len(demo.descendants) >= 2, demo.descendants
    assert not _left(demo), f"left running: {_left(demo)}"


def test_demo_duration_stops_by_itself(tmp_path: Path) -> None:
    """``--duration`` ends the demo (mid-script, repeating it) once the time is up, exit 0."""
    demo = Demo(tmp_path, "--no-web", "--duration", "2", "--interval", "0.1")
    try:
        status = demo.wait(DEADLINE + 30)
    finally:
        demo.stop()
    assert status == 0, demo.output
    sent = [line for line in demo.lines if re.match(r"\s*\d+/11 ", line)]
    assert sent and "every verdict as expected" in demo.output
    assert not _left(demo)


def test_demo_start_failure_is_one_clear_error(tmp_path: Path) -> None:
    """A proxy port already taken: the guard cannot listen; the demo says so, exits 2, and
    leaves nothing running."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        demo = Demo(tmp_path, "--once", "--no-web", "--listen-port", str(port))
        try:
            status = demo.wait(DEADLINE + 30)
        finally:
            demo.stop()
    assert status == 2, demo.output
    assert "kanta-guard demo: error: the guard exited" in demo.output
    assert not _left(demo)


def test_killed_demo_takes_the_guard_with_it(tmp_path: Path) -> None:
    """A demo killed outright (SIGKILL: no clean-up of its own) still leaves no guard behind:
    the guard asked the kernel for SIGTERM when its parent dies."""
    demo = Demo(tmp_path, "--no-web", "--interval", "0.3")
    try:
        demo.wait_for(r" 2/11 ", DEADLINE)
        guards = [p for p in children(demo.process.pid) if alive(p)]
        assert guards, "the demo started no guard"
        demo.process.kill()
        demo.wait(10)
        deadline = time.monotonic() + 15
        while [p for p in demo.descendants if alive(p)] and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        demo.stop()
    assert not [p for p in demo.descendants if alive(p)]


@pytest.fixture
def page() -> Iterator[Any]:
    yield from browser_page()


def test_dashboard_shows_the_blocks(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, page: Any
) -> None:
    """The demo's dashboard URL opens mitmweb (its token accepted) with the script's flows;
    Ctrl-C (SIGINT) then stops the demo and everything it started. Screenshot: demo.png."""
    demo = Demo(tmp_path, "--interval", "0.3", "--duration", "60")
    try:
        url = demo.wait_for(r"dashboard \(mitmweb\): (\S+)", DEADLINE).group(1)
        demo.wait_for(r"11/11 ", DEADLINE)
        page.goto(url)
        page.get_by_text("/fhir/Observation").first.wait_for(timeout=15000)
        page.wait_for_timeout(500)
        page.screenshot(path=artifacts(tmp_path_factory) / "demo.png")
        text = page.inner_text("body")
        assert "/soap/eresepti" in text and "/fhir/Patient" in text
        assert "403" in text and "201" in text
        _no_real_code(text)
        demo.process.send_signal(signal.SIGINT)
        status = demo.wait(DEADLINE)
    finally:
        demo.stop()
    assert "interrupted, stopping" in demo.output
    assert status == 0, demo.output
    assert not _left(demo)
