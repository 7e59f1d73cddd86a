"""End to end in a real browser: what mitmweb's dashboard shows of the guard's verdicts.

One guard under mitmweb (``kanta-guard web``) sees a clean and a blocked request, sent by a real
client through the proxy to the real loopback upstream; then headless Chromium opens the
dashboard (its port and ``web_password`` as the token) and finds the Comment column on, the
blocked flow's comment starting with the rule and the role, the clean flow's naming the test
code it recognised, and the blocked request opening in the kanta-guard content view without
picking it, with the masked evidence. The raw real code appears nowhere in the page's HTML.
Screenshots go to the test artefacts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from helpers import REAL, TEST, cda

from .browser import artifacts, browser_page, start_dashboard
from .conftest import (
    LOOPBACK,
    GuardProxy,
    Upstream,
    marker,
    requests_session,
)

pytestmark = pytest.mark.e2e

PASSWORD = "kanta-e2e-mitmweb-password"
#: mitmweb 12's default flow-list columns (its ``web_columns`` option).
DEFAULT_COLUMNS = ["tls", "icon", "path", "method", "status", "size", "time"]
#: The minor-patient CDA's patient code: the dirty request replaces it with a real one.
PATIENT_CODE = "020516C903K"


def dashboard(guard: GuardProxy) -> str:
    """The dashboard's address with its token (the password, which mitmweb takes as one)."""
    return f"http://{LOOPBACK}:{guard.web_port}/?token={PASSWORD}"  # type: ignore[attr-defined]


def options(guard: GuardProxy) -> dict[str, Any]:
    """mitmweb's options as its UI loads them (``GET /options``, authenticated)."""
    response = requests.get(
        f"http://{LOOPBACK}:{guard.web_port}/options",  # type: ignore[attr-defined]
        headers={"Authorization": f"Bearer {PASSWORD}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text[:300]
    found: dict[str, Any] = response.json()
    return found


@pytest.fixture(scope="module")
def web_guard(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[GuardProxy]:
    """The guard under mitmweb after a clean request, a blocked one and a blocked one without a
    body (the code in its query: paths ``…/clean``, ``…/dirty``, ``…/bodiless``)."""
    guard = start_dashboard(tmp_path_factory.mktemp("guard-mitmweb-browser"), PASSWORD)
    path = marker("mitmweb-browser")
    headers = {"Content-Type": "application/xml"}
    try:
        with requests_session(guard) as client:
            clean = client.post(upstream.url(path + "/clean"), data=cda(), headers=headers)
            dirty = client.post(
                upstream.url(path + "/dirty"), data=cda(patient=REAL), headers=headers
            )
            bodiless = client.get(upstream.url(f"{path}/bodiless?identifier={REAL}"))
        assert clean.status_code == 200, clean.text[:300]
        assert dirty.status_code == 403, dirty.text[:300]
        assert bodiless.status_code == 403, bodiless.text[:300]
        assert len(upstream.got(path + "/clean")) == 1 and upstream.got(path + "/dirty") == []
        assert upstream.got(path + "/bodiless") == []
        yield guard
    finally:
        guard.stop()


@pytest.fixture
def page() -> Iterator[Any]:
    """A Chromium page going nowhere but loopback, directly (not through the proxy)."""
    yield from browser_page()


def row(page: Any, path_part: str) -> Any:
    """The flow list's row whose path holds ``path_part``, once the list shows it."""
    found = page.locator(".flow-table tbody tr", has_text=path_part)
    found.first.wait_for(timeout=15_000)
    assert found.count() == 1, page.locator(".flow-table").inner_text()
    return found.first


def no_raw_code(page: Any) -> None:
    """The raw real code is nowhere in the page's HTML (or its text), in either case."""
    html: str = page.content()
    text: str = page.locator("body").inner_text()
    for form in (REAL, REAL.lower()):
        assert form not in html and form not in text


def test_comment_column_is_on_by_default(web_guard: GuardProxy) -> None:
    """The guard adds "comment" to mitmweb's default columns (a server option the UI loads)."""
    columns = options(web_guard)["web_columns"]
    assert columns["value"] == [*DEFAULT_COLUMNS, "comment"]
    assert columns["default"] == DEFAULT_COLUMNS  # (mitmweb's own default is left as it is)


def test_flow_list_says_why_and_what_was_recognised(
    page: Any, web_guard: GuardProxy, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The Comment column is shown: the blocked flow's row starts with the rule and the role,
    the clean flow's names the test codes it recognised."""
    page.set_viewport_size({"width": 1400, "height": 700})
    page.goto(dashboard(web_guard), wait_until="load")
    header = page.locator(".flow-table thead")
    header.wait_for(timeout=15_000)
    assert header.locator("th.col-comment").inner_text() == "Comment"
    blocked = row(page, "/dirty").locator("td.col-comment")
    assert blocked.inner_text().startswith("hetu.real (patient) · block")
    clean = row(page, "/clean").locator("td.col-comment")
    assert clean.inner_text().startswith("pass · 5 identity fields · test codes ")
    assert TEST in clean.inner_text()
    page.screenshot(path=str(artifacts(tmp_path_factory) / "mitmweb-flow-list.png"))
    no_raw_code(page)


def test_blocked_request_opens_in_the_guards_view(
    page: Any, web_guard: GuardProxy, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Clicking the blocked flow and its Request tab shows the kanta-guard view (not picked by
    hand: mitmweb asks for "auto") with the finding's masked evidence; no raw code anywhere."""
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(dashboard(web_guard), wait_until="load")
    row(page, "/dirty").click()
    page.locator(".flow-detail nav a", has_text="Request").first.click()
    view = page.locator(".flow-detail .contentview")
    view.get_by_text("kanta-guard verdict: block").wait_for(timeout=15_000)
    # The view chosen by mitmweb's "auto" (the selector says so), named in the heading.
    assert view.locator(".controls h5").inner_text() == "kanta-guard"
    assert "View: auto" in view.locator(".controls").inner_text()
    shown = view.locator("pre").inner_text()
    assert "hetu.real" in shown and "(patient)" in shown
    assert "/ClinicalDocument/recordTarget/patientRole/id/@extension" in shown
    assert "evidence ******-****  hmac:" in shown
    assert PATIENT_CODE not in shown  # (the redacted body is not what opens)
    page.screenshot(path=str(artifacts(tmp_path_factory) / "mitmweb-blocked-request.png"))
    no_raw_code(page)


def test_bodiless_blocked_request_opens_its_answer_in_the_guards_view(
    page: Any, web_guard: GuardProxy, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A request blocked for its URL has no body, which mitmweb shows as "No content" without
    asking for a view: its Response tab opens in the kanta-guard view instead."""
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(dashboard(web_guard), wait_until="load")
    row(page, "/bodiless").click()
    detail = page.locator(".flow-detail")
    detail.locator("nav a", has_text="Request").first.click()
    detail.get_by_text("No content").wait_for(timeout=15_000)
    detail.locator("nav a", has_text="Response").first.click()
    view = detail.locator(".contentview")
    view.get_by_text("kanta-guard verdict: block").wait_for(timeout=15_000)
    assert view.locator(".controls h5").inner_text() == "kanta-guard"
    shown = view.locator("pre").inner_text()
    assert "hetu.real" in shown and "evidence ******-****" in shown
    page.screenshot(path=str(artifacts(tmp_path_factory) / "mitmweb-bodiless-response.png"))
    no_raw_code(page)


def test_a_users_own_columns_win(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``--set web_columns=…`` on the command line is kept as given."""
    guard = start_dashboard(
        tmp_path_factory.mktemp("guard-mitmweb-columns"), PASSWORD, "--set", "web_columns=path"
    )
    try:
        assert options(guard)["web_columns"]["value"] == ["path"]
    finally:
        guard.stop()
