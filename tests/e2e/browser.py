"""A real headless browser for the end-to-end tests: Debian's Chromium driven by Playwright.

Playwright's own browser downloads are not used (the machine has no route to them): it drives
the system's ``/usr/bin/chromium`` (Debian's ``chromium`` package, which ``.ci/run`` installs).
The flags keep Chromium off the network (background updates, sync, QUIC), as a closed machine
needs. Screenshots go to :func:`artifacts` (``$KANTA_GUARD_ARTIFACTS``, else a folder under
pytest's temporary directory), never into the checkout.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import GuardProxy, free_port, listening

__all__ = ["CHROMIUM", "artifacts", "browser_page", "start_dashboard"]

#: The system's Chromium (Debian's package), or None when it is not installed.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

_FLAGS = [
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Its own services (updates, safe browsing, hints, translation) would otherwise send
    # requests through the proxy under test, which blocks them as hosts not allowed.
    "--no-pings",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--safebrowsing-disable-auto-update",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions",
]


def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots are kept: ``$KANTA_GUARD_ARTIFACTS`` (CI sets it), else pytest's tmp."""
    given = os.environ.get("KANTA_GUARD_ARTIFACTS")
    folder = Path(given) if given else tmp_path_factory.getbasetemp() / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def browser_page(*, proxy: str | None = None) -> Iterator[Any]:
    """A new page in a fresh headless Chromium (through ``proxy``, ``http://host:port``, if
    given); skips the test when Playwright or Chromium is missing. Use as a generator fixture."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does)")
    with sync_playwright() as playwright:
        options: dict[str, Any] = {"executable_path": CHROMIUM, "args": list(_FLAGS)}
        if proxy is not None:
            options["proxy"] = {"server": proxy}
        browser = playwright.chromium.launch(**options)
        try:
            context = browser.new_context(ignore_https_errors=True)
            yield context.new_page()
        finally:
            browser.close()


def start_dashboard(workdir: Path, password: str, *extra: str) -> GuardProxy:
    """``kanta-guard web`` (one scan worker) on free ports with ``password`` as mitmweb's
    token, waiting until the dashboard listens too; its port is ``guard.web_port``."""
    web_port = free_port()
    guard = GuardProxy(
        workdir,
        workdir / "blocked.jsonl",
        [
            "--workers", "1",
            "--set", f"web_port={web_port}", "--set", f"web_password={password}",
            *extra,
        ],
        tool="web",
    )  # fmt: skip
    guard.web_port = web_port  # type: ignore[attr-defined]
    guard.start()
    deadline = time.monotonic() + 15
    while not listening(web_port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listening(web_port), guard.output()
    return guard
