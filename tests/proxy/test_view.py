"""Tests for kanta_guard.proxy.view: the kanta-guard content view, and that "auto" picks it.

mitmweb asks the proxy for a message's "auto" view (``/flows/<id>/request/content/Auto.json``),
which ``contentviews.prettify_message`` answers by ``render_priority`` among every registered
view: these tests make the same call, on flows judged by a real scanner.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import TEST_KEY
from helpers import REAL, TEST, b64, bundle, cda, identity_policy
from mitmproxy import contentviews, http
from mitmproxy.test import taddons, tflow, tutils

from kanta_guard import KeyedHasher, Scanner
from kanta_guard.proxy.flows import flow_request, mark
from kanta_guard.proxy.view import KantaGuardView

SCANNER = Scanner(identity_policy(), KeyedHasher(TEST_KEY))


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    """mitmproxy's views and the guard's, in a context with options (as in the proxy)."""
    if "kanta-guard" not in contentviews.registry:
        contentviews.add(KantaGuardView)
    with taddons.context():
        yield


def judged(body: bytes, content_type: str, path: str = "/services") -> http.HTTPFlow:
    """A flow with this request, scanned and marked as the HTTP guard does, with an answer."""
    f = tflow.tflow()
    f.request = http.Request.make(
        "POST", f"https://kanta.test{path}", body, {"Content-Type": content_type}
    )
    mark(f, SCANNER.scan(flow_request(f)))
    f.response = tutils.tresp(content=b'{"resourceType": "OperationOutcome"}')
    f.response.headers["Content-Type"] = "application/json"
    return f


# A flagged request of every kind of body mitmproxy has a view for that would compete.
FLAGGED: list[tuple[str, bytes, str]] = [
    ("CDA", cda(patient=REAL).encode(), "application/xml"),
    ("FHIR JSON", bundle(patient=REAL).encode(), "application/fhir+json"),
    (
        "GraphQL-shaped JSON (mitmproxy's highest priority, 2)",
        json.dumps({"query": "{\n  patient\n}", "variables": {"id": REAL}}).encode(),
        "application/json",
    ),
    ("form", f"hetu={REAL}".encode(), "application/x-www-form-urlencoded"),
    ("text", f"Potilas {REAL}".encode(), "text/plain"),
    ("Base64", b64(f"Potilaan tunnus on {REAL}, katso liite.").encode(), "text/plain"),
]


@pytest.mark.parametrize(("kind", "body", "content_type"), FLAGGED, ids=[c[0] for c in FLAGGED])
def test_auto_view_of_a_flagged_request_is_the_guards(
    kind: str, body: bytes, content_type: str
) -> None:
    """ "auto" opens a blocked request in the kanta-guard view: the rule, the location, the
    masked evidence, never the raw code."""
    f = judged(body, content_type)
    assert f.marked, f.metadata
    shown = contentviews.prettify_message(f.request, f)
    assert shown.view_name == "kanta-guard"
    assert "verdict: block" in shown.text and "hetu.real" in shown.text
    assert "evidence ******-****" in shown.text
    assert REAL not in shown.text


def test_clean_request_keeps_its_usual_view() -> None:
    """A clean request opens as mitmproxy would show it; the guard's view, picked by hand,
    says what was recognised."""
    f = judged(cda().encode(), "application/xml")
    assert not f.marked
    assert contentviews.prettify_message(f.request, f).view_name != "kanta-guard"
    picked = contentviews.prettify_message(f.request, f, view_name="kanta-guard")
    assert "verdict: pass" in picked.text and "no findings" in picked.text
    assert "recognised: 5 identity fields; test codes " in picked.text and TEST in picked.text


def test_response_keeps_its_view_when_the_request_has_a_body() -> None:
    """The answer of a flagged request with a body opens as itself (the findings are on the
    request)."""
    f = judged(cda(patient=REAL).encode(), "application/xml")
    assert contentviews.prettify_message(f.response, f).view_name != "kanta-guard"


def test_findings_of_a_bodyless_request_open_on_its_answer() -> None:
    """A request flagged for its URL alone has no body (mitmweb then shows "No content" on the
    Request tab without asking any view): its answer opens in the kanta-guard view."""
    f = judged(b"", "application/fhir+json", path=f"/fhir/Patient/{REAL}")
    assert f.marked
    shown = contentviews.prettify_message(f.response, f)
    assert shown.view_name == "kanta-guard"
    assert "hetu.real" in shown.text and REAL not in shown.text


def test_unjudged_flow_is_left_alone() -> None:
    """A flow no request hook ran for never gets the guard's view by itself."""
    f = tflow.tflow()
    assert contentviews.prettify_message(f.request, f).view_name != "kanta-guard"
    picked = contentviews.prettify_message(f.request, f, view_name="kanta-guard")
    assert "not scanned" in picked.text
