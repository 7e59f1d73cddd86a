"""End to end in a real browser: the status page through the proxy and on mitmweb's dashboard.

One guard under mitmweb sees a clean and a blocked request; then headless Chromium, through the
proxy, opens ``http://kanta-guard.status/`` and finds the counts and the masked block, and a
second Chromium (no proxy) opens the same page on the dashboard's port with the dashboard's
token. Screenshots go to the test artefacts; the real code appears in neither page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import REAL, cda

from .browser import artifacts, browser_page, start_dashboard
from .conftest import (
    LOOPBACK,
    GuardProxy,
    Upstream,
    marker,
    requests_session,
)

pytestmark = pytest.mark.e2e

PASSWORD = "kanta-e2e-status-password"


@pytest.fixture(scope="module")
def web_guard(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[GuardProxy]:
    """The guard under mitmweb (one scan worker) after one clean and one blocked request."""
    guard = start_dashboard(tmp_path_factory.mktemp("guard-status-browser"), PASSWORD)
    path = marker("status-browser")
    with requests_session(guard) as client:
        headers = {"Content-Type": "application/xml"}
        clean = client.post(upstream.url(path), data=cda(), headers=headers, timeout=10)
        dirty = client.post(
            upstream.url(path + "/dirty"), data=cda(patient=REAL), headers=headers, timeout=10
        )
    assert clean.status_code == 200 and dirty.status_code == 403
    yield guard
    guard.stop()


@pytest.fixture
def proxied_page(web_guard: GuardProxy) -> Iterator[Any]:
    """A Chromium page going through the guard."""
    yield from browser_page(proxy=web_guard.url)


@pytest.fixture
def plain_page() -> Iterator[Any]:
    """A Chromium page going nowhere but loopback, directly."""
    yield from browser_page()


def check_page(page: Any) -> str:
    """The page shows ready, the counts, the one identity-code block with its masked evidence;
    returns its HTML.

    (Chromium's own background requests, its update check and account look-ups, go through the
    proxy too: the guard refuses them as destinations not allowed, so they count as blocks by
    ``upstream.not-allowed``; the test's dirty request is the one ``hetu.real`` finding.)
    """
    assert page.locator("#ready").inner_text() == "ready"
    assert int(page.locator("#count-pass .v").inner_text()) >= 1
    assert int(page.locator("#count-block .v").inner_text()) >= 1
    assert page.locator("#count-warn .v").inner_text() == "0"
    recent = page.locator("#recent").inner_text()
    assert "hetu.real" in recent and "******-****" in recent and "POST" in recent
    assert "/e2e/status-browser/" in recent
    rules = " ".join(page.locator("#rules tr").all_inner_texts())
    assert "hetu.real\tblock\t1" in rules, rules
    html: str = page.content()
    assert REAL not in html and REAL not in page.locator("body").inner_text()
    return html


def test_status_page_through_the_proxy(
    proxied_page: Any, web_guard: GuardProxy, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Chromium through the proxy gets the HTML page at http://kanta-guard.status/."""
    response = proxied_page.goto("http://kanta-guard.status/", wait_until="load")
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    proxied_page.set_viewport_size({"width": 1280, "height": 1100})
    check_page(proxied_page)
    shot = artifacts(tmp_path_factory) / "status-page-proxy.png"
    proxied_page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    # The link to the JSON leads to the same status as data.
    data = proxied_page.goto("http://kanta-guard.status/status.json")
    assert data is not None and data.headers["content-type"] == "application/json"
    assert data.json()["stats"]["findings"]["hetu.real"] == 1


def test_status_page_on_the_dashboard(
    plain_page: Any, web_guard: GuardProxy, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The same page on mitmweb's port at /kanta-guard/, behind the dashboard's token."""
    port = web_guard.web_port  # type: ignore[attr-defined]
    base = f"http://{LOOPBACK}:{port}/kanta-guard/"
    refused = requests.get(base, timeout=10)
    assert refused.status_code == 403 and "kanta-guard" not in refused.text
    assert requests.get(base + "status.json", timeout=10).status_code == 403
    response = plain_page.goto(f"{base}?token={PASSWORD}", wait_until="load")
    assert response is not None and response.status == 200
    plain_page.set_viewport_size({"width": 1280, "height": 1100})
    check_page(plain_page)
    shot = artifacts(tmp_path_factory) / "status-page-dashboard.png"
    plain_page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    # Once authenticated (the dashboard's cookie), the JSON is there too, without the token.
    data = plain_page.goto(base + "status.json")
    assert data is not None and data.status == 200
    assert data.json()["stats"]["findings"]["hetu.real"] == 1


def test_dashboard_login_form_leads_to_the_page(plain_page: Any, web_guard: GuardProxy) -> None:
    """Without the token the dashboard's own log-in form is shown; the password opens the
    page."""
    port = web_guard.web_port  # type: ignore[attr-defined]
    plain_page.goto(f"http://{LOOPBACK}:{port}/kanta-guard/")
    assert "Authentication Required" in plain_page.content()
    plain_page.fill("input[name=token]", PASSWORD)
    plain_page.click("input[type=submit]")
    plain_page.wait_for_selector("#ready")
    check_page(plain_page)


def test_artifacts_are_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Screenshots never land in the repository."""
    root = Path(__file__).resolve().parents[2]
    assert root not in artifacts(tmp_path_factory).resolve().parents
